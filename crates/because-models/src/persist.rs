//! Model folders: `manifest.json` (format version, kind, parameters, sizes,
//! ID vocabularies, a fingerprint of the training data, metrics and the
//! tensors' checksum) and `model.safetensors`.
//!
//! Both files are written to temporary names, synced and renamed, tensors
//! first, so a folder is never half-written: a reader sees either the old
//! manifest (whose checksum then fails against new tensors, a clear error)
//! or the new pair. Loading checks the format version, the checksum and
//! every tensor's shape.

use crate::common::Train;
use crate::{registry, Model};
use because_core::{CsrMatrix, Error as CoreError, Recommender};
use safetensors::tensor::{Dtype, TensorView};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The current format version.
pub const FORMAT_VERSION: u64 = 1;

/// Errors of saving and loading models.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The folder is not a valid model.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Rebuilding the model failed.
    #[error(transparent)]
    Core(#[from] CoreError),
}

type Result<T> = std::result::Result<T, PersistError>;

/// What is saved beside the tensors.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    /// External user IDs in index order.
    pub user_ids: Vec<String>,
    /// External item IDs in index order.
    pub item_ids: Vec<String>,
    /// A fingerprint of the training data.
    pub data_fingerprint: String,
    /// Free-form metrics (for example validation results).
    pub metrics: Value,
    /// Item titles in index order (empty when unknown; may be empty altogether).
    pub item_titles: Vec<String>,
    /// The event types of the training log, in code order, with the weight
    /// each gave an interaction's value (empty for logs without event types).
    pub events: Vec<EventType>,
}

/// An event type of the training log.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EventType {
    /// Its name, as in the log (`view`, `addtocart`, ...).
    pub name: String,
    /// The value it gave an interaction.
    pub weight: f32,
}

/// A loaded model with its metadata.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The model.
    pub model: Model,
    /// Its metadata.
    pub meta: Meta,
}

/// A 64-bit checksum of bytes (word-wise multiply-rotate; not cryptographic).
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0x243F_6A88_85A3_08D3 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(27);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01B3);
    }
    h ^ (h >> 29)
}

/// A fingerprint of an interaction log: sizes and a checksum of its content.
pub fn fingerprint(x: &because_core::Interactions) -> String {
    let mut bytes = Vec::with_capacity(x.len() * 8);
    for (k, &i) in x.items().iter().enumerate() {
        bytes.extend_from_slice(&i.to_le_bytes());
        bytes.extend_from_slice(&x.values()[k].to_le_bytes());
    }
    for &p in x.indptr() {
        bytes.extend_from_slice(&(p as u64).to_le_bytes());
    }
    format!(
        "{}x{}:{}:{:016x}",
        x.n_users(),
        x.n_items(),
        x.len(),
        checksum(&bytes)
    )
}

enum Owned {
    F32(Vec<f32>, Vec<usize>),
    U32(Vec<u32>, Vec<usize>),
    U64(Vec<u64>, Vec<usize>),
}

impl Owned {
    fn bytes(&self) -> (Dtype, Vec<u8>, Vec<usize>) {
        match self {
            Owned::F32(v, s) => (
                Dtype::F32,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                s.clone(),
            ),
            Owned::U32(v, s) => (
                Dtype::U32,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                s.clone(),
            ),
            Owned::U64(v, s) => (
                Dtype::U64,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                s.clone(),
            ),
        }
    }
}

/// The tensors a model adds to its folder, by name.
#[derive(Default)]
pub struct TensorsOut {
    tensors: Vec<(String, Owned)>,
}

impl TensorsOut {
    /// A dense `f32` tensor of `shape` (row-major).
    pub fn f32(&mut self, name: &str, data: &[f32], shape: &[usize]) {
        self.tensors
            .push((name.to_string(), Owned::F32(data.to_vec(), shape.to_vec())));
    }
    /// A `u32` tensor of `shape` (row-major), such as item indices.
    pub fn u32(&mut self, name: &str, data: &[u32], shape: &[usize]) {
        self.tensors
            .push((name.to_string(), Owned::U32(data.to_vec(), shape.to_vec())));
    }
    /// A sparse matrix as three tensors, `{prefix}.indptr`, `.indices` and `.data`.
    pub fn csr(&mut self, prefix: &str, m: &CsrMatrix) {
        self.tensors.push((
            format!("{prefix}.indptr"),
            Owned::U64(
                m.indptr().iter().map(|&p| p as u64).collect(),
                vec![m.indptr().len()],
            ),
        ));
        self.tensors.push((
            format!("{prefix}.indices"),
            Owned::U32(m.indices().to_vec(), vec![m.nnz()]),
        ));
        self.f32(&format!("{prefix}.data"), m.data(), &[m.nnz()]);
    }
}

fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let io = |e| PersistError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Saves `model` with `meta` into the folder `dir` (created if needed).
pub fn save(model: &Model, meta: &Meta, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| PersistError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let mut owned = TensorsOut::default();
    owned.csr("train", &model.train().ui);
    registry::erased_save(model, &mut owned);
    type Raw = (String, (Dtype, Vec<u8>, Vec<usize>));
    let raw: Vec<Raw> = owned
        .tensors
        .iter()
        .map(|(n, o)| (n.clone(), o.bytes()))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = raw
        .iter()
        .map(|(n, (d, b, s))| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| PersistError::Invalid {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
    let bytes = safetensors::serialize(views, None).map_err(|e| PersistError::Invalid {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let manifest = json!({
        "format": "because-model",
        "format_version": FORMAT_VERSION,
        "kind": model.kind(),
        "params": model.params(),
        "n_users": model.n_users(),
        "n_items": model.n_items(),
        "data_fingerprint": meta.data_fingerprint,
        "metrics": meta.metrics,
        "tensors": {"file": "model.safetensors", "bytes": bytes.len(), "checksum": format!("{:016x}", checksum(&bytes))},
        "user_ids": meta.user_ids,
        "item_ids": meta.item_ids,
        "item_titles": meta.item_titles,
        "events": meta.events,
    });
    write_file_atomic(&dir.join("model.safetensors"), &bytes)?;
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| PersistError::Invalid {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    write_file_atomic(&dir.join("manifest.json"), &text)
}

/// The tensors of a model folder, read by name with their shapes checked.
pub struct TensorsIn<'a> {
    st: safetensors::SafeTensors<'a>,
    path: &'a Path,
}

impl TensorsIn<'_> {
    fn invalid(&self, m: String) -> PersistError {
        PersistError::Invalid {
            path: self.path.to_path_buf(),
            message: m,
        }
    }
    fn view(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<TensorView<'_>> {
        let v = self
            .st
            .tensor(name)
            .map_err(|_| self.invalid(format!("missing tensor {name:?}")))?;
        if v.dtype() != dtype || v.shape() != shape {
            return Err(self.invalid(format!(
                "tensor {name:?} is {:?}{:?}, expected {dtype:?}{shape:?}",
                v.dtype(),
                v.shape()
            )));
        }
        Ok(v)
    }
    /// The dense `f32` tensor `name`, which must have `shape`.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let v = self.view(name, Dtype::F32, shape)?;
        Ok(v.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    /// The `u32` tensor `name`, which must have `shape`.
    pub fn u32(&self, name: &str, shape: &[usize]) -> Result<Vec<u32>> {
        let v = self.view(name, Dtype::U32, shape)?;
        Ok(v.data()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn len_of(&self, name: &str) -> Result<usize> {
        let v = self
            .st
            .tensor(name)
            .map_err(|_| self.invalid(format!("missing tensor {name:?}")))?;
        Ok(v.shape().iter().product())
    }
    /// The sparse matrix saved by [`TensorsOut::csr`], which must be `rows × cols`.
    pub fn csr(&self, prefix: &str, rows: usize, cols: usize) -> Result<CsrMatrix> {
        let indptr_v = self.view(&format!("{prefix}.indptr"), Dtype::U64, &[rows + 1])?;
        let indptr: Vec<usize> = indptr_v
            .data()
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as usize)
            .collect();
        let nnz = self.len_of(&format!("{prefix}.indices"))?;
        let indices = self.u32(&format!("{prefix}.indices"), &[nnz])?;
        let data = self.f32(&format!("{prefix}.data"), &[nnz])?;
        Ok(CsrMatrix::from_parts(rows, cols, indptr, indices, data)?)
    }
}

/// Loads a model folder, verifying its format version, checksum and shapes.
pub fn load(dir: &Path) -> Result<Loaded> {
    let mpath = dir.join("manifest.json");
    let invalid = |m: String| PersistError::Invalid {
        path: mpath.clone(),
        message: m,
    };
    let text = std::fs::read(&mpath).map_err(|e| PersistError::Io {
        path: mpath.clone(),
        source: e,
    })?;
    let m: Value = serde_json::from_slice(&text)
        .map_err(|e| invalid(format!("not valid JSON ({e}); the file may be truncated")))?;
    if m["format"] != "because-model" {
        return Err(invalid("not a because model manifest".into()));
    }
    let version = m["format_version"]
        .as_u64()
        .ok_or_else(|| invalid("no format_version".into()))?;
    if version != FORMAT_VERSION {
        return Err(invalid(format!(
            "format version {version} is not supported (this build reads version {FORMAT_VERSION})"
        )));
    }
    let kind = m["kind"]
        .as_str()
        .ok_or_else(|| invalid("no kind".into()))?;
    let nu = m["n_users"]
        .as_u64()
        .ok_or_else(|| invalid("no n_users".into()))? as usize;
    let ni = m["n_items"]
        .as_u64()
        .ok_or_else(|| invalid("no n_items".into()))? as usize;
    let entry = registry::lookup(kind).map_err(|e| invalid(e.to_string()))?;
    // Loading checks the parameters exactly as fitting does.
    let given = match &m["params"] {
        Value::Object(p) => p.clone(),
        Value::Null => serde_json::Map::new(),
        _ => return Err(invalid("params is not an object".into())),
    };
    // Folders written before parameters were typed hold them as text.
    let mut typed = serde_json::Map::new();
    for (k, v) in given {
        let v = match (&v, entry.defaults().get(&k)) {
            (Value::String(s), Some(d)) if !d.is_string() => {
                registry::coerce(&k, s, d).map_err(|e| invalid(format!("params: {e}")))?
            }
            _ => v,
        };
        typed.insert(k, v);
    }
    let given = typed;
    let params = entry
        .resolve_typed(&given)
        .map_err(|e| invalid(format!("params: {e}")))?;
    let tpath = dir.join("model.safetensors");
    let bytes = std::fs::read(&tpath).map_err(|e| PersistError::Io {
        path: tpath.clone(),
        source: e,
    })?;
    let expected_len = m["tensors"]["bytes"].as_u64().unwrap_or(0) as usize;
    let tinvalid = |msg: String| PersistError::Invalid {
        path: tpath.clone(),
        message: msg,
    };
    if bytes.len() != expected_len {
        return Err(tinvalid(format!("{} bytes, the manifest says {expected_len}: the file is truncated or from another save", bytes.len())));
    }
    let sum = format!("{:016x}", checksum(&bytes));
    if m["tensors"]["checksum"].as_str() != Some(sum.as_str()) {
        return Err(tinvalid(
            "checksum mismatch: the file is corrupted or from another save".into(),
        ));
    }
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| tinvalid(e.to_string()))?;
    let t = TensorsIn { st, path: &tpath };
    let train = Train::from_matrix(t.csr("train", nu, ni)?);
    let model = entry.load(&params, train, &t)?;
    if model.n_users() != nu || model.n_items() != ni {
        return Err(invalid(format!(
            "the tensors hold {} users and {} items, the manifest says {nu} and {ni}",
            model.n_users(),
            model.n_items()
        )));
    }
    let strings = |key: &str| -> Vec<String> {
        m[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let meta = Meta {
        user_ids: strings("user_ids"),
        item_ids: strings("item_ids"),
        data_fingerprint: m["data_fingerprint"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        metrics: m["metrics"].clone(),
        item_titles: strings("item_titles"),
        events: match &m["events"] {
            Value::Null => Vec::new(),
            v => serde_json::from_value(v.clone()).map_err(|e| invalid(format!("events: {e}")))?,
        },
    };
    if meta.user_ids.len() != nu || meta.item_ids.len() != ni {
        return Err(invalid(format!(
            "{} user IDs and {} item IDs for {nu} users and {ni} items",
            meta.user_ids.len(),
            meta.item_ids.len()
        )));
    }
    Ok(Loaded { model, meta })
}
