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
use crate::mapped::Map;
use crate::tensors::{header, read_at, read_header, Owned, Result};
use crate::{registry, Model};
use because_core::Recommender;

use serde_json::Value;
use std::io::Write;
use std::path::Path;

pub use crate::tensors::{PersistError, TensorsIn, TensorsOut};

/// The current format version. Version 2 aligns every tensor for memory
/// mapping and checksums the tensors file by blocks ([`block_checksum`]);
/// version 1 folders (one [`checksum`] over the whole file) still load.
pub const FORMAT_VERSION: u64 = 2;

/// How `train` chose an iterative model's epochs: it held out the latest
/// interaction of a sample of users, trained on the rest with a check of
/// NDCG@10 on them every few epochs until the checks stopped improving,
/// and refitted on every interaction for the best check's epochs.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct EarlyStopped {
    /// The epochs of the best check: the saved model's epochs (absent when
    /// no check came, and the spec's epochs were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// Epochs run before stopping.
    pub epochs_run: usize,
    /// Users whose latest interaction was held out.
    pub validation_users: usize,
    /// Each check.
    pub checks: Vec<Check>,
    /// Seconds the search took (before the refit).
    pub search_seconds: f64,
}

/// One early-stopping check.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Check {
    /// After this many epochs.
    pub epoch: usize,
    /// NDCG@10 on the held-out interactions.
    pub ndcg: f64,
}

/// What a model folder records about how its model was made and how it
/// scored. Every field is optional: `train` records the fit, `tune`, `run`
/// and the demo also how the configuration was chosen and tested.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Metrics {
    /// Seconds the fit of the saved model took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_seconds: Option<f64>,
    /// The interaction values it was trained on, and how they were chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<String>,
    /// The training loss per epoch, for iterative models with a loss
    /// (`null` where it was not a number).
    #[serde(
        default,
        alias = "loss_per_epoch",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "because_core::stats::f64s_or_nan"
    )]
    pub losses: Vec<f64>,
    /// How `train` chose the epochs by early stopping, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopped>,
    /// How the configuration was chosen (`validation ndcg@10`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_by: Option<String>,
    /// The chosen configuration's validation score on that metric.
    #[serde(
        default,
        alias = "validation_ndcg@10",
        skip_serializing_if = "Option::is_none"
    )]
    pub validation: Option<f64>,
    /// The chosen configuration's test metrics, from a fit that did not see
    /// the test data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<because_core::stats::EvaluationSummary>,
    /// How the test metrics were measured.
    #[serde(default, alias = "test_model", skip_serializing_if = "Option::is_none")]
    pub test_protocol: Option<String>,
    /// What the saved model was trained on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_on: Option<String>,
    /// The deletion test of each explanation method the model offers,
    /// measured on a sample of its users when it was saved, its default
    /// method first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explanation_fidelity: Vec<MethodRatio>,
}

/// One explanation method's deletion test: how many times more rank a
/// recommendation loses when the history items the method names are
/// removed than when as many random ones are.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct MethodRatio {
    /// The method, by its JSON name (`occlusion`, `attention`...).
    pub method: String,
    /// Named over random; `None` when random removals cost nothing.
    pub named_over_random: Option<f64>,
    /// Recommendations measured.
    pub recommendations: usize,
}

/// `manifest.json`, the description of a model folder.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Always `because-model`.
    pub format: String,
    /// The version of the folder's layout ([`FORMAT_VERSION`] when written).
    pub format_version: u64,
    /// The model kind, as the registry names it.
    pub kind: String,
    /// The parameters (typed; folders of version 1 may hold them as text).
    #[serde(default)]
    pub params: Option<serde_json::Map<String, Value>>,
    /// Users known.
    pub n_users: usize,
    /// Items known.
    pub n_items: usize,
    /// A fingerprint of the training interactions.
    #[serde(default)]
    pub data_fingerprint: String,
    /// How the model was made and how it scored (folders from before
    /// metrics were typed keep what still has a field).
    #[serde(default)]
    pub metrics: Metrics,
    /// The tensors file.
    pub tensors: TensorsFile,
    /// External user IDs in index order.
    #[serde(default)]
    pub user_ids: Vec<String>,
    /// External item IDs in index order.
    #[serde(default)]
    pub item_ids: Vec<String>,
    /// Item titles in index order (empty when unknown).
    #[serde(default)]
    pub item_titles: Vec<String>,
    /// The event types of the training log, with their weights.
    #[serde(default)]
    pub events: Vec<EventType>,
}

/// The manifest's record of `model.safetensors`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TensorsFile {
    /// Its name in the folder.
    pub file: String,
    /// Its length in bytes.
    #[serde(default)]
    pub bytes: u64,
    /// Its checksum, 16 hexadecimal digits.
    #[serde(default)]
    pub checksum: String,
    /// The block size of the checksum (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_block: Option<u64>,
}

/// The manifest's `format`.
const FORMAT: &str = "because-model";

/// What is saved beside the tensors.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    /// External user IDs in index order.
    pub user_ids: Vec<String>,
    /// External item IDs in index order.
    pub item_ids: Vec<String>,
    /// A fingerprint of the training data.
    pub data_fingerprint: String,
    /// How the model was made and how it scored.
    pub metrics: Metrics,
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

pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
    // A new model makes any index of the folder's old one stale: remove it
    // first, so that the folder never pairs this model with that index.
    remove_index(dir)?;
    let mut owned = TensorsOut::default();
    owned.csr("train", &model.train().ui);
    registry::erased_save(model, &mut owned);
    let tensors = write_tensors(&dir.join("model.safetensors"), owned)?;
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        kind: model.kind().to_string(),
        params: match model.params() {
            Value::Object(p) => Some(p),
            _ => None,
        },
        n_users: model.n_users(),
        n_items: model.n_items(),
        data_fingerprint: meta.data_fingerprint.clone(),
        metrics: meta.metrics.clone(),
        tensors,
        user_ids: meta.user_ids.clone(),
        item_ids: meta.item_ids.clone(),
        item_titles: meta.item_titles.clone(),
        events: meta.events.clone(),
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| PersistError::Invalid {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    write_file_atomic(&dir.join("manifest.json"), &text)
}

/// The approximate-retrieval index's files in a model folder (see
/// `crate::index`): its record and its tensors.
pub const INDEX_FILES: [&str; 2] = ["index.json", "index.safetensors"];

/// Removes the index files of `dir`, if any.
pub fn remove_index(dir: &Path) -> Result<()> {
    for name in INDEX_FILES {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(PersistError::Io { path, source: e }),
        }
    }
    Ok(())
}

/// Writes `owned` to `path` (atomically, block by block, each tensor
/// aligned) and returns the file's record: name, length and checksum.
pub(crate) fn write_tensors(path: &Path, mut owned: TensorsOut) -> Result<TensorsFile> {
    // Tensors in order of alignment (8-byte ones first), then by name, so
    // that every tensor's start is a multiple of its element size.
    owned.tensors.sort_by(|a, b| {
        let wide = |t: &Owned| matches!(t, Owned::U64(..));
        wide(&b.1).cmp(&wide(&a.1)).then_with(|| a.0.cmp(&b.0))
    });
    let (head, data_len) = header(&owned.tensors);
    let total = 8 + head.len() as u64 + data_len;
    let mut sum = 0u64;
    write_atomic(path, |file| {
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
    Ok(TensorsFile {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes: total,
        checksum: format!("{sum:016x}"),
        checksum_block: Some(CHECKSUM_BLOCK as u64),
    })
}

/// A tensors file opened and checked against its record.
pub(crate) struct Opened {
    pub(crate) file: std::fs::File,
    pub(crate) tensors: std::collections::HashMap<String, crate::tensors::Tensor>,
    pub(crate) map: Option<std::sync::Arc<Map>>,
}

/// Opens the tensors file `path`, checking its length and checksum
/// against `record` (of format `version`), and maps it where it can.
pub(crate) fn open_tensors(path: &Path, record: &TensorsFile, version: u64) -> Result<Opened> {
    let tinvalid = |message: String| PersistError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let io = |e: std::io::Error| PersistError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len != record.bytes {
        return Err(tinvalid(format!(
            "{len} bytes, the manifest says {}: the file is truncated or from another save",
            record.bytes
        )));
    }
    let tensors = read_header(&file, path, len)?;
    let sum = file_checksum(&file, path, len, version)?;
    if record.checksum != format!("{sum:016x}") {
        return Err(tinvalid(
            "checksum mismatch: the file is corrupted or from another save".into(),
        ));
    }
    // Without a map (a file system that cannot map files), tensors are read.
    let map = Map::new(&file).ok().map(std::sync::Arc::new);
    Ok(Opened { file, tensors, map })
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
    // The format and its version first, so that a newer folder is named
    // as such rather than failing on a field this build does not know.
    let head: Value = serde_json::from_slice(&text)
        .map_err(|e| invalid(format!("not valid JSON ({e}); the file may be truncated")))?;
    if head["format"] != FORMAT {
        return Err(invalid("not a because model manifest".into()));
    }
    let version = head["format_version"]
        .as_u64()
        .ok_or_else(|| invalid("no format_version".into()))?;
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(invalid(format!(
            "format version {version} is not supported (this build reads versions 1 to {FORMAT_VERSION})"
        )));
    }
    let m: Manifest = serde_json::from_value(head).map_err(|e| invalid(e.to_string()))?;
    let (nu, ni) = (m.n_users, m.n_items);
    let entry = registry::lookup(&m.kind).map_err(|e| invalid(e.to_string()))?;
    // Loading checks the parameters exactly as fitting does. Folders
    // written before parameters were typed hold them as text.
    let mut typed = serde_json::Map::new();
    for (k, v) in m.params.clone().unwrap_or_default() {
        let v = match (&v, entry.defaults().get(&k)) {
            (Value::String(s), Some(d)) if !d.is_string() => {
                registry::coerce(&k, s, d).map_err(|e| invalid(format!("params: {e}")))?
            }
            _ => v,
        };
        typed.insert(k, v);
    }
    let params = entry
        .resolve_typed(&typed)
        .map_err(|e| invalid(format!("params: {e}")))?;
    let tpath = dir.join("model.safetensors");
    if version >= 2 && m.tensors.checksum_block != Some(CHECKSUM_BLOCK as u64) {
        return Err(invalid(format!(
            "tensors.checksum_block is {:?}, this build checks blocks of {CHECKSUM_BLOCK} bytes",
            m.tensors.checksum_block
        )));
    }
    let opened = open_tensors(&tpath, &m.tensors, version)?;
    let t = TensorsIn {
        tensors: std::cell::RefCell::new(opened.tensors),
        path: &tpath,
        file: &opened.file,
        map: opened.map.as_ref(),
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
    let meta = Meta {
        user_ids: m.user_ids,
        item_ids: m.item_ids,
        data_fingerprint: m.data_fingerprint,
        metrics: m.metrics,
        item_titles: m.item_titles,
        events: m.events,
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
mod metrics_tests {
    use super::*;

    #[test]
    fn metrics_of_every_earlier_shape_read() {
        // `because train` before metrics were typed.
        let m: Metrics = serde_json::from_str(
            r#"{"fit_seconds": 1.5, "values": "binary", "loss_per_epoch": [2.0, null, 1.0]}"#,
        )
        .unwrap();
        assert_eq!(m.fit_seconds, Some(1.5));
        assert_eq!(m.losses.len(), 3);
        assert!(m.losses[1].is_nan());
        // `tune` and the demo before: their keys under today's names, the
        // rest (a `metric` now said by `selected_by`) left aside.
        let t: Metrics = serde_json::from_str(
            r#"{"metric": "ndcg@10", "selected_by": "validation ndcg@10", "validation": 0.3,
                "test_model": "refit", "trained_on": "all"}"#,
        )
        .unwrap();
        assert_eq!(t.test_protocol.as_deref(), Some("refit"));
        assert_eq!(t.validation, Some(0.3));
        let d: Metrics = serde_json::from_str(r#"{"validation_ndcg@10": 0.25}"#).unwrap();
        assert_eq!(d.validation, Some(0.25));
        // Written, the losses are under their typed name.
        let text = serde_json::to_string(&m).unwrap();
        assert!(
            text.contains("\"losses\"") && !text.contains("loss_per_epoch"),
            "{text}"
        );
        // An empty record reads as no metrics at all.
        assert_eq!(
            serde_json::from_str::<Metrics>("{}").unwrap(),
            Metrics::default()
        );
    }
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
