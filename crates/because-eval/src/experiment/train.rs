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
    /// Seconds fitting took.
    pub seconds: f64,
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
/// as the log was read.
pub fn train(
    spec: &ModelSpec,
    d: &Dataset,
    values: Values,
    weight: &dyn Fn(&str) -> f32,
    titles: Vec<String>,
    side: &because_core::SideInfo,
    observer: &mut EpochObserver<'_>,
) -> Result<Trained> {
    let values = values.for_spec(spec, d.has_ratings)?;
    let (x, how) = values.apply(d.interactions.clone(), d.has_ratings);
    let start = Instant::now();
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
    })
}
