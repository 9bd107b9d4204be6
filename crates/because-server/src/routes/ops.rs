//! Operations: metrics, probes, the OpenAPI document, and the middleware
//! that measures and bounds every request.

use crate::error::{ApiError, ErrorCode, REQUEST_TIMEOUT};
use crate::routes::events::{EventsStored, Live, Reloaded, UserEvents};
use crate::state::State;
use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

pub(crate) async fn metrics_text(Extract(s): Extract<State>) -> Response {
    let spec = s.model().info().spec;
    let store = s.events.clone();
    let stored = tokio::task::spawn_blocking(move || store.count().ok())
        .await
        .ok()
        .flatten();
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(&spec, stored, &s.events),
    )
        .into_response()
}

pub(crate) async fn measure(
    Extract(s): Extract<State>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let start = std::time::Instant::now();
    let res = next.run(req).await;
    s.metrics
        .record(&route, res.status().as_u16(), start.elapsed());
    if matches!(
        res.extensions().get::<ErrorCode>(),
        Some(ErrorCode("database_unavailable"))
    ) {
        s.metrics.database_unavailable();
    }
    res
}

/// Routes never rate limited: probes and metrics.
const UNLIMITED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Rate limiting: each client (the name of the key it gives, else its
/// address) takes a token per request; without one, 429 with `Retry-After`.
pub(crate) async fn rate_limit(
    Extract(s): Extract<State>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let Some(limiter) = &s.limiter else {
        return next.run(req).await;
    };
    if UNLIMITED.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let keys = s.keys();
    let client = match crate::auth::given(req.headers()).and_then(|g| keys.find(g)) {
        Some((name, _)) => format!("key:{name}"),
        None => req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".to_string(), |c| format!("ip:{}", c.0.ip())),
    };
    match limiter.take(&client, std::time::Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            s.metrics.rate_limited();
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this client; retry after the time Retry-After gives",
            )
            .retry_after(wait.as_secs_f64().ceil() as u64)
            .into_response()
        }
    }
}

/// Cross-origin requests: off unless origins are configured. Preflights
/// from an allowed origin are answered here; from any other, 403. Answers
/// to allowed origins carry `Access-Control-Allow-Origin`.
pub(crate) async fn cors(
    Extract(s): Extract<State>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::{header, HeaderValue, Method};
    let Some(cors) = &s.cors else {
        return next.run(req).await;
    };
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let allowed = origin.to_str().is_ok_and(|o| cors.allows(o));
    s.metrics.cors(allowed);
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut res = match (preflight, allowed) {
        (true, false) => {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                "pages from this origin may not call this server (--cors-origin)",
            )
            .into_response()
        }
        (true, true) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type, x-api-key"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            r
        }
        (false, _) => next.run(req).await,
    };
    let h = res.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("origin"));
    if allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
    }
    res
}

/// The OpenAPI 3 document of every route: paths and request schemas
/// written by hand, response schemas generated from the types
/// ([`response_schemas`]; a test keeps the file equal to them).
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// The JSON schemas of every response body, generated from the types that
/// serialize them, by name.
pub fn response_schemas() -> serde_json::Map<String, serde_json::Value> {
    let mut g = schemars::generate::SchemaSettings::openapi3()
        .for_serialize()
        .into_generator();
    g.subschema_for::<because_service::Recommendations>();
    g.subschema_for::<because_service::ExplainResponse>();
    g.subschema_for::<because_service::SimilarItems>();
    g.subschema_for::<because_service::ModelInfo>();
    g.subschema_for::<because_service::ModelFidelity>();
    g.subschema_for::<EventsStored>();
    g.subschema_for::<UserEvents>();
    g.subschema_for::<Reloaded>();
    g.subschema_for::<because_service::UserHistory>();
    g.subschema_for::<because_service::ItemSearch>();
    g.subschema_for::<because_service::ItemInfo>();
    g.subschema_for::<because_service::EmbeddingMap>();
    g.subschema_for::<because_service::ExplanationMap>();
    g.subschema_for::<Live>();
    g.take_definitions(true)
}

/// Every route, as (method, path): the router serves exactly these, and the
/// OpenAPI document describes exactly these (a test checks both).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/assets/{file}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/v1/model"),
    ("get", "/v1/model/fidelity"),
    ("post", "/v1/recommend"),
    ("get", "/v1/users/{user}/recommendations"),
    ("get", "/v1/users/{user}/events"),
    ("post", "/v1/explain"),
    ("get", "/v1/items/{item}/similar"),
    ("get", "/v1/items/{item}"),
    ("get", "/v1/items"),
    ("get", "/v1/users/{user}/history"),
    ("get", "/v1/model/map"),
    ("post", "/v1/explain/map"),
    ("get", "/v1/live"),
    ("post", "/v1/events"),
    ("post", "/v1/admin/reload"),
];

pub(crate) async fn openapi(Extract(s): Extract<State>) -> Response {
    let methods = s.model().info().explanation_methods;
    (
        [("content-type", "application/json")],
        openapi_for(&methods),
    )
        .into_response()
}

/// [`OPENAPI`] as served for a model offering the explanation `methods`:
/// the requests' `method` takes exactly those (the file lists every
/// method; the responses still may name any, the popularity fallback's
/// included).
pub fn openapi_for(methods: &[because_explain::Method]) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("a valid document");
    if methods.is_empty() {
        return OPENAPI.to_string();
    }
    let names: Vec<&str> = methods.iter().map(|m| m.name()).collect();
    let narrow = |schema: &mut serde_json::Value, nullable: bool| {
        let description = schema.get("description").cloned();
        let mut s = serde_json::json!({ "type": "string", "enum": names });
        if nullable {
            // OpenAPI 3.0: a nullable enum lists null among its values.
            s["nullable"] = true.into();
            s["enum"]
                .as_array_mut()
                .expect("an array")
                .push(serde_json::Value::Null);
        }
        if let Some(d) = description {
            s["description"] = d;
        }
        *schema = s;
    };
    for request in ["ExplainRequest", "RecommendRequest"] {
        if let Some(m) =
            doc.pointer_mut(&format!("/components/schemas/{request}/properties/method"))
        {
            narrow(m, true);
        }
    }
    if let Some(params) = doc
        .pointer_mut("/paths/~1v1~1users~1{user}~1recommendations/get/parameters")
        .and_then(|p| p.as_array_mut())
    {
        for p in params.iter_mut().filter(|p| p["name"] == "method") {
            narrow(&mut p["schema"], false);
        }
    }
    doc.to_string()
}

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// How long `/readyz` waits for the event database.
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Ready when a model is loaded, the event database answers (within
/// [`READY_WAIT`]) and shutdown has not begun; 503 otherwise, saying which.
pub(crate) async fn readyz(Extract(s): Extract<State>) -> Response {
    let info = s.model().info();
    let store = s.events.clone();
    let database = match tokio::time::timeout(
        READY_WAIT,
        tokio::task::spawn_blocking(move || store.ping()),
    )
    .await
    {
        Ok(Ok(Ok(()))) => "ok",
        _ => "unavailable",
    };
    let draining = s.draining();
    let ready = database == "ok" && !draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "ready": ready,
            "model": info.spec,
            "database": database,
            "draining": draining,
        })),
    )
        .into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

pub(crate) async fn time_limit(req: Request<Body>, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {}s",
                REQUEST_TIMEOUT.as_secs()
            ),
        )
        .retry_after(1)
        .into_response(),
    }
}
