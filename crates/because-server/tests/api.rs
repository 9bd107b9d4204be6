//! The API without a socket: every route, its errors, the API key, hot
//! reload, and garbage input that must never get a 5xx or a panic.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use because_core::rng::Rng;
use because_core::testing::block_data;
use because_core::Recommender;
use because_models::persist::{self, Meta};
use because_models::ModelSpec;
use because_server::events::{testing, Database};
use because_server::{app, State, MAX_BODY};
use because_service::{ModelHandle, RecommendRequest};
use common::save_model;
use http_body_util::BodyExt;
use std::path::Path;
use tower::ServiceExt;

async fn call(
    state: &State,
    method: &str,
    uri: &str,
    body: &str,
    key: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let a = common::call_with(state, method, uri, body, key, &[]).await;
    (a.status, a.json)
}

/// A key as long as the server accepts.
const KEY: &str = "s3cret-but-longer";

#[tokio::test]
async fn routes_answer_what_the_service_answers() {
    let dir = tempfile::tempdir().unwrap();
    save_model("ease:lambda=10", &dir.path().join("model"));
    let state = State::open(dir.path().join("model"), None, None).unwrap();
    let handle = ModelHandle::open(&dir.path().join("model")).unwrap();

    let (s, v) = call(&state, "GET", "/healthz", "", None).await;
    assert_eq!((s, v), (StatusCode::OK, serde_json::json!("ok")));
    let (s, v) = call(&state, "GET", "/readyz", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ready"], true);

    let (s, v) = call(
        &state,
        "POST",
        "/v1/recommend",
        r#"{"user": "u3", "k": 5}"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let want = handle.recommend(&RecommendRequest::user("u3", 5)).unwrap();
    let want: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&want).unwrap()).unwrap();
    assert_eq!(v, want);
    let (s, w) = call(&state, "GET", "/v1/users/u3/recommendations?k=5", "", None).await;
    assert_eq!((s, w), (StatusCode::OK, v));

    let (s, v) = call(
        &state,
        "POST",
        "/v1/recommend",
        r#"{"history": ["i1", "i2", "zzz"], "k": 3, "explain": true}"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ignored_items"], serde_json::json!(["zzz"]));
    assert!(v["items"][0]["explanation"]["narrative"].is_string(), "{v}");

    // An unknown user gets the fallback, and the response says so.
    let (s, v) = call(&state, "GET", "/v1/users/nobody/recommendations", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["fallback"]["strategy"], "popularity");

    let (s, v) = call(
        &state,
        "POST",
        "/v1/explain",
        r#"{"user": "u3", "item": "i4"}"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["explanation"]["item"]["id"], "i4");

    let (s, v) = call(&state, "GET", "/v1/items/i4/similar?k=3", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"].as_array().unwrap().len(), 3);

    let (s, v) = call(&state, "GET", "/v1/model", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["kind"], "ease");
    assert_eq!(v["capabilities"]["exact_decomposition"], true);
    let (s, v) = call(&state, "GET", "/v1/model/fidelity", "", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["summary"]["deletion_rank_drop_named"]["mean"].is_number(),
        "{v}"
    );
    // Prometheus metrics count what was served, by route.
    let (s, v) = call(&state, "GET", "/metrics", "", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.as_str().unwrap();
    assert!(
        text.contains("because_requests_total{route=\"/v1/recommend\",status=\"2xx\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("because_request_seconds_count{route=\"/v1/items/{item}/similar\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("because_model_info{model=\"ease:lambda=10.0\"} 1"),
        "{text}"
    );
    assert!(text.contains("because_events_stored 0"), "{text}");
}

#[tokio::test]
async fn errors_have_one_shape() {
    let dir = tempfile::tempdir().unwrap();
    save_model("ease:lambda=10", &dir.path().join("model"));
    let state = State::open(dir.path().join("model"), None, None).unwrap();
    let big = format!(r#"{{"history": ["{}"]}}"#, "x".repeat(MAX_BODY));
    for (method, uri, body, status, code) in [
        (
            "POST",
            "/v1/recommend",
            "{",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/v1/recommend",
            r#"{"user": "u1", "kk": 3}"#,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/v1/recommend",
            r#"{"user": "u1", "k": 0}"#,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/v1/recommend",
            &big,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "GET",
            "/v1/items/nope/similar",
            "",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "GET",
            "/v1/items/i1/similar?k=-1",
            "",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/v1/explain",
            r#"{"user": "u1", "item": "nope"}"#,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        ("GET", "/v1/nothing", "", StatusCode::NOT_FOUND, "not_found"),
    ] {
        let (s, v) = call(&state, method, uri, body, None).await;
        assert_eq!(s, status, "{method} {uri}: {v}");
        assert_eq!(v["error"]["code"], code, "{method} {uri}: {v}");
        assert!(v["error"]["message"].is_string());
    }
    let (_, v) = call(
        &state,
        "POST",
        "/v1/recommend",
        r#"{"user": "u1", "k": 0}"#,
        None,
    )
    .await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("`k`"),
        "{v}"
    );
}

#[tokio::test]
async fn reload_needs_the_key_and_swaps_the_model() {
    let dir = tempfile::tempdir().unwrap();
    save_model("ease:lambda=10", &dir.path().join("model"));
    // The key policy lives in the server's state: short keys are refused.
    let short = State::open(dir.path().join("model"), Some("s3cret".into()), None);
    assert!(
        matches!(
            short,
            Err(because_server::OpenError::Keys(
                because_server::KeyError::Short { .. }
            ))
        ),
        "a 6-character key was accepted"
    );
    let state = State::open(dir.path().join("model"), Some(KEY.into()), None).unwrap();
    let (s, v) = call(&state, "POST", "/v1/admin/reload", "", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "unauthorized");
    let (s, _) = call(&state, "POST", "/v1/admin/reload", "", Some(&KEY[..15])).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A request that started on the old model keeps it.
    let before = state.model();
    save_model("itemknn:neighbours=5", &dir.path().join("model"));
    let (s, v) = call(&state, "POST", "/v1/admin/reload", "", Some(KEY)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["model"].as_str().unwrap().starts_with("itemknn"), "{v}");
    let (_, v) = call(&state, "GET", "/v1/model", "", None).await;
    assert_eq!(v["kind"], "itemknn");
    assert_eq!(before.info().kind, "ease");
    // Reads need no key; without a key configured, writes are closed.
    let open = State::open(
        dir.path().join("model"),
        None,
        Some(Database::Sqlite(dir.path().join("o.sqlite"))),
    )
    .unwrap();
    let (s, _) = call(&open, "POST", "/v1/admin/reload", "", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(
        &open,
        "POST",
        "/v1/events",
        r#"{"events": [{"user": "u1", "item": "i1"}]}"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&state, "GET", "/v1/users/u1/recommendations", "", None).await;
    assert_eq!(s, StatusCode::OK);
    // With protected reads, every /v1 route needs the key; probes do not.
    let private = state.clone().protect_reads(true);
    for (method, uri, body) in [
        ("GET", "/v1/users/u1/recommendations", ""),
        ("GET", "/v1/model", ""),
        ("GET", "/v1/items/i1/similar", ""),
        ("POST", "/v1/recommend", r#"{"user": "u1"}"#),
        ("POST", "/v1/explain", r#"{"user": "u1", "item": "i2"}"#),
    ] {
        let (s, _) = call(&private, method, uri, body, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}");
        let (s, v) = call(&private, method, uri, body, Some(KEY)).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
    }
    for uri in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/"] {
        let (s, _) = call(&private, "GET", uri, "", None).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn garbage_never_gets_a_server_error() {
    let dir = tempfile::tempdir().unwrap();
    save_model("als:factors=4,iterations=2", &dir.path().join("model"));
    let state = State::open(dir.path().join("model"), None, None).unwrap();
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"user\"",
        "\"history\"",
        "\"sequence\"",
        "\"k\"",
        ":",
        ",",
        "1e309",
        "-1",
        "null",
        "true",
        "\"u1\"",
        "\"i2\"",
        "{\"item\": 1}",
        "\u{0}",
        "\"\\ud800\"",
        "99999999999999999999",
    ];
    let mut rng = Rng::new(7);
    for _ in 0..400 {
        let n = 1 + rng.below(12) as usize;
        let body: String = (0..n)
            .map(|_| pieces[rng.below(pieces.len() as u64) as usize])
            .collect();
        for uri in ["/v1/recommend", "/v1/explain"] {
            let (s, v) = call(&state, "POST", uri, &body, None).await;
            assert!(
                s.is_success() || s.is_client_error(),
                "{uri} {body:?}: {s} {v}"
            );
        }
    }
}

/// Opens a state off the async threads (PostgreSQL's client blocks).
async fn open_state(folder: &Path, key: Option<String>, db: Option<Database>) -> State {
    let folder = folder.to_path_buf();
    tokio::task::spawn_blocking(move || State::open(folder, key, db).unwrap())
        .await
        .unwrap()
}

async fn count(state: &State) -> u64 {
    let s = state.clone();
    tokio::task::spawn_blocking(move || s.events().count().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn events_are_stored_once_and_fold_into_recommendations() {
    let dir = tempfile::tempdir().unwrap();
    save_model("ease:lambda=10", &dir.path().join("model"));
    let path = dir.path().to_path_buf();
    let mut databases = tokio::task::spawn_blocking(move || testing::databases(&path))
        .await
        .unwrap();
    // The default database too: a file beside the model folder.
    databases.insert(
        0,
        because_server::events::Database::Sqlite(because_server::default_database(
            &dir.path().join("model"),
        )),
    );
    for db in databases {
        eprintln!("against {db}");
        stored_once_and_folded_in(&dir.path().join("model"), db).await;
    }
    assert!(dir.path().join("model.events.sqlite").is_file());
}

async fn stored_once_and_folded_in(model: &Path, db: Database) {
    let state = open_state(model, Some("k".repeat(16)), Some(db.clone())).await;
    let key = "k".repeat(16);
    let batch = r#"{"events": [
        {"user": "u3", "item": "i20", "event": "view", "idempotency_key": "a"},
        {"user": "u3", "item": "i21", "value": 2.0, "time": 5, "idempotency_key": "b"},
        {"user": "newcomer", "item": "i1"},
        {"user": "u3", "item": "not-in-the-model"}
    ]}"#;
    let (s, v) = call(&state, "POST", "/v1/events", batch, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, v) = call(&state, "POST", "/v1/events", batch, Some(&key)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["stored"].as_u64(), v["duplicates"].as_u64()),
        (Some(4), Some(0))
    );
    // The event on an item the model does not know is stored and counted.
    assert_eq!(v["unknown_items"], 1, "{v}");
    // A retry stores nothing twice (the two keyed events), the rest again.
    let (_, v) = call(&state, "POST", "/v1/events", batch, Some(&key)).await;
    assert_eq!(
        (v["stored"].as_u64(), v["duplicates"].as_u64()),
        (Some(2), Some(2))
    );
    let (s, _) = call(&state, "GET", "/v1/users/u3/events", "", None).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a person's events need the key"
    );
    let (s, v) = call(&state, "GET", "/v1/users/u3/events", "", Some(&key)).await;
    assert_eq!(s, StatusCode::OK);
    // The two keyed events once, the unkeyed one on an unknown item twice.
    assert_eq!(v["events"].as_array().unwrap().len(), 4, "{v}");
    assert_eq!(v["events"][0]["time"], 5, "oldest first: {v}");
    // u3's recommendations now use the stored events, and say how many;
    // items they now have are not recommended.
    let (_, v) = call(&state, "GET", "/v1/users/u3/recommendations?k=30", "", None).await;
    assert_eq!(v["events_used"], 2, "{v}");
    assert!(v["ignored_items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i == "not-in-the-model"));
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"i20") && !ids.contains(&"i21"), "{ids:?}");
    // Explanations see the same history.
    let (s, v) = call(
        &state,
        "POST",
        "/v1/explain",
        &format!(r#"{{"user": "u3", "item": {:?}}}"#, ids[0]),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["events_used"], 2, "{v}");
    // A user the model does not know is personalized from their events.
    let (_, v) = call(
        &state,
        "GET",
        "/v1/users/newcomer/recommendations",
        "",
        None,
    )
    .await;
    assert!(v["fallback"].is_null(), "{v}");
    // (The unkeyed event was sent twice, so it is there twice.)
    assert_eq!(v["events_used"], 2);
    // Invalid events are refused whole, naming the event and field.
    for bad in [
        r#"{"events": []}"#,
        r#"{"events": [{"user": "", "item": "i1"}]}"#,
        r#"{"events": [{"user": "u1", "item": "i1", "value": -1}]}"#,
        r#"{"events": [{"user": "u1", "item": "i1", "colour": "red"}]}"#,
    ] {
        let (s, v) = call(&state, "POST", "/v1/events", bad, Some(&key)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    // The database's latency is measured.
    let (_, text) = call(&state, "GET", "/metrics", "", None).await;
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.contains("because_events_unknown_items_total 2"),
        "{text}"
    );
    let line = format!(
        "because_database_seconds_count{{backend=\"{}\",operation=\"insert\"}} 2",
        db.backend()
    );
    assert!(text.contains(&line), "{line} in {text}");
    // Acknowledged events survive a restart.
    let stored = count(&state).await;
    assert_eq!(stored, 6);
    drop(state);
    let again = open_state(model, None, Some(db)).await;
    assert_eq!(count(&again).await, stored);
}

/// Every explanation method a model offers through the API, listed in
/// `/v1/model`, in `/v1/explain` and in recommendations with explanations;
/// one it lacks is a 400 naming those it offers.
#[tokio::test]
async fn the_explanation_method_is_chosen_per_request() {
    because_service::register_models();
    let dir = tempfile::tempdir().unwrap();
    save_model(
        "sasrec:dim=8,layers=1,heads=2,ffn=8,max_len=8,epochs=1",
        &dir.path().join("model"),
    );
    let state = State::open(dir.path().join("model"), None, None).unwrap();
    let (s, info) = call(&state, "GET", "/v1/model", "", None).await;
    assert_eq!(s, StatusCode::OK);
    let methods: Vec<String> = info["explanation_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        methods,
        [
            "occlusion",
            "attention",
            "attention_rollout",
            "gradient_input"
        ]
    );
    for m in &methods {
        let body = format!(r#"{{"user": "u3", "item": "i4", "method": "{m}"}}"#);
        let (s, v) = call(&state, "POST", "/v1/explain", &body, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["explanation"]["method"], m.as_str(), "{v}");
        // Where the attention went, whatever the method: per layer and
        // head, weights over the history that sum to 1.
        let att = &v["attention"];
        assert_eq!(att["layers"], 1, "{v}");
        assert_eq!(att["heads"], 2, "{v}");
        let n = att["items"].as_array().unwrap().len();
        assert!(n > 0, "{v}");
        let rows = att["weights"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{v}");
        for row in rows {
            let w: Vec<f64> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert_eq!(w.len(), n);
            assert!(w.iter().all(|&x| x >= 0.0), "{v}");
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{v}");
        }
        let body = format!(r#"{{"user": "u3", "k": 2, "explain": true, "method": "{m}"}}"#);
        let (s, v) = call(&state, "POST", "/v1/recommend", &body, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for it in v["items"].as_array().unwrap() {
            assert_eq!(it["explanation"]["method"], m.as_str(), "{v}");
        }
    }
    let (s, v) = call(
        &state,
        "POST",
        "/v1/explain",
        r#"{"user": "u3", "item": "i4", "method": "exact"}"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("method") && message.contains("occlusion, attention"),
        "{v}"
    );
    let (s, v) = call(
        &state,
        "POST",
        "/v1/explain",
        r#"{"user": "u3", "item": "i4", "method": "shapley"}"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // The served OpenAPI document takes exactly the model's methods.
    let (_, doc) = call(&state, "GET", "/openapi.json", "", None).await;
    for request in ["ExplainRequest", "RecommendRequest"] {
        let m = &doc["components"]["schemas"][request]["properties"]["method"];
        let mut nullable = serde_json::json!(methods);
        nullable
            .as_array_mut()
            .unwrap()
            .push(serde_json::Value::Null);
        assert_eq!(m["enum"], nullable, "{m}");
    }
    let params = doc["paths"]["/v1/users/{user}/recommendations"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let p = params.iter().find(|p| p["name"] == "method").unwrap();
    assert_eq!(p["schema"]["enum"], serde_json::json!(methods), "{p}");
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    save_model("ease:lambda=10", &dir.path().join("model"));
    let state = State::open(dir.path().join("model"), None, None).unwrap();
    let (s, doc) = call(&state, "GET", "/openapi.json", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut routed: Vec<(String, String)> = because_server::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
    // And the router serves each of them (never the fallback's "no such route").
    for (method, path) in because_server::ROUTES {
        let uri = path.replace("{user}", "u1").replace("{item}", "i1");
        let (_, v) = call(&state, &method.to_uppercase(), &uri, "{}", None).await;
        assert_ne!(v["error"]["message"], "no such route", "{method} {path}");
    }
}

#[test]
fn response_schemas_in_the_openapi_document_are_generated_from_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let mut doc: serde_json::Value = serde_json::from_str(because_server::OPENAPI).unwrap();
    let generated = because_server::response_schemas();
    let schemas = doc["components"]["schemas"].as_object_mut().unwrap();
    let stale: Vec<&String> = generated
        .iter()
        .filter(|(name, schema)| schemas.get(*name) != Some(schema))
        .map(|(name, _)| name)
        .collect();
    if std::env::var_os("BECAUSE_BLESS").is_some() {
        for (name, schema) in &generated {
            schemas.insert(name.clone(), schema.clone());
        }
        let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        return;
    }
    assert!(
        stale.is_empty(),
        "openapi.json's schemas {stale:?} differ from the types; rerun with BECAUSE_BLESS=1"
    );
}

#[tokio::test]
async fn the_pages_are_served_from_the_binary_with_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    save_model("ease:lambda=10", &dir.path().join("model"));
    let state = State::open(dir.path().join("model"), None, None).unwrap();
    for (uri, kind) in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let res = app(state.clone())
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        let h = res.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{uri}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        // Nothing is loaded from elsewhere (SVG's namespace is a name, not
        // an address).
        let text = text.replace("\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{uri}"
        );
    }
    let (s, v) = call(&state, "GET", "/assets/../openapi.json", "", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = call(&state, "GET", "/assets/nope.js", "", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
}

/// A model with embeddings, its item titles and genres, and its event log
/// with types and times: what the dashboard's routes draw on.
fn dashboard_state(dir: &Path, key: Option<String>) -> (State, ModelHandle) {
    let x = block_data(40, 30, 8, 7);
    let model = "als:factors=8,iterations=5"
        .parse::<ModelSpec>()
        .unwrap()
        .fit(&x)
        .unwrap();
    let meta = Meta {
        user_ids: (0..40).map(|u| format!("u{u}")).collect(),
        item_ids: (0..30).map(|i| format!("i{i}")).collect(),
        data_fingerprint: persist::fingerprint(&x),
        ..Meta::default()
    };
    persist::save(&model, &meta, &dir.join("model")).unwrap();
    let mut items = String::from("item_id,title,genres\n");
    for i in 0..30 {
        let genre = ["Drama", "Comedy", "Horror"][i % 3];
        items += &format!("i{i},Film number {i},{genre}\n");
    }
    std::fs::write(dir.join("items.csv"), items).unwrap();
    let mut log = String::from("user_id,item_id,timestamp,event\n");
    for u in 0..40u32 {
        for (k, &i) in x.user_items(u).iter().enumerate() {
            let t = 1_700_000_000_000i64 + 3_600_000 * (u as i64 * 50 + k as i64);
            log += &format!("u{u},i{i},{t},view\n");
        }
    }
    std::fs::write(dir.join("log.csv"), log).unwrap();
    let state = State::open(dir.join("model"), key, None)
        .unwrap()
        .with_context(because_service::ContextOptions {
            items: Some(dir.join("items.csv")),
            events: Some(dir.join("log.csv")),
            ..Default::default()
        })
        .unwrap();
    let handle = state.model();
    (state, handle)
}

#[tokio::test]
async fn the_dashboards_routes_answer_from_the_model_and_its_context() {
    let dir = tempfile::tempdir().unwrap();
    let key = "a-key-long-enough-123".to_string();
    let (state, handle) = dashboard_state(dir.path(), Some(key.clone()));

    // History: the log's events, newest first; the profile is the model's row.
    let (s, h) = call(&state, "GET", "/v1/users/u3/history?limit=4", "", None).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!(h["source"], "event_log");
    let entries = h["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    let times: Vec<i64> = entries
        .iter()
        .map(|e| e["time"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert_eq!(entries[0]["event"], "view");
    let u3 = handle.users().get("u3").unwrap();
    let profile = h["profile"].as_array().unwrap();
    assert_eq!(profile.len(), handle.model().history(u3).0.len());

    // What-if with nothing left out: the profile sent back as a sequence
    // gives the same list and scores as the user's own recommendations.
    let sequence: Vec<serde_json::Value> = profile
        .iter()
        .map(|p| serde_json::json!({"item": p["item"]["id"], "value": p["value"]}))
        .collect();
    let body = serde_json::json!({"sequence": sequence, "k": 10}).to_string();
    let (s, what_if) = call(&state, "POST", "/v1/recommend", &body, None).await;
    assert_eq!(s, StatusCode::OK, "{what_if}");
    let (_, served) = call(&state, "GET", "/v1/users/u3/recommendations?k=10", "", None).await;
    let list = |v: &serde_json::Value| -> Vec<(String, f64)> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["item"].as_str().unwrap().to_string(),
                    r["score"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (a, b) = (list(&what_if), list(&served));
    assert_eq!(a.len(), 10);
    for ((ia, sa), (ib, sb)) in a.iter().zip(&b) {
        assert_eq!(ia, ib);
        assert!(
            (sa - sb).abs() <= 1e-5 * (1.0 + sb.abs()),
            "{sa} against {sb}"
        );
    }

    // Search: the exact ID first, then titles by popularity.
    let (s, found) = call(&state, "GET", "/v1/items?q=i2&limit=3", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(found["items"][0]["item"]["id"], "i2");
    let (_, found) = call(&state, "GET", "/v1/items?q=NUMBER%201&limit=50", "", None).await;
    let hits = found["items"].as_array().unwrap();
    assert_eq!(hits.len(), 11, "number 1 and 10 to 19");
    let pops: Vec<f64> = hits
        .iter()
        .map(|h| h["popularity"].as_f64().unwrap())
        .collect();
    assert!(pops.windows(2).all(|w| w[0] >= w[1]));
    let (s, _) = call(&state, "GET", "/v1/items?q=%20&limit=3", "", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // An item: popularity, genres, activity, and reach counted over everyone.
    let (s, item) = call(&state, "GET", "/v1/items/i5", "", None).await;
    assert_eq!(s, StatusCode::OK, "{item}");
    let i5 = handle.items().get("i5").unwrap();
    let users = handle.model().train().iu.row_indices(i5 as usize).len();
    assert_eq!(item["popularity"].as_f64().unwrap() as usize, users);
    assert_eq!(item["features"][0]["values"][0], "Horror");
    let all = handle.recommend_all(10).unwrap();
    let reach = all
        .users
        .values()
        .filter(|l| l.iter().any(|r| r.item == "i5"))
        .count();
    assert_eq!(item["reach"]["users"].as_u64().unwrap() as usize, reach);
    let activity: u64 = item["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["events"].as_u64().unwrap())
        .sum();
    assert_eq!(
        activity as usize, users,
        "one event per training pair in this log"
    );
    let (s, _) = call(&state, "GET", "/v1/items/nope", "", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The embedding map: the most popular first.
    let (s, map) = call(&state, "GET", "/v1/model/map?limit=5", "", None).await;
    assert_eq!(s, StatusCode::OK);
    let points = map["points"].as_array().unwrap();
    assert_eq!(points.len(), 5);
    assert!(points[0]["group"].is_string());

    // The history × recommendations map is of the list served.
    let (s, m) = call(
        &state,
        "POST",
        "/v1/explain/map",
        r#"{"user": "u3", "k": 4, "rows": 3}"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let mapped: Vec<&str> = m["recommended"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item"].as_str().unwrap())
        .collect();
    let top4: Vec<&str> = b.iter().take(4).map(|(i, _)| i.as_str()).collect();
    assert_eq!(mapped, top4);
    assert_eq!(m["contributions"].as_array().unwrap().len(), 3);
    // No known history: no rows, and the popularity fallback's list.
    let (s, m) = call(
        &state,
        "POST",
        "/v1/explain/map",
        r#"{"sequence": []}"#,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["history"].as_array().unwrap().len(), 0);
    assert_eq!(m["recommended"].as_array().unwrap().len(), 10);

    // Live: an event stored now is counted in the current minute.
    let (s, _) = call(
        &state,
        "POST",
        "/v1/events",
        r#"{"events": [{"user": "u3", "item": "i1"}]}"#,
        Some(&key),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, live) = call(&state, "GET", "/v1/live", "", None).await;
    assert_eq!(s, StatusCode::OK);
    let minutes = live["events_per_minute"].as_array().unwrap();
    assert_eq!(minutes.len(), because_server::LIVE_MINUTES);
    assert_eq!(minutes.last().unwrap()["events"], 1);
    assert_eq!(live["events_stored"], 1);
    let routes = live["routes"].as_array().unwrap();
    assert!(routes.iter().any(|r| r["route"] == "/v1/events"));

    // The fidelity summary carries the global view.
    let (_, f) = call(&state, "GET", "/v1/model/fidelity", "", None).await;
    assert!(f["summary"]["global"]["top_driver_items"].is_array(), "{f}");
}

#[tokio::test]
async fn the_index_is_served_unless_exact_and_a_watcher_picks_it_up_when_it_arrives() {
    use because_models::index::{build_for, IndexPolicy};
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("model");
    let x = block_data(300, 2000, 20, 3);
    let model = "als:factors=16,iterations=3"
        .parse::<ModelSpec>()
        .unwrap()
        .fit(&x)
        .unwrap();
    let meta = Meta {
        user_ids: (0..300).map(|u| format!("u{u}")).collect(),
        item_ids: (0..2000).map(|i| format!("i{i}")).collect(),
        ..Meta::default()
    };
    persist::save(&model, &meta, &folder).unwrap();
    let db = Some(Database::Sqlite(dir.path().join("e.sqlite")));
    let state = State::open(folder.clone(), None, db).unwrap();
    let (_, v) = call(&state, "GET", "/v1/model", "", None).await;
    assert_eq!(v["retrieval"]["approximate"], false, "{v}");
    // The index arrives after the model (as `train` writes them): the
    // watcher reloads, and requests come from it.
    let watching = tokio::spawn(because_server::watch(
        state.clone(),
        std::time::Duration::from_millis(50),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    build_for(&model, &folder, IndexPolicy::Always).unwrap();
    let mut approximate = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if state.model().retrieval().approximate {
            approximate = true;
            break;
        }
    }
    watching.abort();
    assert!(approximate, "the watcher did not pick up the index");
    let (s, v) = call(
        &state,
        "GET",
        "/v1/users/u5/recommendations?k=10&explain=true",
        "",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let exact = state.clone().approximate(false);
    let (_, e) = call(&exact, "GET", "/v1/users/u5/recommendations?k=10", "", None).await;
    let (_, info) = call(&exact, "GET", "/v1/model", "", None).await;
    assert_eq!(info["retrieval"]["approximate"], false);
    assert!(info["retrieval"]["index"]["recall_at_10"].as_f64().unwrap() >= 0.99);
    let items = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item"].as_str().unwrap().to_string())
            .collect()
    };
    let (a, b) = (items(&v), items(&e));
    assert!(
        a.iter().filter(|i| b.contains(i)).count() >= 9,
        "{a:?} vs {b:?}"
    );
    for it in v["items"].as_array().unwrap() {
        let score = it["score"].as_f64().unwrap();
        let explained = it["explanation"]["score"].as_f64().unwrap();
        assert!(
            (score - explained).abs() <= 1e-5 * score.abs().max(1e-3),
            "{it}"
        );
    }
}
