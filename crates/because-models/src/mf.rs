//! Biased matrix factorization for explicit ratings (Koren, Bell and
//! Volinsky, "Matrix Factorization Techniques for Recommender Systems",
//! IEEE Computer 2009), trained by SGD on the squared error:
//! `r̂(u, i) = μ + b_u + b_i + p_u · q_i`. Scores are predicted ratings, so
//! it ranks and also predicts (for RMSE and MAE).

use crate::common::{check_finite, dot, solve_spd, Train};
use crate::registry::{ModelKind, Validate};
use crate::tensors::{PersistError, TensorsIn, TensorsOut};
use because_core::rng::Rng;
use because_core::{
    Capabilities, Epoch, EpochObserver, Error, Interactions, ItemEmbeddings, Query,
    RatingPredictor, Recommender, Result, Sequence,
};
use serde::{Deserialize, Serialize};

/// Biased MF parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfParams {
    /// Latent dimensions.
    pub factors: usize,
    /// SGD learning rate.
    pub learning_rate: f32,
    /// L2 regularization of factors and biases.
    pub regularization: f32,
    /// Passes over the ratings.
    pub epochs: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for MfParams {
    fn default() -> Self {
        MfParams {
            factors: 32,
            learning_rate: 0.01,
            regularization: 0.05,
            epochs: 30,
            seed: 42,
        }
    }
}

/// A fitted biased MF model.
#[derive(Clone, Debug)]
pub struct BiasedMf {
    pub(crate) params: MfParams,
    pub(crate) train: Train,
    pub(crate) mean: f32,
    pub(crate) user_bias: Vec<f32>,
    pub(crate) item_bias: Vec<f32>,
    pub(crate) user_factors: Vec<f32>,
    pub(crate) item_factors: Vec<f32>,
}

impl Validate for MfParams {
    fn validate(&self) -> Result<()> {
        crate::common::validate_sgd(
            self.factors,
            self.learning_rate,
            self.regularization,
            self.epochs,
        )
    }
}

impl MfParams {
    /// Fits on the ratings (values) of `x`.
    pub fn fit(&self, x: &Interactions) -> Result<BiasedMf> {
        self.fit_observed(x, 0, &mut because_core::no_observer())
    }

    /// Fits on the ratings of `x`, calling `observer` after every epoch
    /// with the epoch's mean squared training error as its loss, and a
    /// snapshot of the model every `every` epochs (never if 0).
    pub fn fit_observed(
        &self,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<BiasedMf> {
        self.validate()?;
        let start = std::time::Instant::now();
        let train = Train::new(x);
        let (nu, ni, f) = (train.ui.n_rows(), train.ui.n_cols(), self.factors);
        let nnz = train.ui.nnz();
        if nnz == 0 {
            return Err(Error::Empty("biased MF needs ratings".into()));
        }
        let mean = (train.ui.data().iter().map(|&v| v as f64).sum::<f64>() / nnz as f64) as f32;
        let mut rng = Rng::new(self.seed);
        let mut init =
            |n: usize| -> Vec<f32> { (0..n * f).map(|_| (rng.normal() * 0.1) as f32).collect() };
        let mut p = init(nu);
        let mut q = init(ni);
        let (mut bu, mut bi) = (vec![0.0f32; nu], vec![0.0f32; ni]);
        let rows: Vec<u32> = (0..nu)
            .flat_map(|u| std::iter::repeat_n(u as u32, train.ui.row_indices(u).len()))
            .collect();
        let mut order: Vec<usize> = (0..nnz).collect();
        let (lr, reg) = (self.learning_rate, self.regularization);
        let mut epochs = self.epochs;
        for epoch in 0..self.epochs {
            Rng::stream(self.seed, epoch as u64 + 1).shuffle(&mut order);
            let mut squared = 0.0f64;
            for &k in &order {
                let (u, i) = (rows[k] as usize, train.ui.indices()[k] as usize);
                let r = train.ui.data()[k];
                let (pu, qi) = (&mut p[u * f..(u + 1) * f], &mut q[i * f..(i + 1) * f]);
                let e = r - (mean + bu[u] + bi[i] + dot(pu, qi));
                squared += (e as f64) * (e as f64);
                bu[u] += lr * (e - reg * bu[u]);
                bi[i] += lr * (e - reg * bi[i]);
                for (a, b) in pu.iter_mut().zip(qi.iter_mut()) {
                    let (a0, b0) = (*a, *b);
                    *a += lr * (e * b0 - reg * a0);
                    *b += lr * (e * a0 - reg * b0);
                }
            }
            check_finite(
                <BiasedMf as ModelKind>::NAME,
                &format!("factors after epoch {}", epoch + 1),
                &q,
            )?;
            let snapshot = (every > 0 && (epoch + 1) % every == 0).then(|| BiasedMf {
                params: MfParams {
                    epochs: epoch + 1,
                    ..self.clone()
                },
                train: train.clone(),
                mean,
                user_bias: bu.clone(),
                item_bias: bi.clone(),
                user_factors: p.clone(),
                item_factors: q.clone(),
            });
            let report = Epoch {
                epoch: epoch + 1,
                of: self.epochs,
                loss: Some(squared / nnz as f64),
                elapsed: start.elapsed(),
                model: snapshot.as_ref().map(|m| m as &dyn Recommender),
            };
            if observer(&report).is_break() {
                epochs = epoch + 1;
                break;
            }
        }
        check_finite(<BiasedMf as ModelKind>::NAME, "user factors", &p)?;
        Ok(BiasedMf {
            params: MfParams {
                epochs,
                ..self.clone()
            },
            train,
            mean,
            user_bias: bu,
            item_bias: bi,
            user_factors: p,
            item_factors: q,
        })
    }
}

impl BiasedMf {
    fn pu(&self, u: u32) -> &[f32] {
        let f = self.params.factors;
        &self.user_factors[u as usize * f..(u as usize + 1) * f]
    }
    fn qi(&self, i: u32) -> &[f32] {
        let f = self.params.factors;
        &self.item_factors[i as usize * f..(i as usize + 1) * f]
    }
    /// The predicted rating of `item` by known `user`.
    pub fn predict(&self, user: u32, item: u32) -> f32 {
        self.mean
            + self.user_bias[user as usize]
            + self.item_bias[item as usize]
            + dot(self.pu(user), self.qi(item))
    }
    /// User bias and factors for an ad-hoc history of ratings (ridge
    /// regression with the item side fixed).
    pub fn fold_in(&self, items: &[u32], ratings: &[f32]) -> (f32, Vec<f32>) {
        let f = self.params.factors;
        let reg = self.params.regularization.max(1e-3) as f64;
        let resid: Vec<f64> = items
            .iter()
            .zip(ratings)
            .map(|(&i, &r)| (r - self.mean - self.item_bias[i as usize]) as f64)
            .collect();
        let b = resid.iter().sum::<f64>()
            / (items.len() as f64 + reg * items.len().max(1) as f64 / 10.0 + 1.0);
        let mut a = vec![0.0f64; f * f];
        let mut rhs = vec![0.0f64; f];
        for (&i, &e) in items.iter().zip(&resid) {
            let qi = self.qi(i);
            for x in 0..f {
                rhs[x] += (e - b) * qi[x] as f64;
                for y in 0..f {
                    a[x * f + y] += qi[x] as f64 * qi[y] as f64;
                }
            }
        }
        for x in 0..f {
            a[x * f + x] += reg * items.len().max(1) as f64;
        }
        (
            b as f32,
            solve_spd(a, rhs, f).into_iter().map(|v| v as f32).collect(),
        )
    }
}

impl ItemEmbeddings for BiasedMf {
    fn item_embeddings(&self) -> (&[f32], usize) {
        (&self.item_factors, self.params.factors)
    }
}

impl RatingPredictor for BiasedMf {
    fn predict_rating(&self, user: u32, item: u32) -> f32 {
        self.predict(user, item)
    }
}

impl because_core::InnerProduct for BiasedMf {
    /// The item factors, with the item bias; the global mean and the
    /// user's bias are the query's offset.
    fn item_vectors(&self) -> because_core::ItemVectors<'_> {
        because_core::ItemVectors {
            data: &self.item_factors,
            dim: self.params.factors,
            stride: self.params.factors,
            bias: Some(&self.item_bias),
        }
    }
    fn query_vector(&self, query: &Query<'_>) -> Result<because_core::QueryVector> {
        let (bias, vector) = match *query {
            Query::User(u) => (self.user_bias[u as usize], self.pu(u).to_vec()),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                self.fold_in(items, values)
            }
        };
        Ok(because_core::QueryVector {
            vector,
            offset: self.mean + bias,
        })
    }
    fn similarity_vectors(&self) -> Option<because_core::ItemVectors<'_>> {
        Some(because_core::ItemVectors::dense(
            &self.item_factors,
            self.params.factors,
        ))
    }
}

impl ModelKind for BiasedMf {
    const NAME: &'static str = "mf";
    const ABOUT: &'static str = "biased matrix factorization for explicit ratings (SGD)";
    const CAPABILITIES: Capabilities = Capabilities {
        similar_items: true,
        item_embeddings: true,
        inner_product: true,
        rating_prediction: true,
        fold_in: true,
        ..Capabilities::NONE
    };
    const RATINGS: bool = true;
    const EPOCHS: Option<&'static str> = Some("epochs");
    const EXAMPLE: &'static str = "factors=4,epochs=5";
    crate::common::kind_accessors!(MfParams);
    fn fit(
        p: &MfParams,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        p.fit_observed(x, every, observer)
    }
    fn save(&self, out: &mut TensorsOut) {
        let (nu, ni, k) = (
            self.train.ui.n_rows(),
            self.train.ui.n_cols(),
            self.params.factors,
        );
        out.f32("mean", &[self.mean], &[1]);
        out.f32("user_bias", &self.user_bias, &[nu]);
        out.f32("item_bias", &self.item_bias, &[ni]);
        out.f32("user_factors", &self.user_factors, &[nu, k]);
        out.f32("item_factors", &self.item_factors, &[ni, k]);
    }
    fn load(params: MfParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let (nu, ni, k) = (train.ui.n_rows(), train.ui.n_cols(), params.factors);
        Ok(BiasedMf {
            mean: t.f32("mean", &[1])?[0],
            user_bias: t.f32("user_bias", &[nu])?,
            item_bias: t.f32("item_bias", &[ni])?,
            user_factors: t.f32("user_factors", &[nu, k])?,
            item_factors: t.f32("item_factors", &[ni, k])?,
            params,
            train,
        })
    }
}

impl Recommender for BiasedMf {
    fn kind(&self) -> &'static str {
        <Self as ModelKind>::NAME
    }
    crate::common::train_accessors!();
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let folded;
        let (bu, pu): (f32, &[f32]) = match *query {
            Query::User(u) => (self.user_bias[u as usize], self.pu(u)),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                folded = self.fold_in(items, values);
                (folded.0, &folded.1)
            }
        };
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.mean + bu + self.item_bias[i] + dot(pu, self.qi(i as u32));
        }
        Ok(())
    }
    fn inner_product(&self) -> Option<&dyn because_core::InnerProduct> {
        Some(self)
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        crate::common::cosine_to_all(&self.item_factors, self.params.factors, item, out);
        Ok(())
    }
    fn embeddings(&self) -> Option<&dyn ItemEmbeddings> {
        Some(self)
    }
    fn rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        Some(self)
    }
}
