//! The model to deploy, trained on a whole log: what `because train` and
//! the Python package's `fit` on a log both do, so that the same data,
//! parameters and seed give the same model and the same model folder.

use super::{Error, Result, Values};
use because_core::{Dataset, EpochObserver, Interactions, Vocab};
use because_models::persist::{self, EventType, Meta, Metrics};
use because_models::{Model, ModelSpec};
use std::time::Instant;

/// A trained model, its metadata, and how it was trained.
pub struct Trained {
    /// The model.
    pub model: Model,
    /// What its folder records (IDs, fingerprint, event types, titles,
    /// and the fit's seconds, values and losses among the metrics).
    pub meta: Meta,
    /// The training values, in words.
    pub values: &'static str,
    /// Interactions trained on.
    pub interactions: usize,
    /// Seconds fitting took (with early stopping: the search and the refit).
    pub seconds: f64,
    /// How early stopping chose the epochs, when it ran.
    pub stopped: Option<persist::EarlyStopped>,
}

/// Early stopping in [`train`]: each of up to `users` users (a seeded
/// sample of those with at least two interactions) has their latest
/// interaction held out as an internal validation; the model trains on the
/// rest, its NDCG@10 on the held-out interactions checked every
/// `check_every` epochs, until `patience` checks in a row bring no gain
/// beyond one standard error of the paired per-user difference from the
/// best check (or the spec's epochs run out); then it is refitted on every
/// interaction for the best check's epochs. Only iterative kinds whose spec leaves the
/// epochs to their default stop early: an explicit epoch count is trained
/// as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EarlyStopping {
    /// Checks without a better validation score before stopping.
    pub patience: usize,
    /// Epochs between checks.
    pub check_every: usize,
    /// At most this many users' latest interactions are held out.
    pub users: usize,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            patience: 3,
            check_every: 1,
            users: 5_000,
        }
    }
}

impl EarlyStopping {
    /// Whether it applies to `spec`: an iterative kind whose epochs the spec
    /// does not fix.
    pub fn applies_to(&self, spec: &ModelSpec) -> bool {
        spec.epoch_key()
            .is_some_and(|k| !spec.params.contains_key(k))
    }
}

/// `x` without the latest interaction of up to `users` users (a sample,
/// seeded by `seed`, of those with at least two), and those interactions.
pub fn hold_out_latest(x: &Interactions, users: usize, seed: u64) -> (Interactions, Interactions) {
    let mut eligible: Vec<u32> = (0..x.n_users() as u32)
        .filter(|&u| x.user_items(u).len() >= 2)
        .collect();
    if eligible.len() > users {
        because_core::rng::Rng::new(seed).shuffle(&mut eligible);
        eligible.truncate(users);
    }
    let mut held = vec![false; x.len()];
    let indptr = x.indptr();
    for u in eligible {
        // Rows are in time order: the row's last entry is the latest.
        held[indptr[u as usize + 1] - 1] = true;
    }
    let keep: Vec<bool> = held.iter().map(|h| !h).collect();
    (x.select(&keep), x.select(&held))
}

/// What a search for the epochs found.
pub(crate) struct Searched {
    /// The model as training stopped.
    pub model: Model,
    /// The best check's epoch (0 when no check came) and its score.
    pub best: usize,
    pub best_score: f64,
    /// Epochs run.
    pub run: usize,
    /// `(epoch, score)` of each check.
    pub checks: Vec<(usize, f64)>,
}

/// Whether a check's per-user values `now` gain on the best check's
/// `best` (the same users, in the same order) by more than one standard
/// error of their paired difference: a gain within the noise of the
/// held-out users' sample does not count, so that a curve that has levelled
/// off stops, at its earliest epoch within the noise, instead of wandering
/// up by chance for as long as patience allows.
pub(crate) fn gains(now: &[f64], best: &[f64]) -> bool {
    let n = now.len();
    if n == 0 || n != best.len() {
        return false;
    }
    let d: Vec<f64> = now.iter().zip(best).map(|(a, b)| a - b).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
    mean > (var / n as f64).sqrt()
}

/// Fits `spec` on `train`, scoring `metric` (as `ndcg@10`) on `validation`
/// every `check_every` epochs, until `patience` checks in a row bring no
/// gain (or `observer`, told of every epoch, stops it). A check gains when
/// it beats the best so far by more than one standard error of the paired
/// per-user difference ([`gains`]; by any amount for a metric without
/// per-user values).
#[allow(clippy::too_many_arguments)]
pub(crate) fn search_epochs(
    spec: &ModelSpec,
    train: &Interactions,
    validation: &Interactions,
    side: &because_core::SideInfo,
    (metric, k): (&str, usize),
    check_every: usize,
    patience: usize,
    observer: &mut EpochObserver<'_>,
) -> Result<Searched> {
    let protocol = crate::Protocol::new(vec![k]);
    let (mut best_v, mut best_epoch, mut since, mut run) = (f64::NEG_INFINITY, 0usize, 0usize, 0);
    let mut checks = Vec::new();
    let mut best_values: Option<Vec<f64>> = None;
    let mut failure = None;
    let model = spec
        .fit_with(train, side, check_every, &mut |ep| {
            run = ep.epoch;
            let flow = observer(ep);
            // A check every `check_every` epochs, whatever snapshots the model offers.
            let Some(m) = ep.model.filter(|_| ep.epoch % check_every == 0) else {
                return flow;
            };
            match crate::evaluate(m, validation, &protocol) {
                Ok(e) => {
                    let v = e.mean(metric).unwrap_or(f64::NAN);
                    checks.push((ep.epoch, v));
                    let values = e.per_user_values(metric);
                    let gain = match (&values, &best_values) {
                        (Some(now), Some(best)) => gains(now, best),
                        _ => v > best_v,
                    };
                    if gain {
                        (best_v, best_epoch, since) = (v, ep.epoch, 0);
                        best_values = values;
                    } else {
                        since += 1;
                    }
                }
                Err(e) => failure = Some(e),
            }
            if since >= patience || failure.is_some() || flow.is_break() {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .map_err(|source| Error::Fit {
            spec: spec.to_string(),
            source,
        })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok(Searched {
        model,
        best: best_epoch,
        best_score: best_v,
        run,
        checks,
    })
}

impl Values {
    /// The values `spec` trains on: rating predictors need the ratings as
    /// they are, and data that has them.
    pub fn for_spec(self, spec: &ModelSpec, has_ratings: bool) -> Result<Values> {
        if !spec.needs_ratings() {
            return Ok(self);
        }
        if !has_ratings {
            return Err(Error::NoRatings {
                spec: spec.to_string(),
            });
        }
        Ok(Values::AsIs)
    }
}

/// The event types of `names` with the value `weight` gives each (the
/// reading options' event weights).
pub fn event_types(names: &[String], weight: &dyn Fn(&str) -> f32) -> Vec<EventType> {
    names
        .iter()
        .map(|name| EventType {
            name: name.clone(),
            weight: weight(name),
        })
        .collect()
}

/// How long saving a model may spend measuring its explanations.
pub const FIDELITY_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// The deletion test of each explanation method of a model about to be
/// saved, within [`FIDELITY_BUDGET`]
/// (`because_explain::fidelity::method_ratios`); empty for a model whose
/// explanations cannot be measured (no user has a history).
pub fn explanation_fidelity(model: &Model) -> Vec<because_models::persist::MethodRatio> {
    because_explain::fidelity::method_ratios(model, FIDELITY_BUDGET).unwrap_or_default()
}

/// A model folder's metadata: the vocabularies, a fingerprint of the
/// training interactions `x`, metrics, titles (in item order, or none) and
/// event types.
pub fn meta_for(
    users: &Vocab,
    items: &Vocab,
    x: &Interactions,
    metrics: Metrics,
    titles: Vec<String>,
    events: Vec<EventType>,
) -> Meta {
    Meta {
        user_ids: users.ids().map(str::to_string).collect(),
        item_ids: items.ids().map(str::to_string).collect(),
        data_fingerprint: persist::fingerprint(x),
        metrics,
        item_titles: titles,
        events,
    }
}

/// Fits `spec` on all of `d` with `values` (see [`Values::for_spec`]) and
/// the features in `side` (rows in `d`'s vocabularies' order),
/// reporting epochs to `observer`; `weight` gives each event type's value
/// as the log was read. With `early` (where it applies to the spec), the
/// epochs are chosen first on an internal validation ([`EarlyStopping`]),
/// and the saved model is the refit on every interaction.
#[allow(clippy::too_many_arguments)]
pub fn train(
    spec: &ModelSpec,
    d: &Dataset,
    values: Values,
    weight: &dyn Fn(&str) -> f32,
    titles: Vec<String>,
    side: &because_core::SideInfo,
    early: Option<&EarlyStopping>,
    observer: &mut EpochObserver<'_>,
) -> Result<Trained> {
    let values = values.for_spec(spec, d.has_ratings)?;
    let (x, how) = values.apply(d.interactions.clone(), d.has_ratings);
    let start = Instant::now();
    let mut stopped = None;
    let mut spec = spec.clone();
    if let (Some(early), Some(key)) = (early.filter(|e| e.applies_to(&spec)), spec.epoch_key()) {
        if early.patience == 0 || early.check_every == 0 || early.users == 0 {
            return Err(because_core::Error::param(
                "early_stopping",
                "patience, check_every and users must be at least 1",
            )
            .into());
        }
        let (fit_on, held) = hold_out_latest(&x, early.users, 0x5eed);
        if !held.is_empty() {
            let Searched {
                best, run, checks, ..
            } = search_epochs(
                &spec,
                &fit_on,
                &held,
                side,
                ("ndcg@10", 10),
                early.check_every,
                early.patience,
                observer,
            )?;
            if best > 0 {
                spec = spec.with(key, best);
            }
            stopped = Some(persist::EarlyStopped {
                best_epoch: (best > 0).then_some(best),
                epochs_run: run,
                validation_users: held.len(),
                checks: checks
                    .into_iter()
                    .map(|(epoch, ndcg)| persist::Check { epoch, ndcg })
                    .collect(),
                search_seconds: start.elapsed().as_secs_f64(),
            });
        }
    }
    let spec = &spec;
    let mut losses: Vec<f64> = Vec::new();
    let mut recording = |e: &because_core::Epoch<'_>| {
        if let Some(l) = e.loss {
            losses.push(l);
        }
        observer(e)
    };
    let model = spec.fit_with(&x, side, 0, &mut recording)?;
    let seconds = start.elapsed().as_secs_f64();
    let meta = meta_for(
        &d.users,
        &d.items,
        &x,
        Metrics {
            fit_seconds: Some(seconds),
            values: Some(how.to_string()),
            losses,
            trained_on: Some("every interaction given".to_string()),
            explanation_fidelity: explanation_fidelity(&model),
            early_stopping: stopped.clone(),
            ..Metrics::default()
        },
        titles,
        event_types(&d.event_names, weight),
    );
    Ok(Trained {
        model,
        meta,
        values: how,
        interactions: x.len(),
        seconds,
        stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::gains;

    #[test]
    fn a_gain_counts_only_beyond_the_noise_of_the_held_out_users() {
        let best: Vec<f64> = (0..400).map(|u| f64::from(u % 2)).collect();
        // Every user a little better: a gain however small.
        let up: Vec<f64> = best.iter().map(|v| v + 0.01).collect();
        assert!(gains(&up, &best));
        // Three users better by 1 and two worse by 1: a mean gain of
        // 0.0025 against a standard error of about 0.0056.
        let lucky: Vec<f64> = best
            .iter()
            .enumerate()
            .map(|(u, &v)| if u < 5 { 1.0 - v } else { v })
            .collect();
        assert!(lucky.iter().sum::<f64>() > best.iter().sum::<f64>());
        assert!(!gains(&lucky, &best));
        // A hundred users better by 1 are a gain.
        let many: Vec<f64> = best
            .iter()
            .enumerate()
            .map(|(u, &v)| if u < 200 && v == 0.0 { 1.0 } else { v })
            .collect();
        assert!(gains(&many, &best));
        assert!(!gains(&best, &best), "no change is no gain");
        assert!(!gains(&up[..10], &best), "other users are no comparison");
    }
}
