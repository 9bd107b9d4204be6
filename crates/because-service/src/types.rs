//! Requests and responses: plain serializable data in external IDs.

use because_core::Capabilities;
use because_explain::reasons::ItemRef;
use because_explain::Explained;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whose recommendations: a known user, an ad-hoc bag of items, or an
/// ordered sequence of events. In JSON, one of `{"user": "42"}`,
/// `{"history": ["50", "181"]}` or `{"sequence": [{"item": "50"}, ...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Subject {
    /// A user by external ID (unknown users get the popularity fallback).
    User {
        /// The user's ID.
        user: String,
    },
    /// Items the subject has, in no particular order, each with value 1.
    History {
        /// Item IDs.
        history: Vec<String>,
    },
    /// Events in time order (sorted by `time` when every event has one).
    Sequence {
        /// The events.
        sequence: Vec<SequenceEvent>,
    },
}

/// One event of an ordered sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceEvent {
    /// Item ID (a number is read as its decimal text).
    #[serde(deserialize_with = "id_text")]
    pub item: String,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// Event type (`view`, `cart`, `purchase`, ...): sets the value by the
    /// default event weights when `value` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The event's value (1 when neither it nor `event` is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f32>,
}

fn id_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Id::deserialize(d).map(String::from)
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn default_k() -> usize {
    10
}

fn yes() -> bool {
    true
}

/// An ID as JSON gives it: text, or a number (read as its decimal text).
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Int(i64),
    UInt(u64),
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        match id {
            Id::Text(s) => s,
            Id::Int(i) => i.to_string(),
            Id::UInt(u) => u.to_string(),
        }
    }
}

fn ids(v: Vec<Id>) -> Vec<String> {
    v.into_iter().map(String::from).collect()
}

/// A subject as JSON gives it: exactly one of the three fields.
fn subject(
    user: Option<Id>,
    history: Option<Vec<Id>>,
    sequence: Option<Vec<SequenceEvent>>,
) -> Result<Subject, String> {
    match (user, history, sequence) {
        (Some(u), None, None) => Ok(Subject::User { user: u.into() }),
        (None, Some(h), None) => Ok(Subject::History { history: ids(h) }),
        (None, None, Some(s)) => Ok(Subject::Sequence { sequence: s }),
        (None, None, None) => Err("give one of `user`, `history` or `sequence`".into()),
        _ => Err("give only one of `user`, `history` or `sequence`".into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendJson {
    user: Option<Id>,
    history: Option<Vec<Id>>,
    sequence: Option<Vec<SequenceEvent>>,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default = "yes")]
    exclude_seen: bool,
    #[serde(default)]
    allow: Option<Vec<Id>>,
    #[serde(default)]
    deny: Vec<Id>,
    #[serde(default)]
    explain: bool,
    #[serde(default)]
    counterfactuals: bool,
    #[serde(default)]
    method: Option<because_explain::Method>,
    #[serde(default)]
    user_features: BTreeMap<String, serde_json::Value>,
}

/// Feature values as text: strings as they are, numbers and booleans
/// written out; anything else is an error naming the column.
fn feature_texts(
    v: BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, String>, String> {
    v.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            serde_json::Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(format!(
                "user_features.{k}: {other} is not a string, a number or a boolean"
            )),
        })
        .collect()
}

impl TryFrom<RecommendJson> for RecommendRequest {
    type Error = String;
    fn try_from(j: RecommendJson) -> Result<Self, String> {
        Ok(RecommendRequest {
            subject: subject(j.user, j.history, j.sequence)?,
            k: j.k,
            exclude_seen: j.exclude_seen,
            allow: j.allow.map(ids),
            deny: ids(j.deny),
            explain: j.explain,
            counterfactuals: j.counterfactuals,
            method: j.method,
            user_features: feature_texts(j.user_features)?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainJson {
    user: Option<Id>,
    history: Option<Vec<Id>>,
    sequence: Option<Vec<SequenceEvent>>,
    item: Id,
    #[serde(default = "default_n")]
    n: usize,
    #[serde(default)]
    method: Option<because_explain::Method>,
}

impl TryFrom<ExplainJson> for ExplainRequest {
    type Error = String;
    fn try_from(j: ExplainJson) -> Result<Self, String> {
        Ok(ExplainRequest {
            subject: subject(j.user, j.history, j.sequence)?,
            item: j.item.into(),
            n: j.n,
            method: j.method,
        })
    }
}

/// What to recommend. As JSON, `{"user": "42", "k": 10}` (or `history` or
/// `sequence` in place of `user`); unknown fields are refused, and IDs may
/// be numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RecommendJson")]
pub struct RecommendRequest {
    /// Whose recommendations.
    #[serde(flatten)]
    pub subject: Subject,
    /// How many (default 10).
    #[serde(default = "default_k")]
    pub k: usize,
    /// Leave out items the subject already has (default true).
    #[serde(default = "yes")]
    pub exclude_seen: bool,
    /// Only these item IDs, if given.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Never these item IDs.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Explain each recommendation.
    #[serde(default)]
    pub explain: bool,
    /// With `explain`, also search each item's counterfactual (the history
    /// items without which it leaves the list), verified by re-ranking:
    /// several full re-rankings per item, so off by default in lists; a
    /// single item's explanation (`ExplainRequest`) always has it.
    #[serde(default)]
    pub counterfactuals: bool,
    /// With `explain`, the explanation method (`None`: the model's
    /// default); [`ModelInfo::explanation_methods`] lists those offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<because_explain::Method>,
    /// The subject's user features by column (`{"age": 25, "gender":
    /// "F"}`), for models that read features (`twotower`): a new user is
    /// scored from them and their history. A known user's own features are
    /// used when none are given; models without features ignore them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_features: BTreeMap<String, String>,
}

impl RecommendRequest {
    /// Top `k` for a subject, seen items excluded, no explanations.
    pub fn new(subject: Subject, k: usize) -> RecommendRequest {
        RecommendRequest {
            subject,
            k,
            exclude_seen: true,
            allow: None,
            deny: Vec::new(),
            explain: false,
            counterfactuals: false,
            method: None,
            user_features: BTreeMap::new(),
        }
    }

    /// Top `k` for a user by ID.
    pub fn user(user: &str, k: usize) -> RecommendRequest {
        RecommendRequest::new(
            Subject::User {
                user: user.to_string(),
            },
            k,
        )
    }
}

/// What kind of subject a response is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// A user by ID.
    User,
    /// An ad-hoc history.
    History,
    /// An ordered sequence.
    Sequence,
}

/// Who a response is about, as the model saw it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SubjectInfo {
    /// User, history or sequence.
    pub kind: SubjectKind,
    /// The user ID, for a user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Whether the model knows the user (or any item of the history).
    pub known: bool,
    /// How many known items the history has.
    pub history_items: usize,
    #[serde(skip)]
    pub(crate) user_index: Option<u32>,
}

/// Why a response does not come from the model's personal scores.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Fallback {
    /// What was used instead (`popularity`: the most chosen items of the
    /// training data).
    pub strategy: String,
    /// Why.
    pub reason: String,
}

/// One recommended (or similar) item.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Recommended {
    /// 1-based rank.
    pub rank: usize,
    /// Item ID.
    pub item: String,
    /// Title, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Model score (higher is better; not comparable across models). For the
    /// popularity fallback, the popularity model's count, or else the number
    /// of training users who have the item.
    pub score: f32,
    /// Why, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explained>,
}

/// Recommendations for one subject.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Recommendations {
    /// The model, as a full spec.
    pub model: String,
    /// Who they are for.
    pub subject: SubjectInfo,
    /// Set when the model could not personalize.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Item IDs of the request the model does not know (ignored).
    pub ignored_items: Vec<String>,
    /// Set when explanations were asked for but the model has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanations_unsupported: Option<String>,
    /// Feedback events beyond the training data folded into the history.
    #[serde(skip_serializing_if = "is_zero")]
    pub events_used: usize,
    /// Set when the answer was made without part of what the server
    /// knows: the user's stored feedback events could not be read (the
    /// event database is unavailable), so it comes from the model's
    /// training history alone. Says why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// Best first.
    pub items: Vec<Recommended>,
}

/// Top-k for every user the model knows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AllRecommendations {
    /// The model, as a full spec.
    pub model: String,
    /// List length.
    pub k: usize,
    /// Whether seen items are left out (always).
    pub exclude_seen: bool,
    /// By user ID.
    pub users: BTreeMap<String, Vec<Recommended>>,
}

fn default_n() -> usize {
    10
}

/// Why an item is recommended to a subject. As JSON, like
/// [`RecommendRequest`] with `item` and `n`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ExplainJson")]
pub struct ExplainRequest {
    /// Whose recommendation.
    #[serde(flatten)]
    pub subject: Subject,
    /// The item ID.
    pub item: String,
    /// The list length a counterfactual must push the item out of (default 10).
    #[serde(default = "default_n")]
    pub n: usize,
    /// The explanation method (`None`: the model's default, its most
    /// faithful); [`ModelInfo::explanation_methods`] lists those offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<because_explain::Method>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapJson {
    user: Option<Id>,
    history: Option<Vec<Id>>,
    sequence: Option<Vec<SequenceEvent>>,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default = "default_k")]
    rows: usize,
}

impl TryFrom<MapJson> for MapRequest {
    type Error = String;
    fn try_from(j: MapJson) -> Result<Self, String> {
        Ok(MapRequest {
            subject: subject(j.user, j.history, j.sequence)?,
            k: j.k,
            rows: j.rows,
        })
    }
}

/// How a subject's history drives its top `k` recommendations, for the
/// `rows` history items that drive them most. As JSON, like
/// [`RecommendRequest`] with `k` and `rows` (both default 10).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MapJson")]
pub struct MapRequest {
    /// Whose recommendations.
    #[serde(flatten)]
    pub subject: Subject,
    /// Recommendations (columns).
    pub k: usize,
    /// History items (rows).
    pub rows: usize,
}

/// An explanation of one recommendation.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ExplainResponse {
    /// The model, as a full spec.
    pub model: String,
    /// Who it is for.
    pub subject: SubjectInfo,
    /// Set when the model could not personalize.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Item IDs of the request the model does not know (ignored).
    pub ignored_items: Vec<String>,
    /// Feedback events beyond the training data folded into the history.
    #[serde(skip_serializing_if = "is_zero")]
    pub events_used: usize,
    /// Set when the answer was made without part of what the server
    /// knows: the user's stored feedback events could not be read (the
    /// event database is unavailable), so it comes from the model's
    /// training history alone. Says why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// The explanation: score, contributions, typed reasons and narrative.
    pub explanation: Explained,
    /// For a model with attention (SASRec): where its last position looked
    /// when it scored, whatever the explanation's method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention: Option<Attention>,
}

/// Where an attention model's last position looked when it scored a
/// history: per layer and head, a weight per history item (each row sums
/// to 1 over the items in the model's window; items before it weigh 0).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Attention {
    /// Layers.
    pub layers: usize,
    /// Heads per layer.
    pub heads: usize,
    /// The history's latest items (at most [`crate::MAX_ATTENTION_ITEMS`]),
    /// oldest first.
    pub items: Vec<ItemRef>,
    /// `layers × heads` rows, layer by layer, each one weight per item of
    /// `items`.
    pub weights: Vec<Vec<f32>>,
}

/// Items similar to one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarRequest {
    /// The item ID (a number is read as its decimal text).
    #[serde(deserialize_with = "id_text")]
    pub item: String,
    /// How many (default 10).
    #[serde(default = "default_k")]
    pub k: usize,
}

/// The items most similar to one item.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SimilarItems {
    /// The model, as a full spec.
    pub model: String,
    /// The item asked about.
    pub item: ItemRef,
    /// Most similar first (the item itself left out).
    pub items: Vec<Recommended>,
}

/// How faithful a model's explanations are.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ModelFidelity {
    /// The model, as a full spec.
    pub model: String,
    /// The measured fidelity (`None` when the model has no explanations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<because_explain::fidelity::FidelitySummary>,
    /// Why there is no summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// The model's kind, parameters, sizes and capabilities.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ModelInfo {
    /// The kind.
    pub kind: String,
    /// The full spec.
    pub spec: String,
    /// Typed parameters, defaults included.
    pub params: serde_json::Value,
    /// Users known.
    pub n_users: usize,
    /// Items known.
    pub n_items: usize,
    /// What the model can do.
    pub capabilities: Capabilities,
    /// The explanation methods the model offers, its default first (empty
    /// for a model with no explanations).
    pub explanation_methods: Vec<because_explain::Method>,
    /// For a model that reads user features: their columns, which a new
    /// user's `user_features` may give (empty otherwise).
    pub user_feature_columns: Vec<String>,
    /// Fingerprint of the training data.
    pub data_fingerprint: String,
    /// What the model folder records of how the model was made and how it
    /// scored.
    pub metrics: because_models::persist::Metrics,
    /// The event types of the training log (`view`, `purchase`...), which
    /// feedback events may name; empty for logs without types.
    pub event_types: Vec<String>,
    /// How top items are found: by scoring every item, or through the
    /// folder's approximate-retrieval index.
    pub retrieval: Retrieval,
}

/// How a served model finds its top items.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Retrieval {
    /// Whether recommendations and similar items come from the index's
    /// candidates (each scored exactly by the model), rather than from
    /// scoring every item.
    pub approximate: bool,
    /// The folder's index: its lists, how many a request scans and the
    /// recall@10 measured against exact scoring when it was built.
    pub index: Option<because_models::index::IndexInfo>,
    /// Why the folder's index is not used (stale, corrupt), when it has
    /// one that is not.
    pub index_problem: Option<String>,
}

/// A subject's history against its top recommendations: for figures and
/// dashboards.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ExplanationMap {
    /// The history items that drive the recommendations most (rows).
    pub history: Vec<ItemRef>,
    /// The recommendations (columns).
    pub recommended: Vec<Recommended>,
    /// `contributions[r][c]`: history item `r`'s exact contribution to the
    /// score of recommendation `c`.
    pub contributions: Vec<Vec<f32>>,
    /// `similarity[r][c]`: how similar the two items are.
    pub similarity: Vec<Vec<f32>>,
    /// What the similarity is.
    pub similarity_basis: String,
    /// Set when the user's stored feedback events could not be read (as
    /// in [`Recommendations::degraded`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
}
