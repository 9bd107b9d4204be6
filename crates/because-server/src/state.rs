//! The server's state: the model in service (swapped on reload), the event
//! store, the metrics, the API keys (swapped when their files change), the
//! limits, and the authorization every protected route applies.

use crate::auth::{self, Access, KeyError, KeyFiles, KeySet};
use crate::error::ApiError;
use crate::guard::{Cors, Limiter, RateLimit};
use crate::metrics;
use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use because_events::{Database, EventStore, StoreError};
use because_service::{ContextOptions, ModelHandle, ServiceError};
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// What the server shares between requests.
#[derive(Clone)]
pub struct State {
    pub(crate) model: Arc<RwLock<ModelHandle>>,
    pub(crate) folder: PathBuf,
    /// The keys in use, swapped when their files change.
    keys: Arc<RwLock<Arc<KeySet>>>,
    /// Where they came from, and when those files last changed.
    key_files: Option<Arc<(KeyFiles, Mutex<auth::Stamp>)>>,
    pub(crate) protect_reads: bool,
    pub(crate) limiter: Option<Arc<Limiter>>,
    pub(crate) cors: Option<Arc<Cors>>,
    /// Set once shutdown began: `/readyz` fails so balancers stop sending.
    pub(crate) draining: Arc<AtomicBool>,
    /// How long the server goes on accepting requests once shutdown began.
    pub(crate) shutdown_delay: Duration,
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
    /// `api_key` (or the keys of [`State::with_key_files`]), and are closed
    /// without one. Blocking: with PostgreSQL, call it outside an async
    /// context or in `spawn_blocking`.
    pub fn open(
        folder: PathBuf,
        api_key: Option<String>,
        database: Option<Database>,
    ) -> Result<State, OpenError> {
        let keys = match &api_key {
            Some(k) => KeySet::single(k)?,
            None => KeySet::default(),
        };
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
            keys: Arc::new(RwLock::new(Arc::new(keys))),
            key_files: None,
            protect_reads: false,
            limiter: None,
            cors: None,
            draining: Arc::default(),
            shutdown_delay: Duration::ZERO,
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

    /// Takes the keys from `files` instead (replacing any key given to
    /// [`State::open`]), and reads them again when they change
    /// ([`State::reload_keys`]).
    pub fn with_key_files(mut self, files: KeyFiles) -> Result<State, OpenError> {
        let stamp = files.stamp();
        let keys = files.load()?;
        self.keys = Arc::new(RwLock::new(Arc::new(keys)));
        self.key_files = Some(Arc::new((files, Mutex::new(stamp))));
        Ok(self)
    }

    /// The keys in use.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the key files again if they changed since they were last
    /// read: `Ok(true)` when new keys are in use. Files that no longer read
    /// keep the keys in use (the error says why, never showing a key).
    pub fn reload_keys(&self) -> Result<bool, KeyError> {
        let Some(files) = &self.key_files else {
            return Ok(false);
        };
        let (files, seen) = &**files;
        let now = files.stamp();
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if *seen == now {
            return Ok(false);
        }
        *seen = now;
        let keys = files
            .load()
            .inspect_err(|_| self.metrics.keys_reloaded(false))?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        self.metrics.keys_reloaded(true);
        Ok(true)
    }

    /// Limits each client (the name of the key it gives, else its
    /// address) to `limit`; beyond it, requests are answered 429 with
    /// `Retry-After`. Probes and metrics are not limited.
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> State {
        self.limiter = limit.map(|l| Arc::new(Limiter::new(l)));
        self
    }

    /// Lets pages from `origins` call the API from a browser (CORS; off
    /// when empty, the default).
    pub fn cors(mut self, origins: &[String]) -> Result<State, OpenError> {
        self.cors = if origins.is_empty() {
            None
        } else {
            Some(Arc::new(Cors::new(origins).map_err(OpenError::Setting)?))
        };
        Ok(self)
    }

    /// Once shutdown begins, `/readyz` fails at once, but the server goes
    /// on accepting requests for `delay` before it closes its listener:
    /// time for a balancer's health check to take it out of rotation, so
    /// that no request reaches a closed port (default: none).
    pub fn shutdown_delay(mut self, delay: Duration) -> State {
        self.shutdown_delay = delay;
        self
    }

    /// Whether shutdown has begun.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
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
    /// The API keys.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A limit or origin setting.
    #[error("{0}")]
    Setting(String),
    /// The model folder.
    #[error(transparent)]
    Model(#[from] ServiceError),
    /// The event database.
    #[error(transparent)]
    Events(#[from] StoreError),
}

/// Checks that the request carries a key opening `need`; counts the
/// outcome in the metrics (by key name, never the key).
pub(crate) fn authorized(s: &State, headers: &HeaderMap, need: Access) -> Result<(), ApiError> {
    let keys = s.keys();
    if keys.is_empty() {
        s.metrics.auth_failure("no_keys");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server has no API key (--api-key-file), so writes and admin routes are closed",
        ));
    }
    match auth::given(headers).and_then(|g| keys.find(g)) {
        Some((name, access)) if access >= need => {
            s.metrics.key_used(name);
            Ok(())
        }
        Some(_) => {
            s.metrics.auth_failure("read_key_on_write");
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this key opens the read routes only; this route needs a write key",
            ))
        }
        None => {
            s.metrics.auth_failure(if auth::given(headers).is_some() {
                "invalid"
            } else {
                "missing"
            });
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this route needs an API key (Authorization: Bearer KEY, or X-API-Key)",
            ))
        }
    }
}

pub(crate) async fn require_key(
    Extract(s): Extract<State>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    match authorized(&s, req.headers(), Access::Read) {
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

/// Reads the key files again whenever they change, checking every
/// `every`; a file that no longer reads keeps the keys in use.
pub async fn watch_keys(state: State, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let s = state.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.reload_keys()).await {
            eprintln!("the API keys were not changed: {e}");
        }
    }
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
