//! The tensors of a model folder: what each model kind writes
//! ([`TensorsOut`]) and reads back ([`TensorsIn`]) by name, and the layout
//! of the safetensors file that holds them. `persist` writes and checks
//! the file around them; the registry hands them to each kind.

use crate::mapped::{Floats, Map};
use because_core::features::{ColumnKind, FeatureTable, TableColumn, Token};
use because_core::{CsrMatrix, Error as CoreError};
use safetensors::tensor::Dtype;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

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

pub(crate) type Result<T> = std::result::Result<T, PersistError>;

pub(crate) enum Owned {
    F32(Vec<f32>, Vec<usize>),
    U32(Vec<u32>, Vec<usize>),
    U64(Vec<u64>, Vec<usize>),
}

impl Owned {
    pub(crate) fn dtype(&self) -> (Dtype, &[usize]) {
        match self {
            Owned::F32(_, s) => (Dtype::F32, s),
            Owned::U32(_, s) => (Dtype::U32, s),
            Owned::U64(_, s) => (Dtype::U64, s),
        }
    }
    /// The values' little-endian bytes: a view on little-endian machines,
    /// a copy elsewhere.
    pub(crate) fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        use std::borrow::Cow;
        if cfg!(target_endian = "little") {
            return Cow::Borrowed(match self {
                Owned::F32(v, _) => bytemuck::cast_slice(v),
                Owned::U32(v, _) => bytemuck::cast_slice(v),
                Owned::U64(v, _) => bytemuck::cast_slice(v),
            });
        }
        Cow::Owned(match self {
            Owned::F32(v, _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Owned::U32(v, _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Owned::U64(v, _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        })
    }
}

/// The tensors a model adds to its folder, by name.
#[derive(Default)]
pub struct TensorsOut {
    pub(crate) tensors: Vec<(String, Owned)>,
}

impl TensorsOut {
    /// A dense `f32` tensor of `shape` (row-major).
    pub fn f32(&mut self, name: &str, data: &[f32], shape: &[usize]) {
        self.tensors
            .push((name.to_string(), Owned::F32(data.to_vec(), shape.to_vec())));
    }
    /// A dense `f32` tensor of `shape` (row-major), taken without a copy.
    pub(crate) fn f32_vec(&mut self, name: &str, data: Vec<f32>, shape: &[usize]) {
        self.tensors
            .push((name.to_string(), Owned::F32(data, shape.to_vec())));
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
    pub fn part(&mut self, prefix: &str, save: impl FnOnce(&mut TensorsOut)) {
        let mut sub = TensorsOut::default();
        save(&mut sub);
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

/// The safetensors header of `tensors`, padded with spaces to a multiple
/// of 8 bytes so that every tensor starts aligned in the file (and in a
/// memory map of it), and the length of the data that follows.
pub(crate) fn header(tensors: &[(String, Owned)]) -> (Vec<u8>, u64) {
    let mut map = serde_json::Map::new();
    let mut at = 0u64;
    for (name, t) in tensors {
        let (dtype, shape) = t.dtype();
        let len = t.bytes().len() as u64;
        let dtype = match dtype {
            Dtype::F32 => "F32",
            Dtype::U32 => "U32",
            _ => "U64",
        };
        map.insert(
            name.clone(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [at, at + len]}),
        );
        at += len;
    }
    let mut text = serde_json::to_vec(&Value::Object(map)).unwrap_or_default();
    let pad = (8 - text.len() % 8) % 8;
    text.extend(std::iter::repeat_n(b' ', pad));
    (text, at)
}

/// A tensor of the file: its type, shape and place.
pub(crate) struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Where its bytes start in the file.
    start: u64,
    taken: bool,
}

/// Reads `buf.len()` bytes of `file` at `offset`.
pub(crate) fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file.try_clone()?;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }
}

/// The tensors of a model folder, read by name with their shapes checked.
/// The file's checksum was verified when it was opened; each tensor is then
/// read once, straight into its typed buffer, or (with
/// [`TensorsIn::f32_shared`]) handed over as a view of the memory-mapped
/// file, whose pages are read when first used.
pub struct TensorsIn<'a> {
    pub(crate) tensors: std::cell::RefCell<std::collections::HashMap<String, Tensor>>,
    pub(crate) path: &'a Path,
    pub(crate) file: &'a std::fs::File,
    pub(crate) map: Option<&'a std::sync::Arc<Map>>,
}

impl<'a> TensorsIn<'a> {
    fn invalid(&self, m: String) -> PersistError {
        PersistError::Invalid {
            path: self.path.to_path_buf(),
            message: m,
        }
    }
    /// The place and element count of tensor `name`, which must be of
    /// `dtype` and `shape` and not yet taken.
    fn take(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<(u64, usize)> {
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
        if t.taken {
            return Err(self.invalid(format!("tensor {name:?} was read twice")));
        }
        t.taken = true;
        Ok((t.start, shape.iter().product()))
    }
    /// Reads `count` elements at `start` into a new buffer.
    fn read<T: bytemuck::Pod>(&self, start: u64, count: usize) -> Result<Vec<T>> {
        let mut v = vec![T::zeroed(); count];
        read_at(self.file, bytemuck::cast_slice_mut(&mut v), start).map_err(|e| {
            PersistError::Io {
                path: self.path.to_path_buf(),
                source: e,
            }
        })?;
        Ok(v)
    }
    /// Reads `count` little-endian `f32` values at `start`.
    fn read_f32(&self, start: u64, count: usize) -> Result<Vec<f32>> {
        let mut v: Vec<f32> = self.read(start, count)?;
        if cfg!(target_endian = "big") {
            v.iter_mut()
                .for_each(|x| *x = f32::from_bits(u32::from_le(x.to_bits())));
        }
        Ok(v)
    }
    /// The dense `f32` tensor `name`, which must have `shape`.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (start, count) = self.take(name, Dtype::F32, shape)?;
        self.read_f32(start, count)
    }
    /// The dense `f32` tensor `name`, which must have `shape`, as a view of
    /// the memory-mapped file (read from disk as it is used) where the
    /// file could be mapped, else read into memory.
    pub fn f32_shared(&self, name: &str, shape: &[usize]) -> Result<Floats> {
        let (start, count) = self.take(name, Dtype::F32, shape)?;
        if let Some(view) = self
            .map
            .and_then(|m| Floats::mapped(m, start as usize, count))
        {
            return Ok(view);
        }
        Ok(self.read_f32(start, count)?.into())
    }
    /// The `u32` tensor `name`, which must have `shape`.
    pub fn u32(&self, name: &str, shape: &[usize]) -> Result<Vec<u32>> {
        let (start, count) = self.take(name, Dtype::U32, shape)?;
        let mut v: Vec<u32> = self.read(start, count)?;
        if cfg!(target_endian = "big") {
            v.iter_mut().for_each(|x| *x = u32::from_le(*x));
        }
        Ok(v)
    }
    fn u64(&self, name: &str, shape: &[usize]) -> Result<Vec<u64>> {
        let (start, count) = self.take(name, Dtype::U64, shape)?;
        let mut v: Vec<u64> = self.read(start, count)?;
        if cfg!(target_endian = "big") {
            v.iter_mut().for_each(|x| *x = u64::from_le(*x));
        }
        Ok(v)
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
            file: self.file,
            map: self.map,
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

/// Reads the header of the safetensors file `file` of `len` bytes: each
/// tensor's type, shape and place, checked to lie within the file.
pub(crate) fn read_header(
    file: &std::fs::File,
    path: &Path,
    len: u64,
) -> Result<std::collections::HashMap<String, Tensor>> {
    let invalid = |m: String| PersistError::Invalid {
        path: path.to_path_buf(),
        message: m,
    };
    let truncated = || invalid("the file ends early: it is truncated".into());
    let mut head = [0u8; 8];
    read_at(file, &mut head, 0).map_err(|_| truncated())?;
    let header_len = u64::from_le_bytes(head);
    if header_len > len.saturating_sub(8) || header_len > 100 << 20 {
        return Err(invalid(format!(
            "a header of {header_len} bytes does not fit the file"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    read_at(file, &mut header, 8).map_err(|_| truncated())?;
    let data_start = 8 + header_len;
    let data_len = len - data_start;
    let parsed: serde_json::Map<String, Value> = serde_json::from_slice(&header)
        .map_err(|e| invalid(format!("the tensor header is not valid JSON ({e})")))?;
    // (start, end, name), to check that no two overlap.
    let mut spans = Vec::new();
    let mut tensors = std::collections::HashMap::new();
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
        spans.push((start, end, name.clone()));
        tensors.insert(
            name,
            Tensor {
                dtype,
                shape,
                start: data_start + start,
                taken: false,
            },
        );
    }
    spans.sort();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(invalid(format!("tensor {:?} overlaps another", w[1].2)));
        }
    }
    Ok(tensors)
}
