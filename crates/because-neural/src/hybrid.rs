//! A session + history hybrid (seed 001): a sequential model reads the
//! latest events (the current session, short-term intent), a long-term
//! model reads the whole history, and the two scores are fused.
//!
//! Each part's scores are standardized over the catalogue for the query
//! (minus their mean, over their standard deviation), so that a logit and
//! an EASE score mix on one scale, then weighted: `weight · z(session) +
//! (1 - weight) · z(history)`. The weight is a parameter, chosen on
//! validation data with `because tune --grid weight=...` like any other.
//!
//! Both parts are registered kinds given by spec (`session=sasrec:...`,
//! `history=ease:...`), fitted on the same data and saved in the same model
//! folder. Because the fused score is an exact sum of the two scaled parts
//! ([`Fused`]), an explanation splits it exactly into the session part and
//! the history part and explains each with that part's own method.

use because_core::{
    Capabilities, EpochObserver, Error, Interactions, Query, Recommender, Result, Sequence,
    SideInfo,
};
use because_models::persist::{PersistError, TensorsIn, TensorsOut};
use because_models::{Fused, Model, ModelKind, ModelSpec, Part, Train, Validate};
use serde::{Deserialize, Serialize};

/// Hybrid parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HybridParams {
    /// The sequential model of the session, as a spec (`sasrec:epochs=30`).
    pub session: String,
    /// The long-term model of the whole history, as a spec (`ease:lambda=500`).
    pub history: String,
    /// The session part's weight, in [0, 1].
    pub weight: f32,
    /// How many of the latest events make the session.
    pub session_items: usize,
}

impl Default for HybridParams {
    fn default() -> Self {
        HybridParams {
            session: <crate::SasRec as ModelKind>::NAME.into(),
            history: <because_models::Ease as ModelKind>::NAME.into(),
            weight: 0.5,
            session_items: 10,
        }
    }
}

/// Parses a part's spec, naming the key on error.
fn part_spec(key: &'static str, text: &str) -> Result<ModelSpec> {
    let spec: ModelSpec = text
        .replace(';', ",")
        .parse()
        .map_err(|e| Error::param(key, format!("{text:?}: {e}")))?;
    spec.resolve()
        .map_err(|e| Error::param(key, format!("{text:?}: {e}")))?;
    if spec.entry()?.needs_ratings {
        return Err(Error::param(
            key,
            format!("{text:?} predicts ratings; a part must rank"),
        ));
    }
    Ok(spec)
}

impl Validate for HybridParams {
    fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.weight) {
            return Err(Error::param("weight", "must be in [0, 1]"));
        }
        if self.session_items == 0 || self.session_items > 10_000 {
            return Err(Error::param("session_items", "must be in 1..=10000"));
        }
        for (key, text) in [("session", &self.session), ("history", &self.history)] {
            let spec = part_spec(key, text)?;
            if spec.kind == <Hybrid as ModelKind>::NAME {
                return Err(Error::param(key, "a hybrid cannot be its own part"));
            }
        }
        Ok(())
    }
}

/// A fitted hybrid.
#[derive(Clone, Debug)]
pub struct Hybrid {
    params: HybridParams,
    train: Train,
    session: Model,
    history: Model,
    /// Each user's interactions in time order (CSR over users).
    indptr: Vec<u32>,
    items: Vec<u32>,
    values: Vec<f32>,
}

/// Mean and standard deviation (1 when the scores are all equal).
fn moments(s: &[f32]) -> (f32, f32) {
    let n = s.len().max(1) as f64;
    let mean = s.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = s
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let sd = if var > 0.0 && var.is_finite() {
        var.sqrt()
    } else {
        1.0
    };
    (mean as f32, sd as f32)
}

impl Hybrid {
    fn sequence(&self, u: u32) -> (&[u32], &[f32]) {
        let (a, b) = (
            self.indptr[u as usize] as usize,
            self.indptr[u as usize + 1] as usize,
        );
        (&self.items[a..b], &self.values[a..b])
    }
    /// The session model's part of a history in time order: its latest
    /// `session_items` events.
    fn session_of<'a>(&self, items: &'a [u32], values: &'a [f32]) -> (&'a [u32], &'a [f32]) {
        let from = items.len().saturating_sub(self.params.session_items);
        (&items[from..], &values[from..])
    }
    /// The two parts' raw scores of every item for a history in time order.
    fn raw(&self, items: &[u32], values: &[f32]) -> Result<[Vec<f32>; 2]> {
        let (si, sv) = self.session_of(items, values);
        let session = if si.is_empty() {
            vec![0.0; self.n_items()]
        } else {
            self.session.scores(&Query::Sequence(Sequence {
                items: si,
                values: sv,
                times: None,
                events: None,
            }))?
        };
        let history = self.history.scores(&Query::History { items, values })?;
        Ok([session, history])
    }
    /// Scale and offset of each part for raw scores (a part with no
    /// history to read weighs nothing).
    fn weights(&self, raw: &[Vec<f32>; 2], items: &[u32]) -> [(f32, f32); 2] {
        let w = [self.params.weight, 1.0 - self.params.weight];
        let mut out = [(0.0, 0.0); 2];
        for (k, s) in raw.iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            let (mean, sd) = moments(s);
            out[k] = (w[k] / sd, -w[k] * mean / sd);
        }
        out
    }
    /// The history a query stands for, in time order.
    fn bag<'a>(&'a self, query: &'a Query<'a>) -> (&'a [u32], &'a [f32]) {
        match *query {
            Query::User(u) => self.sequence(u),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                (items, values)
            }
        }
    }
}

impl Hybrid {
    /// The same parts fused with another session weight (in [0, 1]): the
    /// weight is read only when scoring, so choosing it on validation data
    /// needs no refitting.
    pub fn with_weight(&self, weight: f32) -> Result<Hybrid> {
        let params = HybridParams {
            weight,
            ..self.params.clone()
        };
        params.validate()?;
        Ok(Hybrid {
            params,
            ..self.clone()
        })
    }
}

impl Fused for Hybrid {
    fn parts(&self, items: &[u32], values: &[f32]) -> Result<Vec<Part<'_>>> {
        let raw = self.raw(items, values)?;
        let [(ss, so), (hs, ho)] = self.weights(&raw, items);
        let (si, sv) = self.session_of(items, values);
        Ok(vec![
            Part {
                name: "session",
                model: &self.session,
                items: si.to_vec(),
                values: sv.to_vec(),
                scale: ss,
                offset: so,
            },
            Part {
                name: "history",
                model: &self.history,
                items: items.to_vec(),
                values: values.to_vec(),
                scale: hs,
                offset: ho,
            },
        ])
    }
}

impl HybridParams {
    /// Fits both parts on `x` (with `side` for parts that read features),
    /// reporting the session model's epochs to `observer`.
    pub fn fit_side(
        &self,
        x: &Interactions,
        side: &SideInfo,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Hybrid> {
        self.validate()?;
        let session = part_spec("session", &self.session)?.fit_with(x, side, 0, observer)?;
        let history = part_spec("history", &self.history)?.fit_with(
            x,
            side,
            0,
            &mut because_core::no_observer(),
        )?;
        Ok(Hybrid {
            params: self.clone(),
            train: Train::new(x),
            session,
            history,
            indptr: x.indptr().iter().map(|&p| p as u32).collect(),
            items: x.items().to_vec(),
            values: x.values().to_vec(),
        })
    }
}

impl ModelKind for Hybrid {
    const NAME: &'static str = "hybrid";
    const ABOUT: &'static str =
        "a session model on the latest events fused with a long-term model on the whole history";
    const CAPABILITIES: Capabilities = Capabilities {
        ordered_sequences: true,
        fold_in: true,
        ..Capabilities::NONE
    };
    const EXAMPLE: &'static str =
        "session=sasrec:dim=8;heads=1;layers=1;epochs=2;max_len=8,history=ease:lambda=50";
    type Params = HybridParams;

    fn fit(
        params: &HybridParams,
        x: &Interactions,
        _every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        params.fit_side(x, &SideInfo::none(), observer)
    }
    fn fit_side(
        params: &HybridParams,
        x: &Interactions,
        side: &SideInfo,
        _every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        params.fit_side(x, side, observer)
    }
    fn fused(&self) -> Option<&dyn Fused> {
        Some(self)
    }
    fn params(&self) -> HybridParams {
        // The parts as fitted (epochs as actually run).
        HybridParams {
            session: self.session.spec().to_string().replace(',', ";"),
            history: self.history.spec().to_string().replace(',', ";"),
            ..self.params.clone()
        }
    }
    fn train(&self) -> &Train {
        &self.train
    }
    fn save(&self, out: &mut TensorsOut) {
        out.part("session", |t| self.session.save_tensors(t));
        out.part("history", |t| self.history.save_tensors(t));
        out.u32("sequence.indptr", &self.indptr, &[self.indptr.len()]);
        out.u32("sequence.items", &self.items, &[self.items.len()]);
        out.f32("sequence.values", &self.values, &[self.values.len()]);
    }
    fn load(params: HybridParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let part = |key: &'static str, text: &str| -> Result<Model, PersistError> {
            let spec = part_spec(key, text)?;
            Model::load_part(&spec.kind, &spec.resolve()?, train.clone(), &t.part(key))
        };
        let session = part("session", &params.session)?;
        let history = part("history", &params.history)?;
        let nu = train.ui.n_rows();
        let indptr = t.u32("sequence.indptr", &[nu + 1])?;
        let n = indptr.last().copied().unwrap_or(0) as usize;
        let items = t.u32("sequence.items", &[n])?;
        let values = t.f32("sequence.values", &[n])?;
        if indptr.windows(2).any(|w| w[0] > w[1])
            || items.iter().any(|&i| i as usize >= train.ui.n_cols())
        {
            return Err(PersistError::Core(Error::Shape(
                "the hybrid's sequences are not a valid CSR over the catalogue".into(),
            )));
        }
        Ok(Hybrid {
            params,
            train,
            session,
            history,
            indptr,
            items,
            values,
        })
    }
}

impl Recommender for Hybrid {
    fn kind(&self) -> &'static str {
        <Self as ModelKind>::NAME
    }
    fn n_users(&self) -> usize {
        self.train.ui.n_rows()
    }
    fn n_items(&self) -> usize {
        self.train.ui.n_cols()
    }
    fn history(&self, user: u32) -> (&[u32], &[f32]) {
        self.sequence(user)
    }
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let (items, values) = self.bag(query);
        let raw = self.raw(items, values)?;
        let w = self.weights(&raw, items);
        for (i, o) in out.iter_mut().enumerate() {
            *o = w[0].0 * raw[0][i] + w[0].1 + w[1].0 * raw[1][i] + w[1].1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use because_core::testing::block_data;

    fn fitted(weight: f32) -> Hybrid {
        crate::register().unwrap();
        let x = block_data(30, 24, 6, 3);
        HybridParams {
            session: "sasrec:dim=8;heads=1;layers=1;epochs=2;max_len=8".into(),
            history: "ease:lambda=10".into(),
            weight,
            session_items: 4,
        }
        .fit_side(&x, &SideInfo::none(), &mut because_core::no_observer())
        .unwrap()
    }

    #[test]
    fn the_parts_add_up_to_the_score() {
        let m = fitted(0.3);
        for u in 0..m.n_users() as u32 {
            let (items, values) = m.sequence(u);
            let mut fused = vec![0.0; m.n_items()];
            m.score_into(&Query::User(u), &mut fused).unwrap();
            let parts = m.parts(items, values).unwrap();
            assert_eq!(parts[0].items.len(), items.len().min(4));
            for t in [0u32, 5, 17] {
                let total: f32 = parts
                    .iter()
                    .map(|p| {
                        let q = Query::Sequence(Sequence {
                            items: &p.items,
                            values: &p.values,
                            times: None,
                            events: None,
                        });
                        p.scale * p.model.scores(&q).unwrap()[t as usize] + p.offset
                    })
                    .sum();
                assert!(
                    (total - fused[t as usize]).abs() < 1e-4,
                    "{total} vs {}",
                    fused[t as usize]
                );
            }
        }
    }

    #[test]
    fn weight_one_ranks_as_the_session_model_and_zero_as_the_history_model() {
        for (w, which) in [(1.0f32, 0usize), (0.0, 1)] {
            let m = fitted(w);
            let (items, values) = m.sequence(2);
            let parts = m.parts(items, values).unwrap();
            let p = &parts[which];
            let q = Query::Sequence(Sequence {
                items: &p.items,
                values: &p.values,
                times: None,
                events: None,
            });
            let rank = |s: &[f32]| {
                because_core::top_k(s, 10)
                    .iter()
                    .map(|x| x.item)
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                rank(&m.scores(&Query::User(2)).unwrap()),
                rank(&p.model.scores(&q).unwrap())
            );
        }
    }

    #[test]
    fn parameters_name_the_bad_part() {
        crate::register().unwrap();
        let p = HybridParams {
            session: "nosuch".into(),
            ..HybridParams::default()
        };
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("session"), "{e}");
        let p = HybridParams {
            history: "hybrid".into(),
            ..HybridParams::default()
        };
        assert!(p.validate().unwrap_err().to_string().contains("history"));
        let p = HybridParams {
            weight: 1.5,
            ..HybridParams::default()
        };
        assert!(p.validate().unwrap_err().to_string().contains("weight"));
    }
}
