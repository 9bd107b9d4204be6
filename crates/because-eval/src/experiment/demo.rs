//! The demo's protocol: a per-user temporal 80/10/10 split, every kind the
//! registry gives a demo configuration compared with full ranking, and the
//! best on validation deployed. The command line's `because demo` runs it
//! on generated data and shows the outcome.

use super::{
    compare, deploy, Choice, Comparison, Deployed, EvaluationFile, Parts, Result, Setup, Source,
    Values,
};
use because_core::{Dataset, Recommender, SideInfo, Split, SplitMethod};
use because_models::{registry, Model, ModelSpec};
use std::path::Path;

/// The demo's split: each user's latest 10% to test, the 10% before to
/// validation.
pub const SPLIT: SplitMethod = SplitMethod::UserTemporal {
    validation: 0.1,
    test: 0.1,
};

/// The demo's cut-offs.
pub const KS: [usize; 3] = [5, 10, 20];

/// The specifications the demo compares: every registered kind with a
/// demo configuration, in the registry's order.
pub fn specs() -> Result<Vec<ModelSpec>> {
    registry::kinds()
        .into_iter()
        .filter_map(|e| e.demo_spec())
        .map(|s| Ok(s?))
        .collect()
}

/// What the demo's protocol produced.
#[derive(Debug)]
pub struct DemoOutcome {
    /// The parts, in one vocabulary.
    pub parts: Parts,
    /// The models compared.
    pub comparison: Comparison,
    /// The best on validation, refitted on all the data and saved.
    pub deployed: Deployed,
    /// The record of it all, with the deployed model.
    pub evaluation: EvaluationFile,
    /// The compared model that reads order (a sequential one), as trained
    /// on the training part, if one was compared.
    pub sequential: Option<Model>,
    /// The compared model that reads features (the two-tower one), as
    /// trained on the training part, if one was compared.
    pub featured: Option<Model>,
}

/// Runs the demo's protocol on `dataset`: splits it by [`SPLIT`] with
/// `seed`, compares [`specs`] (with the features in `side`) at [`KS`], and
/// deploys the best into `dir` with item `titles` and the event types
/// weighted by `weight`. `on_trial` hears of each model compared.
#[allow(clippy::too_many_arguments)]
pub fn run(
    dataset: &Dataset,
    seed: u64,
    side: SideInfo,
    titles: Vec<String>,
    weight: &dyn Fn(&str) -> f32,
    dir: &Path,
    on_trial: &mut dyn FnMut(&super::Trial),
) -> Result<DemoOutcome> {
    let specs = specs()?;
    let split = Split::new(&dataset.interactions, SPLIT, seed, dataset.has_time)?;
    let source = Source::Split {
        method: SPLIT,
        seed,
    };
    let mut parts = Parts::from_split(dataset, &split, source, Values::Auto)?;
    parts.side = side;
    let setup = Setup::new(KS.to_vec());
    let (mut sequential, mut featured): (Option<Model>, Option<Model>) = (None, None);
    let compared = compare(&parts, &specs, &setup, None, &mut |t, m| {
        if m.entry().capabilities.ordered_sequences {
            sequential = Some(m.clone());
        }
        if m.featured().is_some() {
            featured = Some(m.clone());
        }
        on_trial(t);
    })?;
    let comparison = compared.comparison;
    let choice = Choice::best_of(&comparison, setup.final_mode);
    let deployed = deploy(
        &parts,
        &choice,
        titles,
        weight,
        dir,
        "best",
        because_models::index::IndexPolicy::Auto,
    )?;
    let mut evaluation = EvaluationFile::new("demo", &parts, &setup, &comparison);
    evaluation.production = Some(deployed.production.clone());
    Ok(DemoOutcome {
        parts,
        comparison,
        deployed,
        evaluation,
        sequential,
        featured,
    })
}
