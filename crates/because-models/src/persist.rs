//! Model folders: `manifest.json` (format version, kind, parameters, sizes,
//! ID vocabularies, a fingerprint of the training data, metrics and the
//! tensors' checksum) and `model.safetensors`.
//!
//! Both files are written to temporary names, synced and renamed, tensors
//! first, so a folder is never half-written: a reader sees either the old
//! manifest (whose checksum then fails against new tensors, a clear error)
//! or the new pair. Loading checks the format version, the checksum and
//! every tensor's shape.
//!
//! Opening is at the speed of checking: the checksum is computed over
//! blocks of [`CHECKSUM_BLOCK`] bytes in parallel, reading the file through
//! one small buffer per thread; small tensors are then read into memory and
//! large ones handed over as views of the memory-mapped file
//! ([`TensorsIn::f32_shared`]), paged in as scores use them.

use crate::common::Train;
use crate::mapped::{Floats, Map};
use crate::{registry, Model};
use because_core::features::{ColumnKind, FeatureTable, TableColumn, Token};
use because_core::{CsrMatrix, Error as CoreError, Recommender};
use safetensors::tensor::Dtype;

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The current format version. Version 2 aligns every tensor for memory
/// mapping and checksums the tensors file by blocks ([`block_checksum`]);
/// version 1 folders (one [`checksum`] over the whole file) still load.
pub const FORMAT_VERSION: u64 = 2;

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
    fn dtype(&self) -> (Dtype, &[usize]) {
        match self {
            Owned::F32(_, s) => (Dtype::F32, s),
            Owned::U32(_, s) => (Dtype::U32, s),
            Owned::U64(_, s) => (Dtype::U64, s),
        }
    }
    /// The values' little-endian bytes: a view on little-endian machines,
    /// a copy elsewhere.
    fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
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
    write_atomic(path, |f| f.write_all(bytes))
}

/// Writes a file under a temporary name with `write`, syncs it and renames
/// it to `path`.
fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let io = |e| PersistError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    let written = write(&mut f).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// The block size of the tensors' checksum (format version 2).
pub const CHECKSUM_BLOCK: usize = 8 << 20;

/// The digest of block `index` of a tensors file: four interleaved
/// multiply-rotate lanes, so that a core hashes at memory speed.
fn block_digest(bytes: &[u8], index: u64) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = [
        0x243F_6A88_85A3_08D3 ^ index,
        0x1319_8A2E_0370_7344 ^ index,
        0xA409_3822_299F_31D0 ^ index,
        0x082E_FA98_EC4E_6C89 ^ index,
    ];
    let mut chunks = bytes.chunks_exact(32);
    for c in &mut chunks {
        for (k, h) in h.iter_mut().enumerate() {
            let w = u64::from_le_bytes(c[8 * k..8 * k + 8].try_into().unwrap_or_default());
            *h = (*h ^ w).wrapping_mul(K).rotate_left(27);
        }
    }
    let mut tail = Checksum::new(bytes.len() as u64);
    for h in h {
        tail.update(&h.to_le_bytes());
    }
    tail.update(chunks.remainder());
    tail.finish()
}

/// The checksum of a tensors file (format version 2): the [`checksum`] of
/// the digests of its blocks of [`CHECKSUM_BLOCK`] bytes, which can be
/// computed in parallel and while the file is streamed.
pub fn block_checksum(bytes: &[u8]) -> u64 {
    let mut sum = Checksum::new(bytes.len() as u64);
    for (i, b) in bytes.chunks(CHECKSUM_BLOCK).enumerate() {
        sum.update(&block_digest(b, i as u64).to_le_bytes());
    }
    sum.finish()
}

/// Streams a tensors file to disk block by block, computing its
/// [`block_checksum`] on the way.
struct BlockWriter<'f> {
    file: &'f mut std::fs::File,
    block: Vec<u8>,
    index: u64,
    sum: Checksum,
}

impl BlockWriter<'_> {
    fn put(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let take = (CHECKSUM_BLOCK - self.block.len()).min(bytes.len());
            self.block.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.block.len() == CHECKSUM_BLOCK {
                self.flush()?;
            }
        }
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.block.is_empty() {
            self.sum
                .update(&block_digest(&self.block, self.index).to_le_bytes());
            self.file.write_all(&self.block)?;
            self.block.clear();
            self.index += 1;
        }
        Ok(())
    }
}

/// The safetensors header of `tensors`, padded with spaces to a multiple
/// of 8 bytes so that every tensor starts aligned in the file (and in a
/// memory map of it), and the length of the data that follows.
fn header(tensors: &[(String, Owned)]) -> (Vec<u8>, u64) {
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

/// Saves `model` with `meta` into the folder `dir` (created if needed).
///
/// The tensors are streamed to `model.safetensors` (a standard safetensors
/// file, each tensor aligned for memory mapping) with one copy of each
/// tensor in memory at most; the manifest records the file's length and
/// its [`block_checksum`].
pub fn save(model: &Model, meta: &Meta, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| PersistError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let mut owned = TensorsOut::default();
    owned.csr("train", &model.train().ui);
    registry::erased_save(model, &mut owned);
    // Tensors in order of alignment (8-byte ones first), then by name, so
    // that every tensor's start is a multiple of its element size.
    owned.tensors.sort_by(|a, b| {
        let wide = |t: &Owned| matches!(t, Owned::U64(..));
        wide(&b.1).cmp(&wide(&a.1)).then_with(|| a.0.cmp(&b.0))
    });
    let (head, data_len) = header(&owned.tensors);
    let total = 8 + head.len() as u64 + data_len;
    let mut sum = 0u64;
    write_atomic(&dir.join("model.safetensors"), |file| {
        let mut w = BlockWriter {
            file,
            block: Vec::with_capacity(CHECKSUM_BLOCK),
            index: 0,
            sum: Checksum::new(total),
        };
        w.put(&(head.len() as u64).to_le_bytes())?;
        w.put(&head)?;
        for (_, t) in &owned.tensors {
            w.put(&t.bytes())?;
        }
        w.flush()?;
        sum = w.sum.finish();
        Ok(())
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
        "tensors": {
            "file": "model.safetensors",
            "bytes": total,
            "checksum": format!("{sum:016x}"),
            "checksum_block": CHECKSUM_BLOCK,
        },
        "user_ids": meta.user_ids,
        "item_ids": meta.item_ids,
        "item_titles": meta.item_titles,
        "events": meta.events,
    });
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| PersistError::Invalid {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    write_file_atomic(&dir.join("manifest.json"), &text)
}

/// A tensor of the file: its type, shape and place.
struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Where its bytes start in the file.
    start: u64,
    taken: bool,
}

/// Reads `buf.len()` bytes of `file` at `offset`.
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
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
    tensors: std::cell::RefCell<std::collections::HashMap<String, Tensor>>,
    path: &'a Path,
    file: &'a std::fs::File,
    map: Option<&'a std::sync::Arc<Map>>,
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
fn read_header(
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

/// The checksum of the `len` bytes of `file`, as the manifest of format
/// `version` defines it: for version 2 the [`block_checksum`], its blocks
/// read and hashed in parallel; for version 1 the [`checksum`] of the
/// whole file. The file is read into a small buffer per thread, so
/// checking a large model does not make its pages resident.
fn file_checksum(file: &std::fs::File, path: &Path, len: u64, version: u64) -> Result<u64> {
    use rayon::prelude::*;
    let io = |e: std::io::Error| PersistError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let block = CHECKSUM_BLOCK as u64;
    let n_blocks = len.div_ceil(block);
    if version == 1 {
        let mut sum = Checksum::new(len);
        let mut buf = vec![0u8; CHECKSUM_BLOCK];
        for i in 0..n_blocks {
            let n = (len - i * block).min(block) as usize;
            read_at(file, &mut buf[..n], i * block).map_err(io)?;
            sum.update(&buf[..n]);
        }
        return Ok(sum.finish());
    }
    // Contiguous runs of blocks, one buffer per run.
    let runs = (rayon::current_num_threads() as u64).clamp(1, n_blocks.max(1));
    let per_run = n_blocks.div_ceil(runs);
    let digests: Vec<Vec<u64>> = (0..runs)
        .into_par_iter()
        .map(|r| {
            let mut buf = vec![0u8; CHECKSUM_BLOCK.min(len as usize)];
            let mut out = Vec::new();
            for i in r * per_run..((r + 1) * per_run).min(n_blocks) {
                let n = (len - i * block).min(block) as usize;
                read_at(file, &mut buf[..n], i * block)?;
                out.push(block_digest(&buf[..n], i));
            }
            Ok(out)
        })
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    let mut sum = Checksum::new(len);
    for d in digests.iter().flatten() {
        sum.update(&d.to_le_bytes());
    }
    Ok(sum.finish())
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
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(invalid(format!(
            "format version {version} is not supported (this build reads versions 1 to {FORMAT_VERSION})"
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
    let tinvalid = |message: String| PersistError::Invalid {
        path: tpath.clone(),
        message,
    };
    if version >= 2 && m["tensors"]["checksum_block"].as_u64() != Some(CHECKSUM_BLOCK as u64) {
        return Err(invalid(format!(
            "tensors.checksum_block is {}, this build checks blocks of {CHECKSUM_BLOCK} bytes",
            m["tensors"]["checksum_block"]
        )));
    }
    let file = std::fs::File::open(&tpath).map_err(|e| PersistError::Io {
        path: tpath.clone(),
        source: e,
    })?;
    let len = file
        .metadata()
        .map_err(|e| PersistError::Io {
            path: tpath.clone(),
            source: e,
        })?
        .len();
    if len != expected_len {
        return Err(tinvalid(format!(
            "{len} bytes, the manifest says {expected_len}: the file is truncated or from another save"
        )));
    }
    let tensors = read_header(&file, &tpath, len)?;
    let sum = file_checksum(&file, &tpath, len, version)?;
    if m["tensors"]["checksum"].as_str() != Some(format!("{sum:016x}").as_str()) {
        return Err(tinvalid(
            "checksum mismatch: the file is corrupted or from another save".into(),
        ));
    }
    // Without a map (a file system that cannot map files), tensors are read.
    let map = Map::new(&file).ok().map(std::sync::Arc::new);
    let t = TensorsIn {
        tensors: std::cell::RefCell::new(tensors),
        path: &tpath,
        file: &file,
        map: map.as_ref(),
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

#[cfg(test)]
mod block_checksum_tests {
    use super::*;

    #[test]
    fn the_block_checksum_is_the_same_written_read_and_at_any_thread_count() {
        // Two and a half blocks of varied bytes.
        let n = CHECKSUM_BLOCK * 5 / 2 + 13;
        let bytes: Vec<u8> = (0..n as u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9) >> 7) as u8)
            .collect();
        let whole = block_checksum(&bytes);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut w = BlockWriter {
            file: &mut file,
            block: Vec::new(),
            index: 0,
            sum: Checksum::new(n as u64),
        };
        for piece in bytes.chunks(1_000_003) {
            w.put(piece).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(w.sum.finish(), whole);
        drop(file);
        let file = std::fs::File::open(&path).unwrap();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let read = pool.install(|| file_checksum(&file, &path, n as u64, 2).unwrap());
            assert_eq!(read, whole, "{threads} threads");
        }
        assert_eq!(
            file_checksum(&file, &path, n as u64, 1).unwrap(),
            checksum(&bytes)
        );
        // One changed bit in any block changes it.
        for at in [0, CHECKSUM_BLOCK + 5, n - 1] {
            let mut b = bytes.clone();
            b[at] ^= 4;
            assert_ne!(block_checksum(&b), whole, "byte {at}");
        }
    }
}
