//! Training, evaluating, tuning and measuring models from the command line:
//! flags in, calls to `because_eval::experiment` and
//! `because_explain::fidelity`, tables and files out.

use crate::args::{
    EvaluateArgs, ExperimentData, ExplainEvalArgs, FidelityData, ReadArgs, SplitFlags, TrainArgs,
    TuneArgs,
};
use crate::commands::{create_dir, load_with, optional_features, write_json};
use crate::using::Sources;
use anyhow::{anyhow, bail, Context};
use because_core::{Interactions, Recommender, Scored, SideInfo, Split, Vocab};
use because_data::clean::FilterOptions;
use because_data::features::Features;
use because_data::Loaded;
use because_eval::experiment::{
    self, candidates, compare, fit_production, Comparison, EvaluationFile, Final, Grid, Groups,
    Metric, Parts, Production, Search, Setup, Source, Trial, TuneOptions, Values,
};
use because_explain::fidelity::{self, FidelityOptions, FidelitySummary, GlobalView};
use because_models::persist;
use because_models::{Model, ModelSpec};
use because_report::{
    attention_figure, comparison_figure, deletion_figure, embedding_map, reach_figure,
    save_figures, training_figure, tuning_figure, validation_figure, Report,
};
use because_service::{ExplainRequest, ModelHandle, Subject};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Splits `--models`: commas separate models, except inside one model's
/// `key=value` list (`als:factors=8,regularization=1,ease` is two models).
pub fn parse_models(s: &str) -> anyhow::Result<Vec<ModelSpec>> {
    let mut specs: Vec<String> = Vec::new();
    for tok in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match specs.last_mut() {
            Some(last) if tok.contains('=') && !tok.contains(':') => {
                last.push(',');
                last.push_str(tok);
            }
            _ => specs.push(tok.to_string()),
        }
    }
    if specs.is_empty() {
        bail!("--models: no model given");
    }
    specs
        .iter()
        .map(|s| {
            let spec = s
                .parse::<ModelSpec>()
                .map_err(|e| anyhow!("--models: {e}"))?;
            spec.resolve()
                .map_err(|e| anyhow!("--models: {spec}: {e}"))?;
            Ok(spec)
        })
        .collect()
}

fn parse_ks(s: &str) -> anyhow::Result<Vec<usize>> {
    let ks: Vec<usize> = s
        .split(',')
        .map(|k| {
            k.trim()
                .parse::<usize>()
                .ok()
                .filter(|&k| k > 0)
                .ok_or_else(|| anyhow!("--k: {k:?} is not a positive integer"))
        })
        .collect::<anyhow::Result<_>>()?;
    if ks.is_empty() {
        bail!("--k: no cut-off given");
    }
    Ok(ks)
}

/// Reads each part given as a file with the same options (printing each
/// one's cleaning report); filters apply to one log before splitting, so
/// they are refused here.
fn read_given(files: [&Path; 3], read: &ReadArgs) -> anyhow::Result<[Loaded; 3]> {
    let (options, filters) = read.options()?;
    if filters != FilterOptions::default() {
        bail!("--train: filters (--binarize, --kcore, --min-*/--max-*) apply to one log before it is split; filter the log, split it, and give the parts");
    }
    let mut out = Vec::with_capacity(3);
    for f in files {
        out.push(load_with(f, &options, &filters)?);
    }
    out.try_into()
        .map_err(|_| anyhow!("internal error: three parts expected"))
}

fn given_parts(files: [&Path; 3], read: &ReadArgs, values: Values) -> anyhow::Result<Parts> {
    let [t, v, s] = read_given(files, read)?;
    let name = |p: &Path| p.display().to_string();
    Ok(Parts::given(
        (&name(files[0]), &t.dataset),
        (&name(files[1]), &v.dataset),
        (&name(files[2]), &s.dataset),
        values,
    )?)
}

/// The parts of `evaluate` and `tune`: `--data` split by the split flags,
/// or the files given with `--train`, `--validation` and `--test`.
pub(crate) fn prepare(
    data: &ExperimentData,
    flags: &SplitFlags,
    values: Values,
) -> anyhow::Result<Parts> {
    let parts = match (&data.data, &data.train) {
        (Some(path), None) => {
            let method = flags.method()?;
            let (read, filters) = data.read.options()?;
            let loaded = load_with(path, &read, &filters)?;
            Parts::split(&loaded.dataset, method, flags.seed, values)?
        }
        (None, Some(train)) => {
            let (Some(validation), Some(test)) = (&flags.validation, &flags.test) else {
                bail!("--train needs --validation and --test files");
            };
            given_parts(
                [train.as_path(), Path::new(validation), Path::new(test)],
                &data.read,
                values,
            )?
        }
        _ => bail!("give either --data (and a split method) or --train, --validation and --test"),
    };
    print_parts(&parts);
    Ok(parts)
}

fn print_parts(p: &Parts) {
    match &p.source {
        Source::Split { method, seed } => println!("split {method} (seed {seed}):"),
        Source::Given {
            train,
            validation,
            test,
        } => println!("parts given: train {train}, validation {validation}, test {test}:"),
    }
    let r = &p.report;
    for (name, given, kept, users) in [
        ("train", r.given.train, r.evaluated.train, r.users.train),
        (
            "validation",
            r.given.validation,
            r.evaluated.validation,
            r.users.validation,
        ),
        ("test", r.given.test, r.evaluated.test, r.users.test),
    ] {
        println!("  {name:<12} {kept:>10} interactions ({given} given) {users:>8} users");
    }
    println!(
        "  unknown to train: {} users and {} items in validation, {} users and {} items in test; {} validation and {} test interactions with them dropped",
        r.unknown_users_validation,
        r.unknown_items_validation,
        r.unknown_users_test,
        r.unknown_items_test,
        r.dropped_unknown.validation,
        r.dropped_unknown.test
    );
    if r.dropped_leaked.validation + r.dropped_leaked.test > 0 {
        println!(
            "  also in train, so dropped: {} validation and {} test interactions",
            r.dropped_leaked.validation, r.dropped_leaked.test
        );
    }
    println!(
        "  one vocabulary: {} users, {} items; training values: {}",
        p.users.len(),
        p.items.len(),
        p.values
    );
}

/// The event types of `names`, with the weights the reading options give them.
pub(crate) fn event_types(
    names: &[String],
    read: &ReadArgs,
) -> anyhow::Result<Vec<persist::EventType>> {
    let weights = read.options()?.0.event_weights;
    Ok(because_eval::experiment::event_types(names, &|n| {
        weights.weight(n)
    }))
}

pub(crate) use because_eval::experiment::meta_for;

fn titles_of(features: Option<&Features>, items: &Vocab) -> Vec<String> {
    match features {
        Some(f) => (0..items.len() as u32)
            .map(|i| f.title(i).unwrap_or("").to_string())
            .collect(),
        None => Vec::new(),
    }
}

/// The features fitting reads (for kinds that read them), encoded from
/// the feature files given.
fn side_info(items: Option<&Features>, users: Option<&Features>) -> anyhow::Result<SideInfo> {
    let table = |f: Option<&Features>| -> anyhow::Result<_> {
        Ok(match f {
            Some(f) if !f.columns.is_empty() => Some(std::sync::Arc::new(f.table()?)),
            _ => None,
        })
    };
    Ok(SideInfo {
        users: table(users)?,
        items: table(items)?,
    })
}

pub fn train(a: &TrainArgs) -> anyhow::Result<()> {
    let spec: ModelSpec = a.model.parse().map_err(|e| anyhow!("--model: {e}"))?;
    spec.resolve().map_err(|e| anyhow!("--model: {e}"))?;
    let loaded = training_data(a)?;
    let d = &loaded.dataset;
    let weights = a.read.options()?.0.event_weights;
    let features = optional_features(a.items.as_deref(), &d.items, true)?;
    let user_features = optional_features(a.users.as_deref(), &d.users, false)?;
    let side = side_info(features.as_ref(), user_features.as_ref())?;
    let epochs = crate::progress::Epochs::new(spec.to_string());
    let trained = because_eval::experiment::train(
        &spec,
        d,
        a.values.into(),
        &|n| weights.weight(n),
        titles_of(features.as_ref(), &d.items),
        &side,
        &mut epochs.observer(),
    )?;
    drop(epochs);
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
    // Iterative models with a loss: the training curve beside the model.
    let losses: Vec<(f64, f64)> = meta.metrics["loss_per_epoch"]
        .as_array()
        .map(|v| {
            v.iter()
                .enumerate()
                .filter_map(|(k, l)| l.as_f64().map(|l| (k as f64 + 1.0, l)))
                .collect()
        })
        .unwrap_or_default();
    if losses.len() > 1 {
        let fig = training_figure(&model.spec().to_string(), &losses, None);
        let written = save_figures(&[("training_loss", fig)], &a.out.join("figures"))?;
        println!("wrote {}", written[0].display());
    }
    Ok(())
}

/// What `train` trains on: the log, the stored events, or both (merged as
/// one log's repeated pairs are), cleaned and filtered, with the report
/// printed.
fn training_data(a: &TrainArgs) -> anyhow::Result<because_data::Loaded> {
    let (read, filters) = a.read.options()?;
    let Some(setting) = &a.database else {
        let path = a
            .data
            .as_deref()
            .ok_or_else(|| anyhow!("--data: give the log"))?;
        return crate::commands::load_with(path, &read, &filters);
    };
    let db = because_server::events::Database::parse(setting)?;
    let spinner = crate::progress::spinner(format!("reading the events stored in {db}"));
    let store = because_server::events::EventStore::open(&db)?;
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
        None => because_data::Loaded::from_dataset(&name, events)
            .merge_duplicates(policy, &read.event_weights),
        Some(path) => because_data::read_interactions(path, &read)?.append(
            &name,
            events,
            policy,
            &read.event_weights,
        )?,
    };
    let loaded = because_data::clean::apply_filters(loaded, &filters)?;
    crate::commands::print_loaded(&loaded);
    Ok(loaded)
}

pub(crate) fn print_trials(trials: &[Trial], k: usize) {
    println!(
        "\n{:<36} {:>7} {:>9} | {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>6} {:>7}",
        "model",
        "fit s",
        "val nDCG",
        format!("P@{k}"),
        format!("R@{k}"),
        format!("nDCG@{k}"),
        format!("MAP@{k}"),
        format!("MRR@{k}"),
        format!("HR@{k}"),
        "coverage",
        "gini",
        "novelty"
    );
    for r in trials {
        let t = |m: &str| r.test.mean(&format!("{m}@{k}")).unwrap_or(f64::NAN);
        println!(
            "{:<36} {:>7.2} {:>9.4} | {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>8.3} {:>6.3} {:>7.2}",
            r.spec.to_string(),
            r.fit_seconds,
            r.validation.mean(&format!("ndcg@{k}")).unwrap_or(f64::NAN),
            t("precision"),
            t("recall"),
            t("ndcg"),
            t("map"),
            t("mrr"),
            t("hitrate"),
            t("coverage"),
            t("gini"),
            t("novelty")
        );
    }
}

/// The comparison as report rows: one per model.
fn report_rows(trials: &[Trial], k: usize) -> Vec<Vec<String>> {
    trials
        .iter()
        .map(|r| {
            let t = |m: &str| {
                format!(
                    "{:.4}",
                    r.test.mean(&format!("{m}@{k}")).unwrap_or(f64::NAN)
                )
            };
            vec![
                r.spec.to_string(),
                format!("{:.2}", r.fit_seconds),
                format!(
                    "{:.4}",
                    r.validation.mean(&format!("ndcg@{k}")).unwrap_or(f64::NAN)
                ),
                t("precision"),
                t("recall"),
                t("ndcg"),
                t("map"),
                t("mrr"),
                t("hitrate"),
                t("coverage"),
                t("gini"),
                t("novelty"),
            ]
        })
        .collect()
}

const REPORT_HEADER: [&str; 12] = [
    "model", "fit s", "val nDCG", "P", "R", "nDCG", "MAP", "MRR", "HR", "coverage", "gini",
    "novelty",
];

/// The comparison figure: test nDCG and recall at `k` per model kind.
fn comparison_of(c: &Comparison, k: usize) -> because_plot::Figure {
    let rows: Vec<(String, f64, f64)> = c
        .trials
        .iter()
        .map(|t| {
            (
                t.spec.kind.clone(),
                t.test.mean(&format!("ndcg@{k}")).unwrap_or(0.0),
                t.test.mean(&format!("recall@{k}")).unwrap_or(0.0),
            )
        })
        .collect();
    comparison_figure(k, &rows)
}

fn print_comparison(c: &Comparison, slice_by: Option<&str>) {
    let key = &c.key;
    println!("\nbest on {}: {}", c.selected_by, c.best_trial().spec);
    println!(
        "95% bootstrap intervals of test {key}, and paired tests against the best ({}):",
        c.best_trial().spec
    );
    for s in &c.significance {
        println!(
            "  {:<36} {:.4} [{:.4}, {:.4}]  p = {:.4}",
            s.model, s.mean, s.ci95[0], s.ci95[1], s.p_vs_best
        );
    }
    let mut by = "";
    for s in &c.slices {
        if s.by != by {
            by = &s.by;
            let name = if by == "history length" {
                "user history length"
            } else {
                slice_by.unwrap_or(by)
            };
            println!("\ntest {key} by {name}:");
        }
        let cells: Vec<String> = s
            .slices
            .iter()
            .map(|x| format!("{} ({} users): {:.3}", x.label, x.users, x.mean))
            .collect();
        println!("  {:<36} {}", s.model, cells.join("; "));
    }
}

pub fn evaluate(a: &EvaluateArgs) -> anyhow::Result<()> {
    let specs = parse_models(&a.models)?;
    let ks = parse_ks(&a.k)?;
    if a.sampled_negatives == Some(0) {
        bail!("--sampled-negatives: must be at least 1");
    }
    let mut parts = prepare(&a.data, &a.split, a.values.into())?;
    // Item categories (genres) for intra-list diversity.
    let item_features = optional_features(a.items.as_deref(), &parts.items, true)?;
    let user_features = optional_features(a.users.as_deref(), &parts.users, false)?;
    parts.side = side_info(item_features.as_ref(), user_features.as_ref())?;
    let categories: Option<&[Vec<u32>]> = item_features
        .as_ref()
        .and_then(|f| f.genre_like())
        .map(|c| c.codes.as_slice());
    let groups: Option<Vec<Option<String>>> = match (&a.users, &a.slice_by) {
        (Some(path), Some(col)) => {
            let f = because_data::features::read_features(path, &parts.users, None)?;
            let c = f.column(col).ok_or_else(|| {
                anyhow!(
                    "--slice-by: {path:?} has no column {col:?}; it has {}",
                    f.columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            Some(c.labels())
        }
        _ => None,
    };
    if let Some(n) = a.sampled_negatives {
        println!("SAMPLED EVALUATION: test items ranked among {n} random unseen items per user; not comparable with full ranking");
    }
    let setup = Setup {
        ks: ks.clone(),
        final_mode: a.final_mode.into(),
        item_categories: categories,
        sampled_negatives: a.sampled_negatives,
        seed: a.split.seed,
    };
    let k = setup.headline_k();
    let groups = match (&groups, &a.slice_by) {
        (Some(g), Some(name)) => Some(Groups { name, of_user: g }),
        _ => None,
    };
    let bar = crate::progress::bar(specs.len() as u64, "models fitted and evaluated");
    let compared = compare(&parts, &specs, &setup, groups, &mut |t, _| {
        bar.suspend(|| {
            println!(
                "  {:<36} fitted in {:.2}s, validation nDCG@{k} {:.4}",
                t.spec.to_string(),
                t.fit_seconds,
                t.validation.mean(&format!("ndcg@{k}")).unwrap_or(0.0)
            )
        });
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let c = &compared.comparison;
    print_trials(&c.trials, k);
    println!(
        "({}; full ranking over {} items, seen items excluded)",
        setup.final_mode.note(),
        parts.items.len()
    );
    for t in &c.trials {
        if let Some(r) = t.rating_errors {
            println!(
                "rating prediction, {}: test RMSE {:.4}, MAE {:.4}",
                t.spec, r.rmse, r.mae
            );
        }
    }
    print_comparison(c, a.slice_by.as_deref());
    if categories.is_some() {
        println!("\nintra-list diversity (genres) at {k}:");
        for t in &c.trials {
            println!(
                "  {:<36} {:.4}",
                t.spec.to_string(),
                t.test.mean(&format!("ild@{k}")).unwrap_or(f64::NAN)
            );
        }
    }
    create_dir(&a.out)?;
    let file = EvaluationFile::new("evaluate", &parts, &setup, c);
    write_json(&a.out.join("evaluation.json"), &file)?;
    let figs = save_figures(
        &[("comparison", comparison_of(c, k))],
        &a.out.join("figures"),
    )?;
    let title = match (&a.data.data, &a.data.train) {
        (Some(d), _) => d.display().to_string(),
        (_, Some(t)) => format!("{} and its validation and test parts", t.display()),
        _ => String::new(),
    };
    let mut report = Report::new(&format!("because evaluate: {title}"));
    report
        .section("Model comparison")
        .paragraph(setup.final_mode.note())
        .paragraph(&format!(
            "Best on {}: {}.",
            c.selected_by,
            c.best_trial().spec
        ));
    report.table(&REPORT_HEADER, &report_rows(&c.trials, k));
    if let Some(svg) = figs
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "svg"))
    {
        report.svg_file(svg);
    }
    report.write(&a.out.join("report.html"))?;
    println!(
        "\nwrote {}, {} and {}",
        a.out.join("evaluation.json").display(),
        a.out.join("figures/comparison.png").display(),
        a.out.join("report.html").display()
    );
    Ok(())
}

pub fn tune(a: &TuneArgs) -> anyhow::Result<()> {
    let base: ModelSpec = a.model.parse().map_err(|e| anyhow!("--model: {e}"))?;
    base.resolve().map_err(|e| anyhow!("--model: {e}"))?;
    let grid = Grid::parse(&a.grid).map_err(|e| anyhow!("--grid: {e}"))?;
    let metric: Metric = a.metric.parse().map_err(|e| anyhow!("--metric: {e}"))?;
    if a.early_stopping == Some(0) || a.check_every == 0 {
        bail!("--early-stopping and --check-every must be at least 1");
    }
    let search = match a.random {
        Some(n) => Search::Random {
            n,
            seed: a.split.seed,
        },
        None => Search::Grid,
    };
    // Every value of the grid is checked before the data is even read.
    let configurations = candidates(&base, &grid, search)
        .map_err(|e| anyhow!("--grid: {e}"))?
        .len();
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
    let bar = crate::progress::bar(configurations as u64, "configurations");
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
    let start = Instant::now();
    let production = fit_production(&chosen, &parts)?;
    let all = &parts.for_spec(&chosen)?.all;
    println!(
        "model to deploy: {chosen} refitted on all {} interactions given (train + validation + test) in {:.2}s; the test numbers above come from the fit on {}",
        all.len(),
        start.elapsed().as_secs_f64(),
        match options.final_mode {
            Final::Refit => "train + validation",
            Final::FoldIn => "train",
        }
    );
    create_dir(&a.out)?;
    let model_dir = a.out.join("model");
    let mut file = EvaluationFile::tuned(&parts, &tuned);
    file.production = Some(Production {
        model: chosen.to_string(),
        trained_on: "train + validation + test (every interaction given)".into(),
        interactions: all.len(),
        folder: Some("model".into()),
    });
    write_json(&a.out.join("evaluation.json"), &file)?;
    // One figure per hyperparameter: the best validation score for each of its values.
    let mut figs = Vec::new();
    for key in grid.keys() {
        let points: Vec<(String, f64)> = tuned
            .trials
            .iter()
            .map(|t| {
                (
                    t.spec.params.get(key).cloned().unwrap_or_default(),
                    t.validation,
                )
            })
            .collect();
        figs.push((key, tuning_figure(key, &a.metric, &points)));
    }
    // With early stopping: the chosen configuration's training curves.
    let t = &tuned.trials[tuned.chosen];
    let as_f64 =
        |v: &[(usize, f64)]| -> Vec<(f64, f64)> { v.iter().map(|&(e, x)| (e as f64, x)).collect() };
    if t.losses.len() > 1 {
        let name = t.spec.to_string();
        figs.push((
            "training_loss",
            training_figure(&name, &as_f64(&t.losses), None),
        ));
    }
    if !t.checks.is_empty() {
        let name = t.spec.to_string();
        figs.push((
            "validation_curve",
            validation_figure(&name, &a.metric, &as_f64(&t.checks)),
        ));
    }
    let paths = save_figures(&figs, &a.out.join("figures"))?;
    persist::save(
        &production,
        &meta_for(
            &parts.users,
            &parts.items,
            all,
            json!({
                "metric": options.metric.to_string(),
                "selected_by": tuned.comparison.selected_by,
                "validation": tuned.trials[tuned.chosen].validation,
                "test": trial.test.summary(42),
                "test_model": options.final_mode.note(),
                "trained_on": "train + validation + test",
            }),
            Vec::new(),
            event_types(&parts.event_names, &a.data.read)?,
        ),
        &model_dir,
    )?;
    println!(
        "wrote {}, {} figures and the model to deploy in {}",
        a.out.join("evaluation.json").display(),
        paths.len(),
        model_dir.display()
    );
    Ok(())
}

/// The data `explain-eval` trains on, with its vocabularies and a
/// description of its values.
fn fidelity_data(
    data: &FidelityData,
    values: Values,
) -> anyhow::Result<(Interactions, Vocab, Vocab, &'static str)> {
    match (&data.data, &data.train, &data.validation, &data.test) {
        (Some(path), None, _, _) => {
            let (read, filters) = data.read.options()?;
            let loaded = load_with(path, &read, &filters)?;
            let d = loaded.dataset;
            let (x, how) = values.apply(d.interactions, d.has_ratings);
            Ok((x, d.users, d.items, how))
        }
        (None, Some(train), Some(validation), Some(test)) => {
            let files = [train.as_path(), validation.as_path(), test.as_path()];
            let parts = given_parts(files, &data.read, values)?;
            print_parts(&parts);
            println!("explaining the model trained on the training part");
            let x = parts.training().train.clone();
            Ok((x, parts.users, parts.items, parts.values))
        }
        _ => bail!("give either --data or --train, --validation and --test"),
    }
}

fn print_fidelity(s: &FidelitySummary) {
    let line = |name: &str, e: &fidelity::Estimate| {
        println!(
            "  {name:<58} {:>8.3}  [{:.3}, {:.3}]",
            e.mean, e.ci95[0], e.ci95[1]
        );
    };
    line(
        &format!("rank drop removing the {} items named", s.k),
        &s.deletion_rank_drop_named,
    );
    line(
        &format!("rank drop removing {} random history items", s.k),
        &s.deletion_rank_drop_random,
    );
    line(
        &format!("share leaving the top {} when the named items go", s.n),
        &s.named_removal_leaves_top_n,
    );
    line(
        "verified counterfactual of at most 5 items",
        &s.counterfactual_validity,
    );
    line(
        "share with at least one supporting history item",
        &s.explainability_precision,
    );
    line("share with a non-trivial reason", &s.explanation_coverage);
    println!(
        "  {:<58} {:>8.2}",
        "mean counterfactual size", s.counterfactual_mean_size
    );
    match s.stability_top3_overlap {
        Some(v) => println!(
            "  {:<58} {:>8.3}",
            "top-3 reason overlap between two trainings (seeds differ)", v
        ),
        None => println!("  stability: no recommendation shared between the two trainings"),
    }
    if s.methods.len() > 1 {
        println!(
            "\n  deletion test by explanation method (rank drop removing the {} items each names):",
            s.k
        );
        for m in &s.methods {
            let ratio = m
                .named_over_random
                .map_or("-".to_string(), |r| format!("{r:.1}x random"));
            println!(
                "  {:<20} {:>8.2}  [{:.2}, {:.2}]  random {:>6.2}  {ratio}",
                m.method.name(),
                m.deletion_rank_drop_named.mean,
                m.deletion_rank_drop_named.ci95[0],
                m.deletion_rank_drop_named.ci95[1],
                m.deletion_rank_drop_random.mean,
            );
        }
    }
}

fn print_global(g: &GlobalView, genre: Option<&str>, themes: usize) {
    println!(
        "\nglobal: the most popular 1% of items get {:.1}% of recommendations and {:.1}% of interactions",
        100.0 * g.popularity_bias.top1_share_of_recommendations,
        100.0 * g.popularity_bias.top1_share_of_interactions
    );
    let names: Vec<String> = g
        .top_driver_items
        .iter()
        .map(|d| format!("{} ({})", d.title, d.count))
        .collect();
    println!(
        "history items most often among the top-3 reasons: {}",
        names.join("; ")
    );
    if !g.feature_drivers.is_empty() {
        let cells: Vec<String> = g
            .feature_drivers
            .iter()
            .take(6)
            .map(|(l, c)| format!("{l} ({c})"))
            .collect();
        println!(
            "{} of the reason items: {}",
            genre.unwrap_or(""),
            cells.join("; ")
        );
    }
    if let Some(ts) = &g.themes {
        println!("hidden themes (first {themes} latent dimensions):");
        for t in ts.iter().take(themes) {
            let dom: Vec<String> = t
                .dominant
                .iter()
                .map(|(l, c)| format!("{l} {c}/5"))
                .collect();
            println!(
                "  {:>2}: {} [{}]",
                t.dimension,
                t.top_items.join("; "),
                dom.join(", ")
            );
        }
    }
}

/// The global view of `model`, with items named by ID and title.
fn global_of(
    model: &Model,
    measured: &[because_explain::Measured],
    n: usize,
    items: &Vocab,
    features: Option<&Features>,
) -> anyhow::Result<GlobalView> {
    let genre = features.and_then(|f| f.genre_like());
    let title = |i: u32| {
        features
            .and_then(|f| f.title(i))
            .unwrap_or(items.id(i))
            .to_string()
    };
    Ok(fidelity::global_view(
        model,
        measured,
        n,
        &|i| items.id(i).to_string(),
        &title,
        genre.map(|g| (g.codes.as_slice(), g.levels.as_slice())),
    )?)
}

/// The embedding map of models with item embeddings.
/// For attention models: the heat map of the first measured
/// recommendation's attention (layers and heads × its user's latest items).
fn attention_of_first(
    model: &Model,
    measured: &[because_explain::Measured],
    name: &dyn Fn(u32) -> String,
) -> Option<because_plot::Figure> {
    let first = measured.first()?;
    attention_of(model, first.user, first.item, name)
}

/// The attention heat map of `item` recommended to `user` (by index).
fn attention_of(
    model: &Model,
    user: u32,
    item: u32,
    name: &dyn Fn(u32) -> String,
) -> Option<because_plot::Figure> {
    let (history, _) = model.history(user);
    let maps = model.attributor()?.attention_maps(history)?;
    // The latest 12 positions, where attention lives, labelled by short titles.
    let keep = history.len().min(12);
    let start = history.len() - keep;
    let short = |t: String| match t.char_indices().nth(11) {
        Some((cut, _)) => format!("{}…", &t[..cut]),
        None => t,
    };
    let labels: Vec<String> = history[start..].iter().map(|&i| short(name(i))).collect();
    let rows: Vec<Vec<f32>> = maps.rows.iter().map(|r| r[start..].to_vec()).collect();
    Some(attention_figure(
        &name(item),
        &labels,
        maps.layers,
        maps.heads,
        &rows,
    ))
}

fn embedding_figure(model: &Model, features: Option<&Features>) -> Option<because_plot::Figure> {
    let genre = features.and_then(|f| f.genre_like());
    model.item_embeddings().map(|(factors, d)| {
        embedding_map(
            &because_explain::global::pca_2d(factors, d),
            genre.map(|g| (g.codes.as_slice(), g.levels.as_slice())),
        )
    })
}

pub fn explain_eval(a: &ExplainEvalArgs) -> anyhow::Result<()> {
    if a.k == 0 || a.remove == 0 || a.users == 0 {
        bail!("--k, --remove and --users must be at least 1");
    }
    let spec: ModelSpec = a.model.parse().map_err(|e| anyhow!("--model: {e}"))?;
    spec.resolve().map_err(|e| anyhow!("--model: {e}"))?;
    let (x, _, items, how) = fidelity_data(&a.data, a.values.into())?;
    let opts = FidelityOptions {
        users: a.users,
        n: a.k,
        k: a.remove,
        draws: 5,
        max_size: 5,
        seed: a.seed,
    };
    println!(
        "explaining the top {} for up to {} users ({spec}, values {how})",
        a.k, a.users
    );
    let start = Instant::now();
    let spinner = crate::progress::spinner(format!(
        "training {spec} and measuring its explanations for {} users",
        a.users
    ));
    let mut f = fidelity::measure_spec(&spec, &x, &opts)?;
    spinner.finish_and_clear();
    println!(
        "\n{} explained recommendations of {} in {:.1}s; means with 95% bootstrap intervals:",
        f.summary.recommendations,
        f.summary.model,
        start.elapsed().as_secs_f64()
    );
    print_fidelity(&f.summary);
    // The global view: popularity bias, what drives recommendations, themes.
    let features = optional_features(a.items.as_deref(), &items, true)?;
    let global = global_of(&f.model, &f.measured, a.k, &items, features.as_ref())?;
    let genre = features.as_ref().and_then(|f| f.genre_like());
    print_global(&global, genre.map(|g| g.name.as_str()), 6);
    let mut figs = vec![
        (
            "deletion",
            deletion_figure(
                a.remove,
                f.summary.deletion_rank_drop_named.mean,
                f.summary.deletion_rank_drop_random.mean,
            ),
        ),
        ("diversity_across_users", reach_figure(a.k, &global.reach)),
    ];
    if let Some(map) = embedding_figure(&f.model, features.as_ref()) {
        figs.push(("embedding_map", map));
    }
    let name = |i: u32| {
        features
            .as_ref()
            .and_then(|f| f.title(i))
            .map_or_else(|| items.id(i).to_string(), str::to_string)
    };
    if let Some(att) = attention_of_first(&f.model, &f.measured, &name) {
        figs.push(("attention", att));
    }
    f.summary.global = Some(global);
    create_dir(&a.out)?;
    write_json(&a.out.join("fidelity.json"), &f.summary)?;
    save_figures(&figs, &a.out.join("figures"))?;
    println!(
        "\nwrote {} and {}",
        a.out.join("fidelity.json").display(),
        a.out.join("figures/deletion.png").display()
    );
    Ok(())
}

/// What the demo's comparison produced.
pub struct DemoComparison {
    comparison: Comparison,
    /// Where the best model was saved.
    pub model_dir: PathBuf,
    model: Model,
    /// The compared model that reads order (the sequential one), as
    /// trained on the training part.
    sequential: Option<Model>,
    /// The compared model that reads features (the two-tower one).
    featured: Option<Model>,
    /// The comparison's vocabularies and item titles.
    users: Vocab,
    items: Vocab,
    titles: Vec<String>,
}

/// The demo's model comparison: every model kind with settings that suit
/// small data, trained on train, tested with validation folded in; the
/// best on validation is refitted on all the data and saved.
pub fn compare_demo(
    loaded: &Loaded,
    split: &Split,
    source: Source,
    items: Option<&Features>,
    users: Option<&Features>,
    out: &Path,
) -> anyhow::Result<DemoComparison> {
    let mut parts = Parts::from_split(&loaded.dataset, split, source, Values::Auto)?;
    parts.side = side_info(items, users)?;
    let titles = titles_of(items, &parts.items);
    let titles_for_report = titles.clone();
    let specs: Vec<ModelSpec> = [
        "pop",
        "itemknn",
        "ease:lambda=200",
        "svd:factors=32",
        "als:factors=32,regularization=5",
        "bpr:factors=32,epochs=30",
        "sasrec:dim=32,layers=1,heads=2,ffn=32,max_len=20,epochs=5,learning_rate=0.005,batch_size=256",
        "twotower:dim=32,hidden=32,epochs=5,batch_size=256,learning_rate=0.01,min_support=2",
    ]
    .iter()
    .map(|s| s.parse())
    .collect::<Result<_, _>>()?;
    let setup = Setup::new(vec![5, 10, 20]);
    let (mut sequential, mut featured): (Option<Model>, Option<Model>) = (None, None);
    let compared = compare(&parts, &specs, &setup, None, &mut |_, m| {
        if m.entry().capabilities.ordered_sequences {
            sequential = Some(m.clone());
        }
        if m.featured().is_some() {
            featured = Some(m.clone());
        }
    })?;
    let c = &compared.comparison;
    print_trials(&c.trials, 10);
    println!("best on {}: {}", c.selected_by, c.best_trial().spec);
    create_dir(out)?;
    write_json(
        &out.join("evaluation.json"),
        &EvaluationFile::new("demo", &parts, &setup, c),
    )?;
    save_figures(
        &[("comparison", comparison_of(c, 10))],
        &out.join("figures"),
    )
    .context("comparison figure")?;
    // What a user would deploy: the best configuration refitted on every
    // interaction given, as `run` and `tune` save it.
    let best = c.best_trial().spec.clone();
    let production = because_eval::experiment::fit_production(&best, &parts)?;
    let model_dir = out.join("best");
    persist::save(
        &production,
        &meta_for(
            &parts.users,
            &parts.items,
            &parts.for_spec(&best)?.all,
            json!({
                "selected_by": c.selected_by,
                "validation_ndcg@10": c.best_trial().validation.mean("ndcg@10"),
                "test": c.best_trial().test.summary(42),
                "test_protocol": "trained on train; validation folded into each test user's profile; full ranking",
                "trained_on": "train + validation + test",
            }),
            titles,
            event_types(&parts.event_names, &ReadArgs::defaults())?,
        ),
        &model_dir,
    )?;
    Ok(DemoComparison {
        comparison: compared.comparison,
        model_dir,
        model: production,
        sequential,
        featured,
        users: parts.users.clone(),
        items: parts.items.clone(),
        titles: titles_for_report,
    })
}

/// A sample user of the demo: ID, recent history, recommended titles, and
/// why the first one (narrative and counterfactual), when the model explains.
pub struct Shown {
    user: String,
    recent: Vec<String>,
    top: Vec<String>,
    why: Option<String>,
    more: Vec<String>,
    without: Option<String>,
}

/// Recommendations of the demo's best model for every user, and a few
/// shown and explained, through the same service `recommend` and `explain` use.
pub fn recommend_demo(
    loaded: &Loaded,
    c: &DemoComparison,
    src: &Sources,
    out: &Path,
) -> anyhow::Result<Vec<Shown>> {
    let weights = because_data::EventWeights::default();
    let meta = persist::Meta {
        user_ids: loaded.dataset.users.ids().map(str::to_string).collect(),
        item_ids: loaded.dataset.items.ids().map(str::to_string).collect(),
        events: because_eval::experiment::event_types(&loaded.dataset.event_names, &|n| {
            weights.weight(n)
        }),
        ..Default::default()
    };
    let handle = ModelHandle::new(c.model.clone(), meta)?.with_context(src.clone());
    let all = handle.recommend_all(10)?;
    write_json(&out.join("recommendations.json"), &all)?;
    let title = |id: &str| -> String {
        handle
            .items()
            .get(id)
            .and_then(|i| handle.title(i))
            .unwrap_or(id)
            .to_string()
    };
    let mut shown = Vec::new();
    let mut explained = Vec::new();
    for u in 0..3.min(c.model.n_users() as u32) {
        let user = loaded.dataset.users.id(u).to_string();
        let hist = c.model.history(u).0;
        let recent: Vec<String> = hist
            .iter()
            .rev()
            .take(3)
            .map(|&i| title(loaded.dataset.items.id(i)))
            .collect();
        let recs = &all.users[&user];
        let top: Vec<String> = recs.iter().take(5).map(|r| title(&r.item)).collect();
        println!(
            "user {user}: has {}, e.g. {}\n   -> {}",
            hist.len(),
            recent.join("; "),
            top.join("; ")
        );
        // Why the first recommendation: every reason the model and the data support.
        let (mut why, mut more, mut without) = (None, Vec::new(), None);
        if let Some(first) = recs.first() {
            let request = ExplainRequest {
                subject: Subject::User { user: user.clone() },
                item: first.item.clone(),
                n: 10,
            };
            if let Ok(r) = handle.explain(&request) {
                let e = r.explanation;
                println!("   why {}:", title(&first.item));
                for l in crate::using::explanation_lines(&e) {
                    println!("      {l}");
                }
                why = Some(e.narrative.clone());
                for r in e.reasons.iter().skip(1) {
                    match r.evidence {
                        because_explain::reasons::Evidence::Counterfactual {
                            verified: true,
                            ..
                        } => without = Some(r.sentence.clone()),
                        because_explain::reasons::Evidence::Counterfactual { .. } => {}
                        _ if !e.narrative.contains(&r.sentence) => more.push(r.sentence.clone()),
                        _ => {}
                    }
                }
                explained.push(e);
            }
        }
        shown.push(Shown {
            user,
            recent,
            top,
            why,
            more,
            without,
        });
    }
    write_json(&out.join("explanations.json"), &explained)?;
    println!(
        "wrote top-10 for {} users to {}, and {} explained in {}",
        all.users.len(),
        out.join("recommendations.json").display(),
        explained.len(),
        out.join("explanations.json").display()
    );
    Ok(shown)
}

/// The demo's fidelity table and the figures written for it.
type FidelityTable = (Vec<Vec<String>>, Vec<PathBuf>);

/// The demo's explanation step: fidelity of the best model's explanations
/// and the global view, printed, saved and returned for the report.
pub fn explain_demo(
    loaded: &Loaded,
    c: &DemoComparison,
    items: Option<&Features>,
    out: &Path,
) -> anyhow::Result<Option<FidelityTable>> {
    let opts = FidelityOptions {
        users: 100,
        n: 10,
        k: 3,
        draws: 3,
        max_size: 5,
        seed: 7,
    };
    let mut f = match fidelity::measure_model(&c.model, &opts) {
        Ok(f) => f,
        Err(e) => {
            println!(
                "   ({} does not explain: {e})",
                c.comparison.best_trial().spec
            );
            return Ok(None);
        }
    };
    let global = global_of(&c.model, &f.measured, opts.n, &loaded.dataset.items, items)?;
    let s = &f.summary;
    let rows = vec![
        vec![
            "recommendations explained".into(),
            s.recommendations.to_string(),
        ],
        vec![
            format!("rank drop removing the {} items named", s.k),
            format!("{:.2}", s.deletion_rank_drop_named.mean),
        ],
        vec![
            format!("rank drop removing {} random history items", s.k),
            format!("{:.2}", s.deletion_rank_drop_random.mean),
        ],
        vec![
            format!(
                "verified counterfactual (at most {} items, out of the top {})",
                opts.max_size, s.n
            ),
            format!("{:.0}%", 100.0 * s.counterfactual_validity.mean),
        ],
        vec![
            "explanation coverage".into(),
            format!("{:.0}%", 100.0 * s.explanation_coverage.mean),
        ],
        vec![
            "top 1% of items: share of recommendations".into(),
            format!(
                "{:.1}%",
                100.0 * global.popularity_bias.top1_share_of_recommendations
            ),
        ],
        vec![
            "top 1% of items: share of interactions".into(),
            format!(
                "{:.1}%",
                100.0 * global.popularity_bias.top1_share_of_interactions
            ),
        ],
        vec![
            "genres behind the reasons".into(),
            global
                .feature_drivers
                .iter()
                .take(4)
                .map(|(g, n)| format!("{g} ({n})"))
                .collect::<Vec<_>>()
                .join(", "),
        ],
    ];
    for r in &rows {
        println!("   {:<62} {}", r[0], r[1]);
    }
    if let Some(ts) = &global.themes {
        if items.and_then(|f| f.genre_like()).is_some() {
            for t in ts.iter().take(4) {
                println!(
                    "   theme {}: {} [{}]",
                    t.dimension,
                    t.top_items.join("; "),
                    t.dominant
                        .iter()
                        .map(|(l, n)| format!("{l} {n}/5"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    let mut figs = vec![(
        "deletion",
        deletion_figure(
            s.k,
            s.deletion_rank_drop_named.mean,
            s.deletion_rank_drop_random.mean,
        ),
    )];
    if let Some(map) = embedding_figure(&c.model, items) {
        figs.push(("embedding_map", map));
    }
    let paths = save_figures(&figs, &out.join("figures"))?;
    f.summary.global = Some(global);
    write_json(&out.join("fidelity.json"), &f.summary)?;
    Ok(Some((rows, paths)))
}

/// The demo report's model and recommendation sections.
/// The sequential model of the demo's comparison, shown on one user: its
/// first recommendation explained by occlusion (measured effects), and the
/// attention heat map behind it (written to `figures`).
pub fn sequential_demo(r: &mut Report, c: &DemoComparison, figures: &Path) -> anyhow::Result<()> {
    let Some(model) = &c.sequential else {
        return Ok(());
    };
    let Some((user, first)) = first_pick(model, 8)? else {
        return Ok(());
    };
    let (h, v) = model.history(user);
    let title = |i: u32| c.title(i);
    let e = because_explain::explain(model, h, v, first.item)?;
    let sentence = because_explain::narrative(&e, &title, &because_explain::Templates::default());
    r.section(&format!("A sequential model: {}", model.spec()));
    r.paragraph(&format!(
        "For user {}, whose latest items are {}, it recommends {} first. {sentence}",
        c.users.id(user),
        h.iter()
            .rev()
            .take(5)
            .map(|&i| title(i))
            .collect::<Vec<_>>()
            .join("; "),
        title(first.item)
    ));
    if let Some(fig) = attention_of(model, user, first.item, &title) {
        let paths = save_figures(&[("attention", fig)], figures)?;
        r.paragraph("Where its attention went, per layer and head, for that recommendation (attention is approximate: the sentence above rests on measured effects).");
        for p in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        {
            r.svg_file(p);
        }
    }
    Ok(())
}

/// The first user with at least `min_history` training items, and the
/// model's first recommendation for them.
fn first_pick(model: &Model, min_history: usize) -> anyhow::Result<Option<(u32, Scored)>> {
    let Some(user) = (0..model.n_users() as u32).find(|&u| model.history(u).0.len() >= min_history)
    else {
        return Ok(None);
    };
    let top = model.recommend(&because_core::Request::new(
        because_core::Query::User(user),
        1,
    ))?;
    Ok(top.first().map(|&s| (user, s)))
}

impl DemoComparison {
    /// Item `i`'s title, or its ID where it has none.
    fn title(&self, i: u32) -> String {
        match self.titles.get(i as usize) {
            Some(t) if !t.is_empty() => t.clone(),
            _ => self.items.id(i).to_string(),
        }
    }
}

/// The report's section on the two-tower model: a sample user's first
/// recommendation split over history and features by integrated gradients.
pub fn featured_demo(r: &mut Report, c: &DemoComparison) -> anyhow::Result<()> {
    let Some(model) = &c.featured else {
        return Ok(());
    };
    let Some((user, first)) = first_pick(model, 5)? else {
        return Ok(());
    };
    let title = |i: u32| c.title(i);
    let (h, _) = model.history(user);
    let Some((e, inputs)) = because_explain::explain_inputs(model, Some(user), h, first.item)?
    else {
        return Ok(());
    };
    r.section(&format!("A model with features: {}", model.spec()));
    r.paragraph(&format!(
        "The two-tower model reads the item's genres and year and the user's age group and country beside the history. For user {} it recommends {} first (score {:.3}). Integrated gradients split that score over every input; with the score of no input at all ({:.3}) the shares add up to it.",
        c.users.id(user),
        title(first.item),
        e.score,
        inputs.baseline
    ));
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (side, shares) in [("item", &inputs.item_inputs), ("user", &inputs.user_inputs)] {
        for s in shares.iter().take(6) {
            rows.push(vec![
                side.to_string(),
                s.input.clone(),
                format!("{:+.4}", s.share),
            ]);
        }
    }
    r.table(&["side", "input", "share of the score"], &rows);
    let named: Vec<String> = e.top_items(3).into_iter().map(title).collect();
    if !named.is_empty() {
        r.paragraph(&format!(
            "Of the history, {} carry the most.",
            named.join(", ")
        ));
    }
    Ok(())
}

pub fn report_demo(r: &mut Report, c: &DemoComparison, shown: &[Shown]) {
    let cmp = &c.comparison;
    r.section("Models").paragraph(Final::FoldIn.note());
    let table: Vec<Vec<String>> = cmp
        .trials
        .iter()
        .map(|row| {
            let t = |m: &str| format!("{:.4}", row.test.mean(m).unwrap_or(f64::NAN));
            vec![
                row.spec.to_string(),
                format!("{:.2}", row.fit_seconds),
                format!("{:.4}", row.validation.mean("ndcg@10").unwrap_or(f64::NAN)),
                t("precision@10"),
                t("recall@10"),
                t("ndcg@10"),
                t("coverage@10"),
                t("novelty@10"),
            ]
        })
        .collect();
    r.table(
        &[
            "model",
            "fit s",
            "val nDCG@10",
            "P@10",
            "R@10",
            "nDCG@10",
            "coverage",
            "novelty",
        ],
        &table,
    );
    r.paragraph(&format!(
        "Best on {}: {}.",
        cmp.selected_by,
        cmp.best_trial().spec
    ));
    r.section("Sample recommendations, explained");
    r.paragraph("Each explanation starts from an exact decomposition of the model's score over the user's own history. The other reasons are either claims about the model (the session, the funnel stage reached on a supporting item, a shared genre) or counts from the training data over groups of at least 5 people; the counterfactual was verified by re-scoring without the named items.");
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|x| {
            vec![
                x.user.clone(),
                x.recent.join("; "),
                x.top.join("; "),
                x.why.clone().unwrap_or_default(),
                x.more.join(" "),
                x.without.clone().unwrap_or_default(),
            ]
        })
        .collect();
    r.table(
        &[
            "user",
            "recent history",
            "recommended",
            "why the first",
            "what else supports it",
            "counterfactual",
        ],
        &rows,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_lists_split_between_models() {
        let specs = parse_models("pop, als:factors=8,regularization=1,ease:lambda=5,bpr").unwrap();
        let names: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names,
            [
                "pop",
                "als:factors=8,regularization=1",
                "ease:lambda=5",
                "bpr"
            ]
        );
        assert!(parse_models("pop,nope")
            .unwrap_err()
            .to_string()
            .contains("unknown model"));
        // Values are checked before any data is read.
        let e = parse_models("pop,ease:lambda=abc").unwrap_err().to_string();
        assert!(e.contains("--models") && e.contains("`lambda`"), "{e}");
        assert!(parse_ks("5,0").is_err());
    }
}
