//! What the server's integration tests share: a saved model and a call
//! through the router without a socket.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use because_core::testing::block_data;
use because_models::persist::{self, Meta};
use because_models::ModelSpec;
use because_server::{app, State};
use http_body_util::BodyExt;
use std::path::Path;
use tower::ServiceExt;

/// Fits `spec` on block data (users `u0..u39`, items `i0..i29`) and saves it in `dir`.
pub fn save_model(spec: &str, dir: &Path) {
    let x = block_data(40, 30, 8, 7);
    let model = spec.parse::<ModelSpec>().unwrap().fit(&x).unwrap();
    let meta = Meta {
        user_ids: (0..40).map(|u| format!("u{u}")).collect(),
        item_ids: (0..30).map(|i| format!("i{i}")).collect(),
        data_fingerprint: persist::fingerprint(&x),
        ..Meta::default()
    };
    persist::save(&model, &meta, dir).unwrap();
}

/// An answer: status, body (JSON, or the text as a JSON string) and headers.
pub struct Answer {
    pub status: StatusCode,
    pub json: serde_json::Value,
    pub headers: HeaderMap,
}

/// Calls the router with a JSON body, the key (as a bearer token) and
/// more headers.
pub async fn call_with(
    state: &State,
    method: &str,
    uri: &str,
    body: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    let res = app(state.clone())
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer {
        status,
        json,
        headers,
    }
}
