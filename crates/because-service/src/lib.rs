//! Using trained models.
//!
//! # Brief overview
//!
//! [`ModelHandle::open`] reads a model folder once: the model, its user and
//! item vocabularies, titles and the popularity fallback. With
//! [`ModelHandle::with_context`] it also holds what explanations draw on
//! besides the model (item and user features, the raw event log). The
//! handle is `Send + Sync` and cheap to clone, so a server shares one
//! between requests and swaps it to reload.
//!
//! Requests and responses are typed, serializable structs that speak in
//! external IDs: [`RecommendRequest`] → [`Recommendations`],
//! [`ExplainRequest`] → [`ExplainResponse`], [`SimilarRequest`] →
//! [`SimilarItems`], and [`ModelHandle::recommend_all`] for every known
//! user. The command line's `recommend`, `explain` and `similar` print
//! exactly these; a server and Python bindings are thin layers over the
//! same handle.
//!
//! **Fallback.** A user the model does not know, or a history with no
//! known items, gets the most popular items of the training data, and the
//! response says so in [`Recommendations::fallback`]. Unknown item IDs in a
//! history are listed in `ignored_items`, never silently dropped.
//!
//! ```
//! use because_core::testing::block_data;
//! use because_models::{persist::Meta, ModelSpec};
//! use because_service::{ModelHandle, RecommendRequest};
//!
//! let x = block_data(30, 20, 6, 1);
//! let model = "ease:lambda=5".parse::<ModelSpec>().unwrap().fit(&x).unwrap();
//! let meta = Meta {
//!     user_ids: (0..30).map(|u| format!("u{u}")).collect(),
//!     item_ids: (0..20).map(|i| format!("i{i}")).collect(),
//!     ..Meta::default()
//! };
//! let handle = ModelHandle::new(model, meta).unwrap();
//! let recs = handle.recommend(&RecommendRequest::user("u3", 5)).unwrap();
//! assert_eq!(recs.items.len(), 5);
//! assert!(recs.fallback.is_none());
//! let cold = handle.recommend(&RecommendRequest::user("nobody", 5)).unwrap();
//! assert!(cold.fallback.is_some());
//! ```
#![deny(missing_docs)]

mod browse;
mod context;
mod indexed;
mod types;

pub use browse::*;
pub use context::{read_log, user_columns, Context, ContextOptions};
pub use indexed::IndexRequest;
pub use types::*;

/// Registers every model kind this build knows beyond the built-in ones
/// (the neural and sequential models of `because-neural`), once per
/// process. [`ModelHandle::open`] calls it; programs that parse model
/// specifications (`sasrec:dim=64`) call it before parsing.
pub fn register_models() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Registering our own kinds under their own names cannot clash.
        let _ = because_neural::register();
    });
}

use because_core::{top_k, Query, Recommender, Request, Scored, Sequence as CoreSequence, Vocab};
use because_data::EventWeights;
use because_explain::fidelity::FidelitySummary;
use because_explain::reasons::{Activity, ItemRef};
use because_explain::{Explained, Explainer};
use because_models::index::{Index, Opened};
use because_models::persist::{self, Meta, PersistError};
use because_models::Model;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Errors of using a model. Each is a problem with the request
/// ([`ServiceError::is_client_error`]) or with the model or its files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// An item ID the model does not know, where one is required.
    #[error("item {id:?} is unknown to the model")]
    UnknownItem {
        /// The ID.
        id: String,
    },
    /// The request is malformed (names the field).
    #[error("invalid request: `{field}`: {reason}")]
    BadRequest {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The model cannot do what was asked, or failed.
    #[error(transparent)]
    Model(#[from] because_core::Error),
    /// The model folder could not be read.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// A data file (features, event log) could not be read.
    #[error(transparent)]
    Data(#[from] because_data::Error),
}

impl ServiceError {
    /// Whether the request, not the model, is at fault.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            ServiceError::UnknownItem { .. }
                | ServiceError::BadRequest { .. }
                | ServiceError::Model(because_core::Error::Unsupported { .. })
        )
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> ServiceError {
    ServiceError::BadRequest {
        field,
        reason: reason.into(),
    }
}

/// Result with [`ServiceError`].
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// The most items one request may ask for.
pub const MAX_K: usize = 10_000;

/// The most history items an [`Attention`] map covers (the latest).
pub const MAX_ATTENTION_ITEMS: usize = 200;

/// The most history or sequence items one request may carry.
pub const MAX_HISTORY: usize = 100_000;

/// The most recommendations one request may ask to explain.
pub const MAX_EXPLAINED: usize = 100;

struct Inner {
    model: Model,
    meta: Meta,
    users: Vocab,
    items: Vocab,
    /// Interactions per item in the training data: the cold-start fallback.
    popularity: Vec<f32>,
    context: Context,
    event_weights: EventWeights,
    /// The fidelity of its explanations, measured when first asked for.
    fidelity: std::sync::OnceLock<std::result::Result<FidelitySummary, String>>,
    /// For how many users each item is in the top [`REACH_K`], counted
    /// when first asked for.
    reach: std::sync::OnceLock<std::result::Result<Vec<u32>, String>>,
    /// The folder's approximate-retrieval index, when it has a usable one.
    index: Option<Arc<Index>>,
    /// Why the folder's index is not used, when it has one that is not.
    index_problem: Option<String>,
}

/// A trained model opened for use: cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct ModelHandle {
    inner: Arc<Inner>,
    /// Whether top-k requests and similar items go through the index.
    approximate: bool,
}

impl std::fmt::Debug for ModelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelHandle")
            .field("model", &self.inner.model)
            .finish()
    }
}

/// A history resolved against the model: indices, values, and what it is.
struct Resolved {
    items: Vec<u32>,
    values: Vec<f32>,
    /// Times, for a sequence whose events all have one.
    times: Option<Vec<i64>>,
    /// Event-type codes of a sequence, when every event has a known type.
    events: Option<Vec<u8>>,
    /// Whether the order of `items` means something (a sequence).
    ordered: bool,
    /// Events beyond the training data folded into the history.
    events_used: usize,
    subject: SubjectInfo,
    ignored: Vec<String>,
}

impl Resolved {
    fn query(&self) -> Query<'_> {
        match (self.subject.user_index, self.ordered) {
            (Some(u), _) if self.events_used == 0 => Query::User(u),
            (Some(_), _) => Query::History {
                items: &self.items,
                values: &self.values,
            },
            (None, true) => Query::Sequence(CoreSequence {
                items: &self.items,
                values: &self.values,
                times: self.times.as_deref(),
                events: self.events.as_deref(),
            }),
            (None, false) => Query::History {
                items: &self.items,
                values: &self.values,
            },
        }
    }
}

impl ModelHandle {
    /// Opens a model folder (see `because_models::persist`).
    pub fn open(dir: &Path) -> Result<ModelHandle> {
        register_models();
        let l = persist::load(dir)?;
        let (index, problem) = match Index::open(dir, &l.model) {
            Opened::Ready(i) => (Some(Arc::from(i)), None),
            Opened::Missing => (None, None),
            Opened::Unusable(why) => (None, Some(why)),
        };
        let mut handle = ModelHandle::new(l.model, l.meta)?;
        if let Some(inner) = Arc::get_mut(&mut handle.inner) {
            inner.index = index;
            inner.index_problem = problem;
        }
        Ok(handle)
    }

    /// The same model answering top-k requests (recommendations, similar
    /// items, fold-in users) from its folder's approximate-retrieval index
    /// when `on` and the folder has a usable one, each candidate scored
    /// exactly by the model; otherwise by scoring every item. Batch
    /// recommendations (`recommend_all`) always score every item.
    pub fn approximate(&self, on: bool) -> ModelHandle {
        ModelHandle {
            inner: self.inner.clone(),
            approximate: on && self.inner.index.is_some(),
        }
    }

    /// How this handle finds top items: whether through an index, the
    /// index's record, and why a folder's index is not used.
    pub fn retrieval(&self) -> Retrieval {
        let i = &self.inner;
        Retrieval {
            approximate: self.approximate,
            index: i.index.as_ref().map(|x| x.info().clone()),
            index_problem: i.index_problem.clone(),
        }
    }

    /// The `k` items most similar to item index `item`: through the index
    /// when this handle is approximate, else by scoring every item.
    pub fn similar_to(&self, item: u32, k: usize) -> Result<Vec<Scored>> {
        let m = &self.inner.model;
        Ok(match (&self.inner.index, self.approximate) {
            (Some(index), true) => index.similar(m, item, k)?,
            _ => m.similar_items(item, k)?,
        })
    }

    /// The top items for `req`: through the index when this handle is
    /// approximate (see [`ModelHandle::approximate`]), else exactly.
    fn top(&self, req: &Request<'_>) -> Result<Vec<Scored>> {
        let m = &self.inner.model;
        Ok(match (&self.inner.index, self.approximate) {
            (Some(index), true) => index.recommend(m, req)?,
            _ => m.recommend(req)?,
        })
    }

    /// A handle over a model already in memory and its metadata.
    pub fn new(model: Model, meta: Meta) -> Result<ModelHandle> {
        if meta.user_ids.len() != model.n_users() || meta.item_ids.len() != model.n_items() {
            return Err(bad(
                "meta",
                format!(
                    "{} user IDs and {} item IDs for a model of {} users and {} items",
                    meta.user_ids.len(),
                    meta.item_ids.len(),
                    model.n_users(),
                    model.n_items()
                ),
            ));
        }
        let users = Vocab::from_ids(&meta.user_ids);
        let items = Vocab::from_ids(&meta.item_ids);
        if users.len() != model.n_users() || items.len() != model.n_items() {
            return Err(bad(
                "meta",
                "user or item IDs repeat (after normalizing integers), so they cannot name the model's users and items",
            ));
        }
        // The model's own popularity when it is a popularity model (its
        // window), otherwise the number of training users of each item.
        let popularity = match model.popularity() {
            Some(p) => p.item_counts().to_vec(),
            None => {
                let iu = &model.train().iu;
                (0..model.n_items())
                    .map(|i| iu.row_indices(i).len() as f32)
                    .collect()
            }
        };
        Ok(ModelHandle {
            inner: Arc::new(Inner {
                model,
                meta,
                users,
                items,
                popularity,
                context: Context::default(),
                event_weights: EventWeights::default(),
                fidelity: Default::default(),
                reach: Default::default(),
                index: None,
                index_problem: None,
            }),
            approximate: false,
        })
    }

    /// The same model with explanation context (features, event log).
    pub fn with_context(&self, context: Context) -> ModelHandle {
        let i = &self.inner;
        ModelHandle {
            inner: Arc::new(Inner {
                model: i.model.clone(),
                meta: i.meta.clone(),
                users: i.users.clone(),
                items: i.items.clone(),
                popularity: i.popularity.clone(),
                context,
                event_weights: i.event_weights.clone(),
                fidelity: Default::default(),
                reach: Default::default(),
                index: i.index.clone(),
                index_problem: i.index_problem.clone(),
            }),
            approximate: self.approximate,
        }
    }

    /// Reads explanation context from files, with this model's vocabularies.
    pub fn read_context(&self, opts: &ContextOptions) -> Result<Context> {
        Context::read(&self.inner.users, &self.inner.items, opts)
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.inner.model
    }

    /// What was saved with the model.
    pub fn meta(&self) -> &Meta {
        &self.inner.meta
    }

    /// The user vocabulary.
    pub fn users(&self) -> &Vocab {
        &self.inner.users
    }

    /// The item vocabulary.
    pub fn items(&self) -> &Vocab {
        &self.inner.items
    }

    /// The explanation context.
    pub fn context(&self) -> &Context {
        &self.inner.context
    }

    /// How faithful this model's explanations are, measured once (with
    /// the default [`FidelityOptions`](because_explain::fidelity::FidelityOptions))
    /// on its own training users and kept for the life of the
    /// handle: the deletion test, counterfactual validity, coverage, and
    /// the global view (popularity bias, driver items and genres, themes of
    /// latent dimensions, reach). A model without explanations says why in
    /// `unavailable`.
    pub fn fidelity(&self) -> ModelFidelity {
        let measured = self.inner.fidelity.get_or_init(|| {
            let options = because_explain::fidelity::FidelityOptions::default();
            let measured = because_explain::fidelity::measure_model(&self.inner.model, &options)
                .map_err(|e| e.to_string())?;
            let mut summary = measured.summary;
            summary.global = Some(
                self.global_view(&measured.measured, options.n)
                    .map_err(|e| e.to_string())?,
            );
            Ok(summary)
        });
        ModelFidelity {
            model: self.inner.model.spec().to_string(),
            summary: measured.as_ref().ok().cloned(),
            unavailable: measured.as_ref().err().cloned(),
        }
    }

    /// The global view of the model's explanations of `measured` (its
    /// top `n` for some users): popularity bias, the history items and
    /// genres (from the context's item features) behind the reasons, themes
    /// of latent dimensions and reach, with items named by ID and title.
    pub fn global_view(
        &self,
        measured: &[because_explain::Measured],
        n: usize,
    ) -> Result<because_explain::fidelity::GlobalView> {
        let genre = self
            .inner
            .context
            .items
            .as_ref()
            .and_then(|f| f.genre_like());
        Ok(because_explain::fidelity::global_view(
            &self.inner.model,
            measured,
            n,
            &|i| self.inner.items.id(i).to_string(),
            &|i| self.item_ref(i).title,
            genre.map(|g| (g.codes.as_slice(), g.levels.as_slice())),
        )?)
    }

    /// The model's kind, parameters, sizes and capabilities.
    pub fn info(&self) -> ModelInfo {
        let m = &self.inner.model;
        ModelInfo {
            kind: m.kind().to_string(),
            spec: m.spec().to_string(),
            params: m.params(),
            n_users: m.n_users(),
            n_items: m.n_items(),
            capabilities: m.entry().capabilities,
            explanation_methods: because_explain::methods(m),
            user_feature_columns: m
                .featured()
                .and_then(|f| f.user_features())
                .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default(),
            data_fingerprint: self.inner.meta.data_fingerprint.clone(),
            metrics: self.inner.meta.metrics.clone(),
            event_types: self
                .inner
                .meta
                .events
                .iter()
                .map(|e| e.name.clone())
                .collect(),
            retrieval: self.retrieval(),
        }
    }

    /// An item's external ID and title (the ID when it has none).
    pub fn item_ref(&self, i: u32) -> ItemRef {
        let id = self.inner.items.id(i).to_string();
        let title = self
            .title(i)
            .map(str::to_string)
            .unwrap_or_else(|| id.clone());
        ItemRef {
            index: i,
            id,
            title,
        }
    }

    /// An item's title, from the model folder or the item features.
    pub fn title(&self, i: u32) -> Option<&str> {
        self.inner
            .meta
            .item_titles
            .get(i as usize)
            .map(String::as_str)
            .filter(|t| !t.is_empty())
            .or_else(|| self.inner.context.items.as_ref().and_then(|f| f.title(i)))
    }

    fn scored(&self, rank: usize, s: &Scored) -> Recommended {
        Recommended {
            rank: rank + 1,
            item: self.inner.items.id(s.item).to_string(),
            title: self.title(s.item).map(str::to_string),
            score: s.score,
            explanation: None,
        }
    }

    /// The index of a known item ID.
    pub fn item_index(&self, id: &str) -> Result<u32> {
        self.inner
            .items
            .get(id)
            .ok_or_else(|| ServiceError::UnknownItem { id: id.to_string() })
    }

    fn items_of(&self, ids: &[String], field: &'static str) -> Result<(Vec<u32>, Vec<String>)> {
        if ids.len() > MAX_HISTORY {
            return Err(bad(field, format!("more than {MAX_HISTORY} items")));
        }
        let mut known = Vec::with_capacity(ids.len());
        let mut ignored = Vec::new();
        for id in ids {
            match self.inner.items.get(id) {
                Some(i) => known.push(i),
                None => ignored.push(id.clone()),
            }
        }
        Ok((known, ignored))
    }

    fn resolve(&self, s: &Subject) -> Result<Resolved> {
        let m = &self.inner.model;
        Ok(match s {
            Subject::User { user } => {
                // An unknown user has no history here (the fallback, or
                // their stored events, take over).
                let u = self.inner.users.get(user);
                let (items, values) = u.map_or((&[][..], &[][..]), |u| m.history(u));
                Resolved {
                    items: items.to_vec(),
                    values: values.to_vec(),
                    times: None,
                    events: None,
                    ordered: false,
                    events_used: 0,
                    subject: SubjectInfo {
                        kind: SubjectKind::User,
                        user: Some(user.clone()),
                        known: u.is_some(),
                        history_items: items.len(),
                        user_index: u,
                    },
                    ignored: Vec::new(),
                }
            }
            Subject::History { history } => {
                let (mut items, ignored) = self.items_of(history, "history")?;
                // A bag: repeated items count once, as in training.
                items.sort_unstable();
                items.dedup();
                let n = items.len();
                Resolved {
                    items,
                    values: vec![1.0; n],
                    times: None,
                    events: None,
                    ordered: false,
                    events_used: 0,
                    subject: SubjectInfo {
                        kind: SubjectKind::History,
                        user: None,
                        known: n > 0,
                        history_items: n,
                        user_index: None,
                    },
                    ignored,
                }
            }
            Subject::Sequence { sequence } => {
                if sequence.len() > MAX_HISTORY {
                    return Err(bad("sequence", format!("more than {MAX_HISTORY} items")));
                }
                // Oldest first: events without a time keep their place.
                let mut order: Vec<usize> = (0..sequence.len()).collect();
                let timed = sequence.iter().all(|e| e.time.is_some());
                if timed {
                    order.sort_by_key(|&k| sequence[k].time);
                }
                let (mut items, mut values, mut times, mut codes, mut ignored) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
                // Event types the training log had, by their codes there.
                let events = &self.inner.meta.events;
                let code_of = |name: &str| events.iter().position(|e| e.name == name);
                for k in order {
                    let e = &sequence[k];
                    let value = self.event_value(e, "sequence")?;
                    match self.inner.items.get(&e.item) {
                        Some(i) => {
                            items.push(i);
                            values.push(value);
                            times.push(e.time.unwrap_or(0));
                            codes.push(e.event.as_deref().and_then(code_of));
                        }
                        None => ignored.push(e.item.clone()),
                    }
                }
                let n = items.len();
                Resolved {
                    items,
                    values,
                    times: timed.then_some(times),
                    // Codes only when every event names a type the model knows.
                    events: codes
                        .iter()
                        .map(|c| c.and_then(|c| u8::try_from(c).ok()))
                        .collect::<Option<Vec<u8>>>()
                        .filter(|c| !c.is_empty()),
                    ordered: true,
                    events_used: 0,
                    subject: SubjectInfo {
                        kind: SubjectKind::Sequence,
                        user: None,
                        known: n > 0,
                        history_items: n,
                        user_index: None,
                    },
                    ignored,
                }
            }
        })
    }

    /// Why the model cannot personalize for `r`, if it cannot.
    fn fallback(r: &Resolved) -> Option<Fallback> {
        (r.items.is_empty() && r.subject.user_index.is_none()).then(|| Fallback {
            strategy: "popularity".into(),
            reason: if r.subject.kind == SubjectKind::User && !r.subject.known {
                "the user is unknown to the model".into()
            } else {
                "no known items in the history".into()
            },
        })
    }

    /// The most popular items of the training data, leaving out `exclude`.
    fn popular(&self, k: usize, exclude: &[u32], allow: Option<&[u32]>) -> Vec<Scored> {
        let mut counts = self.inner.popularity.clone();
        if let Some(allow) = allow {
            let mut keep = vec![false; counts.len()];
            allow.iter().for_each(|&i| keep[i as usize] = true);
            for (c, k) in counts.iter_mut().zip(keep) {
                if !k {
                    *c = f32::NEG_INFINITY;
                }
            }
        }
        for &i in exclude {
            counts[i as usize] = f32::NEG_INFINITY;
        }
        top_k(&counts, k)
    }

    /// User features given by column, encoded as the model's tokens:
    /// `None` when none are given or the model reads none; an unknown
    /// column or a bad number is a client error naming it.
    fn user_tokens(&self, given: &BTreeMap<String, String>) -> Result<Option<Vec<(u32, f32)>>> {
        if given.is_empty() {
            return Ok(None);
        }
        let Some(table) = self.inner.model.featured().and_then(|f| f.user_features()) else {
            return Ok(None);
        };
        let values: Vec<(String, String)> =
            given.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        table
            .encode_one(&values)
            .map(Some)
            .map_err(|e| bad("user_features", e.to_string()))
    }

    /// Top-k recommendations for a user, a history or a sequence.
    pub fn recommend(&self, req: &RecommendRequest) -> Result<Recommendations> {
        self.recommend_with_events(req, &[])
    }

    /// An event's value: as given (finite and non-negative), else the weight
    /// its type had in training (or the default weights), else 1.
    fn event_value(&self, e: &SequenceEvent, field: &'static str) -> Result<f32> {
        match (e.value, &e.event) {
            (Some(v), _) if v.is_finite() && v >= 0.0 => Ok(v),
            (Some(v), _) => Err(bad(
                field,
                format!(
                    "value {v} of {:?} is not a finite non-negative number",
                    e.item
                ),
            )),
            (None, Some(ev)) => Ok(self
                .inner
                .meta
                .events
                .iter()
                .find(|t| &t.name == ev)
                .map_or_else(|| self.inner.event_weights.weight(ev), |t| t.weight)),
            (None, None) => Ok(1.0),
        }
    }

    /// The subject with `events` (feedback stored since training, oldest
    /// first) folded into its history, without retraining: a known user's
    /// training history plus the events, or the events alone for a user the
    /// model does not know. Repeated items add up, as in training; events on
    /// items the model does not know are listed in `ignored_items`.
    fn fold(&self, mut r: Resolved, events: &[SequenceEvent]) -> Result<Resolved> {
        if events.is_empty() {
            return Ok(r);
        }
        if events.len() > MAX_HISTORY {
            return Err(bad("events", format!("more than {MAX_HISTORY} events")));
        }
        for e in events {
            let Some(i) = self.inner.items.get(&e.item) else {
                r.ignored.push(e.item.clone());
                continue;
            };
            let value = self.event_value(e, "events")?;
            match r.items.iter().position(|&h| h == i) {
                Some(k) => r.values[k] += value,
                None => {
                    r.items.push(i);
                    r.values.push(value);
                }
            }
            r.events_used += 1;
        }
        r.subject.history_items = r.items.len();
        Ok(r)
    }

    /// [`ModelHandle::recommend`] with stored feedback folded in (see
    /// `events_used` in the response).
    pub fn recommend_with_events(
        &self,
        req: &RecommendRequest,
        events: &[SequenceEvent],
    ) -> Result<Recommendations> {
        if req.k == 0 || req.k > MAX_K {
            return Err(bad("k", format!("must be between 1 and {MAX_K}")));
        }
        let r = self.fold(self.resolve(&req.subject)?, events)?;
        let mut ignored = r.ignored.clone();
        let (allow, unknown_allow) = match &req.allow {
            Some(ids) => {
                let (known, unknown) = self.items_of(ids, "allow")?;
                (Some(known), unknown)
            }
            None => (None, Vec::new()),
        };
        let (deny, unknown_deny) = self.items_of(&req.deny, "deny")?;
        ignored.extend(unknown_allow);
        ignored.extend(unknown_deny);
        if req.explain && req.k > MAX_EXPLAINED {
            return Err(bad(
                "k",
                format!("at most {MAX_EXPLAINED} recommendations are explained in one request"),
            ));
        }
        let given = self.user_tokens(&req.user_features)?;
        // Features given to a model that reads them personalize even
        // without a history.
        let fallback = Self::fallback(&r).filter(|_| given.is_none());
        let scored = if fallback.is_some() {
            let mut exclude = deny.clone();
            if req.exclude_seen {
                exclude.extend(&r.items);
            }
            self.popular(req.k, &exclude, allow.as_deref())
        } else {
            let request = Request {
                query: r.query(),
                k: req.k,
                exclude_seen: req.exclude_seen,
                allow: allow.as_deref(),
                deny: &deny,
            };
            match (self.inner.model.featured(), r.subject.user_index) {
                // A model that reads features scores a known user with new
                // events as that user (features, ID) with the longer
                // history, and anyone with features given by them.
                (Some(f), u) if (u.is_some() && r.events_used > 0) || given.is_some() => {
                    let mut scores = vec![0.0f32; self.inner.model.n_items()];
                    f.score_described(
                        &because_core::Described {
                            user: u,
                            features: given.as_deref(),
                            items: Some(&r.items),
                        },
                        &mut scores,
                    )?;
                    because_core::select(scores, &r.items, &request)
                }
                _ => self.top(&request)?,
            }
        };
        let mut items: Vec<Recommended> = scored
            .iter()
            .enumerate()
            .map(|(rank, s)| self.scored(rank, s))
            .collect();
        let mut explanations_unsupported = None;
        if req.explain {
            let targets: Vec<u32> = scored.iter().map(|s| s.item).collect();
            let n = if req.counterfactuals { req.k } else { 0 };
            match self.explain_list(&r, &targets, n, req.method, given.as_deref()) {
                Ok(explained) => {
                    for (it, e) in items.iter_mut().zip(explained) {
                        it.explanation = Some(e);
                    }
                }
                // The list stands without explanations for models that have none.
                Err(ServiceError::Model(e @ because_core::Error::Unsupported { .. })) => {
                    explanations_unsupported = Some(e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Recommendations {
            model: self.inner.model.spec().to_string(),
            subject: r.subject,
            fallback,
            ignored_items: ignored,
            explanations_unsupported,
            events_used: r.events_used,
            degraded: None,
            items,
        })
    }

    /// Top-k for every user the model knows (`recommendations.json`).
    pub fn recommend_all(&self, k: usize) -> Result<AllRecommendations> {
        if k == 0 || k > MAX_K {
            return Err(bad("k", format!("must be between 1 and {MAX_K}")));
        }
        let m = &self.inner.model;
        let users: Vec<u32> = (0..m.n_users() as u32).collect();
        let recs = m.recommend_users(&users, k)?;
        let users = users
            .iter()
            .zip(&recs)
            .map(|(&u, r)| {
                (
                    self.inner.users.id(u).to_string(),
                    r.iter()
                        .enumerate()
                        .map(|(rank, s)| self.scored(rank, s))
                        .collect(),
                )
            })
            .collect::<BTreeMap<_, _>>();
        Ok(AllRecommendations {
            model: m.spec().to_string(),
            k,
            exclude_seen: true,
            users,
        })
    }

    fn explainer<'a>(
        &'a self,
        name: &'a dyn Fn(u32) -> ItemRef,
        n: usize,
        method: Option<because_explain::Method>,
    ) -> Explainer<'a> {
        let c = &self.inner.context;
        let mut x = Explainer::new(&self.inner.model, name);
        x.n = n;
        x.method = method;
        x.measured = &self.inner.meta.metrics.explanation_fidelity;
        x.item_features = c
            .items
            .as_ref()
            .and_then(|f| f.genre_like())
            .map(|g| (g.codes.as_slice(), g.levels.as_slice()));
        x.user_features = &c.users;
        x.funnel = c.funnel.as_ref();
        x.trend = c.trend.as_ref();
        x
    }

    fn explain_resolved(
        &self,
        r: &Resolved,
        item: u32,
        n: usize,
        method: Option<because_explain::Method>,
    ) -> Result<Explained> {
        Ok(self
            .explain_list(r, &[item], n, method, None)?
            .pop()
            .expect("one explanation per target"))
    }

    /// Explains several items for one subject, sharing the work: one
    /// factorization of the subject's system, one pass over their log.
    /// `n` is the list size counterfactuals are about (0: none).
    fn explain_list(
        &self,
        r: &Resolved,
        targets: &[u32],
        n: usize,
        method: Option<because_explain::Method>,
        given: Option<&[(u32, f32)]>,
    ) -> Result<Vec<Explained>> {
        let name = |i: u32| self.item_ref(i);
        let x = self.explainer(&name, n, method);
        // A method the model does not offer (or one that cannot explain
        // given features) is the request's fault, fallback or not.
        let given_only = because_explain::Subject {
            features: given,
            ..Default::default()
        };
        x.method_for(&given_only).map_err(|e| match e {
            because_core::Error::InvalidParam { reason, .. } => bad("method", reason),
            other => other.into(),
        })?;
        if given.is_none() && r.items.is_empty() {
            return Ok(targets.iter().map(|&t| x.explain_fallback(t)).collect());
        }
        let c = &self.inner.context;
        let activity = match (&c.log, r.subject.user_index) {
            (Some(log), Some(u)) => {
                Activity::of_user(log, self.inner.users.id(u), &self.inner.items)
            }
            _ => None,
        };
        let session = activity
            .as_ref()
            .map(|a| a.latest_session(because_core::DEFAULT_SESSION_TIMEOUT_MS));
        Ok(x.explain_many(
            &because_explain::Subject {
                items: &r.items,
                values: &r.values,
                user: r.subject.user_index,
                latest_session: session.as_deref(),
                activity: activity.as_ref(),
                features: given,
            },
            targets,
        )?)
    }

    /// Why `item` is (or would be) recommended to the subject. An unknown
    /// user or an empty history gets the popularity fallback's reason.
    pub fn explain(&self, req: &ExplainRequest) -> Result<ExplainResponse> {
        self.explain_with_events(req, &[])
    }

    /// [`ModelHandle::explain`] with stored feedback folded into the
    /// history, as [`ModelHandle::recommend_with_events`] does.
    pub fn explain_with_events(
        &self,
        req: &ExplainRequest,
        events: &[SequenceEvent],
    ) -> Result<ExplainResponse> {
        if req.n == 0 || req.n > MAX_K {
            return Err(bad("n", format!("must be between 1 and {MAX_K}")));
        }
        let item = self.item_index(&req.item)?;
        let r = self.fold(self.resolve(&req.subject)?, events)?;
        let explanation = self.explain_resolved(&r, item, req.n, req.method)?;
        let fallback = Self::fallback(&r);
        let attention = if fallback.is_none() {
            self.attention(&r.items)
        } else {
            None
        };
        Ok(ExplainResponse {
            model: self.inner.model.spec().to_string(),
            subject: r.subject,
            fallback,
            ignored_items: r.ignored,
            events_used: r.events_used,
            degraded: None,
            explanation,
            attention,
        })
    }

    /// The attention map of a history, for models with attention: its
    /// latest [`MAX_ATTENTION_ITEMS`] items.
    fn attention(&self, items: &[u32]) -> Option<Attention> {
        let maps = self.inner.model.attributor()?.attention_maps(items)?;
        let start = items.len().saturating_sub(MAX_ATTENTION_ITEMS);
        Some(Attention {
            layers: maps.layers,
            heads: maps.heads,
            items: items[start..].iter().map(|&i| self.item_ref(i)).collect(),
            weights: maps.rows.iter().map(|row| row[start..].to_vec()).collect(),
        })
    }

    /// The items most similar to one item.
    pub fn similar(&self, req: &SimilarRequest) -> Result<SimilarItems> {
        if req.k == 0 || req.k > MAX_K {
            return Err(bad("k", format!("must be between 1 and {MAX_K}")));
        }
        let item = self.item_index(&req.item)?;
        let sim = self.similar_to(item, req.k)?;
        Ok(SimilarItems {
            model: self.inner.model.spec().to_string(),
            item: self.item_ref(item),
            items: sim
                .iter()
                .enumerate()
                .map(|(rank, s)| self.scored(rank, s))
                .collect(),
        })
    }

    /// How a subject's history drives its top recommendations: each
    /// history item's exact contribution to each recommended item, and
    /// their similarity (for figures and dashboards). A subject without a
    /// known history maps no rows; its list is the popularity fallback.
    pub fn explanation_map(
        &self,
        subject: &Subject,
        k: usize,
        rows: usize,
    ) -> Result<ExplanationMap> {
        self.explanation_map_with_events(
            &MapRequest {
                subject: subject.clone(),
                k,
                rows,
            },
            &[],
        )
    }

    /// [`ModelHandle::explanation_map`] with stored feedback folded in, as
    /// [`ModelHandle::recommend_with_events`] folds it: the map is of the
    /// same list.
    pub fn explanation_map_with_events(
        &self,
        req: &MapRequest,
        events: &[SequenceEvent],
    ) -> Result<ExplanationMap> {
        let (k, rows) = (req.k, req.rows);
        if k == 0 || k > MAX_EXPLAINED {
            return Err(bad("k", format!("must be between 1 and {MAX_EXPLAINED}")));
        }
        if rows == 0 || rows > MAX_EXPLAINED {
            return Err(bad(
                "rows",
                format!("must be between 1 and {MAX_EXPLAINED}"),
            ));
        }
        let r = self.fold(self.resolve(&req.subject)?, events)?;
        let m = &self.inner.model;
        if Self::fallback(&r).is_some() {
            // Nothing to map: the list is the popularity fallback.
            return Ok(ExplanationMap {
                history: Vec::new(),
                recommended: self
                    .popular(k, &[], None)
                    .iter()
                    .enumerate()
                    .map(|(rank, s)| self.scored(rank, s))
                    .collect(),
                contributions: Vec::new(),
                similarity: Vec::new(),
                similarity_basis: String::new(),
                degraded: None,
            });
        }
        // The same top k that `recommend` gives.
        let recs = self.top(&Request::new(r.query(), k))?;
        let targets: Vec<u32> = recs.iter().map(|s| s.item).collect();
        let by_rec = because_explain::explain_many(m, &r.items, &r.values, &targets)?;
        let weight = |e: &because_explain::Explanation, h: u32| {
            e.contributions
                .iter()
                .find(|c| c.item == h)
                .map_or(0.0, |c| c.weight)
        };
        let mut totals: Vec<(u32, f32)> = r
            .items
            .iter()
            .map(|&h| (h, by_rec.iter().map(|e| weight(e, h).abs()).sum()))
            .collect();
        totals.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        totals.truncate(rows);
        Ok(ExplanationMap {
            history: totals.iter().map(|&(h, _)| self.item_ref(h)).collect(),
            recommended: recs
                .iter()
                .enumerate()
                .map(|(rank, s)| self.scored(rank, s))
                .collect(),
            contributions: totals
                .iter()
                .map(|&(h, _)| by_rec.iter().map(|e| weight(e, h)).collect())
                .collect(),
            similarity: totals
                .iter()
                .map(|&(h, _)| {
                    targets
                        .iter()
                        .map(|&t| because_explain::global::item_similarity(m, h, t))
                        .collect()
                })
                .collect(),
            similarity_basis: if m.embeddings().is_some() {
                "cosine of item embeddings".into()
            } else {
                "cosine of co-occurrence".into()
            },
            degraded: None,
        })
    }
}
