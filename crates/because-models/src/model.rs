//! [`Model`]: any model, built from a [`ModelSpec`].

use crate::{
    Als, AlsParams, BiasedMf, Bpr, BprParams, Ease, EaseParams, ItemKnn, ItemKnnParams, MfParams,
    Popularity, PopularityParams, PureSvd, Solver, SvdParams, UserKnn, UserKnnParams, Weighting,
};
use because_core::{Error, Interactions, Query, Recommender, Result};
use std::collections::BTreeMap;

/// Model kinds, as named on the command line.
pub const KINDS: [&str; 8] = [
    "pop", "itemknn", "userknn", "ease", "svd", "als", "bpr", "mf",
];

/// A model kind and its parameters as text, such as `als:factors=64,regularization=0.05`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The kind (one of [`KINDS`]).
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

fn keys_for(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "pop" => &["window_days"],
        "itemknn" => &["neighbours", "shrinkage", "weighting"],
        "userknn" => &["neighbours", "shrinkage"],
        "ease" => &["lambda"],
        "svd" => &["factors", "oversampling", "power_iterations", "seed"],
        "als" => &[
            "factors",
            "regularization",
            "alpha",
            "iterations",
            "cg_steps",
            "solver",
            "seed",
        ],
        "bpr" => &[
            "factors",
            "learning_rate",
            "regularization",
            "epochs",
            "seed",
            "loss",
            "max_sampled",
        ],
        "mf" => &[
            "factors",
            "learning_rate",
            "regularization",
            "epochs",
            "seed",
        ],
        _ => return None,
    })
}

impl std::str::FromStr for ModelSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<ModelSpec> {
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        let kind = kind.trim().to_lowercase();
        let keys = keys_for(&kind).ok_or_else(|| {
            Error::param(
                "model",
                format!("unknown model {kind:?} (one of {})", KINDS.join(", ")),
            )
        })?;
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
        self.params.insert(key.to_string(), value.to_string());
        self
    }

    fn get<T: std::str::FromStr>(&self, key: &'static str, default: T) -> Result<T> {
        match self.params.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                Error::param(key, format!("{v:?} is not a valid value for {}", self.kind))
            }),
        }
    }

    /// Fits the model on `x`.
    pub fn fit(&self, x: &Interactions) -> Result<Model> {
        Ok(match self.kind.as_str() {
            "pop" => {
                let days: Option<f64> = match self.params.get("window_days") {
                    None => None,
                    Some(_) => Some(self.get("window_days", 0.0)?),
                };
                Model::Popularity(
                    PopularityParams {
                        window_ms: days.map(|d| (d * 86_400_000.0) as i64),
                    }
                    .fit(x)?,
                )
            }
            "itemknn" => {
                let d = ItemKnnParams::default();
                let weighting: String = self.get("weighting", "none".to_string())?;
                Model::ItemKnn(
                    ItemKnnParams {
                        neighbours: self.get("neighbours", d.neighbours)?,
                        shrinkage: self.get("shrinkage", d.shrinkage)?,
                        weighting: weighting.parse::<Weighting>()?,
                    }
                    .fit(x)?,
                )
            }
            "userknn" => {
                let d = UserKnnParams::default();
                Model::UserKnn(
                    UserKnnParams {
                        neighbours: self.get("neighbours", d.neighbours)?,
                        shrinkage: self.get("shrinkage", d.shrinkage)?,
                    }
                    .fit(x)?,
                )
            }
            "ease" => Model::Ease(
                EaseParams {
                    lambda: self.get("lambda", EaseParams::default().lambda)?,
                }
                .fit(x)?,
            ),
            "svd" => {
                let d = SvdParams::default();
                Model::Svd(
                    SvdParams {
                        factors: self.get("factors", d.factors)?,
                        oversampling: self.get("oversampling", d.oversampling)?,
                        power_iterations: self.get("power_iterations", d.power_iterations)?,
                        seed: self.get("seed", d.seed)?,
                    }
                    .fit(x)?,
                )
            }
            "als" => Model::Als(self.als_params()?.fit(x)?),
            "bpr" => Model::Bpr(self.bpr_params()?.fit(x)?),
            "mf" => {
                let d = MfParams::default();
                Model::Mf(
                    MfParams {
                        factors: self.get("factors", d.factors)?,
                        learning_rate: self.get("learning_rate", d.learning_rate)?,
                        regularization: self.get("regularization", d.regularization)?,
                        epochs: self.get("epochs", d.epochs)?,
                        seed: self.get("seed", d.seed)?,
                    }
                    .fit(x)?,
                )
            }
            other => return Err(Error::param("model", format!("unknown model {other:?}"))),
        })
    }

    /// Fits on `x`, calling `observer` after each epoch of iterative models
    /// (ALS after every iteration, BPR every `every` epochs) and once after
    /// fitting the others.
    pub fn fit_observed(
        &self,
        x: &Interactions,
        every: usize,
        observer: &mut because_core::EpochObserver<'_>,
    ) -> Result<Model> {
        match self.kind.as_str() {
            "als" => Ok(Model::Als(self.als_params()?.fit_observed(x, observer)?)),
            "bpr" => Ok(Model::Bpr(self.bpr_params()?.fit_observed(
                x,
                every.max(1),
                observer,
            )?)),
            _ => {
                let m = self.fit(x)?;
                let _ = observer(1, &m);
                Ok(m)
            }
        }
    }

    fn als_params(&self) -> Result<AlsParams> {
        let d = AlsParams::default();
        let solver = match self.get("solver", "cg".to_string())?.as_str() {
            "cg" => Solver::ConjugateGradient,
            "cholesky" => Solver::Cholesky,
            other => {
                return Err(Error::param(
                    "solver",
                    format!("{other:?} is not cg or cholesky"),
                ))
            }
        };
        Ok(AlsParams {
            factors: self.get("factors", d.factors)?,
            regularization: self.get("regularization", d.regularization)?,
            alpha: self.get("alpha", d.alpha)?,
            iterations: self.get("iterations", d.iterations)?,
            cg_steps: self.get("cg_steps", d.cg_steps)?,
            solver,
            seed: self.get("seed", d.seed)?,
        })
    }

    fn bpr_params(&self) -> Result<BprParams> {
        let d = BprParams::default();
        Ok(BprParams {
            factors: self.get("factors", d.factors)?,
            learning_rate: self.get("learning_rate", d.learning_rate)?,
            regularization: self.get("regularization", d.regularization)?,
            epochs: self.get("epochs", d.epochs)?,
            seed: self.get("seed", d.seed)?,
            loss: self.loss()?,
            max_sampled: self.get("max_sampled", d.max_sampled)?,
        })
    }

    fn loss(&self) -> Result<crate::Loss> {
        match self.get("loss", "bpr".to_string())?.as_str() {
            "bpr" => Ok(crate::Loss::Bpr),
            "warp" => Ok(crate::Loss::Warp),
            other => Err(Error::param(
                "loss",
                format!("{other:?} is not bpr or warp"),
            )),
        }
    }

    /// The key that counts epochs for iterative models.
    pub fn epoch_key(&self) -> Option<&'static str> {
        match self.kind.as_str() {
            "als" => Some("iterations"),
            "bpr" => Some("epochs"),
            _ => None,
        }
    }

    /// Whether the model is trained on explicit ratings rather than binary feedback.
    pub fn needs_ratings(&self) -> bool {
        self.kind == "mf"
    }
}

/// Any fitted model.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Model {
    /// Popularity.
    Popularity(Popularity),
    /// Item-kNN.
    ItemKnn(ItemKnn),
    /// User-kNN.
    UserKnn(UserKnn),
    /// EASE.
    Ease(Ease),
    /// PureSVD.
    Svd(PureSvd),
    /// Implicit ALS.
    Als(Als),
    /// BPR.
    Bpr(Bpr),
    /// Biased matrix factorization (explicit ratings).
    Mf(BiasedMf),
}

macro_rules! each {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            Model::Popularity($m) => $body,
            Model::ItemKnn($m) => $body,
            Model::UserKnn($m) => $body,
            Model::Ease($m) => $body,
            Model::Svd($m) => $body,
            Model::Als($m) => $body,
            Model::Bpr($m) => $body,
            Model::Mf($m) => $body,
        }
    };
}

impl Model {
    /// The full parameter set, defaults included, as a spec.
    pub fn spec(&self) -> ModelSpec {
        let mut s = ModelSpec::new(self.kind()).unwrap_or(ModelSpec {
            kind: self.kind().into(),
            params: BTreeMap::new(),
        });
        match self {
            Model::Popularity(m) => {
                if let Some(w) = m.params.window_ms {
                    s = s.with("window_days", w as f64 / 86_400_000.0);
                }
            }
            Model::ItemKnn(m) => {
                let w = match m.params.weighting {
                    Weighting::None => "none",
                    Weighting::TfIdf => "tfidf",
                    Weighting::Bm25 => "bm25",
                };
                s = s
                    .with("neighbours", m.params.neighbours)
                    .with("shrinkage", m.params.shrinkage)
                    .with("weighting", w);
            }
            Model::UserKnn(m) => {
                s = s
                    .with("neighbours", m.params.neighbours)
                    .with("shrinkage", m.params.shrinkage)
            }
            Model::Ease(m) => s = s.with("lambda", m.params.lambda),
            Model::Svd(m) => {
                let p = &m.params;
                s = s
                    .with("factors", p.factors)
                    .with("oversampling", p.oversampling)
                    .with("power_iterations", p.power_iterations)
                    .with("seed", p.seed);
            }
            Model::Als(m) => {
                let p = &m.params;
                let solver = if p.solver == Solver::Cholesky {
                    "cholesky"
                } else {
                    "cg"
                };
                s = s
                    .with("factors", p.factors)
                    .with("regularization", p.regularization)
                    .with("alpha", p.alpha)
                    .with("iterations", p.iterations)
                    .with("cg_steps", p.cg_steps)
                    .with("solver", solver)
                    .with("seed", p.seed);
            }
            Model::Bpr(m) => {
                let p = &m.params;
                s = s
                    .with("factors", p.factors)
                    .with("learning_rate", p.learning_rate)
                    .with("regularization", p.regularization)
                    .with("epochs", p.epochs)
                    .with("seed", p.seed)
                    .with(
                        "loss",
                        if p.loss == crate::Loss::Warp {
                            "warp"
                        } else {
                            "bpr"
                        },
                    )
                    .with("max_sampled", p.max_sampled);
            }
            Model::Mf(m) => {
                let p = &m.params;
                s = s
                    .with("factors", p.factors)
                    .with("learning_rate", p.learning_rate)
                    .with("regularization", p.regularization)
                    .with("epochs", p.epochs)
                    .with("seed", p.seed);
            }
        }
        s
    }

    /// The training data the model keeps (users × items and its transpose).
    pub fn train(&self) -> &crate::Train {
        each!(self, m => &m.train)
    }

    /// Item embeddings (row-major, with their width) for factor models.
    pub fn item_embeddings(&self) -> Option<(&[f32], usize)> {
        match self {
            Model::Als(m) => Some((&m.item_factors, m.params.factors)),
            Model::Svd(m) => Some((&m.item_factors, m.params.factors)),
            Model::Mf(m) => Some((&m.item_factors, m.params.factors)),
            _ => None,
        }
    }

    /// The predicted rating of `item` by `user`, for rating predictors.
    pub fn predict_rating(&self, user: u32, item: u32) -> Option<f32> {
        match self {
            Model::Mf(m) => Some(m.predict(user, item)),
            _ => None,
        }
    }
}

impl Recommender for Model {
    fn kind(&self) -> &'static str {
        each!(self, m => m.kind())
    }
    fn n_users(&self) -> usize {
        each!(self, m => m.n_users())
    }
    fn n_items(&self) -> usize {
        each!(self, m => m.n_items())
    }
    fn history(&self, user: u32) -> (&[u32], &[f32]) {
        each!(self, m => m.history(user))
    }
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        each!(self, m => m.score_into(query, out))
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        each!(self, m => m.similar_into(item, out))
    }
    fn score_users_into(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        each!(self, m => m.score_users_into(users, out))
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
        let e = "ease:lambda=abc"
            .parse::<ModelSpec>()
            .unwrap()
            .fit(&x)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`lambda`"), "{e}");
    }

    #[test]
    fn params_are_validated() {
        let x = Interactions::from_tuples(2, 2, [(0, 0, 1.0, 0), (1, 1, 1.0, 0)]).unwrap();
        for (spec, key) in [
            ("ease:lambda=0", "lambda"),
            ("als:factors=0", "factors"),
            ("als:regularization=-1", "regularization"),
            ("bpr:learning_rate=0", "learning-rate"),
            ("itemknn:neighbours=0", "neighbours"),
            ("svd:factors=0", "factors"),
            ("pop:window_days=-1", "window"),
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
    fn models_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Model>();
    }
}
