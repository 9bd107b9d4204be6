//! The `because` HTTP API: a thin layer over `because_service::ModelHandle`.
//!
//! [`app`] builds the router from a [`State`]; tests call it without a
//! socket (`app(state).oneshot(request)`), and [`serve`] binds it. Routes,
//! JSON under `/v1`:
//!
//! * `POST /v1/recommend`: a `RecommendRequest` (`{"user": "42", "k": 10}`,
//!   or `history` / `sequence`; `explain: true` adds typed explanations)
//!   → `Recommendations`.
//! * `GET /v1/users/{user}/recommendations?k=10&explain=false` → the same.
//! * `POST /v1/explain`: an `ExplainRequest` → `ExplainResponse`.
//! * `GET /v1/items/{item}/similar?k=10` → `SimilarItems`.
//! * `GET /v1/items?q=alien&limit=10` → `ItemSearch` (by ID or title).
//! * `GET /v1/items/{item}` → `ItemInfo`: popularity, features, trend,
//!   activity over time, and to how many users it is recommended.
//! * `GET /v1/users/{user}/history?limit=50` → `UserHistory`: what the
//!   model knows of the user (the items its explanations name).
//! * `POST /v1/explain/map`: a `MapRequest` → `ExplanationMap`: history ×
//!   recommendations, exact contributions and similarity.
//! * `GET /v1/model/map?limit=300` → `EmbeddingMap`.
//! * `GET /v1/live` → `Live`: events per minute, requests and latency.
//! * `GET /v1/model` → `ModelInfo`.
//! * `GET /v1/model/fidelity` → `ModelFidelity`: how faithful the
//!   explanations are, measured on first request and kept per model.
//! * `POST /v1/admin/reload` (API key): reopens the model folder and swaps
//!   it in; requests in flight finish on the model they started with.
//! * `GET /` and `GET /assets/{file}`: the web pages, compiled in.
//! * `GET /healthz` (the process is up) and `GET /readyz` (a model is loaded).
//!
//! Errors are JSON with a stable shape, `{"error": {"code", "message"}}`:
//! `bad_request` and `not_found` (400, 404) for the client's mistakes,
//! `unauthorized` (401), `payload_too_large` (413), `timeout` (503) and
//! `internal` (500, with no internals in the message). Request bodies are
//! bounded ([`MAX_BODY`]) and every request has a time limit.

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use routes::{browse, events as stored, ops, recommend};
use std::time::Duration;

pub mod assets;
mod error;
pub mod metrics;
mod routes;
mod state;

/// The event store (the `because-events` crate).
pub use because_events as events;
pub use error::ApiError;
pub use error::{MAX_BODY, REQUEST_TIMEOUT};
pub use routes::events::{EventsStored, Live, MinuteCount, Reloaded, UserEvents, LIVE_MINUTES};
pub use routes::ops::{response_schemas, OPENAPI, ROUTES};
pub use routes::recommend::MAX_FOLDED;
pub use state::{default_database, read_api_key, watch, OpenError, State, MIN_API_KEY};

/// The application: every route over `state`, with bounded bodies and a
/// time limit per request.
pub fn app(state: State) -> Router {
    let mut reads = Router::new()
        .route("/v1/model", get(recommend::model_info))
        .route("/v1/model/fidelity", get(recommend::model_fidelity))
        .route("/v1/recommend", post(recommend::recommend))
        .route(
            "/v1/users/{user}/recommendations",
            get(recommend::user_recommendations),
        )
        .route("/v1/explain", post(recommend::explain))
        .route("/v1/explain/map", post(browse::explain_map))
        .route("/v1/model/map", get(browse::model_map))
        .route("/v1/users/{user}/history", get(browse::user_history))
        .route("/v1/items", get(browse::search_items))
        .route("/v1/items/{item}", get(browse::item_info))
        .route("/v1/items/{item}/similar", get(recommend::similar));
    if state.protect_reads {
        reads = reads.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            state::require_key,
        ));
    }
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .merge(reads)
        .route("/v1/admin/reload", post(stored::reload))
        .route("/v1/events", post(stored::post_events))
        .route("/v1/users/{user}/events", get(stored::user_events))
        .route("/metrics", get(ops::metrics_text))
        .route("/v1/live", get(stored::live))
        .route("/openapi.json", get(ops::openapi))
        .fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(ops::time_limit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::measure,
        ))
        .with_state(state)
}

/// Serves `state` on a bound listener until Ctrl-C, on a runtime of its
/// own: for callers without one (the command line binds first, so it can
/// say where it listens). With `watch`, the model folder is checked for a
/// new model every second.
pub fn run(
    state: State,
    listener: std::net::TcpListener,
    watch_folder: bool,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            if watch_folder {
                tokio::spawn(watch(state.clone(), Duration::from_secs(1)));
            }
            let listener = tokio::net::TcpListener::from_std(listener)?;
            serve(state, listener).await
        })
}

/// Serves `state` on `listener` until Ctrl-C.
pub async fn serve(state: State, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
