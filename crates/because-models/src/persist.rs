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
use because_core::features::{ColumnKind, FeatureTable, TableColumn, Token};
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
    let mut c = Checksum::new(bytes.len() as u64);
    c.update(bytes);
    c.finish()
}

/// [`checksum`] computed piece by piece, as a file is read: the same value
/// whatever the pieces.
pub struct Checksum {
    h: u64,
    pending: [u8; 8],
    n_pending: usize,
}

impl Checksum {
    /// A checksum of `len` bytes still to come.
    pub fn new(len: u64) -> Checksum {
        Checksum {
            h: 0x243F_6A88_85A3_08D3 ^ len,
            pending: [0; 8],
            n_pending: 0,
        }
    }

    fn word(&mut self, w: u64) {
        self.h = (self.h ^ w)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(27);
    }

    /// The next bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        if self.n_pending > 0 {
            let take = (8 - self.n_pending).min(bytes.len());
            self.pending[self.n_pending..self.n_pending + take].copy_from_slice(&bytes[..take]);
            self.n_pending += take;
            bytes = &bytes[take..];
            if self.n_pending < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.pending));
            self.n_pending = 0;
        }
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.n_pending = rest.len();
    }

    /// The checksum of everything given.
    pub fn finish(self) -> u64 {
        let mut h = self.h;
        for &b in &self.pending[..self.n_pending] {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01B3);
        }
        h ^ (h >> 29)
    }
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
    /// The tensors of `model`, a part of a composite model, each named
    /// `{prefix}.{name}` (the composite's training matrix stands for the
    /// part's).
    pub fn part(&mut self, prefix: &str, model: &crate::Model) {
        let mut sub = TensorsOut::default();
        model.inner.save(&mut sub);
        for (name, t) in sub.tensors {
            self.tensors.push((format!("{prefix}.{name}"), t));
        }
    }
    /// Strings (names, levels) as one `u32` tensor of Unicode scalar
    /// values, each string ended by a 0 (a NUL inside a string becomes a
    /// space).
    pub fn strings(&mut self, name: &str, strings: &[String]) {
        let mut data: Vec<u32> = Vec::new();
        for s in strings {
            data.extend(s.chars().map(|c| if c == '\0' { 32 } else { c as u32 }));
            data.push(0);
        }
        let n = data.len();
        self.u32(name, &data, &[n]);
    }
    /// A feature table as `{prefix}.rows` (a sparse matrix), the tokens'
    /// columns and levels, and the columns' names, kinds and scales.
    pub fn features(&mut self, prefix: &str, t: &FeatureTable) {
        self.csr(&format!("{prefix}.rows"), &t.rows);
        let columns: Vec<u32> = t.tokens.iter().map(|k| k.column).collect();
        self.u32(
            &format!("{prefix}.token_column"),
            &columns,
            &[columns.len()],
        );
        let levels: Vec<String> = t.tokens.iter().map(|k| k.level.clone()).collect();
        self.strings(&format!("{prefix}.token_level"), &levels);
        let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        self.strings(&format!("{prefix}.column_name"), &names);
        let stats: Vec<f32> = t
            .columns
            .iter()
            .flat_map(|c| {
                let kind = match c.kind {
                    ColumnKind::Categorical => 0.0,
                    ColumnKind::MultiCategorical => 1.0,
                    ColumnKind::Numeric => 2.0,
                };
                [kind, c.mean, c.scale, c.edges.len() as f32]
            })
            .collect();
        self.f32(
            &format!("{prefix}.column_stats"),
            &stats,
            &[t.columns.len(), 4],
        );
        let edges: Vec<f32> = t
            .columns
            .iter()
            .flat_map(|c| c.edges.iter().copied())
            .collect();
        self.f32(&format!("{prefix}.column_edges"), &edges, &[edges.len()]);
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

/// One tensor's data, read straight into its typed buffer.
enum Data {
    F32(Vec<f32>),
    U32(Vec<u32>),
    U64(Vec<u64>),
}

struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Option<Data>,
}

/// The tensors of a model folder, read by name with their shapes checked.
/// Each is read once from disk into its own typed buffer (no second copy),
/// and handed over when asked for.
pub struct TensorsIn<'a> {
    tensors: std::cell::RefCell<std::collections::HashMap<String, Tensor>>,
    path: &'a Path,
}

impl<'a> TensorsIn<'a> {
    fn invalid(&self, m: String) -> PersistError {
        PersistError::Invalid {
            path: self.path.to_path_buf(),
            message: m,
        }
    }
    fn take(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<Data> {
        let mut tensors = self.tensors.borrow_mut();
        let t = tensors
            .get_mut(name)
            .ok_or_else(|| self.invalid(format!("missing tensor {name:?}")))?;
        if t.dtype != dtype || t.shape != shape {
            return Err(self.invalid(format!(
                "tensor {name:?} is {:?}{:?}, expected {dtype:?}{shape:?}",
                t.dtype, t.shape
            )));
        }
        t.data
            .take()
            .ok_or_else(|| self.invalid(format!("tensor {name:?} was read twice")))
    }
    /// The dense `f32` tensor `name`, which must have `shape`.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        match self.take(name, Dtype::F32, shape)? {
            Data::F32(v) => Ok(v),
            _ => Err(self.invalid(format!("tensor {name:?} is not f32"))),
        }
    }
    /// The `u32` tensor `name`, which must have `shape`.
    pub fn u32(&self, name: &str, shape: &[usize]) -> Result<Vec<u32>> {
        match self.take(name, Dtype::U32, shape)? {
            Data::U32(v) => Ok(v),
            _ => Err(self.invalid(format!("tensor {name:?} is not u32"))),
        }
    }
    fn u64(&self, name: &str, shape: &[usize]) -> Result<Vec<u64>> {
        match self.take(name, Dtype::U64, shape)? {
            Data::U64(v) => Ok(v),
            _ => Err(self.invalid(format!("tensor {name:?} is not u64"))),
        }
    }
    fn len_of(&self, name: &str) -> Result<usize> {
        let tensors = self.tensors.borrow();
        let t = tensors
            .get(name)
            .ok_or_else(|| self.invalid(format!("missing tensor {name:?}")))?;
        Ok(t.shape.iter().product())
    }
    /// The sparse matrix saved by [`TensorsOut::csr`], which must be `rows × cols`.
    pub fn csr(&self, prefix: &str, rows: usize, cols: usize) -> Result<CsrMatrix> {
        let indptr: Vec<usize> = self
            .u64(&format!("{prefix}.indptr"), &[rows + 1])?
            .into_iter()
            .map(|v| v as usize)
            .collect();
        let nnz = self.len_of(&format!("{prefix}.indices"))?;
        let indices = self.u32(&format!("{prefix}.indices"), &[nnz])?;
        let data = self.f32(&format!("{prefix}.data"), &[nnz])?;
        Ok(CsrMatrix::from_parts(rows, cols, indptr, indices, data)?)
    }
    /// The tensors saved by [`TensorsOut::part`] under `prefix`, moved
    /// into their own set with the prefix taken off.
    pub fn part(&self, prefix: &str) -> TensorsIn<'a> {
        let p = format!("{prefix}.");
        let mut all = self.tensors.borrow_mut();
        let keys: Vec<String> = all.keys().filter(|k| k.starts_with(&p)).cloned().collect();
        let mut out = std::collections::HashMap::new();
        for k in keys {
            if let Some(t) = all.remove(&k) {
                out.insert(k[p.len()..].to_string(), t);
            }
        }
        TensorsIn {
            tensors: std::cell::RefCell::new(out),
            path: self.path,
        }
    }
    /// The `count` strings saved by [`TensorsOut::strings`].
    pub fn strings(&self, name: &str, count: usize) -> Result<Vec<String>> {
        let n = self.len_of(name)?;
        let data = self.u32(name, &[n])?;
        let mut out = Vec::with_capacity(count);
        let mut cur = String::new();
        for c in data {
            if c == 0 {
                out.push(std::mem::take(&mut cur));
            } else {
                cur.push(char::from_u32(c).ok_or_else(|| {
                    self.invalid(format!("tensor {name:?} holds {c}, not a character"))
                })?);
            }
        }
        if out.len() != count || !cur.is_empty() {
            return Err(self.invalid(format!(
                "tensor {name:?} holds {} strings, expected {count}",
                out.len()
            )));
        }
        Ok(out)
    }
    /// The feature table saved by [`TensorsOut::features`], which must have
    /// `rows` entities.
    pub fn features(&self, prefix: &str, rows: usize) -> Result<FeatureTable> {
        let n_tokens = self.len_of(&format!("{prefix}.token_column"))?;
        let token_column = self.u32(&format!("{prefix}.token_column"), &[n_tokens])?;
        let levels = self.strings(&format!("{prefix}.token_level"), n_tokens)?;
        let n_columns = self.len_of(&format!("{prefix}.column_stats"))? / 4;
        let names = self.strings(&format!("{prefix}.column_name"), n_columns)?;
        let stats = self.f32(&format!("{prefix}.column_stats"), &[n_columns, 4])?;
        let n_edges = self.len_of(&format!("{prefix}.column_edges"))?;
        let all_edges = self.f32(&format!("{prefix}.column_edges"), &[n_edges])?;
        let mut edges = all_edges.as_slice();
        let mut columns = Vec::with_capacity(n_columns);
        for (c, name) in names.into_iter().enumerate() {
            let k = stats[4 * c + 3] as usize;
            if k > edges.len() {
                return Err(self.invalid(format!("feature column {name:?} lacks its cut points")));
            }
            let (mine, rest) = edges.split_at(k);
            edges = rest;
            let kind = match stats[4 * c] as u32 {
                0 => ColumnKind::Categorical,
                1 => ColumnKind::MultiCategorical,
                2 => ColumnKind::Numeric,
                k => return Err(self.invalid(format!("feature column {name:?} has kind {k}"))),
            };
            columns.push(TableColumn {
                name,
                kind,
                mean: stats[4 * c + 1],
                scale: stats[4 * c + 2],
                edges: mine.to_vec(),
            });
        }
        if let Some(&c) = token_column.iter().find(|&&c| c as usize >= n_columns) {
            return Err(self.invalid(format!("a token of {prefix:?} names column {c}")));
        }
        let tokens = token_column
            .into_iter()
            .zip(levels)
            .map(|(column, level)| Token { column, level })
            .collect();
        let rows = self.csr(&format!("{prefix}.rows"), rows, n_tokens)?;
        Ok(FeatureTable {
            columns,
            tokens,
            rows,
        })
    }
}

/// Reads a safetensors file of `expected_len` bytes: its header, then each
/// tensor straight into a typed buffer, checksumming every byte on the way.
/// Returns the tensors and the checksum.
fn read_tensors(
    path: &Path,
    expected_len: u64,
) -> Result<(std::collections::HashMap<String, Tensor>, u64)> {
    use std::io::Read;
    let io = |e: std::io::Error| PersistError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let invalid = |m: String| PersistError::Invalid {
        path: path.to_path_buf(),
        message: m,
    };
    let truncated = || invalid("the file ends early: it is truncated".into());
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len != expected_len {
        return Err(invalid(format!(
            "{len} bytes, the manifest says {expected_len}: the file is truncated or from another save"
        )));
    }
    let mut sum = Checksum::new(len);
    let mut head = [0u8; 8];
    file.read_exact(&mut head).map_err(|_| truncated())?;
    sum.update(&head);
    let header_len = u64::from_le_bytes(head);
    if header_len > len.saturating_sub(8) || header_len > 100 << 20 {
        return Err(invalid(format!(
            "a header of {header_len} bytes does not fit the file"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(|_| truncated())?;
    sum.update(&header);
    let data_len = len - 8 - header_len;
    let parsed: serde_json::Map<String, Value> = serde_json::from_slice(&header)
        .map_err(|e| invalid(format!("the tensor header is not valid JSON ({e})")))?;
    // (name, dtype, shape, start, end), in file order.
    let mut entries = Vec::new();
    for (name, v) in parsed {
        if name == "__metadata__" {
            continue;
        }
        let dtype = match v["dtype"].as_str() {
            Some("F32") => Dtype::F32,
            Some("U32") => Dtype::U32,
            Some("U64") => Dtype::U64,
            other => {
                return Err(invalid(format!(
                    "tensor {name:?} has an unsupported dtype {other:?}"
                )))
            }
        };
        let shape: Vec<usize> = v["shape"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| d.as_u64().unwrap_or(u64::MAX) as usize)
                    .collect()
            })
            .ok_or_else(|| invalid(format!("tensor {name:?} has no shape")))?;
        let offsets = v["data_offsets"].as_array();
        let (start, end) = match offsets.map(|o| {
            (
                o.first().and_then(Value::as_u64),
                o.get(1).and_then(Value::as_u64),
            )
        }) {
            Some((Some(a), Some(b))) if a <= b && b <= data_len => (a, b),
            _ => return Err(invalid(format!("tensor {name:?} has bad data offsets"))),
        };
        let width = if dtype == Dtype::U64 { 8 } else { 4 };
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if count.and_then(|c| c.checked_mul(width)) != Some((end - start) as usize) {
            return Err(invalid(format!(
                "tensor {name:?}: its shape does not match its bytes"
            )));
        }
        entries.push((name, dtype, shape, start, end));
    }
    entries.sort_by_key(|e| e.3);
    let mut at = 0u64;
    let mut tensors = std::collections::HashMap::new();
    let mut skip = Vec::new();
    for (name, dtype, shape, start, end) in entries {
        if start < at {
            return Err(invalid(format!("tensor {name:?} overlaps another")));
        }
        if start > at {
            // Bytes between tensors still count toward the checksum.
            skip.resize((start - at) as usize, 0);
            file.read_exact(&mut skip).map_err(|_| truncated())?;
            sum.update(&skip);
        }
        let count = ((end - start) / if dtype == Dtype::U64 { 8 } else { 4 }) as usize;
        let data = match dtype {
            Dtype::F32 => {
                let mut v = vec![0f32; count];
                file.read_exact(bytemuck::cast_slice_mut(&mut v))
                    .map_err(|_| truncated())?;
                sum.update(bytemuck::cast_slice(&v));
                if cfg!(target_endian = "big") {
                    v.iter_mut()
                        .for_each(|x| *x = f32::from_bits(u32::from_le(x.to_bits())));
                }
                Data::F32(v)
            }
            Dtype::U32 => {
                let mut v = vec![0u32; count];
                file.read_exact(bytemuck::cast_slice_mut(&mut v))
                    .map_err(|_| truncated())?;
                sum.update(bytemuck::cast_slice(&v));
                if cfg!(target_endian = "big") {
                    v.iter_mut().for_each(|x| *x = u32::from_le(*x));
                }
                Data::U32(v)
            }
            _ => {
                let mut v = vec![0u64; count];
                file.read_exact(bytemuck::cast_slice_mut(&mut v))
                    .map_err(|_| truncated())?;
                sum.update(bytemuck::cast_slice(&v));
                if cfg!(target_endian = "big") {
                    v.iter_mut().for_each(|x| *x = u64::from_le(*x));
                }
                Data::U64(v)
            }
        };
        tensors.insert(
            name,
            Tensor {
                dtype,
                shape,
                data: Some(data),
            },
        );
        at = end;
    }
    if at < data_len {
        skip.resize((data_len - at) as usize, 0);
        file.read_exact(&mut skip).map_err(|_| truncated())?;
        sum.update(&skip);
    }
    Ok((tensors, sum.finish()))
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
    let expected_len = m["tensors"]["bytes"].as_u64().unwrap_or(0);
    let (tensors, sum) = read_tensors(&tpath, expected_len)?;
    if m["tensors"]["checksum"].as_str() != Some(format!("{sum:016x}").as_str()) {
        return Err(PersistError::Invalid {
            path: tpath.clone(),
            message: "checksum mismatch: the file is corrupted or from another save".into(),
        });
    }
    let t = TensorsIn {
        tensors: std::cell::RefCell::new(tensors),
        path: &tpath,
    };
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

#[cfg(test)]
mod checksum_tests {
    use super::*;

    #[test]
    fn the_checksum_is_the_same_however_the_bytes_arrive() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 7, 8, 9, 63, 1000] {
            let whole = checksum(&bytes[..len]);
            for piece in [1, 3, 8, 13, 1000] {
                let mut c = Checksum::new(len as u64);
                for p in bytes[..len].chunks(piece) {
                    c.update(p);
                }
                assert_eq!(c.finish(), whole, "len {len}, pieces of {piece}");
            }
        }
    }
}
