//! Bayesian personalized ranking (Rendle et al., "BPR: Bayesian Personalized
//! Ranking from Implicit Feedback", UAI 2009), trained by stochastic gradient
//! descent on sampled (user, positive, negative) triples, with an item bias.
//!
//! Each epoch samples as many triples as there are interactions, with one
//! random stream per epoch. Training is sequential for now, so results are
//! exactly reproducible; a parallel trainer is future work.

use crate::common::{check_finite, dot, Train};
use because_core::rng::Rng;
use because_core::{Error, Interactions, Query, Recommender, Result};

/// BPR parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct BprParams {
    /// Latent dimensions.
    pub factors: usize,
    /// SGD learning rate.
    pub learning_rate: f32,
    /// L2 regularization.
    pub regularization: f32,
    /// Passes over the data.
    pub epochs: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for BprParams {
    fn default() -> Self {
        BprParams { factors: 64, learning_rate: 0.05, regularization: 0.01, epochs: 100, seed: 42 }
    }
}

/// A fitted BPR model. Item vectors have one more entry than user vectors:
/// the item bias (users see it through a constant 1).
#[derive(Clone, Debug)]
pub struct Bpr {
    pub(crate) params: BprParams,
    pub(crate) train: Train,
    pub(crate) user_factors: Vec<f32>,
    pub(crate) item_factors: Vec<f32>,
}

impl BprParams {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if self.factors == 0 {
            return Err(Error::param("factors", "must be at least 1"));
        }
        if !(self.learning_rate > 0.0) {
            return Err(Error::param("learning-rate", "must be positive"));
        }
        if !(self.regularization >= 0.0) {
            return Err(Error::param("regularization", "must be non-negative"));
        }
        if self.epochs == 0 {
            return Err(Error::param("epochs", "must be at least 1"));
        }
        Ok(())
    }

    /// Fits on `x`.
    pub fn fit(&self, x: &Interactions) -> Result<Bpr> {
        self.validate()?;
        let train = Train::new(x);
        let (nu, ni) = (train.ui.n_rows(), train.ui.n_cols());
        let d = self.factors + 1;
        let mut rng = Rng::new(self.seed);
        // User vectors end with a constant 1 that multiplies the item bias.
        let mut users: Vec<f32> = (0..nu * d)
            .map(|k| if k % d == self.factors { 1.0 } else { ((rng.next_f64() - 0.5) / self.factors as f64) as f32 })
            .collect();
        let mut items: Vec<f32> =
            (0..ni * d).map(|k| if k % d == self.factors { 0.0 } else { ((rng.next_f64() - 0.5) / self.factors as f64) as f32 }).collect();
        let nnz = train.ui.nnz();
        if nnz == 0 || ni < 2 {
            return Err(Error::Empty("BPR needs interactions and at least two items".into()));
        }
        // Interaction index -> user, for uniform sampling of positives.
        let row_of: Vec<u32> = (0..nu).flat_map(|u| std::iter::repeat_n(u as u32, train.ui.row_indices(u).len())).collect();
        let all_items = train.ui.indices();
        let (lr, reg, f) = (self.learning_rate, self.regularization, self.factors);
        for epoch in 0..self.epochs {
            let mut rng = Rng::stream(self.seed, epoch as u64 + 1);
            for _ in 0..nnz {
                let k = rng.below(nnz as u64) as usize;
                let u = row_of[k] as usize;
                let i = all_items[k] as usize;
                let liked = train.ui.row_indices(u);
                let j = loop {
                    let j = rng.below(ni as u64) as u32;
                    if liked.binary_search(&j).is_err() {
                        break j as usize;
                    }
                    if liked.len() >= ni {
                        break usize::MAX;
                    }
                };
                if j == usize::MAX {
                    continue;
                }
                let (uo, io, jo) = (u * d, i * d, j * d);
                let mut x = 0.0f32;
                for t in 0..d {
                    x += users[uo + t] * (items[io + t] - items[jo + t]);
                }
                let z = 1.0 / (1.0 + x.exp());
                for t in 0..d {
                    let uf = users[uo + t];
                    let (ifac, jfac) = (items[io + t], items[jo + t]);
                    if t < f {
                        users[uo + t] += lr * (z * (ifac - jfac) - reg * uf);
                    }
                    items[io + t] += lr * (z * uf - reg * ifac);
                    items[jo + t] += lr * (-z * uf - reg * jfac);
                }
            }
            check_finite("bpr", &format!("factors after epoch {}", epoch + 1), &items)?;
        }
        check_finite("bpr", "user factors", &users)?;
        Ok(Bpr { params: self.clone(), train, user_factors: users, item_factors: items })
    }
}

impl Bpr {
    fn dim(&self) -> usize {
        self.params.factors + 1
    }
    /// User vector (factors, then the constant 1).
    pub fn user_vector(&self, user: u32) -> &[f32] {
        let d = self.dim();
        &self.user_factors[user as usize * d..(user as usize + 1) * d]
    }
    /// Item vector (factors, then the bias).
    pub fn item_vector(&self, item: u32) -> &[f32] {
        let d = self.dim();
        &self.item_factors[item as usize * d..(item as usize + 1) * d]
    }
    /// A user vector for an ad-hoc history: the mean of its items' factors
    /// weighted by value (BPR has no closed-form fold-in).
    pub fn fold_in(&self, items: &[u32], values: &[f32]) -> Vec<f32> {
        let d = self.dim();
        let mut u = vec![0.0f32; d];
        let total: f32 = values.iter().map(|v| v.abs()).sum::<f32>().max(1e-12);
        for (&i, &v) in items.iter().zip(values) {
            for (a, &b) in u.iter_mut().zip(self.item_vector(i)) {
                *a += v / total * b;
            }
        }
        u[d - 1] = 1.0;
        u
    }
}

impl Recommender for Bpr {
    fn kind(&self) -> &'static str {
        "bpr"
    }
    fn n_users(&self) -> usize {
        self.train.ui.n_rows()
    }
    fn n_items(&self) -> usize {
        self.train.ui.n_cols()
    }
    fn history(&self, user: u32) -> (&[u32], &[f32]) {
        (self.train.items(user), self.train.values(user))
    }
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let folded;
        let u: &[f32] = match *query {
            Query::User(u) => self.user_vector(u),
            Query::History { items, values } => {
                folded = self.fold_in(items, values);
                &folded
            }
        };
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(u, self.item_vector(i as u32));
        }
        Ok(())
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        let f = self.params.factors;
        let q = &self.item_vector(item)[..f];
        let qn = dot(q, q).sqrt().max(1e-12);
        for (i, o) in out.iter_mut().enumerate() {
            let y = &self.item_vector(i as u32)[..f];
            *o = dot(q, y) / (qn * dot(y, y).sqrt().max(1e-12));
        }
        Ok(())
    }
}
