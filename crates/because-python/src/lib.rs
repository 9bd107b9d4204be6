//! `because._because`: the extension module under the `because` Python
//! package. It is thin: every call goes to the same libraries the command
//! line and the server use (`because_service::ModelHandle` for trained
//! models, `because_data` for files, `because_eval` for evaluation).
//!
//! Arrays cross the boundary as little-endian bytes (`numpy.frombuffer` on
//! the Python side), rich results as JSON text; the Python package in
//! `python/because` turns both into numpy arrays, pandas frames and
//! objects. Work runs with the GIL released, inside the thread pool that
//! [`set_num_threads`] sizes, and a panic becomes a `RuntimeError`.

use because_core::{CsrMatrix, Interactions, Recommender};
use because_data::{read_interactions, Loaded, ReadSettings};
use because_models::persist;
use because_models::{Model as Fitted, ModelSpec};
use because_service::{ModelHandle, RecommendRequest, ServiceError, Subject};
use pyo3::exceptions::{PyKeyError, PyNotImplementedError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

// ------------------------------------------------------------------ errors

fn core_error(e: because_core::Error) -> PyErr {
    use because_core::Error as E;
    match e {
        E::UnknownUser { .. } | E::UnknownItem { .. } => PyKeyError::new_err(e.to_string()),
        E::Unsupported { .. } => PyNotImplementedError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn service_error(e: ServiceError) -> PyErr {
    match e {
        ServiceError::UnknownItem { .. } => PyKeyError::new_err(e.to_string()),
        ServiceError::Model(m) => core_error(m),
        ServiceError::Persist(p) => PyValueError::new_err(p.to_string()),
        other => PyValueError::new_err(other.to_string()),
    }
}

fn data_error(e: because_data::Error) -> PyErr {
    match e {
        because_data::Error::Core(c) => core_error(c),
        because_data::Error::InvalidParam { name, reason } => {
            PyValueError::new_err(format!("`{name}`: {reason}"))
        }
        other => PyValueError::new_err(other.to_string()),
    }
}

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

// ------------------------------------------------------------ thread pool

static POOL: Mutex<Option<Arc<rayon::ThreadPool>>> = Mutex::new(None);

fn pool() -> PyResult<Arc<rayon::ThreadPool>> {
    let mut p = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if p.is_none() {
        *p = Some(Arc::new(
            rayon::ThreadPoolBuilder::new()
                .build()
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?,
        ));
    }
    Ok(p.clone().expect("just set"))
}

/// Sets the threads the library computes with (0: one per core).
#[pyfunction]
fn set_num_threads(n: usize) -> PyResult<()> {
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    *POOL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(built));
    Ok(())
}

/// The threads the library computes with.
#[pyfunction]
fn num_threads() -> PyResult<usize> {
    Ok(pool()?.current_num_threads())
}

/// Runs `f` without the GIL, in the pool, turning a panic into a
/// `RuntimeError`.
fn compute<T: Send>(py: Python<'_>, f: impl FnOnce() -> PyResult<T> + Send) -> PyResult<T> {
    compute_where(py, false, f)
}

/// [`compute`], on the calling thread when `inline` (work that runs on one
/// thread anyway, where the hand-off to the pool would cost more than it).
fn compute_where<T: Send>(
    py: Python<'_>,
    inline: bool,
    f: impl FnOnce() -> PyResult<T> + Send,
) -> PyResult<T> {
    let pool = pool()?;
    py.detach(|| {
        let run = || if inline { f() } else { pool.install(f) };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown".into());
            Err(PyRuntimeError::new_err(format!(
                "because failed inside (a bug, please report it): {msg}"
            )))
        })
    })
}

/// A vocabulary's IDs in index order.
fn ids(v: &because_core::Vocab) -> Vec<String> {
    v.ids().map(str::to_string).collect()
}

// ------------------------------------------------------------------ bytes

fn u32s(b: &[u8]) -> PyResult<Vec<u32>> {
    if b.len() % 4 != 0 {
        return Err(value_error(
            "a uint32 array's bytes must be a multiple of 4",
        ));
    }
    Ok(b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn i64s(b: &[u8]) -> PyResult<Vec<i64>> {
    if b.len() % 8 != 0 {
        return Err(value_error(
            "an int64 array's bytes must be a multiple of 8",
        ));
    }
    Ok(b.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

fn f32s(b: &[u8]) -> PyResult<Vec<f32>> {
    if b.len() % 4 != 0 {
        return Err(value_error(
            "a float32 array's bytes must be a multiple of 4",
        ));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn bytes_of<T: Copy>(xs: &[T], to: impl Fn(T) -> Vec<u8>) -> Vec<u8> {
    xs.iter().flat_map(|&x| to(x)).collect()
}

fn py_bytes<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, b)
}

/// Top-`n` lists as item indices (int32, -1 where a list is shorter) and
/// scores (float32, -inf there), `n` per list.
fn lists_bytes<'py>(
    py: Python<'py>,
    lists: &[Vec<because_core::Scored>],
    n: usize,
) -> (Bound<'py, PyBytes>, Bound<'py, PyBytes>) {
    let (mut ids, mut scores) = (Vec::new(), Vec::new());
    for list in lists {
        for k in 0..n {
            let (i, s) = list
                .get(k)
                .map_or((-1i32, f32::NEG_INFINITY), |s| (s.item as i32, s.score));
            ids.extend_from_slice(&i.to_le_bytes());
            scores.extend_from_slice(&s.to_le_bytes());
        }
    }
    (py_bytes(py, &ids), py_bytes(py, &scores))
}

/// A users × items CSR matrix as it crosses (int64 row pointers, uint32
/// columns, float32 values), checked by the library.
fn csr(indptr: &[u8], indices: &[u8], data: &[u8], n_cols: usize) -> PyResult<CsrMatrix> {
    let indptr = i64s(indptr)?
        .into_iter()
        .map(|p| usize::try_from(p).map_err(|_| value_error("indptr holds a negative offset")))
        .collect::<PyResult<Vec<usize>>>()?;
    if indptr.is_empty() {
        return Err(value_error("indptr is empty"));
    }
    CsrMatrix::from_parts(
        indptr.len() - 1,
        n_cols,
        indptr,
        u32s(indices)?,
        f32s(data)?,
    )
    .map_err(core_error)
}

// ------------------------------------------------------------------- data

/// An interaction log read and cleaned, in external IDs.
#[pyclass(frozen, module = "because._because")]
struct Data {
    loaded: Arc<Loaded>,
}

#[pymethods]
impl Data {
    /// Reads a log (CSV, TSV, MovieLens, JSON Lines or Parquet; columns
    /// detected as the command line detects them), cleans and filters it.
    /// `options` is JSON: the library's `ReadSettings`, the command line's
    /// reading flags with `_` (`user_col`, `kcore`, `rating_range`, ...).
    #[staticmethod]
    fn read(py: Python<'_>, path: PathBuf, options: &str) -> PyResult<Data> {
        let settings: ReadSettings = serde_json::from_str(options).map_err(value_error)?;
        let (read, filters) = settings.options().map_err(data_error)?;
        let loaded = compute(py, || {
            let l = read_interactions(&path, &read).map_err(value_error)?;
            because_data::clean::apply_filters(l, &filters).map_err(value_error)
        })?;
        Ok(Data {
            loaded: Arc::new(loaded),
        })
    }

    /// A log from columns: user and item IDs (text), values (float32
    /// bytes), times (int64 milliseconds, bytes; all zero when unknown).
    #[staticmethod]
    fn from_columns(
        py: Python<'_>,
        users: Vec<String>,
        items: Vec<String>,
        values: &[u8],
        times: &[u8],
        has_time: bool,
        has_ratings: bool,
    ) -> PyResult<Data> {
        let (values, times) = (f32s(values)?, i64s(times)?);
        let loaded = compute(py, || {
            Loaded::from_columns(
                "a data frame",
                &users,
                &items,
                &values,
                &times,
                has_time,
                has_ratings,
            )
            .map_err(data_error)
        })?;
        Ok(Data {
            loaded: Arc::new(loaded),
        })
    }

    #[getter]
    fn n_users(&self) -> usize {
        self.loaded.dataset.users.len()
    }

    #[getter]
    fn n_items(&self) -> usize {
        self.loaded.dataset.items.len()
    }

    fn __len__(&self) -> usize {
        self.loaded.dataset.interactions.len()
    }

    #[getter]
    fn has_ratings(&self) -> bool {
        self.loaded.dataset.has_ratings
    }

    #[getter]
    fn has_time(&self) -> bool {
        self.loaded.dataset.has_time
    }

    /// User IDs in index order.
    fn user_ids(&self) -> Vec<String> {
        ids(&self.loaded.dataset.users)
    }

    /// Item IDs in index order.
    fn item_ids(&self) -> Vec<String> {
        ids(&self.loaded.dataset.items)
    }

    /// Event type names, in code order.
    fn event_names(&self) -> Vec<String> {
        self.loaded.dataset.event_names.clone()
    }

    /// The cleaning report as JSON: rows read, kept, and dropped by reason.
    fn report(&self) -> PyResult<String> {
        serde_json::to_string(&self.loaded.report).map_err(value_error)
    }

    /// Columns as bytes: user and item indices (uint32), values (float32),
    /// times (int64), event codes (uint8; empty without event types).
    fn columns<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        let x = &self.loaded.dataset.interactions;
        let users: Vec<u32> = (0..x.n_users() as u32)
            .flat_map(|u| std::iter::repeat_n(u, x.range(u).len()))
            .collect();
        vec![
            py_bytes(py, &bytes_of(&users, |v| v.to_le_bytes().to_vec())),
            py_bytes(py, &bytes_of(x.items(), |v| v.to_le_bytes().to_vec())),
            py_bytes(py, &bytes_of(x.values(), |v| v.to_le_bytes().to_vec())),
            py_bytes(py, &bytes_of(x.times(), |v| v.to_le_bytes().to_vec())),
            py_bytes(py, x.events().unwrap_or(&[])),
        ]
    }

    /// Splits into (train, validation, test) in one vocabulary, as
    /// `because split` does. `method`: a split method as the command line
    /// names it (`random`, `temporal`, `user-temporal`, `leave-last-out`;
    /// `_` for `-` reads the same).
    fn split(
        &self,
        py: Python<'_>,
        method: &str,
        validation: f64,
        test: f64,
        seed: u64,
        per_user: bool,
    ) -> PyResult<(Data, Data, Data)> {
        use because_core::{Part, SplitKind, SplitMethod};
        let kind: SplitKind = method.parse().map_err(core_error)?;
        let mut method = SplitMethod::of_kind(kind, validation, test);
        if let SplitMethod::Random { per_user: p, .. } = &mut method {
            *p = per_user;
        }
        method.validate().map_err(core_error)?;
        let loaded = self.loaded.clone();
        compute(py, move || {
            let split = loaded.split(method, seed).map_err(data_error)?;
            let part = |p: Part| -> PyResult<Data> {
                let l = split
                    .part(p)
                    .ok_or_else(|| value_error(format!("the split has no {} part", p.name())))?;
                Ok(Data {
                    loaded: Arc::new(l.clone()),
                })
            };
            Ok((
                part(Part::Train)?,
                part(Part::Validation)?,
                part(Part::Test)?,
            ))
        })
    }
}

// ------------------------------------------------------------------ model

/// A trained model and what names its users and items.
#[pyclass(frozen, module = "because._because")]
struct Model {
    handle: ModelHandle,
}

/// What a Python callback raised, to raise again once training returns
/// (the callback runs on a worker thread, whose error state is its own).
type Raised = Arc<Mutex<Option<PyErr>>>;

/// Calls a Python callback after each epoch: `callback(epoch, of, loss)`;
/// a true return value stops training, and an exception stops it and is
/// kept in `raised`.
fn observer(
    callback: Option<Py<PyAny>>,
    raised: Raised,
) -> impl FnMut(&because_core::Epoch<'_>) -> ControlFlow<()> + Send {
    move |e| {
        let Some(cb) = &callback else {
            return ControlFlow::Continue(());
        };
        Python::attach(|py| match cb.call1(py, (e.epoch, e.of, e.loss)) {
            Ok(r) if r.is_truthy(py).unwrap_or(false) => ControlFlow::Break(()),
            Ok(_) => ControlFlow::Continue(()),
            Err(err) => {
                *raised.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
                ControlFlow::Break(())
            }
        })
    }
}

fn spec_of(spec: &str) -> PyResult<ModelSpec> {
    let s: ModelSpec = spec.parse().map_err(core_error)?;
    s.resolve().map_err(core_error)?;
    Ok(s)
}

/// A model trained on `x`, whose rows `users` and `items` name.
fn handle(
    model: Fitted,
    users: Vec<String>,
    items: Vec<String>,
    x: &Interactions,
) -> PyResult<Model> {
    let meta = because_eval::experiment::meta_for(
        &because_core::Vocab::from_ids(&users),
        &because_core::Vocab::from_ids(&items),
        x,
        Default::default(),
        Vec::new(),
        Vec::new(),
    );
    Ok(Model {
        handle: ModelHandle::new(model, meta).map_err(service_error)?,
    })
}

fn experiment_error(e: because_eval::experiment::Error) -> PyErr {
    match e {
        because_eval::experiment::Error::Core(c) => core_error(c),
        other => value_error(other),
    }
}

/// Fails with the callback's own exception if it raised one.
fn callback_error(raised: &Raised) -> PyResult<()> {
    match raised.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[pymethods]
impl Model {
    /// Fits `spec` (`kind:key=value,...`) on a users × items CSR matrix
    /// given as bytes (int64 row pointers, uint32 columns, float32 values).
    #[staticmethod]
    #[pyo3(signature = (spec, indptr, indices, data, n_users, n_items, callback=None))]
    #[allow(clippy::too_many_arguments)]
    fn fit_csr(
        py: Python<'_>,
        spec: &str,
        indptr: &[u8],
        indices: &[u8],
        data: &[u8],
        n_users: usize,
        n_items: usize,
        callback: Option<Py<PyAny>>,
    ) -> PyResult<Model> {
        let spec = spec_of(spec)?;
        let csr = csr(indptr, indices, data, n_items)?;
        if csr.n_rows() != n_users {
            return Err(value_error(format!(
                "{} rows for {n_users} users",
                csr.n_rows()
            )));
        }
        let x = Interactions::from_matrix(&csr).map_err(core_error)?;
        let raised = Raised::default();
        let mut obs = observer(callback, raised.clone());
        let fitted = compute(py, || {
            spec.fit_observed(&x, 0, &mut obs).map_err(core_error)
        });
        callback_error(&raised)?;
        let fitted = fitted?;
        handle(
            fitted,
            (0..n_users).map(|u| u.to_string()).collect(),
            (0..n_items).map(|i| i.to_string()).collect(),
            &x,
        )
    }

    /// Fits `spec` on a log read with [`Data`], its values as `because
    /// train --values` gives them (`auto`, `binary`, `as_is`), with item
    /// and user feature files for the models that read them (item titles
    /// are kept either way).
    #[staticmethod]
    #[pyo3(signature = (spec, data, values="auto", callback=None, items=None, users=None, early_stopping=None))]
    #[allow(clippy::too_many_arguments)]
    fn fit_data(
        py: Python<'_>,
        spec: &str,
        data: &Data,
        values: &str,
        callback: Option<Py<PyAny>>,
        items: Option<std::path::PathBuf>,
        users: Option<std::path::PathBuf>,
        early_stopping: Option<usize>,
    ) -> PyResult<Model> {
        let spec = spec_of(spec)?;
        let values: because_eval::experiment::Values = values.parse().map_err(experiment_error)?;
        let d = &data.loaded.dataset;
        let read = |path: &Option<PathBuf>, vocab: &because_core::Vocab| {
            path.as_ref()
                .map(|p| because_data::features::read_features(p, vocab, None))
                .transpose()
                .map_err(data_error)
        };
        let (item_features, user_features) = (read(&items, &d.items)?, read(&users, &d.users)?);
        let side =
            because_data::features::side_info(item_features.as_ref(), user_features.as_ref())
                .map_err(core_error)?;
        let titles = item_features.map(|f| f.titles()).unwrap_or_default();
        let raised = Raised::default();
        let mut obs = observer(callback, raised.clone());
        // What `because train` does, with the default event weights (and
        // early stopping only when asked: `fit` trains the epochs given, as
        // implicit's does).
        let weights = because_data::EventWeights::default();
        let early = early_stopping
            .map(|patience| {
                if patience == 0 {
                    return Err(PyValueError::new_err("early_stopping: must be at least 1"));
                }
                Ok(because_eval::experiment::EarlyStopping {
                    patience,
                    ..Default::default()
                })
            })
            .transpose()?;
        let trained = compute(py, || {
            because_eval::experiment::train(
                &spec,
                d,
                values,
                &|n| weights.weight(n),
                titles,
                &side,
                early.as_ref(),
                &mut obs,
            )
            .map_err(experiment_error)
        });
        callback_error(&raised)?;
        let trained = trained?;
        Ok(Model {
            handle: ModelHandle::new(trained.model, trained.meta).map_err(service_error)?,
        })
    }

    /// An ALS model from factors trained elsewhere (Spark MLlib's ALS):
    /// `params` as JSON (the ALS parameters), the IDs naming rows, the
    /// training matrix (users × items CSR bytes) and the factors (float32
    /// bytes, row-major).
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    fn from_als_factors(
        py: Python<'_>,
        params: &str,
        user_ids: Vec<String>,
        item_ids: Vec<String>,
        indptr: &[u8],
        indices: &[u8],
        data: &[u8],
        user_factors: &[u8],
        item_factors: &[u8],
    ) -> PyResult<Model> {
        let params: because_models::AlsParams = serde_json::from_str(params)
            .map_err(|e| value_error(format!("ALS parameters: {e}")))?;
        let (n_users, n_items) = (user_ids.len(), item_ids.len());
        let csr = csr(indptr, indices, data, n_items)?;
        if csr.n_rows() != n_users {
            return Err(value_error(format!(
                "{} training rows for {n_users} users",
                csr.n_rows()
            )));
        }
        let x = Interactions::from_matrix(&csr).map_err(core_error)?;
        let (uf, itf) = (f32s(user_factors)?, f32s(item_factors)?);
        let model = compute(py, || {
            let als = because_models::Als::from_factors(params, &x, uf, itf).map_err(core_error)?;
            Fitted::new(als).map_err(core_error)
        })?;
        handle(model, user_ids, item_ids, &x)
    }

    /// Opens a model folder (written by `because train`, `tune`, `run` or
    /// `save`).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Model> {
        let handle = compute(py, || ModelHandle::open(&path).map_err(service_error))?;
        Ok(Model { handle })
    }

    /// Writes the model folder (atomically), as `because train` does, with
    /// the approximate-retrieval index `index` asks for (`never`, `auto`
    /// or `always`).
    #[pyo3(signature = (path, index="auto"))]
    fn save(&self, py: Python<'_>, path: PathBuf, index: &str) -> PyResult<()> {
        let policy: because_models::index::IndexPolicy = index.parse().map_err(value_error)?;
        let h = self.handle.clone();
        compute(py, move || {
            persist::save(h.model(), h.meta(), &path).map_err(value_error)?;
            because_models::index::build_for(h.model(), &path, policy).map_err(value_error)?;
            Ok(())
        })
    }

    /// Reads item and user features and the raw event log, for richer
    /// explanations (as `because explain --items --users --events`).
    #[pyo3(signature = (items=None, users=None, events=None))]
    fn with_context(
        &self,
        py: Python<'_>,
        items: Option<PathBuf>,
        users: Option<PathBuf>,
        events: Option<PathBuf>,
    ) -> PyResult<Model> {
        let h = self.handle.clone();
        let handle = compute(py, move || {
            let ctx = h
                .read_context(&because_service::ContextOptions {
                    items,
                    users,
                    events,
                    ..Default::default()
                })
                .map_err(service_error)?;
            Ok(h.with_context(ctx))
        })?;
        Ok(Model { handle })
    }

    #[getter]
    fn spec(&self) -> String {
        self.handle.model().spec().to_string()
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.handle.model().kind()
    }

    #[getter]
    fn n_users(&self) -> usize {
        self.handle.model().n_users()
    }

    #[getter]
    fn n_items(&self) -> usize {
        self.handle.model().n_items()
    }

    /// The model's information as JSON (the server's `GET /v1/model`).
    fn info(&self) -> PyResult<String> {
        serde_json::to_string(&self.handle.info()).map_err(value_error)
    }

    fn user_ids(&self) -> Vec<String> {
        ids(self.handle.users())
    }

    fn item_ids(&self) -> Vec<String> {
        ids(self.handle.items())
    }

    /// Item factors as float32 bytes and their width, for models with
    /// item embeddings.
    fn item_factors<'py>(&self, py: Python<'py>) -> Option<(Bound<'py, PyBytes>, usize)> {
        self.handle
            .model()
            .item_embeddings()
            .map(|(f, d)| (py_bytes(py, &bytes_of(f, |v| v.to_le_bytes().to_vec())), d))
    }

    /// A user's training history: item indices (uint32) and values (float32).
    fn history<'py>(
        &self,
        py: Python<'py>,
        user: u32,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let m = self.handle.model();
        if user as usize >= m.n_users() {
            return Err(core_error(because_core::Error::UnknownUser {
                user,
                n_users: m.n_users(),
            }));
        }
        let (items, values) = m.history(user);
        Ok((
            py_bytes(py, &bytes_of(items, |v| v.to_le_bytes().to_vec())),
            py_bytes(py, &bytes_of(values, |v| v.to_le_bytes().to_vec())),
        ))
    }

    /// Top `n` for each user index in `users` (uint32 bytes): item indices
    /// (int32, -1 where fewer than `n` are left) and scores (float32,
    /// -inf there), `n` per user. `rows` is the users' rows of a user ×
    /// items CSR matrix (their "user_items"), or empty bytes to use the
    /// model's own histories. With `filter_liked`, the row's items are left
    /// out; with `recalculate`, the user is scored from the row (fold-in)
    /// instead of the trained user. `deny` items are left out; `allow`
    /// (when not None) is the only items considered.
    /// With `approximate`, the lists come from the model folder's index
    /// (each candidate scored exactly), where it has one.
    #[pyo3(signature = (users, n, indptr, indices, data, filter_liked, recalculate, deny, allow=None, approximate=false))]
    #[allow(clippy::too_many_arguments)]
    fn recommend<'py>(
        &self,
        py: Python<'py>,
        users: &[u8],
        n: usize,
        indptr: &[u8],
        indices: &[u8],
        data: &[u8],
        filter_liked: bool,
        recalculate: bool,
        deny: &[u8],
        allow: Option<&[u8]>,
        approximate: bool,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let handle = self.handle.approximate(approximate);
        let users = u32s(users)?;
        let rows = if indptr.is_empty() {
            None
        } else {
            Some(csr(indptr, indices, data, self.handle.model().n_items())?)
        };
        let (deny, allow) = (u32s(deny)?, allow.map(u32s).transpose()?);
        // One user's list is computed on one thread whatever the pool (the
        // library batches users by 128), so it stays on this one.
        let inline = users.len() == 1;
        let lists = compute_where(py, inline, || {
            let req = because_service::IndexRequest {
                users: &users,
                n,
                rows: rows.as_ref().map(|c| {
                    (0..c.n_rows())
                        .map(|r| (c.row_indices(r), c.row_data(r)))
                        .collect()
                }),
                filter_liked,
                recalculate,
                deny: &deny,
                allow: allow.as_deref(),
            };
            handle.recommend_indices(&req).map_err(service_error)
        })?;
        Ok(lists_bytes(py, &lists, n))
    }

    /// The `n` items most similar to each item index of `items` (uint32
    /// bytes), the item itself left out: indices (int32, -1 padding) and
    /// scores (float32); with `approximate`, from the folder's index.
    #[pyo3(signature = (items, n, approximate=false))]
    fn similar_items<'py>(
        &self,
        py: Python<'py>,
        items: &[u8],
        n: usize,
        approximate: bool,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let h = self.handle.approximate(approximate);
        let items = u32s(items)?;
        let lists = compute(py, || {
            items
                .iter()
                .map(|&i| h.similar_to(i, n).map_err(service_error))
                .collect::<PyResult<Vec<_>>>()
        })?;
        Ok(lists_bytes(py, &lists, n))
    }

    /// The exact decomposition of the score of `item` for a history (item
    /// indices and values as bytes), as JSON: score, bias, exact, and every
    /// history item's contribution, largest first.
    fn decompose(
        &self,
        py: Python<'_>,
        items: &[u8],
        values: &[u8],
        item: u32,
    ) -> PyResult<String> {
        let m = self.handle.model().clone();
        let items = u32s(items)?;
        let values = f32s(values)?;
        if items.len() != values.len() {
            return Err(value_error("items and values differ in length"));
        }
        let e = compute(py, || {
            because_explain::explain(&m, &items, &values, item).map_err(core_error)
        })?;
        serde_json::to_string(&e).map_err(value_error)
    }

    /// Recommendations with explanations for users by external ID, as JSON
    /// (a list of the service's `Recommendations`, the server's answer).
    #[pyo3(signature = (users, n=10, counterfactuals=false, approximate=false))]
    fn explain_recommendations(
        &self,
        py: Python<'_>,
        users: Vec<String>,
        n: usize,
        counterfactuals: bool,
        approximate: bool,
    ) -> PyResult<String> {
        let h = self.handle.approximate(approximate);
        let out = compute(py, move || {
            users
                .into_iter()
                .map(|user| {
                    h.recommend(&RecommendRequest {
                        explain: true,
                        counterfactuals,
                        ..RecommendRequest::new(Subject::User { user }, n)
                    })
                    .map_err(service_error)
                })
                .collect::<PyResult<Vec<_>>>()
        })?;
        serde_json::to_string(&out).map_err(value_error)
    }

    /// Why `item` is recommended to `user` (external IDs), as JSON (the
    /// service's `ExplainResponse`, counterfactual included), by `method`
    /// (a name from `explanation_methods`; `None`: the model's default).
    #[pyo3(signature = (user, item, n=10, method=None))]
    fn explain_item(
        &self,
        py: Python<'_>,
        user: String,
        item: String,
        n: usize,
        method: Option<String>,
    ) -> PyResult<String> {
        let method = method
            .map(|m| m.parse::<because_explain::Method>())
            .transpose()
            .map_err(PyValueError::new_err)?;
        let h = self.handle.clone();
        let out = compute(py, move || {
            h.explain(&because_service::ExplainRequest {
                subject: Subject::User { user },
                item,
                n,
                method,
            })
            .map_err(service_error)
        })?;
        serde_json::to_string(&out).map_err(value_error)
    }

    /// Every known user's top `n` as JSON (`recommendations.json`); with
    /// `path`, written there (atomically, as `because recommend --all`
    /// writes it) and an empty string returned.
    #[pyo3(signature = (n, path=None))]
    fn recommend_all(&self, py: Python<'_>, n: usize, path: Option<PathBuf>) -> PyResult<String> {
        let h = self.handle.clone();
        compute(py, move || {
            let all = h.recommend_all(n).map_err(service_error)?;
            match path {
                Some(p) => {
                    let text = serde_json::to_string_pretty(&all).map_err(value_error)?;
                    because_data::write_atomic(&p, |w| {
                        std::io::Write::write_all(w, text.as_bytes())
                    })
                    .map_err(value_error)?;
                    Ok(String::new())
                }
                None => serde_json::to_string(&all).map_err(value_error),
            }
        })
    }

    /// Seconds one `recommend` of user index `user` takes in Rust, the
    /// mean of `reps` calls of the library function the binding calls for
    /// `recommend(user, N=n)`: the reference for the binding's overhead.
    fn time_recommend(&self, py: Python<'_>, user: u32, n: usize, reps: usize) -> PyResult<f64> {
        let m = self.handle.model().clone();
        compute(py, move || {
            let deny: [&[u32]; 1] = [&[]];
            let start = std::time::Instant::now();
            for _ in 0..reps.max(1) {
                let r = m
                    .recommend_users_denying(&[user], n, &deny)
                    .map_err(core_error)?;
                std::hint::black_box(r);
            }
            Ok(start.elapsed().as_secs_f64() / reps.max(1) as f64)
        })
    }
}

/// Evaluates models (all trained on `train`'s vocabulary) on `test` with
/// full ranking; JSON: one `EvaluationSummary` per model (means with 95%
/// bootstrap intervals).
#[pyfunction]
#[pyo3(signature = (models, test, ks, seed=42))]
fn evaluate(
    py: Python<'_>,
    models: Vec<PyRef<'_, Model>>,
    test: &Data,
    ks: Vec<usize>,
    seed: u64,
) -> PyResult<String> {
    let handles: Vec<ModelHandle> = models.iter().map(|m| m.handle.clone()).collect();
    let loaded = test.loaded.clone();
    let out = compute(py, move || {
        handles
            .iter()
            .map(|h| {
                because_eval::evaluate_log(
                    h.model(),
                    h.users(),
                    h.items(),
                    &loaded.dataset,
                    &ks,
                    seed,
                )
                .map_err(core_error)
            })
            .collect::<PyResult<Vec<_>>>()
    })?;
    serde_json::to_string(&out).map_err(value_error)
}

/// The registered model kinds as JSON: name, one line, parameters with
/// their defaults and capabilities (the registry's `KindInfo`).
#[pyfunction]
fn kinds() -> PyResult<String> {
    let kinds: Vec<_> = because_models::registry::kinds()
        .iter()
        .map(|e| e.info())
        .collect();
    serde_json::to_string(&kinds).map_err(value_error)
}

/// The six ranking metrics of each list at `k` against each user's
/// relevant items (IDs as text), as float64 bytes (lists × 6, in the order
/// precision, recall, ndcg, map, mrr, hitrate): the evaluator's own
/// definitions, for metrics computed elsewhere (Spark partitions).
#[pyfunction]
fn metrics_at_k<'py>(
    py: Python<'py>,
    ranked: Vec<Vec<String>>,
    relevant: Vec<Vec<String>>,
    k: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let rows = compute(py, || {
        because_eval::metrics::at_k_by_id(&ranked, &relevant, k).map_err(core_error)
    })?;
    let out: Vec<u8> = rows
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    Ok(py_bytes(py, &out))
}

/// Renders a figure (the plotting library's JSON form) to PNG bytes.
#[pyfunction]
fn bar_chart_png<'py>(
    py: Python<'py>,
    title: &str,
    labels: Vec<String>,
    values: Vec<f64>,
    x_label: &str,
    y_label: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let fig = because_plot::Figure::Bars(because_plot::Bars {
        title: title.to_string(),
        x_label: x_label.to_string(),
        y_label: y_label.to_string(),
        labels,
        values,
        log_y: false,
    });
    let dir = std::env::temp_dir().join(format!(
        "because-figure-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let png = compute(py, || {
        let drawn = std::fs::create_dir_all(&dir)
            .map_err(value_error)
            .and_then(|()| because_plot::save(&fig, &dir, "figure").map_err(value_error))
            .and_then(|paths| std::fs::read(&paths[0]).map_err(value_error));
        // Removed whether or not drawing worked.
        let _ = std::fs::remove_dir_all(&dir);
        drawn
    })?;
    Ok(py_bytes(py, &png))
}

#[pymodule]
fn _because(m: &Bound<'_, PyModule>) -> PyResult<()> {
    because_service::register_models();
    m.add_class::<Data>()?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(bar_chart_png, m)?)?;
    m.add_function(wrap_pyfunction!(metrics_at_k, m)?)?;
    m.add_function(wrap_pyfunction!(kinds, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
