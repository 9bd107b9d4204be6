//! The server's state: the model in service (swapped on reload), the event
//! store, the metrics, and the API-key policy every protected route and
//! `because serve` apply.

use crate::error::ApiError;
use crate::metrics;
use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use because_events::{Database, EventStore, StoreError};
use because_service::{ContextOptions, ModelHandle, ServiceError};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What the server shares between requests.
#[derive(Clone)]
pub struct State {
    pub(crate) model: Arc<RwLock<ModelHandle>>,
    pub(crate) folder: PathBuf,
    pub(crate) api_key: Option<Arc<str>>,
    pub(crate) protect_reads: bool,
    /// Whether top-k requests go through the folder's index, when it has one.
    pub(crate) approximate: bool,
    pub(crate) events: Arc<EventStore>,
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// What explanations draw on besides the model, read again at reload.
    pub(crate) context: Option<Arc<ContextOptions>>,
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
        let handle = ModelHandle::open(&folder)?.approximate(true);
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
            approximate: true,
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

    /// With `yes` (the default), recommendations and similar items come
    /// from the model folder's approximate-retrieval index when it has a
    /// usable one (each candidate scored exactly by the model); without, or
    /// with `false`, every request scores every item.
    pub fn approximate(mut self, yes: bool) -> State {
        self.approximate = yes;
        let handle = self.model().approximate(yes);
        self.model = Arc::new(RwLock::new(handle));
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
        let mut fresh = ModelHandle::open(&self.folder)?.approximate(self.approximate);
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

/// Constant-time comparison, so the time taken says nothing of the key.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (k, &x) in a.iter().enumerate() {
        diff |= (x ^ b.get(k).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

pub(crate) fn authorized(s: &State, headers: &HeaderMap) -> Result<(), ApiError> {
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

pub(crate) async fn require_key(
    Extract(s): Extract<State>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    match authorized(&s, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// What identifies the model folder's current contents: where it resolves
/// (a `current` link may point elsewhere), when its manifest changed, and
/// when its approximate-retrieval index did (saved after the model, so a
/// reload that found none picks it up when it arrives).
fn folder_version(
    folder: &FsPath,
) -> Option<(
    PathBuf,
    std::time::SystemTime,
    Option<std::time::SystemTime>,
)> {
    let real = std::fs::canonicalize(folder).ok()?;
    let modified = |name: &str| std::fs::metadata(real.join(name)).and_then(|m| m.modified());
    let manifest = modified("manifest.json").ok()?;
    let index = modified(because_models::index::MANIFEST).ok();
    Some((real.clone(), manifest, index))
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
