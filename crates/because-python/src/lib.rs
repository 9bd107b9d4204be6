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

use because_core::{Dataset, Interactions, Query, Recommender, Request, Scored};
use because_data::clean::FilterOptions;
use because_data::{read_interactions, Loaded, ReadOptions};
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

/// A CSR matrix as it crosses: row pointers, column indices, values.
struct Csr {
    indptr: Vec<i64>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

impl Csr {
    fn new(indptr: &[u8], indices: &[u8], data: &[u8], n_cols: usize) -> PyResult<Csr> {
        let c = Csr {
            indptr: i64s(indptr)?,
            indices: u32s(indices)?,
            data: f32s(data)?,
        };
        if c.indices.len() != c.data.len() {
            return Err(value_error("indices and data differ in length"));
        }
        let ok = c.indptr.first() == Some(&0)
            && c.indptr.windows(2).all(|w| w[0] <= w[1])
            && c.indptr.last().copied() == Some(c.indices.len() as i64);
        if !ok {
            return Err(value_error("indptr is not a valid CSR row pointer"));
        }
        if let Some(&i) = c.indices.iter().find(|&&i| i as usize >= n_cols) {
            return Err(value_error(format!(
                "column index {i} is beyond the {n_cols} items"
            )));
        }
        if let Some(v) = c.data.iter().find(|v| !v.is_finite()) {
            return Err(value_error(format!("the matrix holds {v}")));
        }
        Ok(c)
    }

    fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
        (&self.indices[a..b], &self.data[a..b])
    }

    /// As an interaction log (no times: every row keeps its column order).
    fn interactions(&self, n_users: usize, n_items: usize) -> PyResult<Interactions> {
        let mut cols = because_core::Columns::default();
        for u in 0..self.rows() {
            let (items, values) = self.row(u);
            for (&i, &v) in items.iter().zip(values) {
                cols.push(u as u32, i, v, 0, None);
            }
        }
        Interactions::from_columns(n_users, n_items, cols).map_err(core_error)
    }
}

// ------------------------------------------------------------------- data

/// An interaction log read and cleaned, in external IDs.
#[pyclass(frozen, module = "because._because")]
struct Data {
    loaded: Arc<Loaded>,
}

fn read_options(opts: &serde_json::Value) -> PyResult<(ReadOptions, FilterOptions)> {
    let mut read = ReadOptions::default();
    let mut filters = FilterOptions::default();
    let obj = opts.as_object().cloned().unwrap_or_default();
    let text = |v: &serde_json::Value, key: &str| -> PyResult<String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| value_error(format!("`{key}` must be text")))
    };
    for (key, v) in &obj {
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "user" => read.columns.user = Some(text(v, key)?),
            "item" => read.columns.item = Some(text(v, key)?),
            "rating" => read.columns.rating = Some(text(v, key)?),
            "time" => read.columns.time = Some(text(v, key)?),
            "event" => read.columns.event = Some(text(v, key)?),
            "delimiter" => read.delimiter = Some(text(v, key)?.into_bytes()),
            "header" => read.has_header = v.as_bool(),
            "ignore_rating" => read.ignore_rating = v.as_bool().unwrap_or(false),
            "strict" => read.strict = v.as_bool().unwrap_or(false),
            "min_user_interactions" | "min_item_interactions" | "kcore" => {
                let n = v
                    .as_u64()
                    .ok_or_else(|| value_error(format!("`{key}` must be a positive integer")))?
                    as u32;
                match key.as_str() {
                    "min_user_interactions" => filters.bounds.min_user = Some(n),
                    "min_item_interactions" => filters.bounds.min_item = Some(n),
                    _ => filters.kcore = Some((n, n)),
                }
            }
            "binarize" => {
                filters.binarize = Some(
                    v.as_f64()
                        .ok_or_else(|| value_error("`binarize` must be a number"))?
                        as f32,
                )
            }
            other => return Err(value_error(format!("unknown reading option `{other}`"))),
        }
    }
    filters.validate().map_err(value_error)?;
    Ok((read, filters))
}

#[pymethods]
impl Data {
    /// Reads a log (CSV, TSV, MovieLens, JSON Lines or Parquet; columns
    /// detected as the command line detects them), cleans and filters it.
    /// `options` is JSON: column names, `delimiter`, `header`, `strict`,
    /// `min_user_interactions`, `min_item_interactions`, `kcore`,
    /// `binarize`.
    #[staticmethod]
    fn read(py: Python<'_>, path: PathBuf, options: &str) -> PyResult<Data> {
        let opts: serde_json::Value = serde_json::from_str(options).map_err(value_error)?;
        let (read, filters) = read_options(&opts)?;
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
        let values = f32s(values)?;
        let times = i64s(times)?;
        if users.len() != items.len() || values.len() != users.len() || times.len() != users.len() {
            return Err(value_error("the columns differ in length"));
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(value_error(format!("a value is {v}")));
        }
        let loaded = compute(py, || {
            let mut uv = because_core::Vocab::new();
            let mut iv = because_core::Vocab::new();
            let mut cols = because_core::Columns::default();
            for k in 0..users.len() {
                let u = uv.intern(&users[k]);
                let i = iv.intern(&items[k]);
                cols.push(u, i, values[k], times[k], None);
            }
            let x = Interactions::from_columns(uv.len(), iv.len(), cols).map_err(core_error)?;
            let dataset = Dataset {
                interactions: x,
                users: uv,
                items: iv,
                has_ratings,
                has_time,
                event_names: Vec::new(),
            };
            Ok(Loaded::from_dataset("a data frame", dataset))
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

    /// Splits into (train, validation, test) in one vocabulary. `method`:
    /// `random`, `user_temporal`, `global_temporal` or `leave_last_out`.
    fn split(
        &self,
        py: Python<'_>,
        method: &str,
        validation: f64,
        test: f64,
        seed: u64,
    ) -> PyResult<(Data, Data, Data)> {
        use because_core::{Cutoff, Part, Split, SplitMethod};
        let method = match method {
            "random" => SplitMethod::Random {
                validation,
                test,
                per_user: false,
            },
            "user_temporal" => SplitMethod::UserTemporal { validation, test },
            "global_temporal" => SplitMethod::GlobalTemporal(Cutoff::Ratio { validation, test }),
            "leave_last_out" => SplitMethod::LeaveLastOut,
            other => {
                return Err(value_error(format!(
                    "`method`: {other:?} is not one of random, user_temporal, global_temporal, leave_last_out"
                )))
            }
        };
        let loaded = self.loaded.clone();
        let parts = compute(py, move || {
            let d = &loaded.dataset;
            let s = Split::new(&d.interactions, method, seed, d.has_time).map_err(core_error)?;
            let part = |p: Part, name: &str| {
                let dataset = Dataset {
                    interactions: s.part(&d.interactions, p),
                    users: d.users.clone(),
                    items: d.items.clone(),
                    event_names: d.event_names.clone(),
                    has_time: d.has_time,
                    has_ratings: d.has_ratings,
                };
                Data {
                    loaded: Arc::new(Loaded::from_dataset(name, dataset)),
                }
            };
            Ok((
                part(Part::Train, "train"),
                part(Part::Validation, "validation"),
                part(Part::Test, "test"),
            ))
        })?;
        Ok(parts)
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
        serde_json::Value::Null,
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
        let csr = Csr::new(indptr, indices, data, n_items)?;
        if csr.rows() != n_users {
            return Err(value_error(format!(
                "{} rows for {n_users} users",
                csr.rows()
            )));
        }
        let x = csr.interactions(n_users, n_items)?;
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
    #[pyo3(signature = (spec, data, values="auto", callback=None, items=None, users=None))]
    #[allow(clippy::too_many_arguments)]
    fn fit_data(
        py: Python<'_>,
        spec: &str,
        data: &Data,
        values: &str,
        callback: Option<Py<PyAny>>,
        items: Option<std::path::PathBuf>,
        users: Option<std::path::PathBuf>,
    ) -> PyResult<Model> {
        use because_eval::experiment::Values;
        let spec = spec_of(spec)?;
        let values = match values {
            "auto" => Values::Auto,
            "binary" => Values::Binary,
            "as_is" => Values::AsIs,
            other => {
                return Err(value_error(format!(
                    "`values`: {other:?} is not auto, binary or as_is"
                )))
            }
        };
        let d = &data.loaded.dataset;
        let read = |path: &Option<std::path::PathBuf>,
                    vocab: &because_core::Vocab|
         -> PyResult<Option<because_data::features::Features>> {
            path.as_ref()
                .map(|p| {
                    because_data::features::read_features(p, vocab, None)
                        .map_err(|e| value_error(e.to_string()))
                })
                .transpose()
        };
        let (item_features, user_features) = (read(&items, &d.items)?, read(&users, &d.users)?);
        let table = |f: &Option<because_data::features::Features>| -> PyResult<_> {
            match f {
                Some(f) if !f.columns.is_empty() => {
                    Ok(Some(std::sync::Arc::new(f.table().map_err(core_error)?)))
                }
                _ => Ok(None),
            }
        };
        let side = because_core::SideInfo {
            users: table(&user_features)?,
            items: table(&item_features)?,
        };
        let titles: Vec<String> = match &item_features {
            Some(f) => (0..d.items.len() as u32)
                .map(|i| f.title(i).unwrap_or("").to_string())
                .collect(),
            None => Vec::new(),
        };
        let raised = Raised::default();
        let mut obs = observer(callback, raised.clone());
        // What `because train` does, with the default event weights.
        let weights = because_data::EventWeights::default();
        let trained = compute(py, || {
            because_eval::experiment::train(
                &spec,
                d,
                values,
                &|n| weights.weight(n),
                titles,
                &side,
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
        let csr = Csr::new(indptr, indices, data, n_items)?;
        if csr.rows() != n_users {
            return Err(value_error(format!(
                "{} training rows for {n_users} users",
                csr.rows()
            )));
        }
        let x = csr.interactions(n_users, n_items)?;
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

    /// Writes the model folder (atomically), as `because train` does.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let h = self.handle.clone();
        compute(py, move || {
            persist::save(h.model(), h.meta(), &path).map_err(value_error)
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
    #[pyo3(signature = (users, n, indptr, indices, data, filter_liked, recalculate, deny, allow=None))]
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
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let m = self.handle.model().clone();
        let users = u32s(users)?;
        let rows = if indptr.is_empty() {
            None
        } else {
            let c = Csr::new(indptr, indices, data, m.n_items())?;
            if c.rows() != users.len() {
                return Err(value_error(format!(
                    "user_items has {} rows for {} users",
                    c.rows(),
                    users.len()
                )));
            }
            Some(c)
        };
        if recalculate && rows.is_none() {
            return Err(value_error("recalculate_user needs user_items"));
        }
        let deny = u32s(deny)?;
        let allow = allow.map(u32s).transpose()?;
        for &i in deny.iter().chain(allow.iter().flatten()) {
            if i as usize >= m.n_items() {
                return Err(core_error(because_core::Error::UnknownItem {
                    item: i,
                    n_items: m.n_items(),
                }));
            }
        }
        for &u in &users {
            if !recalculate && u as usize >= m.n_users() {
                return Err(core_error(because_core::Error::UnknownUser {
                    user: u,
                    n_users: m.n_users(),
                }));
            }
        }
        // One user's list is computed on one thread whatever the pool (the
        // library batches users by 128), so it stays on this one.
        let inline = users.len() == 1;
        let lists: Vec<Vec<Scored>> = compute_where(py, inline, || {
            // The batched path serves the common case: the trained users,
            // their own histories left out.
            let own = |j: usize| {
                rows.as_ref().is_none_or(|c| {
                    let (items, _) = c.row(j);
                    items == m.history(users[j]).0
                })
            };
            if filter_liked && !recalculate && allow.is_none() && (0..users.len()).all(own) {
                let d: Vec<&[u32]> = vec![&deny[..]; users.len()];
                return m.recommend_users_denying(&users, n, &d).map_err(core_error);
            }
            let mut out = Vec::with_capacity(users.len());
            for (j, &u) in users.iter().enumerate() {
                let (items, values) = match &rows {
                    Some(c) => c.row(j),
                    None => m.history(u),
                };
                let mut deny_j = deny.clone();
                if filter_liked {
                    deny_j.extend_from_slice(items);
                }
                let query = if recalculate {
                    Query::History { items, values }
                } else {
                    Query::User(u)
                };
                let req = Request {
                    query,
                    k: n,
                    exclude_seen: false,
                    allow: allow.as_deref(),
                    deny: &deny_j,
                };
                out.push(m.recommend(&req).map_err(core_error)?);
            }
            Ok(out)
        })?;
        let mut ids = Vec::with_capacity(users.len() * n * 4);
        let mut scores = Vec::with_capacity(users.len() * n * 4);
        for list in &lists {
            for k in 0..n {
                let (i, s) = list
                    .get(k)
                    .map_or((-1i32, f32::NEG_INFINITY), |s| (s.item as i32, s.score));
                ids.extend_from_slice(&i.to_le_bytes());
                scores.extend_from_slice(&s.to_le_bytes());
            }
        }
        Ok((py_bytes(py, &ids), py_bytes(py, &scores)))
    }

    /// The `n` items most similar to each item index of `items` (uint32
    /// bytes), the item itself left out: indices (int32, -1 padding) and
    /// scores (float32).
    fn similar_items<'py>(
        &self,
        py: Python<'py>,
        items: &[u8],
        n: usize,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let m = self.handle.model().clone();
        let items = u32s(items)?;
        let lists = compute(py, || {
            items
                .iter()
                .map(|&i| m.similar_items(i, n).map_err(core_error))
                .collect::<PyResult<Vec<_>>>()
        })?;
        let mut ids = Vec::new();
        let mut scores = Vec::new();
        for list in &lists {
            for k in 0..n {
                let (i, s) = list
                    .get(k)
                    .map_or((-1i32, f32::NEG_INFINITY), |s| (s.item as i32, s.score));
                ids.extend_from_slice(&i.to_le_bytes());
                scores.extend_from_slice(&s.to_le_bytes());
            }
        }
        Ok((py_bytes(py, &ids), py_bytes(py, &scores)))
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
    #[pyo3(signature = (users, n=10, counterfactuals=false))]
    fn explain_recommendations(
        &self,
        py: Python<'_>,
        users: Vec<String>,
        n: usize,
        counterfactuals: bool,
    ) -> PyResult<String> {
        let h = self.handle.clone();
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
    /// service's `ExplainResponse`, counterfactual included).
    #[pyo3(signature = (user, item, n=10))]
    fn explain_item(
        &self,
        py: Python<'_>,
        user: String,
        item: String,
        n: usize,
    ) -> PyResult<String> {
        let h = self.handle.clone();
        let out = compute(py, move || {
            h.explain(&because_service::ExplainRequest {
                subject: Subject::User { user },
                item,
                n,
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
        let mut results = Vec::new();
        for h in &handles {
            // The test log in the model's own indices; unknown users and
            // items cannot be scored and are left out (and counted).
            let (t, dropped) = loaded
                .dataset
                .in_vocabulary(h.users(), h.items())
                .map_err(core_error)?;
            let e = because_eval::evaluate(h.model(), &t, &because_eval::Protocol::new(ks.clone()))
                .map_err(core_error)?;
            results.push(serde_json::json!({
                "model": h.model().spec().to_string(),
                "dropped_unknown": dropped,
                "summary": e.summary(seed),
            }));
        }
        Ok(results)
    })?;
    serde_json::to_string(&out).map_err(value_error)
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
    if ranked.len() != relevant.len() {
        return Err(value_error("as many relevant sets as lists are needed"));
    }
    if k == 0 {
        return Err(value_error("`k` must be at least 1"));
    }
    let out = compute(py, || {
        let mut vocab = because_core::Vocab::new();
        let mut out = Vec::with_capacity(ranked.len() * 6 * 8);
        for (list, rel) in ranked.iter().zip(&relevant) {
            let list: Vec<u32> = list.iter().map(|i| vocab.intern(i)).collect();
            let mut rel: Vec<u32> = rel.iter().map(|i| vocab.intern(i)).collect();
            rel.sort_unstable();
            rel.dedup();
            for v in because_eval::metrics::at_k(&list, &rel, k) {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(out)
    })?;
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
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
