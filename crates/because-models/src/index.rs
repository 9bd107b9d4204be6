//! The approximate-retrieval index of a model folder: `index.json` and
//! `index.safetensors`, an inverted-file index ([`because_ann::Ivf`]) over
//! the vectors of a model whose scores are inner products
//! ([`because_core::InnerProduct`]).
//!
//! The index finds candidates; the model's own vectors score them, so a
//! served score is the model's score and its explanation adds up to it.
//! `index.json` records the checksum of the item vectors it was built
//! from: an index whose model changed since is *stale* and never used, and
//! one whose file is corrupt is refused by the same block checksum as the
//! model's tensors. Saving a model removes the folder's old index first.
//! The tensors file is memory-mapped on opening, like the model's.

use crate::mapped::Floats;
use crate::persist::{
    open_tensors, write_file_atomic, write_tensors, Checksum, TensorsFile, INDEX_FILES,
};
use crate::tensors::{PersistError, Result, TensorsIn, TensorsOut};
use crate::Model;
use because_ann::{index_query, Calibration, Ivf, IvfParts, Metric};

pub use because_ann::IvfParams;
use because_core::rng::Rng;
use because_core::{Error, InnerProduct, ItemVectors, Query, Recommender, Request, Scored};
use std::path::Path;
use std::time::Instant;

/// The index manifest's name in a model folder.
pub const MANIFEST: &str = INDEX_FILES[0];
/// The index tensors' name in a model folder.
pub const TENSORS: &str = INDEX_FILES[1];
/// The smallest catalogue that `auto` indexes: below it, scoring every
/// item is fast enough (27k items: p99 3.3 ms per request on 2 cores).
pub const AUTO_ITEMS: usize = 50_000;
/// The recall@10 the index is calibrated for on its model's own users.
pub const TARGET_RECALL: f64 = 0.995;
/// How many of the model's users (or items) calibrate the index.
pub const CALIBRATION_QUERIES: usize = 500;
const FORMAT: &str = "because-index";
const FORMAT_VERSION: u64 = 1;

/// When a saved model gets an index.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum IndexPolicy {
    /// Never: every request scores the whole catalogue.
    Never,
    /// For models with inner-product scores and at least [`AUTO_ITEMS`] items.
    #[default]
    Auto,
    /// For every model with inner-product scores.
    Always,
}

impl std::str::FromStr for IndexPolicy {
    type Err = Error;
    fn from_str(s: &str) -> because_core::Result<IndexPolicy> {
        match s.trim() {
            "never" => Ok(IndexPolicy::Never),
            "auto" => Ok(IndexPolicy::Auto),
            "always" => Ok(IndexPolicy::Always),
            other => Err(Error::param(
                "index",
                format!("{other:?} is not one of never, auto, always"),
            )),
        }
    }
}

impl IndexPolicy {
    /// Whether `model` gets an index under this policy.
    pub fn wants(self, model: &Model) -> bool {
        model.inner_product().is_some()
            && match self {
                IndexPolicy::Never => false,
                IndexPolicy::Auto => model.n_items() >= AUTO_ITEMS,
                IndexPolicy::Always => true,
            }
    }
}

/// `index.json`: what the index is and how well it finds the exact top 10.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct IndexInfo {
    /// `"because-index"`.
    pub format: String,
    /// The version of this file's format.
    pub format_version: u64,
    /// The index's kind (`"ivf"`: inverted file, exact vectors).
    pub kind: String,
    /// Items indexed (the model's catalogue).
    pub n_items: usize,
    /// The width of an indexed vector (the model's, plus one for a bias).
    pub dim: usize,
    /// k-means lists.
    pub lists: usize,
    /// Lists scanned per recommendation request.
    pub probe: usize,
    /// Mean recall@10 against exact scoring at `probe`, measured on
    /// `calibration_queries` of the model's own users (their seen items
    /// left out, as served).
    pub recall_at_10: f64,
    /// Lists scanned per similar-items request.
    pub probe_similar: usize,
    /// Mean recall@10 of similar items at `probe_similar`, measured on
    /// `calibration_queries` items.
    pub recall_similar_at_10: f64,
    /// How many queries measured each recall.
    pub calibration_queries: usize,
    /// Seconds to build (k-means, lists, calibration).
    pub build_seconds: f64,
    /// Bytes the index holds beyond the model.
    pub bytes: u64,
    /// The checksum of the item vectors (and biases) it was built from.
    pub vectors_checksum: String,
}

/// `index.json`: the index's record and its tensors file's.
#[derive(serde::Serialize, serde::Deserialize)]
struct IndexFile {
    #[serde(flatten)]
    info: IndexInfo,
    tensors: TensorsFile,
}

/// A model's index, ready to serve.
#[derive(Debug)]
pub struct Index {
    ivf: Ivf<Floats>,
    info: IndexInfo,
}

/// What opening a folder's index found.
#[derive(Debug)]
pub enum Opened {
    /// An index that matches the model.
    Ready(Box<Index>),
    /// No index in the folder.
    Missing,
    /// An index that must not be used, and why (stale, corrupt, of
    /// another shape); requests score the whole catalogue.
    Unusable(String),
}

/// The checksum of `v`'s rows and biases, as the index records it.
pub fn vectors_checksum(v: &ItemVectors<'_>) -> String {
    let mut sum = Checksum::new((v.len() * (v.dim + 1) * 4) as u64);
    for i in 0..v.len() as u32 {
        sum.update(bytemuck::cast_slice(v.row(i)));
        if let Some(b) = v.bias {
            sum.update(&b[i as usize].to_le_bytes());
        }
    }
    format!("{:016x}", sum.finish())
}

/// The item's row as the index stores it (a similar-items query).
fn item_query(ip: &dyn InnerProduct, item: u32) -> Vec<f32> {
    let v = ip.item_vectors();
    let mut q = vec![0.0; because_ann::width(&v)];
    because_ann::index_row(&v, item, &mut q);
    q
}

/// How many leading coordinates of the index's rows the model's
/// similarity vectors are, when they are a prefix of them (the same rows,
/// with or without a bias column); `None` when similar items use other
/// vectors, which the index cannot search.
fn cosine_dims(ip: &dyn InnerProduct) -> Option<usize> {
    let (sim, items) = (ip.similarity_vectors()?, ip.item_vectors());
    (std::ptr::eq(sim.data.as_ptr(), items.data.as_ptr())
        && sim.stride == items.stride
        && sim.dim <= items.dim
        && sim.len() == items.len())
    .then_some(sim.dim)
}

/// Calibration queries: the query vectors of up to `n` of the model's
/// users, chosen by `seed`, and the items each has seen (sorted), which
/// their lists leave out.
fn calibration_queries(
    model: &Model,
    ip: &dyn InnerProduct,
    n: usize,
    seed: u64,
) -> Result<(Vec<f32>, Vec<Vec<u32>>)> {
    let mut users: Vec<u32> = (0..model.n_users() as u32)
        .filter(|&u| !model.history(u).0.is_empty())
        .collect();
    Rng::new(seed).shuffle(&mut users);
    users.truncate(n);
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for u in users {
        let q = ip.query_vector(&Query::User(u))?;
        out.extend(index_query(&ip.item_vectors(), &q.vector));
        let mut s = model.history(u).0.to_vec();
        s.sort_unstable();
        seen.push(s);
    }
    Ok((out, seen))
}

impl Index {
    /// Builds an index for `model`, calibrated on its own users, or `None`
    /// when its scores are not inner products.
    pub fn build(model: &Model, params: &IvfParams) -> Result<Option<Index>> {
        let Some((p, info)) = Index::build_parts(model, params)? else {
            return Ok(None);
        };
        let ivf = Ivf::from_parts(p.map_vectors(Floats::from), model.n_items()).map_err(|e| {
            PersistError::Invalid {
                path: TENSORS.into(),
                message: e.to_string(),
            }
        })?;
        Ok(Some(Index { ivf, info }))
    }

    /// The index's parts, built and calibrated, and its record.
    fn build_parts(
        model: &Model,
        params: &IvfParams,
    ) -> Result<Option<(IvfParts<Vec<f32>>, IndexInfo)>> {
        let Some(ip) = model.inner_product() else {
            return Ok(None);
        };
        let start = Instant::now();
        let items = ip.item_vectors();
        let mut ivf = Ivf::build(&items, params);
        let (queries, seen) = calibration_queries(model, ip, CALIBRATION_QUERIES, params.seed)?;
        let c = ivf.calibrate(
            &queries,
            &seen,
            10,
            params.target_recall,
            Metric::InnerProduct,
        );
        let similar = match cosine_dims(ip) {
            Some(m) => {
                let mut ids: Vec<u32> = (0..model.n_items() as u32).collect();
                Rng::new(params.seed ^ 1).shuffle(&mut ids);
                ids.truncate(CALIBRATION_QUERIES);
                let q: Vec<f32> = ids.iter().flat_map(|&i| item_query(ip, i)).collect();
                let itself: Vec<Vec<u32>> = ids.iter().map(|&i| vec![i]).collect();
                ivf.calibrate(&q, &itself, 10, params.target_recall, Metric::Cosine(m))
            }
            None => Calibration {
                probe: ivf.lists(),
                recall: 1.0,
                queries: 0,
            },
        };
        let info = IndexInfo {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            kind: "ivf".into(),
            n_items: ivf.len(),
            dim: ivf.dim(),
            lists: ivf.lists(),
            probe: c.probe,
            recall_at_10: c.recall,
            probe_similar: similar.probe,
            recall_similar_at_10: similar.recall,
            calibration_queries: c.queries,
            build_seconds: start.elapsed().as_secs_f64(),
            bytes: ivf.bytes() as u64,
            vectors_checksum: vectors_checksum(&items),
        };
        Ok(Some((ivf.into_parts(), info)))
    }

    /// What the index is and how well it measured.
    pub fn info(&self) -> &IndexInfo {
        &self.info
    }

    /// Opens the index in `dir` for `model`: [`Opened::Ready`] only when
    /// its files check out and it was built from `model`'s vectors.
    pub fn open(dir: &Path, model: &Model) -> Opened {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Opened::Missing,
            Err(e) => return Opened::Unusable(format!("{}: {e}", path.display())),
        };
        match Index::open_checked(dir, &text, model) {
            Ok(index) => Opened::Ready(Box::new(index)),
            Err(e) => Opened::Unusable(e),
        }
    }

    fn open_checked(dir: &Path, text: &[u8], model: &Model) -> std::result::Result<Index, String> {
        let IndexFile { info, tensors } =
            serde_json::from_slice(text).map_err(|e| format!("{MANIFEST}: {e}"))?;
        if info.format != FORMAT || info.format_version != FORMAT_VERSION {
            return Err(format!("{MANIFEST}: not a version {FORMAT_VERSION} index"));
        }
        let ip = model
            .inner_product()
            .ok_or_else(|| format!("{} scores are not inner products", model.kind()))?;
        let items = ip.item_vectors();
        if info.n_items != model.n_items() || vectors_checksum(&items) != info.vectors_checksum {
            return Err("stale: built from other item vectors than the model's".into());
        }
        let path = dir.join(TENSORS);
        let opened = open_tensors(&path, &tensors, 2).map_err(|e| e.to_string())?;
        let t = TensorsIn {
            tensors: std::cell::RefCell::new(opened.tensors),
            path: &path,
            file: &opened.file,
            map: opened.map.as_ref(),
        };
        let (lists, dim, n) = (info.lists, info.dim, info.n_items);
        let e = |e: PersistError| e.to_string();
        let parts = IvfParts {
            dim,
            centroids: t.f32("centroids", &[lists, dim]).map_err(e)?,
            half_norms: t.f32("half_norms", &[lists]).map_err(e)?,
            max_norm: t.f32("max_norm", &[1]).map_err(e)?[0],
            offsets: t.u32("offsets", &[lists + 1]).map_err(e)?,
            ids: t.u32("ids", &[n]).map_err(e)?,
            vectors: t.f32_shared("vectors", &[n, dim]).map_err(e)?,
            probe: info.probe,
            probe_similar: info.probe_similar,
        };
        if dim != because_ann::width(&items) {
            return Err(format!(
                "vectors of width {dim} for a model of width {}",
                items.dim
            ));
        }
        let ivf = Ivf::from_parts(parts, n).map_err(|e| e.to_string())?;
        Ok(Index { ivf, info })
    }

    /// The top items for `req`, as [`Recommender::recommend`] would list
    /// them but from the index's candidates: the lists the query's vector
    /// calls for are scanned for the best unseen, undenied items (a few
    /// more than asked), and each is scored by the model's own vectors. An
    /// allow-list is scored exactly (it names its candidates).
    pub fn recommend(&self, model: &Model, req: &Request<'_>) -> because_core::Result<Vec<Scored>> {
        let ip = model.inner_product().ok_or(Error::Unsupported {
            op: "approximate retrieval",
            model: model.kind(),
        })?;
        model.check_query(&req.query)?;
        let qv = ip.query_vector(&req.query)?;
        let items = ip.item_vectors();
        let seen: &[u32] = match (req.exclude_seen, req.query.bag(), req.query) {
            (false, ..) => &[],
            (true, Some((bag, _)), _) => bag,
            (true, None, Query::User(u)) => model.history(u).0,
            _ => &[],
        };
        let mut skip: Vec<u32> = seen.iter().chain(req.deny).copied().collect();
        skip.sort_unstable();
        skip.dedup();
        let excluded = |i: u32| skip.binary_search(&i).is_ok();
        let mut out: Vec<Scored> = match req.allow {
            Some(allow) => allow
                .iter()
                .filter(|&&i| (i as usize) < model.n_items() && !excluded(i))
                .map(|&i| Scored {
                    item: i,
                    score: 0.0,
                })
                .collect(),
            None => {
                let fetch = req.k + req.k.max(10);
                self.ivf.search(
                    &index_query(&items, &qv.vector),
                    fetch,
                    Metric::InnerProduct,
                    None,
                    &excluded,
                )
            }
        };
        for s in &mut out {
            s.score = items.score(&qv, s.item);
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
        out.dedup_by_key(|s| s.item);
        out.retain(|s| s.score > f32::NEG_INFINITY && !s.score.is_nan());
        out.truncate(req.k);
        Ok(out)
    }

    /// The `k` items most similar to `item` (itself excluded), from the
    /// index's candidates scored by the model's own cosine.
    pub fn similar(&self, model: &Model, item: u32, k: usize) -> because_core::Result<Vec<Scored>> {
        if item as usize >= model.n_items() {
            return Err(Error::UnknownItem {
                item,
                n_items: model.n_items(),
            });
        }
        let found = model.inner_product().and_then(|ip| {
            let m = cosine_dims(ip)?;
            Some((ip, ip.similarity_vectors()?, m))
        });
        let Some((ip, sim, m)) = found else {
            return model.similar_items(item, k);
        };
        let fetch = k + k.max(10);
        let mut out = self.ivf.search(
            &item_query(ip, item),
            fetch,
            Metric::Cosine(m),
            None,
            &|i| i == item,
        );
        let norm = |r: &[f32]| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
        let a = sim.row(item);
        let na = norm(a);
        for s in &mut out {
            let b = sim.row(s.item);
            let n = na * norm(b);
            let d: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
            s.score = if n > 0.0 { (d / n) as f32 } else { 0.0 };
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
        out.truncate(k);
        Ok(out)
    }
}

/// Saves an index's parts into the model folder `dir` (tensors first, then
/// `index.json`, each atomically); the vectors move into the file's writer
/// rather than being copied.
fn save_parts(dir: &Path, p: IvfParts<Vec<f32>>, info: &IndexInfo) -> Result<()> {
    let mut out = TensorsOut::default();
    let (lists, n) = (p.half_norms.len(), p.ids.len());
    out.f32("centroids", &p.centroids, &[lists, p.dim]);
    out.f32("half_norms", &p.half_norms, &[lists]);
    out.f32("max_norm", &[p.max_norm], &[1]);
    out.u32("offsets", &p.offsets, &[lists + 1]);
    out.u32("ids", &p.ids, &[n]);
    out.f32_vec("vectors", p.vectors, &[n, p.dim]);
    let file = IndexFile {
        info: info.clone(),
        tensors: write_tensors(&dir.join(TENSORS), out)?,
    };
    let text = serde_json::to_vec_pretty(&file).map_err(|e| PersistError::Invalid {
        path: dir.join(MANIFEST),
        message: e.to_string(),
    })?;
    write_file_atomic(&dir.join(MANIFEST), &text)
}

/// Builds and saves the index `policy` asks for into the model folder
/// `dir` (where `model` was just saved); the index's record, or `None`
/// when the policy or the model wants none.
pub fn build_for(model: &Model, dir: &Path, policy: IndexPolicy) -> Result<Option<IndexInfo>> {
    if !policy.wants(model) {
        return Ok(None);
    }
    match Index::build_parts(model, &IvfParams::default())? {
        Some((parts, info)) => {
            save_parts(dir, parts, &info)?;
            Ok(Some(info))
        }
        None => Ok(None),
    }
}

/// A model whose top-k lists come from `index` (what `serve` answers), for
/// evaluating what is served: scores, histories and everything else are
/// the model's; `recommend` and the batched lists go through the index.
pub struct Approximate<'a> {
    model: &'a Model,
    index: &'a Index,
}

impl<'a> Approximate<'a> {
    /// `model` answered through `index`, which must have been built for it.
    pub fn new(model: &'a Model, index: &'a Index) -> Approximate<'a> {
        Approximate { model, index }
    }
}

impl Recommender for Approximate<'_> {
    fn kind(&self) -> &'static str {
        self.model.kind()
    }
    fn n_users(&self) -> usize {
        self.model.n_users()
    }
    fn n_items(&self) -> usize {
        self.model.n_items()
    }
    fn history(&self, user: u32) -> (&[u32], &[f32]) {
        self.model.history(user)
    }
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> because_core::Result<()> {
        self.model.score_into(query, out)
    }
    fn inner_product(&self) -> Option<&dyn InnerProduct> {
        self.model.inner_product()
    }
    fn recommend(&self, req: &Request<'_>) -> because_core::Result<Vec<Scored>> {
        self.index.recommend(self.model, req)
    }
    fn recommend_users_denying(
        &self,
        users: &[u32],
        k: usize,
        deny: &[&[u32]],
    ) -> because_core::Result<Vec<Vec<Scored>>> {
        use rayon::prelude::*;
        if deny.len() != users.len() {
            return Err(Error::Shape(format!(
                "{} deny lists for {} users",
                deny.len(),
                users.len()
            )));
        }
        users
            .par_iter()
            .zip(deny.par_iter())
            .map(|(&u, d)| {
                self.recommend(&Request {
                    deny: d,
                    ..Request::new(Query::User(u), k)
                })
            })
            .collect()
    }
}

/// How well the approximate lists of `index` recall `model`'s exact ones
/// for `requests`: the share of the exact lists' items that the
/// approximate lists also hold.
pub fn recall_against_exact(
    model: &Model,
    index: &Index,
    requests: &[Request<'_>],
) -> because_core::Result<f64> {
    use rayon::prelude::*;
    let (hit, all) = requests
        .par_iter()
        .map(|req| -> because_core::Result<(usize, usize)> {
            let exact = model.recommend(req)?;
            let approx = index.recommend(model, req)?;
            let hit = exact
                .iter()
                .filter(|x| approx.iter().any(|y| y.item == x.item))
                .count();
            Ok((hit, exact.len()))
        })
        .collect::<because_core::Result<Vec<_>>>()?
        .into_iter()
        .fold((0, 0), |(h, a), (x, y)| (h + x, a + y));
    Ok(if all == 0 {
        1.0
    } else {
        hit as f64 / all as f64
    })
}
