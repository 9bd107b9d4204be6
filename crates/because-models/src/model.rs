//! [`Model`]: a fitted model of any registered kind, built from a [`ModelSpec`].

use crate::common::Train;
use crate::registry::{self, Entry, ModelKind};
use because_core::{
    Decompose, EpochObserver, Error, Interactions, ItemEmbeddings, PopularityPrior, Query,
    RatingPredictor, Recommender, Result, SideInfo,
};
use std::collections::BTreeMap;

/// A model kind and its parameters as text, such as `als:factors=64,regularization=0.05`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The kind (a registered name, see [`registry::names`]).
    pub kind: String,
    /// Parameters given; the rest take their defaults.
    pub params: BTreeMap<String, String>,
}

impl std::fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        let parts: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !parts.is_empty() {
            write!(f, ":{}", parts.join(","))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ModelSpec {
    type Err = Error;
    /// Parses `kind:key=value,...`, checking the kind and the keys (values
    /// are checked by [`ModelSpec::resolve`]). A `-` in a key reads as `_`.
    fn from_str(s: &str) -> Result<ModelSpec> {
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        let kind = kind.trim().to_lowercase();
        let entry = registry::lookup(&kind)?;
        let keys = entry.keys();
        let mut params = BTreeMap::new();
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                Error::param("model", format!("{part:?} in {s:?} is not key=value"))
            })?;
            let k = k.trim().replace('-', "_");
            if !keys.contains(&k.as_str()) {
                return Err(Error::param(
                    "model",
                    format!("{kind} has no parameter {k:?} (it has {})", keys.join(", ")),
                ));
            }
            params.insert(k, v.trim().to_string());
        }
        Ok(ModelSpec { kind, params })
    }
}

impl ModelSpec {
    /// A spec with no parameters given.
    pub fn new(kind: &str) -> Result<ModelSpec> {
        kind.parse()
    }

    /// The same spec with one more parameter.
    pub fn with(mut self, key: &str, value: impl ToString) -> ModelSpec {
        self.params
            .insert(key.trim().replace('-', "_"), value.to_string());
        self
    }

    /// The registry entry of the kind.
    pub fn entry(&self) -> Result<&'static Entry> {
        registry::lookup(&self.kind)
    }

    /// Checks every value (types, ranges) without fitting; returns the
    /// canonical parameters with defaults filled in.
    pub fn resolve(&self) -> Result<serde_json::Value> {
        self.entry()?.resolve(&self.params)
    }

    /// Fits the model on `x`.
    pub fn fit(&self, x: &Interactions) -> Result<Model> {
        self.fit_observed(x, 0, &mut because_core::no_observer())
    }

    /// Fits on `x`, calling `observer` after each epoch of iterative models
    /// (with a snapshot of the model every `every` epochs) and once after
    /// fitting the others.
    pub fn fit_observed(
        &self,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Model> {
        self.fit_with(x, &SideInfo::none(), every, observer)
    }

    /// Fits on `x` with user and item features (each table one row per
    /// user or item of `x`; kinds that read no features ignore them), as
    /// [`ModelSpec::fit_observed`] otherwise.
    pub fn fit_with(
        &self,
        x: &Interactions,
        side: &SideInfo,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Model> {
        let entry = self.entry()?;
        let params = entry.resolve(&self.params)?;
        entry.fit(&params, x, side, every, observer)
    }

    /// Whether the kind reads user or item features.
    pub fn reads_features(&self) -> bool {
        self.entry().is_ok_and(|e| e.capabilities.features)
    }

    /// The key that counts epochs for iterative models.
    pub fn epoch_key(&self) -> Option<&'static str> {
        self.entry().ok().and_then(|e| e.epoch_key)
    }

    /// Whether the model is trained on explicit ratings rather than binary feedback.
    pub fn needs_ratings(&self) -> bool {
        self.entry().is_ok_and(|e| e.needs_ratings)
    }

    /// Whether fitting depends on a random seed.
    pub fn seeded(&self) -> bool {
        self.entry().is_ok_and(|e| e.seeded())
    }
}

/// A fitted model of any registered kind: cheap to clone and share
/// between threads.
#[derive(Clone)]
pub struct Model {
    pub(crate) entry: &'static Entry,
    pub(crate) inner: registry::Inner,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("kind", &self.entry.name)
            .field("params", &self.params())
            .finish()
    }
}

impl Model {
    /// Wraps a fitted model of a registered kind.
    pub fn new<K: ModelKind>(model: K) -> Result<Model> {
        registry::register::<K>()?;
        let entry = registry::lookup(K::NAME)?;
        Ok(Model {
            entry,
            inner: std::sync::Arc::new(model),
        })
    }

    /// Loads a part of a composite model: a registered `kind` with
    /// parameters as its manifest stores them, the composite's training
    /// matrix and the part's tensors ([`crate::tensors::TensorsIn::part`]).
    pub fn load_part(
        kind: &str,
        params: &serde_json::Value,
        train: Train,
        t: &crate::tensors::TensorsIn<'_>,
    ) -> std::result::Result<Model, crate::tensors::PersistError> {
        let entry = registry::lookup(kind)?;
        let empty = serde_json::Map::new();
        let p = entry.resolve_typed(params.as_object().unwrap_or(&empty))?;
        entry.load(&p, train, t)
    }

    /// Adds the model's tensors to `out`: how a composite model saves its
    /// parts ([`TensorsOut::part`](crate::persist::TensorsOut::part)).
    pub fn save_tensors(&self, out: &mut crate::tensors::TensorsOut) {
        self.inner.save(out);
    }

    /// The parts of a fused model ([`crate::Fused`]).
    pub fn fused(&self) -> Option<&dyn crate::Fused> {
        self.inner.fused()
    }

    /// The registry entry of the model's kind.
    pub fn entry(&self) -> &'static Entry {
        self.entry
    }

    /// The full parameter set, defaults included, as typed JSON.
    pub fn params(&self) -> serde_json::Value {
        registry::erased_params(self)
    }

    /// The full parameter set, defaults included, as a spec.
    pub fn spec(&self) -> ModelSpec {
        let mut params = BTreeMap::new();
        if let Some(map) = self.params().as_object() {
            for (k, v) in map {
                match v {
                    serde_json::Value::Null => {}
                    serde_json::Value::String(s) => {
                        params.insert(k.clone(), s.clone());
                    }
                    other => {
                        params.insert(k.clone(), other.to_string());
                    }
                }
            }
        }
        ModelSpec {
            kind: self.entry.name.to_string(),
            params,
        }
    }

    /// The training data the model keeps (users × items and its transpose).
    pub fn train(&self) -> &Train {
        registry::erased_train(self)
    }

    /// The fitted model as its concrete type, if it is a `K`.
    pub fn downcast<K: ModelKind>(&self) -> Option<&K> {
        registry::downcast::<K>(self)
    }

    /// Item embeddings (row-major, with their width), for models that have them.
    pub fn item_embeddings(&self) -> Option<(&[f32], usize)> {
        self.embeddings().map(|e| e.item_embeddings())
    }

    /// The predicted rating of `item` by `user`, for rating predictors.
    pub fn predict_rating(&self, user: u32, item: u32) -> Option<f32> {
        if user as usize >= self.n_users() || item as usize >= self.n_items() {
            return None;
        }
        self.rating_predictor()
            .map(|r| r.predict_rating(user, item))
    }

    fn inner(&self) -> &dyn Recommender {
        registry::erased_recommender(self)
    }
}

impl Recommender for Model {
    fn kind(&self) -> &'static str {
        self.entry.name
    }
    fn n_users(&self) -> usize {
        self.inner().n_users()
    }
    fn n_items(&self) -> usize {
        self.inner().n_items()
    }
    fn history(&self, user: u32) -> (&[u32], &[f32]) {
        self.inner().history(user)
    }
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        self.inner().score_into(query, out)
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        self.inner().similar_into(item, out)
    }
    fn score_users_into(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        self.inner().score_users_into(users, out)
    }
    fn decomposer(&self) -> Option<&dyn Decompose> {
        self.inner().decomposer()
    }
    fn embeddings(&self) -> Option<&dyn ItemEmbeddings> {
        self.inner().embeddings()
    }
    fn inner_product(&self) -> Option<&dyn because_core::InnerProduct> {
        self.inner().inner_product()
    }
    fn rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        self.inner().rating_predictor()
    }
    fn popularity(&self) -> Option<&dyn PopularityPrior> {
        self.inner().popularity()
    }
    fn attributor(&self) -> Option<&dyn because_core::Attribute> {
        self.inner().attributor()
    }
    fn featured(&self) -> Option<&dyn because_core::Featured> {
        self.inner().featured()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_name_bad_keys() {
        let s: ModelSpec = "als:factors=8, regularization=0.1".parse().unwrap();
        assert_eq!(s.to_string(), "als:factors=8,regularization=0.1");
        let e = "als:rank=3".parse::<ModelSpec>().unwrap_err().to_string();
        assert!(e.contains("\"rank\"") && e.contains("factors"), "{e}");
        let e = "nope".parse::<ModelSpec>().unwrap_err().to_string();
        assert!(e.contains("unknown model"), "{e}");
        let x = Interactions::from_tuples(2, 2, [(0, 0, 1.0, 0), (1, 1, 1.0, 0)]).unwrap();
        for (spec, key) in [
            ("ease:lambda=abc", "lambda"),
            ("als:factors=1.5", "factors"),
            ("als:solver=lu", "solver"),
            ("bpr:loss=hinge", "loss"),
            ("itemknn:weighting=idf", "weighting"),
        ] {
            let e = spec
                .parse::<ModelSpec>()
                .unwrap()
                .fit(&x)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{key}`")), "{spec}: {e}");
        }
    }

    #[test]
    fn params_are_validated() {
        let x = Interactions::from_tuples(2, 2, [(0, 0, 1.0, 0), (1, 1, 1.0, 0)]).unwrap();
        for (spec, key) in [
            ("ease:lambda=0", "lambda"),
            ("als:factors=0", "factors"),
            ("als:regularization=-1", "regularization"),
            ("bpr:learning_rate=0", "learning_rate"),
            ("bpr:max_sampled=0", "max_sampled"),
            ("itemknn:neighbours=0", "neighbours"),
            ("svd:factors=0", "factors"),
            ("pop:window_days=-1", "window_days"),
        ] {
            let e = spec
                .parse::<ModelSpec>()
                .unwrap()
                .resolve()
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{key}`")), "{spec}: {e}");
            let e = spec
                .parse::<ModelSpec>()
                .unwrap()
                .fit(&x)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{key}`")), "{spec}: {e}");
        }
    }

    #[test]
    fn edge_values_resolve_or_name_their_key() {
        let ok = |s: &str| s.parse::<ModelSpec>().unwrap().resolve().unwrap();
        let v = ok("als:seed=18446744073709551615");
        assert_eq!(v["seed"], u64::MAX);
        assert!(ok("pop:window_days=none")["window_days"].is_null());
        assert_eq!(ok("pop:window_days=7")["window_days"], 7.0);
        for (spec, key) in [
            ("bpr:learning_rate=1e39", "learning_rate"),
            ("als:alpha=inf", "alpha"),
            ("als:alpha=nan", "alpha"),
            ("als:seed=-1", "seed"),
            ("als:factors=", "factors"),
            ("pop:window_days=1e-12", "window_days"),
        ] {
            let e = spec
                .parse::<ModelSpec>()
                .unwrap()
                .resolve()
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{key}`")), "{spec}: {e}");
        }
    }

    #[test]
    fn specs_round_trip_through_the_model() {
        let x = Interactions::from_tuples(2, 2, [(0, 0, 1.0, 0), (1, 1, 1.0, 0)]).unwrap();
        let m = "als:factors=3,regularization=0.01,solver=cholesky"
            .parse::<ModelSpec>()
            .unwrap()
            .fit(&x)
            .unwrap();
        let s = m.spec();
        assert_eq!(s.params["regularization"], "0.01");
        assert_eq!(s.params["solver"], "cholesky");
        assert_eq!(s.to_string().parse::<ModelSpec>().unwrap(), s);
    }

    #[test]
    fn models_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Model>();
    }
}
