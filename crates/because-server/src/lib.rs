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
//! * `GET /healthz` (the process is up) and `GET /readyz` (a model is
//!   loaded, the event database answers, and the server is not shutting
//!   down; 503 otherwise).
//!
//! Errors are JSON with a stable shape, `{"error": {"code", "message"}}`:
//! `bad_request` and `not_found` (400, 404) for the client's mistakes,
//! `unauthorized` (401), `forbidden` (403: a read key on a write route),
//! `forbidden_origin` (403: a CORS preflight from an origin not allowed),
//! `payload_too_large` (413), `rate_limited` (429), `timeout` and
//! `database_unavailable` (503), and `internal` (500, with no internals in
//! the message). 429 and 503 carry `Retry-After`: the same request may
//! succeed then. Request bodies are bounded ([`MAX_BODY`]) and every
//! request has a time limit.
//!
//! When the event database is unavailable, writes answer 503 (nothing
//! stored) and reads go on from the model's training history, saying so
//! in their `degraded` field; the store reconnects by itself. Several
//! servers may share one database (PostgreSQL, or a SQLite file on one
//! host): an event stored through one is folded into the next answer of
//! every other. On SIGTERM or Ctrl-C, `/readyz` fails at once, the
//! listener closes (after the shutdown delay, time for a balancer to stop
//! sending), and requests in flight finish (for at most [`DRAIN_TIMEOUT`]).

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use routes::{browse, events as stored, ops, recommend};
use std::time::Duration;

pub mod assets;
pub mod auth;
mod error;
pub mod guard;
pub mod metrics;
mod routes;
mod state;

pub use auth::{Access, KeyError, KeyFiles, KeySet, MIN_API_KEY};
/// The event store (the `because-events` crate).
pub use because_events as events;
pub use error::ApiError;
pub use error::{MAX_BODY, REQUEST_TIMEOUT};
pub use guard::{Cors, RateLimit};
pub use routes::events::{EventsStored, Live, MinuteCount, Reloaded, UserEvents, LIVE_MINUTES};
pub use routes::ops::{response_schemas, OPENAPI, ROUTES};
pub use routes::recommend::MAX_FOLDED;
pub use state::{default_database, watch, watch_keys, OpenError, State};

/// How long requests in flight may take to finish once shutdown began.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

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
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::cors,
        ))
        .with_state(state)
}

/// Serves `state` on a bound listener until SIGTERM or Ctrl-C, on a
/// runtime of its own: for callers without one (the command line binds
/// first, so it can say where it listens). With `watch`, the model folder
/// is checked for a new model every second. Key files are read again
/// whenever they change.
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
            tokio::spawn(watch_keys(state.clone(), Duration::from_secs(1)));
            let listener = tokio::net::TcpListener::from_std(listener)?;
            serve(state, listener).await
        })
}

/// Resolves on SIGTERM (Unix) or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves `state` on `listener` until SIGTERM or Ctrl-C, then drains.
pub async fn serve(state: State, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_until(state, listener, shutdown_signal()).await
}

/// Serves `state` on `listener` until `signal` resolves; then `/readyz`
/// fails, the listener closes (after [`State::shutdown_delay`]), and
/// requests in flight finish, for at most [`DRAIN_TIMEOUT`] (stragglers
/// are then cut off).
pub async fn serve_until(
    state: State,
    listener: tokio::net::TcpListener,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (draining, delay) = (state.draining.clone(), state.shutdown_delay);
    let (began, drain) = tokio::sync::oneshot::channel::<()>();
    let app = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        signal.await;
        draining.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        let _ = began.send(());
    });
    let server = std::future::IntoFuture::into_future(server);
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r,
        _ = async {
            if drain.await.is_ok() {
                tokio::time::sleep(DRAIN_TIMEOUT).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => Ok(()),
    }
}
