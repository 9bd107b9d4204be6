//! `because tune`: a grid searched on validation, the choice tested, and
//! the model to deploy saved.

use crate::args::{TuneArgs, Tuning};
use crate::io::{create_dir, optional_features, prepare, write_json};
use crate::progress;
use because_data::features::side_info;
use because_eval::experiment::{self, deploy, Choice, EvaluationFile, Final, TuneOptions};
use because_report::{figures, save_figures};

/// `because tune`.
pub fn run(a: &TuneArgs) -> anyhow::Result<()> {
    // Every value of the grid is checked before the data is even read.
    let Tuning {
        base,
        grid,
        metric,
        search,
        configurations,
    } = a.checked()?;
    let mut parts = prepare(&a.data, &a.split, a.values.into())?;
    let item_features = optional_features(a.items.as_deref(), &parts.items, true)?;
    let user_features = optional_features(a.users.as_deref(), &parts.users, false)?;
    parts.side = side_info(item_features.as_ref(), user_features.as_ref())?;
    let options = TuneOptions {
        metric,
        search,
        early_stopping: a.early_stopping,
        check_every: a.check_every,
        final_mode: a.final_mode.into(),
    };
    println!(
        "\n{:<48} {:>10} {:>8}",
        "configuration",
        format!("val {}", options.metric),
        "fit s"
    );
    let bar = progress::bar(configurations as u64, "configurations");
    let tuned = experiment::tune(&parts, &base, &grid, &options, &mut |t| {
        bar.suspend(|| {
            println!(
                "{:<48} {:>10.4} {:>8.2}",
                t.spec.to_string(),
                t.validation,
                t.fit_seconds
            )
        });
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let chosen = tuned.chosen_spec().clone();
    let trial = tuned.comparison.best_trial();
    println!(
        "\nchosen: {chosen} (validation {} {:.4}; selected by {})",
        options.metric, tuned.trials[tuned.chosen].validation, tuned.comparison.selected_by
    );
    println!("{}", options.final_mode.note());
    let k = options.metric.k;
    println!(
        "test {}: {:.4}; recall@{k} {:.4}",
        options.metric,
        trial
            .test
            .mean(&options.metric.to_string())
            .unwrap_or(f64::NAN),
        trial.test.mean(&format!("recall@{k}")).unwrap_or(f64::NAN)
    );
    // The model to deploy learns from everything given.
    create_dir(&a.out)?;
    let model_dir = a.out.join("model");
    let weights = a.data.read.options()?.0.event_weights;
    let choice = Choice::tuned(&tuned);
    let deployed = deploy(
        &parts,
        &choice,
        Vec::new(),
        &|n| weights.weight(n),
        &model_dir,
        "model",
        a.index,
    )?;
    println!(
        "model to deploy: {chosen} refitted on all {} interactions given (train + validation + test) in {:.2}s; the test numbers above come from the fit on {}",
        deployed.production.interactions,
        deployed.meta.metrics.fit_seconds.unwrap_or(f64::NAN),
        match options.final_mode {
            Final::Refit => "train + validation",
            Final::FoldIn => "train",
        }
    );
    if let Some(i) = &deployed.index {
        crate::print::index(i);
    }
    let mut file = EvaluationFile::tuned(&parts, &tuned);
    file.production = Some(deployed.production);
    write_json(&a.out.join("evaluation.json"), &file)?;
    let figs = figures::tuning(&tuned);
    let figs: Vec<(&str, _)> = figs.iter().map(|(n, f)| (n.as_str(), f.clone())).collect();
    let paths = save_figures(&figs, &a.out.join("figures"))?;
    println!(
        "wrote {}, {} figures and the model to deploy in {}",
        a.out.join("evaluation.json").display(),
        paths.len(),
        model_dir.display()
    );
    Ok(())
}
