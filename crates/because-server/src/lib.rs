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

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State as Extract};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use because_service::{
    ContextOptions, ExplainRequest, MapRequest, ModelHandle, RecommendRequest, ServiceError,
    SimilarRequest, Subject,
};
use serde::{Deserialize, Serialize};
use std::path::{Path as FsPath, PathBuf};

pub mod assets;
pub mod metrics;

/// The event store (the `because-events` crate).
pub use because_events as events;

use events::{Database, Event, EventStore, StoreError};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 1 << 20;

/// The time limit of one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server shares between requests.
#[derive(Clone)]
pub struct State {
    model: Arc<RwLock<ModelHandle>>,
    folder: PathBuf,
    api_key: Option<Arc<str>>,
    protect_reads: bool,
    events: Arc<EventStore>,
    metrics: Arc<metrics::Metrics>,
    /// What explanations draw on besides the model, read again at reload.
    context: Option<Arc<ContextOptions>>,
}

/// The default event database of a model folder: a file beside it.
pub fn default_database(folder: &FsPath) -> PathBuf {
    let name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    folder.with_file_name(format!("{name}.events.sqlite"))
}

impl State {
    /// Serves the model folder `folder`, storing events in `database`
    /// (by default [`default_database`]); writes and admin routes need
    /// `api_key`, and are closed without one. Blocking: with PostgreSQL,
    /// call it outside an async context or in `spawn_blocking`.
    pub fn open(
        folder: PathBuf,
        api_key: Option<String>,
        database: Option<Database>,
    ) -> Result<State, OpenError> {
        if let Some(k) = &api_key {
            check_api_key(k)?;
        }
        let handle = ModelHandle::open(&folder)?;
        let db = database.unwrap_or_else(|| Database::Sqlite(default_database(&folder)));
        let events = EventStore::open(&db)?;
        let metrics = Arc::new(metrics::Metrics::default());
        let m = metrics.clone();
        events.observe(Box::new(move |op, took| m.record_database(op, took)));
        Ok(State {
            model: Arc::new(RwLock::new(handle)),
            events: Arc::new(events),
            metrics,
            folder,
            api_key: api_key.map(Arc::from),
            protect_reads: false,
            context: None,
        })
    }

    /// Explanations and the dashboard also draw on these files (item and
    /// user features, the raw event log), read now and again at each
    /// reload. Blocking.
    pub fn with_context(mut self, opts: ContextOptions) -> Result<State, ServiceError> {
        let model = self.model();
        let handle = model.with_context(model.read_context(&opts)?);
        self.model = Arc::new(RwLock::new(handle));
        self.context = Some(Arc::new(opts));
        Ok(self)
    }

    /// With `yes`, read routes need the API key too (recommendations,
    /// explanations, similar items, model information); `/healthz`,
    /// `/readyz`, `/metrics`, `/openapi.json` and the pages stay open.
    pub fn protect_reads(mut self, yes: bool) -> State {
        self.protect_reads = yes;
        self
    }

    /// The event store.
    pub fn events(&self) -> &EventStore {
        &self.events
    }

    /// The model as it is now (a cheap clone: requests keep theirs).
    pub fn model(&self) -> ModelHandle {
        self.model.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reopens the model folder and swaps the new model in.
    pub fn reload(&self) -> Result<ModelHandle, ServiceError> {
        let mut fresh = ModelHandle::open(&self.folder)?;
        if let Some(opts) = &self.context {
            fresh = fresh.with_context(fresh.read_context(opts)?);
        }
        *self.model.write().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        Ok(fresh)
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The API key is too short to protect anything.
    #[error("the API key must be at least {MIN_API_KEY} characters")]
    ApiKey,
    /// The API key file could not be read.
    #[error("cannot read the API key file {}: {source}", path.display())]
    ApiKeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The model folder.
    #[error(transparent)]
    Model(#[from] ServiceError),
    /// The event database.
    #[error(transparent)]
    Events(#[from] StoreError),
}

/// The shortest API key accepted.
pub const MIN_API_KEY: usize = 16;

fn check_api_key(key: &str) -> Result<(), OpenError> {
    if key.chars().count() < MIN_API_KEY {
        return Err(OpenError::ApiKey);
    }
    Ok(())
}

/// Reads the API key from `path` (surrounding white space ignored),
/// checked as [`State::open`] checks it.
pub fn read_api_key(path: &FsPath) -> Result<String, OpenError> {
    let key = std::fs::read_to_string(path)
        .map_err(|source| OpenError::ApiKeyFile {
            path: path.to_path_buf(),
            source,
        })?
        .trim()
        .to_string();
    check_api_key(&key)?;
    Ok(key)
}

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

#[derive(Serialize, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match &e {
            ServiceError::UnknownItem { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            _ if e.is_client_error() => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            }
            // The model or its files failed: say so without internals.
            _ => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the model could not answer this request",
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Database { .. } | StoreError::Setting { .. } => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the event database failed; nothing of this batch was stored",
            ),
            other => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                status,
                "payload_too_large",
                format!("the body is larger than {MAX_BODY} bytes"),
            );
        }
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text())
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(v)| v).map_err(ApiError::from)
}

/// Runs blocking work (the model, the database) off the async threads.
async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request failed",
            )
        })?
        .map_err(Into::into)
}

/// The most stored events folded into one user's recommendations.
pub const MAX_FOLDED: usize = 10_000;

/// Recommends, folding the user's stored events in.
/// A user's stored events, oldest first, as sequence events (none for
/// other subjects).
async fn stored_events(
    s: &State,
    subject: &Subject,
) -> Result<Vec<because_service::SequenceEvent>, ApiError> {
    let Subject::User { user } = subject else {
        return Ok(Vec::new());
    };
    let (events, user) = (s.events.clone(), user.clone());
    let stored = blocking(move || events.history(&user, MAX_FOLDED)).await?;
    Ok(stored.iter().map(Event::as_sequence_event).collect())
}

/// Recommends, folding the user's stored events in.
async fn recommend_folded(
    s: State,
    req: RecommendRequest,
) -> Result<because_service::Recommendations, ApiError> {
    let extra = stored_events(&s, &req.subject).await?;
    let h = s.model();
    blocking(move || h.recommend_with_events(&req, &extra)).await
}

async fn recommend(
    Extract(s): Extract<State>,
    json: Result<Json<RecommendRequest>, JsonRejection>,
) -> ApiResult<because_service::Recommendations> {
    let req = body(json)?;
    recommend_folded(s, req).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default = "ten")]
    k: usize,
    #[serde(default)]
    explain: bool,
    #[serde(default)]
    counterfactuals: bool,
}

fn ten() -> usize {
    10
}

async fn user_recommendations(
    Extract(s): Extract<State>,
    Path(user): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<because_service::Recommendations> {
    let Query(q) =
        query.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text()))?;
    let req = RecommendRequest {
        explain: q.explain,
        counterfactuals: q.counterfactuals,
        ..RecommendRequest::new(Subject::User { user }, q.k)
    };
    recommend_folded(s, req).await.map(Json)
}

async fn explain(
    Extract(s): Extract<State>,
    json: Result<Json<ExplainRequest>, JsonRejection>,
) -> ApiResult<because_service::ExplainResponse> {
    let req = body(json)?;
    let extra = stored_events(&s, &req.subject).await?;
    let h = s.model();
    blocking(move || h.explain_with_events(&req, &extra))
        .await
        .map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimilarQuery {
    #[serde(default = "ten")]
    k: usize,
}

async fn similar(
    Extract(s): Extract<State>,
    Path(item): Path<String>,
    query: Result<Query<SimilarQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<because_service::SimilarItems> {
    let Query(q) =
        query.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text()))?;
    let h = s.model();
    blocking(move || h.similar(&SimilarRequest { item, k: q.k }))
        .await
        .map(Json)
}

async fn model_fidelity(Extract(s): Extract<State>) -> ApiResult<because_service::ModelFidelity> {
    let h = s.model();
    blocking(move || Ok::<_, ServiceError>(h.fidelity()))
        .await
        .map(Json)
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    #[serde(default = "fifty")]
    limit: usize,
}

fn fifty() -> usize {
    50
}

async fn user_history(
    Extract(s): Extract<State>,
    Path(user): Path<String>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<because_service::UserHistory> {
    let q = query(q)?;
    let h = s.model();
    blocking(move || h.history(&user, q.limit)).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: String,
    #[serde(default = "ten")]
    limit: usize,
}

async fn search_items(
    Extract(s): Extract<State>,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<because_service::ItemSearch> {
    let q = query(q)?;
    let h = s.model();
    blocking(move || h.search_items(&q.q, q.limit))
        .await
        .map(Json)
}

async fn item_info(
    Extract(s): Extract<State>,
    Path(item): Path<String>,
) -> ApiResult<because_service::ItemInfo> {
    let h = s.model();
    blocking(move || h.item_info(&item)).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapQuery {
    #[serde(default = "three_hundred")]
    limit: usize,
}

fn three_hundred() -> usize {
    300
}

async fn model_map(
    Extract(s): Extract<State>,
    q: Result<Query<MapQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<because_service::EmbeddingMap> {
    let q = query(q)?;
    let h = s.model();
    blocking(move || h.embedding_map(q.limit)).await.map(Json)
}

async fn explain_map(
    Extract(s): Extract<State>,
    json: Result<Json<MapRequest>, JsonRejection>,
) -> ApiResult<because_service::ExplanationMap> {
    let req = body(json)?;
    let extra = stored_events(&s, &req.subject).await?;
    let h = s.model();
    blocking(move || h.explanation_map_with_events(&req, &extra))
        .await
        .map(Json)
}

/// Events stored in one minute.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct MinuteCount {
    /// Start of the minute, milliseconds since the epoch.
    pub start: i64,
    /// Events received in it.
    pub events: u64,
}

/// What the server is doing now: for the dashboard's live view.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct Live {
    /// The model served, as a full spec.
    pub model: String,
    /// Seconds since the server started.
    pub uptime_seconds: f64,
    /// Feedback events stored in all.
    pub events_stored: u64,
    /// Events received in each of the last [`LIVE_MINUTES`] minutes, oldest first.
    pub events_per_minute: Vec<MinuteCount>,
    /// Requests and latency per route since the server started.
    pub routes: Vec<metrics::RouteStats>,
}

/// The minutes of events `GET /v1/live` counts.
pub const LIVE_MINUTES: usize = 15;

async fn live(Extract(s): Extract<State>) -> ApiResult<Live> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let store = s.events.clone();
    let (stored, minutes) = blocking(move || {
        Ok::<_, StoreError>((
            store.count()?,
            store.received_per_minute(now, LIVE_MINUTES)?,
        ))
    })
    .await?;
    Ok(Json(Live {
        model: s.model().info().spec,
        uptime_seconds: s.metrics.uptime_seconds(),
        events_stored: stored,
        events_per_minute: minutes
            .into_iter()
            .map(|(start, events)| MinuteCount { start, events })
            .collect(),
        routes: s.metrics.routes(),
    }))
}

async fn model_info(Extract(s): Extract<State>) -> Json<because_service::ModelInfo> {
    Json(s.model().info())
}

/// Constant-time comparison, so the time taken says nothing of the key.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (k, &x) in a.iter().enumerate() {
        diff |= (x ^ b.get(k).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

fn authorized(s: &State, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &s.api_key else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server has no API key (--api-key-file), so writes and admin routes are closed",
        ));
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .unwrap_or("");
    if same(given.as_bytes(), key.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this route needs the API key (Authorization: Bearer KEY, or X-API-Key)",
        ))
    }
}

/// The model a reload swapped in.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reloaded {
    /// The model, as a full spec.
    pub model: String,
    /// Fingerprint of its training data.
    pub data_fingerprint: String,
}

async fn reload(Extract(s): Extract<State>, headers: HeaderMap) -> ApiResult<Reloaded> {
    authorized(&s, &headers)?;
    let fresh = blocking(move || s.reload()).await?;
    let info = fresh.info();
    Ok(Json(Reloaded {
        model: info.spec,
        data_fingerprint: info.data_fingerprint,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBatch {
    events: Vec<Event>,
}

/// What `POST /v1/events` did.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventsStored {
    /// Events written (durably: the answer comes after the commit).
    pub stored: usize,
    /// Events whose idempotency key was already stored (not written again).
    pub duplicates: usize,
    /// Events of the batch on items the model served now does not know:
    /// stored all the same, they enter at the next retrain.
    pub unknown_items: usize,
}

async fn post_events(
    Extract(s): Extract<State>,
    headers: HeaderMap,
    json: Result<Json<EventBatch>, JsonRejection>,
) -> ApiResult<EventsStored> {
    authorized(&s, &headers)?;
    let batch = body(json)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let store = s.events.clone();
    let model = s.model();
    let (stored, unknown_items) = blocking(move || {
        let stored = store.insert(&batch.events, now)?;
        let unknown = batch
            .events
            .iter()
            .filter(|e| model.items().get(&e.item).is_none())
            .count();
        Ok::<_, StoreError>((stored, unknown))
    })
    .await?;
    s.metrics.unknown_items(unknown_items as u64);
    Ok(Json(EventsStored {
        stored: stored.stored,
        duplicates: stored.duplicates,
        unknown_items,
    }))
}

/// A user's stored events.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserEvents {
    /// The user's ID.
    pub user: String,
    /// Their events, oldest first (at most [`MAX_FOLDED`], the latest).
    pub events: Vec<Event>,
}

async fn user_events(
    Extract(s): Extract<State>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> ApiResult<UserEvents> {
    // A person's raw events are theirs: listing them always needs the key.
    authorized(&s, &headers)?;
    let store = s.events.clone();
    let u = user.clone();
    let events = blocking(move || store.history(&u, MAX_FOLDED)).await?;
    Ok(Json(UserEvents { user, events }))
}

async fn metrics_text(Extract(s): Extract<State>) -> Response {
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

async fn measure(
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
    res
}

/// The OpenAPI 3 document of every route: paths and request schemas
/// written by hand, response schemas generated from the types
/// ([`response_schemas`]; a test keeps the file equal to them).
pub const OPENAPI: &str = include_str!("../openapi.json");

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

async fn openapi() -> Response {
    ([("content-type", "application/json")], OPENAPI).into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(Extract(s): Extract<State>) -> Json<serde_json::Value> {
    let info = s.model().info();
    Json(serde_json::json!({ "ready": true, "model": info.spec }))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The application: every route over `state`, with bounded bodies and a
/// time limit per request.
pub fn app(state: State) -> Router {
    let mut reads = Router::new()
        .route("/v1/model", get(model_info))
        .route("/v1/model/fidelity", get(model_fidelity))
        .route("/v1/recommend", post(recommend))
        .route(
            "/v1/users/{user}/recommendations",
            get(user_recommendations),
        )
        .route("/v1/explain", post(explain))
        .route("/v1/explain/map", post(explain_map))
        .route("/v1/model/map", get(model_map))
        .route("/v1/users/{user}/history", get(user_history))
        .route("/v1/items", get(search_items))
        .route("/v1/items/{item}", get(item_info))
        .route("/v1/items/{item}/similar", get(similar));
    if state.protect_reads {
        reads = reads.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_key,
        ));
    }
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(reads)
        .route("/v1/admin/reload", post(reload))
        .route("/v1/events", post(post_events))
        .route("/v1/users/{user}/events", get(user_events))
        .route("/metrics", get(metrics_text))
        .route("/v1/live", get(live))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(time_limit))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), measure))
        .with_state(state)
}

async fn require_key(
    Extract(s): Extract<State>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    match authorized(&s, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn time_limit(req: Request<Body>, next: axum::middleware::Next) -> Response {
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
        .into_response(),
    }
}

/// What identifies the model folder's current contents: where it resolves
/// (a `current` link may point elsewhere) and when its manifest changed.
fn folder_version(folder: &FsPath) -> Option<(PathBuf, std::time::SystemTime)> {
    let real = std::fs::canonicalize(folder).ok()?;
    let modified = std::fs::metadata(real.join("manifest.json"))
        .and_then(|m| m.modified())
        .ok()?;
    Some((real, modified))
}

/// Reloads the model whenever the folder (or the link it is) changes,
/// checking every `every`. A folder that does not open keeps the old model
/// in service; the next change is tried again.
pub async fn watch(state: State, every: Duration) {
    let folder = state.folder.clone();
    let mut seen = folder_version(&folder);
    loop {
        tokio::time::sleep(every).await;
        let now = folder_version(&folder);
        if now.is_some() && now != seen {
            let s = state.clone();
            if let Ok(Ok(_)) = tokio::task::spawn_blocking(move || s.reload()).await {
                seen = now;
            }
        }
    }
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
