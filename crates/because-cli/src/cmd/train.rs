//! `because train`: one model on all of a log (and the stored events), saved.

use crate::args::TrainArgs;
use crate::io::{load_with, optional_features};
use crate::{print, progress};
use anyhow::{anyhow, bail};
use because_data::features::side_info;
use because_data::Loaded;
use because_models::persist;
use because_report::{figures, save_figures};

/// `because train`.
pub fn run(a: &TrainArgs) -> anyhow::Result<()> {
    let spec = a.spec()?;
    let loaded = training_data(a)?;
    let d = &loaded.dataset;
    let weights = a.read.options()?.0.event_weights;
    let features = optional_features(a.items.as_deref(), &d.items, true)?;
    let user_features = optional_features(a.users.as_deref(), &d.users, false)?;
    let side = side_info(features.as_ref(), user_features.as_ref())?;
    let early = a.early_stopping()?;
    let epochs = progress::Epochs::new(spec.to_string());
    let trained = because_eval::experiment::train(
        &spec,
        d,
        a.values.into(),
        &|n| weights.weight(n),
        features.as_ref().map(|f| f.titles()).unwrap_or_default(),
        &side,
        early.as_ref(),
        &mut epochs.observer(),
    )?;
    drop(epochs);
    if let Some(s) = &trained.stopped {
        print::early_stopped(s);
    }
    let (model, meta) = (trained.model, trained.meta);
    println!(
        "trained {} on {} interactions ({}) in {:.2}s",
        model.spec(),
        trained.interactions,
        trained.values,
        trained.seconds
    );
    persist::save(&model, &meta, &a.out)?;
    println!("wrote model folder {}", a.out.display());
    if let Some(i) = because_models::index::build_for(&model, &a.out, a.index)? {
        print::index(&i);
    }
    // Iterative models with a loss: the training curve beside the model,
    // and the early-stopping checks.
    let name = model.spec().to_string();
    let mut figs = Vec::new();
    if let Some(fig) = figures::training_loss(&name, &meta.metrics.losses) {
        figs.push(("training_loss", fig));
    }
    if let Some(fig) = meta
        .metrics
        .early_stopping
        .as_ref()
        .and_then(|s| figures::early_stopping(&name, s))
    {
        figs.push(("validation_curve", fig));
    }
    for written in save_figures(&figs, &a.out.join("figures"))? {
        println!("wrote {}", written.display());
    }
    Ok(())
}

/// What `train` trains on: the log, the stored events, or both (merged as
/// one log's repeated pairs are), cleaned and filtered, with the report
/// printed.
fn training_data(a: &TrainArgs) -> anyhow::Result<Loaded> {
    let (read, filters) = a.read.options()?;
    let Some(setting) = &a.database else {
        let path = a
            .data
            .as_deref()
            .ok_or_else(|| anyhow!("--data: give the log"))?;
        return load_with(path, &read, &filters);
    };
    let db = because_events::Database::parse(setting)?;
    let spinner = progress::spinner(format!("reading the events stored in {db}"));
    let store = because_events::EventStore::open(&db)?;
    let events = store.dataset(|t| read.event_weights.weight(t))?;
    spinner.finish_and_clear();
    if events.interactions.is_empty() && a.data.is_none() {
        bail!("--database {db}: no events are stored there");
    }
    let name = format!("events in {db}");
    // Events have types: by default the strongest of a repeated pair wins.
    let policy = read
        .duplicates
        .unwrap_or(because_core::DuplicatePolicy::Max);
    let loaded = match &a.data {
        None => Loaded::from_dataset(&name, events).merge_duplicates(policy, &read.event_weights),
        Some(path) => because_data::read_interactions(path, &read)?.append(
            &name,
            events,
            policy,
            &read.event_weights,
        )?,
    };
    let loaded = because_data::clean::apply_filters(loaded, &filters)?;
    print::loaded(&loaded);
    Ok(loaded)
}
