//! The model registry: every model kind, its parameters, how it fits, how
//! its tensors are saved and loaded, and what it can do.
//!
//! A model is one file that implements [`ModelKind`] for its fitted type,
//! plus one line in `builtin`. Everything else (parsing `kind:key=value`
//! specs, help texts, fitting with an observer, model folders, the
//! conformance suite, explanations) reads the registry, so no code outside
//! it lists or matches model kinds. A crate outside this one adds a model
//! with [`register`].
//!
//! Parameters are a serde struct with defaults. Text from the command line,
//! an experiment file or a manifest passes one boundary, [`Entry::resolve`]:
//! each value is read as the type of its default, checked by serde (so an
//! unknown enum value is an error naming its key) and the whole set by
//! [`Validate`]. Fitting and loading both go through it.

use crate::common::Train;
use crate::tensors::{PersistError, TensorsIn, TensorsOut};
use because_core::{
    Capabilities, Epoch, EpochObserver, Error, Interactions, Recommender, Result, SideInfo,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

/// Checks a parameter set once, before anything is fitted or loaded (as
/// linfa's `ParamGuard`). Errors name the parameter by its spec key.
pub trait Validate {
    /// `Ok` if every value is in range.
    fn validate(&self) -> Result<()>;
}

/// A model kind, implemented by its fitted type.
pub trait ModelKind: Recommender + Clone + Debug + Sized + 'static {
    /// The name on the command line and in manifests, such as `"ease"`.
    const NAME: &'static str;
    /// One line for help texts.
    const ABOUT: &'static str;
    /// What the model can do; the conformance suite checks the claim.
    const CAPABILITIES: Capabilities;
    /// The parameter that counts epochs, for iterative models (early
    /// stopping sets it to the epochs actually run).
    const EPOCHS: Option<&'static str> = None;
    /// Whether the model is trained on explicit ratings rather than
    /// binary or weighted feedback.
    const RATINGS: bool = false;
    /// A small, fast configuration (`key=value,...`) for the conformance suite.
    const EXAMPLE: &'static str = "";
    /// The configuration the demo compares (`key=value,...`, suited to its
    /// small synthetic data), for the kinds it compares; `None` leaves the
    /// kind out of the demo.
    const DEMO: Option<&'static str> = None;

    /// The parameters: a serde struct whose `Default` holds the defaults and
    /// whose field names are the spec keys.
    type Params: Serialize + DeserializeOwned + Default + Clone + Debug + Validate + Send + Sync;

    /// Fits on `x` (each user's interactions in time order, with times and
    /// event types). Iterative models call `observer` after every epoch, with
    /// a snapshot of the model every `every` epochs (never if 0, except where
    /// a snapshot costs nothing); non-iterative models need not call it.
    fn fit(
        params: &Self::Params,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self>;
    /// Fits on `x` with user and item features. Kinds that read features
    /// (declaring [`Capabilities::features`]) override this; the others
    /// ignore `side`.
    fn fit_side(
        params: &Self::Params,
        x: &Interactions,
        side: &SideInfo,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        let _ = side;
        Self::fit(params, x, every, observer)
    }
    /// For a model whose score is a weighted sum of other models' scores:
    /// its parts, for explanations that explain each part with that part's
    /// own method.
    fn fused(&self) -> Option<&dyn Fused> {
        None
    }
    /// The parameters the model was fitted with (epochs as actually run).
    fn params(&self) -> Self::Params;
    /// The training matrix the model keeps.
    fn train(&self) -> &Train;
    /// Adds the model's tensors (the training matrix is saved for it).
    fn save(&self, out: &mut TensorsOut);
    /// Rebuilds the model from validated parameters, its training matrix
    /// and its tensors.
    fn load(
        params: Self::Params,
        train: Train,
        tensors: &TensorsIn<'_>,
    ) -> std::result::Result<Self, PersistError>;
}

/// One part of a fused model's score for a query: the fused score of an
/// item is the sum over parts of `scale · (the part model's score of the
/// item for the part's history) + offset`, exactly.
#[derive(Clone, Debug)]
pub struct Part<'a> {
    /// The part's name (`session`, `history`).
    pub name: &'static str,
    /// The part's model.
    pub model: &'a crate::Model,
    /// The history the part model scores (in time order for sequential
    /// models).
    pub items: Vec<u32>,
    /// Its values.
    pub values: Vec<f32>,
    /// Multiplies the part model's score.
    pub scale: f32,
    /// Added after scaling.
    pub offset: f32,
}

/// Models whose score is a weighted sum of other models' scores.
pub trait Fused {
    /// The parts of the score for a history (in time order).
    fn parts(&self, items: &[u32], values: &[f32]) -> Result<Vec<Part<'_>>>;
}

/// A fitted model of any registered kind, behind the methods every caller
/// needs.
pub(crate) trait Erased: Send + Sync + Debug {
    fn fused(&self) -> Option<&dyn Fused>;
    fn recommender(&self) -> &dyn Recommender;
    fn train(&self) -> &Train;
    fn params(&self) -> Value;
    fn save(&self, out: &mut TensorsOut);
    fn as_any(&self) -> &dyn Any;
}

impl<K: ModelKind> Erased for K {
    fn fused(&self) -> Option<&dyn Fused> {
        ModelKind::fused(self)
    }
    fn recommender(&self) -> &dyn Recommender {
        self
    }
    fn train(&self) -> &Train {
        ModelKind::train(self)
    }
    fn params(&self) -> Value {
        canonical(&ModelKind::params(self))
    }
    fn save(&self, out: &mut TensorsOut) {
        ModelKind::save(self, out)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Serializes parameters through text, so `0.01f32` reads `0.01`.
fn canonical<P: Serialize>(p: &P) -> Value {
    serde_json::to_string(p)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// Fits a kind from resolved parameters, with its type erased.
type FitFn =
    fn(&Value, &Interactions, &SideInfo, usize, &mut EpochObserver<'_>) -> Result<Arc<dyn Erased>>;

/// Loads a kind from resolved parameters and its tensors, with its type erased.
type LoadFn =
    fn(&Value, Train, &TensorsIn<'_>) -> std::result::Result<Arc<dyn Erased>, PersistError>;

/// A registered model kind, with its types erased.
pub struct Entry {
    /// The kind's name.
    pub name: &'static str,
    /// One line for help texts.
    pub about: &'static str,
    /// What the kind can do.
    pub capabilities: Capabilities,
    /// The key that counts epochs, for iterative models.
    pub epoch_key: Option<&'static str>,
    /// Whether it trains on explicit ratings.
    pub needs_ratings: bool,
    /// A small configuration for tests.
    pub example: &'static str,
    /// The configuration the demo compares, if it compares this kind.
    pub demo: Option<&'static str>,
    defaults: Value,
    check: fn(Value, bool) -> Result<Value>,
    fit: FitFn,
    load: LoadFn,
    type_id: fn() -> std::any::TypeId,
}

impl Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("name", &self.name).finish()
    }
}

/// Deserializes `v` as `K`'s parameters, validates them when `validate`,
/// and returns them canonical. A value that does not survive the round trip
/// (a float beyond `f32`'s range becomes infinite, and JSON has no infinity)
/// is an error naming its key.
fn check_params<K: ModelKind>(v: Value, validate: bool) -> Result<Value> {
    let p: K::Params = serde_json::from_value(v.clone())
        .map_err(|e| Error::param("model", format!("{}: {e}", K::NAME)))?;
    if validate {
        p.validate()?;
    }
    let out = canonical(&p);
    if let (Some(given), Some(back)) = (v.as_object(), out.as_object()) {
        for (k, g) in given {
            if !g.is_null() && back.get(k).is_none_or(Value::is_null) {
                return Err(Error::param(k.clone(), format!("{g} is out of range")));
            }
        }
    }
    Ok(out)
}

fn fit_erased<K: ModelKind>(
    params: &Value,
    x: &Interactions,
    side: &SideInfo,
    every: usize,
    observer: &mut EpochObserver<'_>,
) -> Result<Arc<dyn Erased>> {
    let p: K::Params = serde_json::from_value(params.clone())
        .map_err(|e| Error::param("model", format!("{}: {e}", K::NAME)))?;
    p.validate()?;
    let start = Instant::now();
    let m = K::fit_side(&p, x, side, every, observer)?;
    if K::EPOCHS.is_none() {
        let _ = observer(&Epoch {
            epoch: 1,
            of: 1,
            loss: None,
            elapsed: start.elapsed(),
            model: Some(&m),
        });
    }
    Ok(Arc::new(m))
}

fn load_erased<K: ModelKind>(
    params: &Value,
    train: Train,
    t: &TensorsIn<'_>,
) -> std::result::Result<Arc<dyn Erased>, PersistError> {
    let p: K::Params = serde_json::from_value(params.clone())
        .map_err(|e| PersistError::Core(Error::param("params", e.to_string())))?;
    Ok(Arc::new(K::load(p, train, t)?))
}

/// The registry entry of `K`.
pub fn entry<K: ModelKind>() -> Entry {
    Entry {
        name: K::NAME,
        about: K::ABOUT,
        capabilities: K::CAPABILITIES,
        epoch_key: K::EPOCHS,
        needs_ratings: K::RATINGS,
        example: K::EXAMPLE,
        demo: K::DEMO,
        defaults: canonical(&K::Params::default()),
        check: check_params::<K>,
        fit: fit_erased::<K>,
        load: load_erased::<K>,
        type_id: std::any::TypeId::of::<K>,
    }
}

/// A kind as people read it (`because models`, the Python package's
/// classes): name, one line, parameters with their defaults (`null` for
/// optional ones) and what it can do.
#[derive(Clone, Debug, Serialize)]
pub struct KindInfo {
    /// The kind's name.
    pub name: &'static str,
    /// One line for help texts.
    pub about: &'static str,
    /// Parameters with their defaults.
    pub parameters: Map<String, Value>,
    /// What it can do, in words.
    pub capabilities: Vec<&'static str>,
    /// Whether it trains on explicit ratings.
    pub needs_ratings: bool,
}

impl Entry {
    /// The kind as people read it.
    pub fn info(&self) -> KindInfo {
        KindInfo {
            name: self.name,
            about: self.about,
            parameters: self.defaults().clone(),
            capabilities: self.capabilities.names(),
            needs_ratings: self.needs_ratings,
        }
    }

    /// The demo's configuration of this kind as a spec (`ease:lambda=200`),
    /// if the demo compares it.
    pub fn demo_spec(&self) -> Option<Result<crate::ModelSpec>> {
        self.demo.map(|params| {
            let text = if params.is_empty() {
                self.name.to_string()
            } else {
                format!("{}:{params}", self.name)
            };
            text.parse()
        })
    }

    /// The parameter keys with their defaults, in declaration order of the
    /// serde struct (`null` for optional ones).
    pub fn defaults(&self) -> &Map<String, Value> {
        static EMPTY: OnceLock<Map<String, Value>> = OnceLock::new();
        self.defaults
            .as_object()
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    /// The parameter keys.
    pub fn keys(&self) -> Vec<&str> {
        self.defaults().keys().map(String::as_str).collect()
    }

    /// Whether fitting depends on a random seed (the kind has a `seed` key).
    pub fn seeded(&self) -> bool {
        self.defaults().contains_key("seed")
    }

    /// Reads parameters given as text (`key` → `value`) against the
    /// defaults, checks each value's type and the whole set, and returns the
    /// canonical parameters with defaults filled in. Every error names the key.
    pub fn resolve(&self, given: &BTreeMap<String, String>) -> Result<Value> {
        let mut typed = Map::new();
        for (key, text) in given {
            let default = self.default_of(key)?;
            typed.insert(key.clone(), coerce(key, text, default)?);
        }
        self.resolve_typed(&typed)
    }

    /// Checks typed parameters (as a manifest stores them) over the
    /// defaults: each value's type alone, so that a wrong one names its key,
    /// then the whole set with [`Validate`].
    pub fn resolve_typed(&self, given: &Map<String, Value>) -> Result<Value> {
        let defaults = self.defaults();
        let mut merged = defaults.clone();
        for (key, value) in given {
            self.default_of(key)?;
            let mut one = defaults.clone();
            one.insert(key.clone(), value.clone());
            (self.check)(Value::Object(one), false).map_err(|e| match e {
                Error::InvalidParam { name, reason } if name == "model" => {
                    Error::param(key.clone(), format!("{value}: {reason}"))
                }
                other => other,
            })?;
            merged.insert(key.clone(), value.clone());
        }
        (self.check)(Value::Object(merged), true)
    }

    fn default_of(&self, key: &str) -> Result<&Value> {
        self.defaults().get(key).ok_or_else(|| {
            Error::param(
                key.to_string(),
                format!(
                    "{} has no parameter {key:?} (it has {})",
                    self.name,
                    self.keys().join(", ")
                ),
            )
        })
    }

    /// Fits with resolved parameters (from [`Entry::resolve`]) on `x` and
    /// the features in `side` (which kinds without
    /// [`Capabilities::features`] ignore).
    pub fn fit(
        &'static self,
        params: &Value,
        x: &Interactions,
        side: &SideInfo,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<crate::Model> {
        check_side(x, side)?;
        let inner = (self.fit)(params, x, side, every, observer)?;
        Ok(crate::Model { entry: self, inner })
    }

    pub(crate) fn load(
        &'static self,
        params: &Value,
        train: Train,
        t: &TensorsIn<'_>,
    ) -> std::result::Result<crate::Model, PersistError> {
        let inner = (self.load)(params, train, t)?;
        Ok(crate::Model { entry: self, inner })
    }

    /// One line per parameter with its default, for help texts.
    pub fn describe(&self) -> String {
        let params: Vec<String> = self
            .defaults()
            .iter()
            .map(|(k, v)| match v {
                Value::Null => k.clone(),
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        format!("{}: {}  [{}]", self.name, params.join(", "), self.about)
    }
}

/// Feature tables must have one row per user or item of `x`.
fn check_side(x: &Interactions, side: &SideInfo) -> Result<()> {
    for (what, t, n) in [
        ("user features", &side.users, x.n_users()),
        ("item features", &side.items, x.n_items()),
    ] {
        if let Some(t) = t.as_ref().filter(|t| t.len() != n) {
            return Err(Error::param(
                what,
                format!("have {} rows for {n} entities", t.len()),
            ));
        }
    }
    Ok(())
}

/// Reads `text` as the type of `default`.
pub(crate) fn coerce(key: &str, text: &str, default: &Value) -> Result<Value> {
    let text = text.trim();
    let bad = |what: &str| Error::param(key.to_string(), format!("{text:?} is not {what}"));
    let integer = |t: &str| -> Option<Value> {
        t.parse::<i64>()
            .map(Value::from)
            .or_else(|_| t.parse::<u64>().map(Value::from))
            .ok()
    };
    let number = |t: &str| -> Option<Value> {
        if let Some(i) = integer(t) {
            return Some(i);
        }
        t.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
    };
    Ok(match default {
        Value::Number(n) if n.is_u64() || n.is_i64() => {
            integer(text).ok_or_else(|| bad("an integer"))?
        }
        Value::Number(_) => number(text).ok_or_else(|| bad("a finite number"))?,
        Value::Bool(_) => Value::Bool(
            text.to_lowercase()
                .parse()
                .map_err(|_| bad("true or false"))?,
        ),
        Value::Null
            if text.is_empty() || ["none", "null"].contains(&text.to_lowercase().as_str()) =>
        {
            Value::Null
        }
        Value::Null => number(text)
            .or_else(|| text.parse::<bool>().ok().map(Value::Bool))
            .unwrap_or_else(|| Value::String(text.to_string())),
        _ => Value::String(text.to_string()),
    })
}

/// The built-in kinds: one line per model.
fn builtin() -> Vec<Entry> {
    vec![
        entry::<crate::Popularity>(),
        entry::<crate::ItemKnn>(),
        entry::<crate::UserKnn>(),
        entry::<crate::Ease>(),
        entry::<crate::PureSvd>(),
        entry::<crate::Als>(),
        entry::<crate::Bpr>(),
        entry::<crate::BiasedMf>(),
    ]
}

fn registry() -> &'static RwLock<Vec<&'static Entry>> {
    static REGISTRY: OnceLock<RwLock<Vec<&'static Entry>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        RwLock::new(
            builtin()
                .into_iter()
                .map(|e| &*Box::leak(Box::new(e)))
                .collect(),
        )
    })
}

/// Adds `K` to the registry (once; registering it again does nothing). A
/// different kind with the same name is an error.
pub fn register<K: ModelKind>() -> Result<()> {
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if K::NAME.is_empty() || !K::NAME.chars().all(valid) {
        return Err(Error::param(
            "model",
            format!(
                "{:?} is not a valid kind name (lowercase letters, digits, _ and -)",
                K::NAME
            ),
        ));
    }
    let mut r = registry().write().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = r.iter().find(|e| e.name == K::NAME) {
        if (e.type_id)() == std::any::TypeId::of::<K>() {
            return Ok(());
        }
        return Err(Error::param(
            "model",
            format!("a model kind named {:?} is already registered", K::NAME),
        ));
    }
    r.push(Box::leak(Box::new(entry::<K>())));
    Ok(())
}

/// Every registered kind, built-in ones first.
pub fn kinds() -> Vec<&'static Entry> {
    registry().read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The names of every registered kind.
pub fn names() -> Vec<&'static str> {
    kinds().iter().map(|e| e.name).collect()
}

/// The kind named `name`.
pub fn lookup(name: &str) -> Result<&'static Entry> {
    kinds().into_iter().find(|e| e.name == name).ok_or_else(|| {
        Error::param(
            "model",
            format!("unknown model {name:?} (one of {})", names().join(", ")),
        )
    })
}

/// Help text listing every kind with its parameters and defaults.
pub fn help() -> String {
    kinds()
        .iter()
        .map(|e| e.describe())
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn downcast<K: ModelKind>(m: &crate::Model) -> Option<&K> {
    m.inner.as_any().downcast_ref::<K>()
}

pub(crate) fn erased_train(m: &crate::Model) -> &Train {
    m.inner.train()
}

pub(crate) fn erased_params(m: &crate::Model) -> Value {
    m.inner.params()
}

pub(crate) fn erased_save(m: &crate::Model, out: &mut TensorsOut) {
    m.inner.save(out)
}

pub(crate) fn erased_recommender(m: &crate::Model) -> &dyn Recommender {
    m.inner.recommender()
}

/// The field type of `crate::Model::inner`.
pub(crate) type Inner = Arc<dyn Erased>;
