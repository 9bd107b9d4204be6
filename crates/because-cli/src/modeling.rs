//! Training, evaluating, tuning and using models from the command line.

use crate::args::{
    EvaluateArgs, ExplainEvalArgs, FinalArg, SplitFlags, TrainArgs, TuneArgs, ValuesArg,
};
use crate::commands::{create_dir, load, optional_features, write_json};
use crate::using::{explanation_of, Catalog, History, Sources};
use anyhow::{anyhow, bail, Context};
use because_core::rng::Rng;
use because_core::{Interactions, Part, Recommender, Split};
use because_data::Loaded;
use because_eval::{
    bootstrap_ci, by_activity, evaluate as eval, paired_test, Evaluation, Protocol,
};
use because_models::persist::{self, Meta};
use because_models::{Model, ModelSpec};
use because_plot::{Bars, Figure, Lines, Series};
use because_report::{save_figures, Report};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// The training values for `mode`.
fn with_values(
    x: Interactions,
    mode: ValuesArg,
    has_ratings: bool,
) -> (Interactions, &'static str) {
    match mode {
        ValuesArg::Binary => (x.with_constant_values(1.0), "binary"),
        ValuesArg::AsIs => (x, "as-is"),
        ValuesArg::Auto if has_ratings => (
            x.with_constant_values(1.0),
            "binary (every rating is an interaction)",
        ),
        ValuesArg::Auto => (x, "as-is (event weights)"),
    }
}

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
        .map(|s| s.parse::<ModelSpec>().map_err(|e| anyhow!("--models: {e}")))
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

struct Parts {
    loaded: Loaded,
    x: Interactions,
    /// The log with its original values (ratings), for rating predictors.
    raw: Interactions,
    split: Split,
    train: Interactions,
    val: Interactions,
    test: Interactions,
}

fn prepare(
    data: &crate::args::DataArgs,
    flags: &SplitFlags,
    values: ValuesArg,
) -> anyhow::Result<Parts> {
    let method = flags.method()?;
    let (loaded, _) = load(data)?;
    let (x, how) = with_values(
        loaded.dataset.interactions.clone(),
        values,
        loaded.dataset.has_ratings,
    );
    println!("training values: {how}");
    let split = Split::new(&x, method, flags.seed, loaded.dataset.has_time)?;
    let r = split.report(&x);
    println!(
        "split {method:?}: {} train, {} validation, {} test interactions",
        split.part(&x, Part::Train).len(),
        split.part(&x, Part::Validation).len(),
        split.part(&x, Part::Test).len()
    );
    if r.leaked_pairs > 0 {
        bail!("internal error: the split leaks {} pairs", r.leaked_pairs);
    }
    if split
        .nonempty_parts()
        .iter()
        .any(|p| matches!(p, Part::ValidationFoldIn | Part::TestFoldIn))
    {
        bail!("--method held-out-users is not supported by evaluate and tune yet; use split to write its parts");
    }
    let (train, val, test) = (
        split.part(&x, Part::Train),
        split.part(&x, Part::Validation),
        split.part(&x, Part::Test),
    );
    if val.is_empty() || test.is_empty() {
        bail!("the split left validation or test empty; use larger shares or more data");
    }
    let raw = loaded.dataset.interactions.clone();
    Ok(Parts {
        loaded,
        x,
        raw,
        split,
        train,
        val,
        test,
    })
}

/// Train + validation, for refitting (with original values if `raw`).
fn train_and_validation(p: &Parts, raw: bool) -> Interactions {
    let keep: Vec<bool> = p
        .split
        .assignment()
        .iter()
        .map(|&a| matches!(a, Part::Train | Part::Validation))
        .collect();
    if raw {
        p.raw.select(&keep)
    } else {
        p.x.select(&keep)
    }
}

fn meta_for(
    loaded: &Loaded,
    x: &Interactions,
    metrics: serde_json::Value,
    titles: Vec<String>,
) -> Meta {
    Meta {
        user_ids: loaded.dataset.users.ids().map(str::to_string).collect(),
        item_ids: loaded.dataset.items.ids().map(str::to_string).collect(),
        data_fingerprint: persist::fingerprint(x),
        metrics,
        item_titles: titles,
    }
}

fn titles_of(path: Option<&Path>, loaded: &Loaded) -> anyhow::Result<Vec<String>> {
    Ok(match optional_features(path, loaded, true)? {
        Some(f) => (0..loaded.dataset.items.len() as u32)
            .map(|i| f.title(i).unwrap_or("").to_string())
            .collect(),
        None => Vec::new(),
    })
}

pub fn train(a: &TrainArgs) -> anyhow::Result<()> {
    let spec: ModelSpec = a.model.parse().map_err(|e| anyhow!("--model: {e}"))?;
    let (loaded, _) = load(&a.data)?;
    let mode = if spec.needs_ratings() {
        ValuesArg::AsIs
    } else {
        a.values
    };
    if spec.needs_ratings() && !loaded.dataset.has_ratings {
        bail!("{spec} predicts ratings, but the data has no rating column");
    }
    let (x, how) = with_values(
        loaded.dataset.interactions.clone(),
        mode,
        loaded.dataset.has_ratings,
    );
    let start = Instant::now();
    let epochs = crate::progress::Epochs::new(spec.to_string());
    let model = spec.fit_observed(&x, 0, &mut epochs.observer())?;
    drop(epochs);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "trained {} on {} interactions ({how}) in {secs:.2}s",
        model.spec(),
        x.len()
    );
    let titles = titles_of(a.items.as_deref(), &loaded)?;
    let meta = meta_for(
        &loaded,
        &x,
        json!({ "fit_seconds": secs, "values": how }),
        titles,
    );
    persist::save(&model, &meta, &a.out)?;
    println!("wrote model folder {}", a.out.display());
    Ok(())
}

struct Row {
    spec: String,
    fit_seconds: f64,
    validation: Evaluation,
    test: Evaluation,
    /// Test RMSE and MAE, for rating predictors on rating data.
    rating_errors: Option<(f64, f64)>,
}

fn fit_eval(
    spec: &ModelSpec,
    p: &Parts,
    base: &Protocol<'_>,
    final_mode: FinalArg,
) -> anyhow::Result<(Row, Model)> {
    let raw = spec.needs_ratings();
    if raw && !p.loaded.dataset.has_ratings {
        bail!("{spec} predicts ratings, but the data has no rating column");
    }
    let start = Instant::now();
    let train = if raw {
        p.split.part(&p.raw, Part::Train)
    } else {
        p.train.clone()
    };
    let model = spec
        .fit(&train)
        .with_context(|| format!("fitting {spec}"))?;
    let fit_seconds = start.elapsed().as_secs_f64();
    let validation = eval(&model, &p.val, base)?;
    let (test, final_model) = match final_mode {
        FinalArg::FoldIn => {
            let protocol = Protocol {
                extra_history: Some(&p.val),
                fold_in: true,
                ..base.clone()
            };
            (eval(&model, &p.test, &protocol)?, model)
        }
        FinalArg::Refit => {
            let refit = spec.fit(&train_and_validation(p, raw))?;
            (eval(&refit, &p.test, base)?, refit)
        }
    };
    let rating_errors = if raw {
        let raw_test = p.split.part(&p.raw, Part::Test);
        Some(because_eval::rating_accuracy(&raw_test, |u, i| {
            final_model.predict_rating(u, i).unwrap_or(f32::NAN)
        }))
    } else {
        None
    };
    Ok((
        Row {
            spec: spec.to_string(),
            fit_seconds,
            validation,
            test,
            rating_errors,
        },
        final_model,
    ))
}

fn final_note(mode: FinalArg) -> &'static str {
    match mode {
        FinalArg::FoldIn => "test: models trained on train; validation interactions folded into each test user's profile",
        FinalArg::Refit => "test: models refitted on train + validation",
    }
}

fn print_rows(rows: &[Row], k: usize) {
    println!(
        "\n{:<36} {:>7} {:>9} | {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>6} {:>7}",
        "model",
        "fit s",
        format!("val nDCG"),
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
    for r in rows {
        let t = |m: &str| r.test.mean(&format!("{m}@{k}")).unwrap_or(f64::NAN);
        println!(
            "{:<36} {:>7.2} {:>9.4} | {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>8.3} {:>6.3} {:>7.2}",
            r.spec,
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

pub fn evaluate(a: &EvaluateArgs) -> anyhow::Result<()> {
    let specs = parse_models(&a.models)?;
    let ks = parse_ks(&a.k)?;
    let k = if ks.contains(&10) { 10 } else { ks[0] };
    let p = prepare(&a.data, &a.split, a.values)?;
    // Item categories (genres) for intra-list diversity.
    let categories: Option<Vec<Vec<u32>>> =
        match optional_features(a.items.as_deref(), &p.loaded, true)? {
            Some(f) => f.genre_like().map(|c| c.codes.clone()),
            None => None,
        };
    if let Some(n) = a.sampled_negatives {
        if n == 0 {
            bail!("--sampled-negatives: must be at least 1");
        }
        println!("SAMPLED EVALUATION: test items ranked among {n} random unseen items per user; not comparable with full ranking");
    }
    let base = Protocol {
        item_categories: categories.as_deref(),
        sampled_negatives: a.sampled_negatives,
        seed: a.split.seed,
        ..Protocol::new(ks.clone())
    };
    let groups: Option<Vec<Option<String>>> = match (&a.users, &a.slice_by) {
        (Some(path), Some(col)) => {
            let f = because_data::features::read_features(path, &p.loaded.dataset.users, None)?;
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
            Some(
                (0..p.loaded.dataset.users.len())
                    .map(|u| match c.kind {
                        because_data::features::FeatureKind::Numeric => {
                            c.numeric[u].map(|v| v.to_string())
                        }
                        _ => c.codes[u].first().map(|&l| c.levels[l as usize].clone()),
                    })
                    .collect(),
            )
        }
        _ => None,
    };
    let mut rows = Vec::new();
    for spec in &specs {
        let (row, _) = fit_eval(spec, &p, &base, a.final_mode)?;
        println!(
            "  {:<36} fitted in {:.2}s, validation nDCG@{k} {:.4}",
            row.spec,
            row.fit_seconds,
            row.validation.mean(&format!("ndcg@{k}")).unwrap_or(0.0)
        );
        rows.push(row);
    }
    print_rows(&rows, k);
    println!(
        "({}; full ranking over {} items, seen items excluded)",
        final_note(a.final_mode),
        p.x.n_items()
    );
    for r in rows.iter().filter(|r| r.rating_errors.is_some()) {
        let (rmse, mae) = r.rating_errors.unwrap_or_default();
        println!(
            "rating prediction, {}: test RMSE {rmse:.4}, MAE {mae:.4}",
            r.spec
        );
    }
    let key = format!("ndcg@{k}");
    let best = rows
        .iter()
        .enumerate()
        .max_by(|x, y| {
            x.1.test
                .mean(&key)
                .unwrap_or(0.0)
                .total_cmp(&y.1.test.mean(&key).unwrap_or(0.0))
        })
        .map(|(i, _)| i)
        .unwrap_or(0);
    println!(
        "\n95% bootstrap intervals of test {key}, and paired tests against the best ({}):",
        rows[best].spec
    );
    let best_values = rows[best].test.per_user_values(&key).unwrap_or_default();
    let mut stats = Vec::new();
    for r in &rows {
        let v = r.test.per_user_values(&key).unwrap_or_default();
        let (lo, hi) = bootstrap_ci(&v, 1000, 0.95, 7);
        let pval = if r.spec == rows[best].spec {
            1.0
        } else {
            paired_test(&best_values, &v, 2000, 7)
        };
        println!(
            "  {:<36} {:.4} [{lo:.4}, {hi:.4}]  p = {pval:.4}",
            r.spec,
            r.test.mean(&key).unwrap_or(0.0)
        );
        stats.push(json!({ "model": r.spec, "mean": r.test.mean(&key), "ci95": [lo, hi], "p_vs_best": pval }));
    }
    println!("\ntest {key} by user history length:");
    let mut slices = Vec::new();
    for r in &rows {
        let s = by_activity(&r.test, &key);
        let cells: Vec<String> = s
            .iter()
            .map(|x| format!("{} ({} users): {:.3}", x.label, x.users, x.mean))
            .collect();
        println!("  {:<36} {}", r.spec, cells.join("; "));
        slices.push(json!({ "model": r.spec, "slices": s }));
    }
    if let Some(g) = &groups {
        println!("\ntest {key} by {}:", a.slice_by.as_deref().unwrap_or(""));
        for r in &rows {
            let s = because_eval::by_group(&r.test, &key, g);
            let cells: Vec<String> = s
                .iter()
                .map(|x| format!("{} ({} users): {:.3}", x.label, x.users, x.mean))
                .collect();
            println!("  {:<36} {}", r.spec, cells.join("; "));
            slices.push(json!({ "model": r.spec, "by": a.slice_by, "slices": s }));
        }
    }
    if categories.is_some() {
        println!("\nintra-list diversity (genres) at {k}:");
        for r in &rows {
            println!(
                "  {:<36} {:.4}",
                r.spec,
                r.test.mean(&format!("ild@{k}")).unwrap_or(f64::NAN)
            );
        }
    }
    create_dir(&a.out)?;
    let to_json = |e: &Evaluation| -> serde_json::Value {
        e.table()
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let results: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| json!({ "model": r.spec, "fit_seconds": r.fit_seconds, "users": r.test.users, "validation": to_json(&r.validation), "test": to_json(&r.test), "rmse": r.rating_errors.map(|e| e.0), "mae": r.rating_errors.map(|e| e.1) }))
        .collect();
    write_json(
        &a.out.join("evaluation.json"),
        &json!({ "final": final_note(a.final_mode), "sampled_negatives": a.sampled_negatives, "ks": ks, "results": results, "significance": stats, "slices": slices }),
    )?;
    let fig = Figure::Bars(Bars {
        title: format!("Test nDCG@{k} and Recall@{k}"),
        x_label: "model".into(),
        y_label: "score".into(),
        labels: rows
            .iter()
            .flat_map(|r| {
                [
                    format!("{} nDCG", r.spec.split(':').next().unwrap_or("")),
                    format!("{} R", r.spec.split(':').next().unwrap_or("")),
                ]
            })
            .collect(),
        values: rows
            .iter()
            .flat_map(|r| {
                [
                    r.test.mean(&key).unwrap_or(0.0),
                    r.test.mean(&format!("recall@{k}")).unwrap_or(0.0),
                ]
            })
            .collect(),
        log_y: false,
    });
    let figs = save_figures(&[("comparison", fig)], &a.out.join("figures"))?;
    let mut report = Report::new(&format!("because evaluate: {}", a.data.data.display()));
    report
        .section("Model comparison")
        .paragraph(final_note(a.final_mode));
    let header = [
        "model", "fit s", "val nDCG", "P", "R", "nDCG", "MAP", "MRR", "HR", "coverage", "gini",
        "novelty",
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let t = |m: &str| {
                format!(
                    "{:.4}",
                    r.test.mean(&format!("{m}@{k}")).unwrap_or(f64::NAN)
                )
            };
            vec![
                r.spec.clone(),
                format!("{:.2}", r.fit_seconds),
                format!("{:.4}", r.validation.mean(&key).unwrap_or(f64::NAN)),
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
        .collect();
    report.table(&header, &table);
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

/// The configurations of a grid, in order (values as given, so list smaller, simpler values first).
fn grid_configs(grid: &[String]) -> anyhow::Result<Vec<Vec<(String, String)>>> {
    let mut axes: Vec<(String, Vec<String>)> = Vec::new();
    for g in grid {
        let (key, values) = g
            .split_once('=')
            .ok_or_else(|| anyhow!("--grid: {g:?} is not key=v1,v2,..."))?;
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            bail!("--grid: {key} has no values");
        }
        axes.push((key.trim().replace('-', "_"), values));
    }
    let mut configs: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (key, values) in &axes {
        configs = configs
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    Ok(configs)
}

pub fn tune(a: &TuneArgs) -> anyhow::Result<()> {
    let base: ModelSpec = a.model.parse().map_err(|e| anyhow!("--model: {e}"))?;
    let mut configs = grid_configs(&a.grid)?;
    if let Some(n) = a.random {
        let mut order: Vec<usize> = (0..configs.len()).collect();
        Rng::new(a.split.seed).shuffle(&mut order);
        order.truncate(n.max(1));
        order.sort_unstable();
        configs = order.into_iter().map(|i| configs[i].clone()).collect();
    }
    // Validate every configuration before the expensive part.
    let specs: Vec<ModelSpec> = configs
        .iter()
        .map(|c| {
            let text = format!(
                "{}:{}",
                base.kind,
                base.params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .chain(c.iter().map(|(k, v)| format!("{k}={v}")))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            text.parse::<ModelSpec>()
                .map_err(|e| anyhow!("--grid: {e}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let (name, kstr) = a
        .metric
        .split_once('@')
        .ok_or_else(|| anyhow!("--metric: {:?} is not name@k", a.metric))?;
    let k: usize = kstr
        .parse()
        .map_err(|_| anyhow!("--metric: {kstr:?} is not a cut-off"))?;
    if !because_eval::metrics::NAMES.contains(&name) && !["coverage", "novelty"].contains(&name) {
        bail!(
            "--metric: unknown metric {name:?} (one of {})",
            because_eval::metrics::NAMES.join(", ")
        );
    }
    let p = prepare(&a.data, &a.split, a.values)?;
    let mut results: Vec<(ModelSpec, f64, f64)> = Vec::new();
    let mut best: Option<usize> = None;
    println!(
        "\n{:<48} {:>10} {:>8}",
        "configuration",
        format!("val {}", a.metric),
        "fit s"
    );
    if a.early_stopping == Some(0) || a.check_every == 0 {
        bail!("--early-stopping and --check-every must be at least 1");
    }
    for spec in &specs {
        let start = Instant::now();
        let (spec, v) = match (a.early_stopping, spec.epoch_key()) {
            (Some(patience), Some(key)) => {
                // Validation after each check; stop after `patience` checks without a gain.
                let (mut best_v, mut best_epoch, mut since, mut failure) =
                    (f64::NEG_INFINITY, 0usize, 0usize, None);
                spec.fit_observed(&p.train, a.check_every, &mut |ep| {
                    let Some(m) = ep.model else {
                        return std::ops::ControlFlow::Continue(());
                    };
                    let epoch = ep.epoch;
                    match eval(m, &p.val, &Protocol::new(vec![k])) {
                        Ok(e) => {
                            let v = e.mean(&a.metric).unwrap_or(f64::NAN);
                            if v > best_v {
                                (best_v, best_epoch, since) = (v, epoch, 0);
                            } else {
                                since += 1;
                            }
                        }
                        Err(e) => failure = Some(e),
                    }
                    if since >= patience || failure.is_some() {
                        std::ops::ControlFlow::Break(())
                    } else {
                        std::ops::ControlFlow::Continue(())
                    }
                })
                .with_context(|| format!("fitting {spec}"))?;
                if let Some(e) = failure {
                    return Err(e.into());
                }
                (spec.clone().with(key, best_epoch), best_v)
            }
            _ => {
                let model = spec
                    .fit(&p.train)
                    .with_context(|| format!("fitting {spec}"))?;
                let v = eval(&model, &p.val, &Protocol::new(vec![k]))?
                    .mean(&a.metric)
                    .unwrap_or(f64::NAN);
                (spec.clone(), v)
            }
        };
        let spec = &spec;
        let secs = start.elapsed().as_secs_f64();
        println!("{:<48} {:>10.4} {:>8.2}", spec.to_string(), v, secs);
        // Strictly better only: ties keep the earlier, smaller configuration.
        if best.is_none_or(|b| v > results[b].1) {
            best = Some(results.len());
        }
        results.push((spec.clone(), v, secs));
    }
    let b = best.ok_or_else(|| anyhow!("no configuration was tried"))?;
    let chosen = results[b].0.clone();
    println!(
        "\nchosen: {chosen} (validation {} {:.4})",
        a.metric, results[b].1
    );
    let (row, final_model) = fit_eval(&chosen, &p, &Protocol::new(vec![k]), a.final_mode)?;
    println!("{}", final_note(a.final_mode));
    println!(
        "test {}: {:.4}; recall@{k} {:.4}",
        a.metric,
        row.test.mean(&a.metric).unwrap_or(f64::NAN),
        row.test.mean(&format!("recall@{k}")).unwrap_or(f64::NAN)
    );
    create_dir(&a.out)?;
    let table: Vec<serde_json::Value> = results
        .iter()
        .map(|(s, v, t)| json!({ "config": s.to_string(), "validation": v, "fit_seconds": t }))
        .collect();
    write_json(
        &a.out.join("tune.json"),
        &json!({ "metric": a.metric, "chosen": chosen.to_string(), "final": final_note(a.final_mode), "test": row.test.mean(&a.metric), "results": table }),
    )?;
    // One figure per hyperparameter: the best validation score for each of its values.
    let mut figs = Vec::new();
    for g in &a.grid {
        let key = g
            .split_once('=')
            .map(|x| x.0.trim().replace('-', "_"))
            .unwrap_or_default();
        let mut points: Vec<(String, f64)> = Vec::new();
        for (s, v, _) in &results {
            let value = s.params.get(&key).cloned().unwrap_or_default();
            match points.iter_mut().find(|p| p.0 == value) {
                Some(p) => p.1 = p.1.max(*v),
                None => points.push((value, *v)),
            }
        }
        let numeric: Option<Vec<(f64, f64)>> = points
            .iter()
            .map(|(x, v)| x.parse::<f64>().ok().map(|x| (x, *v)))
            .collect();
        let fig = match numeric {
            Some(mut pts) if pts.len() > 1 => {
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let log_x = pts.iter().all(|p| p.0 > 0.0)
                    && pts.last().map(|l| l.0).unwrap_or(1.0) / pts[0].0 >= 20.0;
                Figure::Lines(Lines {
                    title: format!("Validation {} against {key}", a.metric),
                    x_label: key.clone(),
                    y_label: a.metric.clone(),
                    series: vec![Series {
                        name: key.clone(),
                        points: pts,
                    }],
                    log_x,
                    log_y: false,
                    x_ticks: None,
                })
            }
            _ => Figure::Bars(Bars {
                title: format!("Validation {} against {key}", a.metric),
                x_label: key.clone(),
                y_label: a.metric.clone(),
                labels: points.iter().map(|p| p.0.clone()).collect(),
                values: points.iter().map(|p| p.1).collect(),
                log_y: false,
            }),
        };
        figs.push((key, fig));
    }
    let named: Vec<(&str, Figure)> = figs.iter().map(|(k, f)| (k.as_str(), f.clone())).collect();
    let paths = save_figures(&named, &a.out.join("figures"))?;
    let model_dir = a.out.join("model");
    let x_final = if a.final_mode == FinalArg::Refit {
        train_and_validation(&p, false)
    } else {
        p.train.clone()
    };
    persist::save(
        &final_model,
        &meta_for(
            &p.loaded,
            &x_final,
            json!({ "validation": results[b].1, "test": row.test.mean(&a.metric), "metric": a.metric }),
            Vec::new(),
        ),
        &model_dir,
    )?;
    println!(
        "wrote {}, {} figures and the chosen model in {}",
        a.out.join("tune.json").display(),
        paths.len(),
        model_dir.display()
    );
    Ok(())
}

pub fn explain_eval(a: &ExplainEvalArgs) -> anyhow::Result<()> {
    if a.n == 0 || a.k == 0 || a.users == 0 {
        bail!("--n, --k and --users must be at least 1");
    }
    let spec: ModelSpec = a.model.parse().map_err(|e| anyhow!("--model: {e}"))?;
    let (loaded, _) = load(&a.data)?;
    let (x, how) = with_values(
        loaded.dataset.interactions.clone(),
        a.values,
        loaded.dataset.has_ratings,
    );
    let seeded = |seed: u64| {
        if spec.seeded() {
            spec.clone().with("seed", seed)
        } else {
            spec.clone()
        }
    };
    let model = seeded(a.seed).fit(&x)?;
    let step = (x.n_users() / a.users).max(1);
    let users: Vec<u32> = (0..x.n_users() as u32)
        .step_by(step)
        .filter(|&u| !x.range(u).is_empty())
        .take(a.users)
        .collect();
    println!(
        "explaining the top {} for {} users ({}, values {how})",
        a.n,
        users.len(),
        model.spec()
    );
    let start = Instant::now();
    let m = because_explain::measure(&model, &users, a.n, a.k, 5, 5, a.seed)?;
    let second = seeded(a.seed + 1).fit(&x)?;
    let m2 = because_explain::measure(&second, &users, a.n, a.k, 1, 0, a.seed)?;
    let stability = because_explain::stability(&m, &m2);
    let col =
        |f: &dyn Fn(&because_explain::Measured) -> f64| -> Vec<f64> { m.iter().map(f).collect() };
    let named = col(&|r| r.deletion.explained_drop);
    let random = col(&|r| r.deletion.random_drop);
    let leaves = col(&|r| f64::from(u8::from(r.named_leaves_top)));
    let valid = col(&|r| f64::from(u8::from(r.counterfactual.verified)));
    let supported = col(&|r| f64::from(u8::from(r.supported)));
    let covered = col(&|r| f64::from(u8::from(r.covered)));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let ci = |v: &[f64]| bootstrap_ci(v, 1000, 0.95, a.seed);
    let sizes: Vec<f64> = m
        .iter()
        .filter(|r| r.counterfactual.verified)
        .map(|r| r.counterfactual.removed.len() as f64)
        .collect();
    let line = |name: &str, v: &[f64]| {
        let (lo, hi) = ci(v);
        println!("  {name:<58} {:>8.3}  [{lo:.3}, {hi:.3}]", mean(v));
        json!({ "mean": mean(v), "ci95": [lo, hi] })
    };
    println!(
        "\n{} explained recommendations in {:.1}s; means with 95% bootstrap intervals:",
        m.len(),
        start.elapsed().as_secs_f64()
    );
    let report = json!({
        "model": model.spec().to_string(),
        "recommendations": m.len(),
        "n": a.n,
        "k": a.k,
        "deletion_rank_drop_named": line(&format!("rank drop removing the {} items named", a.k), &named),
        "deletion_rank_drop_random": line(&format!("rank drop removing {} random history items", a.k), &random),
        "named_removal_leaves_top_n": line(&format!("share leaving the top {} when the named items go", a.n), &leaves),
        "counterfactual_validity": line("verified counterfactual of at most 5 items", &valid),
        "counterfactual_mean_size": mean(&sizes),
        "explainability_precision": line("share with at least one supporting history item", &supported),
        "explanation_coverage": line("share with a non-trivial reason", &covered),
        "stability_top3_overlap": stability,
    });
    println!("  {:<58} {:>8.2}", "mean counterfactual size", mean(&sizes));
    match stability {
        Some(s) => println!(
            "  {:<58} {:>8.3}",
            "top-3 reason overlap between two trainings (seeds differ)", s
        ),
        None => println!("  stability: no recommendation shared between the two trainings"),
    }
    // The global view: popularity bias, what drives recommendations, themes.
    let features = optional_features(a.items.as_deref(), &loaded, true)?;
    let title = |i: u32| {
        features
            .as_ref()
            .and_then(|f| f.title(i))
            .unwrap_or(loaded.dataset.items.id(i))
            .to_string()
    };
    let all_users: Vec<u32> = (0..model.n_users() as u32).collect();
    let recs = model.recommend_users(&all_users, a.n)?;
    let bias = because_explain::global::popularity_bias(&recs, &x.item_counts());
    println!(
        "\nglobal: the most popular 1% of items get {:.1}% of recommendations and {:.1}% of interactions",
        100.0 * bias.top1_share_of_recommendations,
        100.0 * bias.top1_share_of_interactions
    );
    let drivers = because_explain::global::top_drivers(&m, 8);
    let names: Vec<String> = drivers
        .iter()
        .map(|(i, c)| format!("{} ({c})", title(*i)))
        .collect();
    println!(
        "history items most often among the top-3 reasons: {}",
        names.join("; ")
    );
    let genre = features.as_ref().and_then(|f| f.genre_like());
    let genre_drivers = genre
        .map(|g| because_explain::global::feature_drivers(&m, &g.codes, &g.levels))
        .unwrap_or_default();
    if !genre_drivers.is_empty() {
        let cells: Vec<String> = genre_drivers
            .iter()
            .take(6)
            .map(|(l, c)| format!("{l} ({c})"))
            .collect();
        println!(
            "{} of the reason items: {}",
            genre.map(|g| g.name.as_str()).unwrap_or(""),
            cells.join("; ")
        );
    }
    let themes = model.item_embeddings().map(|(f, d)| {
        because_explain::global::themes(
            f,
            d,
            5,
            genre.map(|g| (g.codes.as_slice(), g.levels.as_slice())),
        )
    });
    if let Some(ts) = &themes {
        println!("hidden themes (first 6 latent dimensions):");
        for t in ts.iter().take(6) {
            let items: Vec<String> = t.top_items.iter().map(|&i| title(i)).collect();
            let dom: Vec<String> = t
                .dominant
                .iter()
                .map(|(l, c)| format!("{l} {c}/5"))
                .collect();
            println!(
                "  {:>2}: {} [{}]",
                t.dimension,
                items.join("; "),
                dom.join(", ")
            );
        }
    }
    if let Some((factors, d)) = model.item_embeddings() {
        let xy = because_explain::global::pca_2d(factors, d);
        let (groups, group_of): (Vec<String>, Vec<usize>) = match genre {
            Some(g) => {
                let mut counts = vec![0usize; g.levels.len()];
                g.codes
                    .iter()
                    .filter_map(|c| c.first())
                    .for_each(|&l| counts[l as usize] += 1);
                let mut order: Vec<usize> = (0..g.levels.len()).collect();
                order.sort_by_key(|&l| std::cmp::Reverse(counts[l]));
                order.truncate(9);
                let mut names: Vec<String> = order.iter().map(|&l| g.levels[l].clone()).collect();
                names.push("other".into());
                let of = g
                    .codes
                    .iter()
                    .map(|c| {
                        c.first()
                            .and_then(|&l| order.iter().position(|&o| o == l as usize))
                            .unwrap_or(9)
                    })
                    .collect();
                (names, of)
            }
            None => (vec!["items".into()], vec![0; xy.len()]),
        };
        let map = Figure::Scatter(because_plot::Scatter {
            title: "Item embeddings, first two principal components".into(),
            x_label: "component 1".into(),
            y_label: "component 2".into(),
            points: xy
                .iter()
                .zip(&group_of)
                .map(|(&(x, y), &g)| (x, y, g))
                .collect(),
            groups,
        });
        save_figures(&[("embedding_map", map)], &a.out.join("figures"))?;
    }
    let mut report = report;
    report["global"] = json!({
        "popularity_bias": bias,
        "top_driver_items": drivers.iter().map(|(i, c)| json!({ "item": loaded.dataset.items.id(*i), "title": title(*i), "count": c })).collect::<Vec<_>>(),
        "feature_drivers": genre_drivers,
        "themes": themes.map(|ts| ts.iter().map(|t| json!({ "dimension": t.dimension, "top_items": t.top_items.iter().map(|&i| title(i)).collect::<Vec<_>>(), "dominant": t.dominant })).collect::<Vec<_>>()),
    });
    create_dir(&a.out)?;
    write_json(&a.out.join("fidelity.json"), &report)?;
    let fig = Figure::Bars(Bars {
        title: format!("Deletion test: mean rank drop, {} items removed", a.k),
        x_label: "items removed".into(),
        y_label: "rank drop".into(),
        labels: vec![
            "named by the explanation".into(),
            "random history items".into(),
        ],
        values: vec![mean(&named), mean(&random)],
        log_y: false,
    });
    // Diversity across users: for how many users each recommended item appears.
    let mut reach = vec![0usize; model.n_items()];
    for list in &model.recommend_users(&(0..model.n_users() as u32).collect::<Vec<_>>(), a.n)? {
        for s in list {
            reach[s.item as usize] += 1;
        }
    }
    let mut counts: Vec<usize> = reach.into_iter().filter(|&c| c > 0).collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let shared = Figure::Lines(Lines {
        title: format!(
            "Diversity across users: {} distinct items in everyone's top {}",
            counts.len(),
            a.n
        ),
        x_label: "recommended item (rank by reach)".into(),
        y_label: "users it is recommended to".into(),
        series: vec![Series {
            name: "items".into(),
            points: counts
                .iter()
                .enumerate()
                .map(|(k, &c)| ((k + 1) as f64, c as f64))
                .collect(),
        }],
        log_x: true,
        log_y: true,
        x_ticks: None,
    });
    save_figures(
        &[("deletion", fig), ("diversity_across_users", shared)],
        &a.out.join("figures"),
    )?;
    println!(
        "\nwrote {} and {}",
        a.out.join("fidelity.json").display(),
        a.out.join("figures/deletion.png").display()
    );
    Ok(())
}

/// What the demo's comparison produced.
pub struct DemoComparison {
    rows: Vec<Row>,
    best: usize,
    /// Where the best model was saved.
    pub model_dir: std::path::PathBuf,
    model: Model,
}

/// The demo's model comparison: every model kind with settings that suit
/// small data, trained on train, tested with validation folded in.
pub fn compare_demo(loaded: &Loaded, split: &Split, out: &Path) -> anyhow::Result<DemoComparison> {
    let x = &loaded.dataset.interactions;
    let (train, val, test) = (
        split.part(x, Part::Train),
        split.part(x, Part::Validation),
        split.part(x, Part::Test),
    );
    let specs = [
        "pop",
        "itemknn",
        "ease:lambda=200",
        "svd:factors=32",
        "als:factors=32,regularization=5",
        "bpr:factors=32,epochs=30",
    ];
    let mut rows = Vec::new();
    let mut models = Vec::new();
    let ks = [5usize, 10, 20];
    for s in specs {
        let spec: ModelSpec = s.parse()?;
        let start = Instant::now();
        let model = spec.fit(&train)?;
        let fit_seconds = start.elapsed().as_secs_f64();
        let validation = eval(&model, &val, &Protocol::new(ks.to_vec()))?;
        let test = eval(
            &model,
            &test,
            &Protocol {
                ks: ks.to_vec(),
                extra_history: Some(&val),
                fold_in: true,
                ..Protocol::new(Vec::new())
            },
        )?;
        rows.push(Row {
            spec: s.to_string(),
            fit_seconds,
            validation,
            test,
            rating_errors: None,
        });
        models.push(model);
    }
    print_rows(&rows, 10);
    let best = (0..rows.len())
        .max_by(|&a, &b| {
            rows[a]
                .validation
                .mean("ndcg@10")
                .unwrap_or(0.0)
                .total_cmp(&rows[b].validation.mean("ndcg@10").unwrap_or(0.0))
        })
        .unwrap_or(0);
    println!("best on validation: {}", rows[best].spec);
    create_dir(out)?;
    let results: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| json!({ "model": r.spec, "fit_seconds": r.fit_seconds, "validation_ndcg@10": r.validation.mean("ndcg@10"), "test": r.test.table().into_iter().map(|(k, v)| (k, json!(v))).collect::<serde_json::Map<_, _>>() }))
        .collect();
    write_json(
        &out.join("evaluation.json"),
        &json!({ "final": final_note(FinalArg::FoldIn), "results": results }),
    )?;
    let fig = Figure::Bars(Bars {
        title: "Test nDCG@10 by model".into(),
        x_label: "model".into(),
        y_label: "nDCG@10".into(),
        labels: rows
            .iter()
            .map(|r| r.spec.split(':').next().unwrap_or("").to_string())
            .collect(),
        values: rows
            .iter()
            .map(|r| r.test.mean("ndcg@10").unwrap_or(0.0))
            .collect(),
        log_y: false,
    });
    save_figures(&[("comparison", fig)], &out.join("figures"))?;
    let model_dir = out.join("best");
    let model = models.swap_remove(best);
    persist::save(
        &model,
        &meta_for(
            loaded,
            &train,
            json!({ "validation_ndcg@10": rows[best].validation.mean("ndcg@10") }),
            Vec::new(),
        ),
        &model_dir,
    )?;
    Ok(DemoComparison {
        rows,
        best,
        model_dir,
        model,
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

/// Recommendations of the demo's best model for every user, and a few shown.
pub fn recommend_demo(
    loaded: &Loaded,
    c: &DemoComparison,
    src: &Sources,
    out: &Path,
) -> anyhow::Result<Vec<Shown>> {
    let items = src.items.as_ref();
    let title = |i: u32| {
        items
            .and_then(|f| f.title(i))
            .unwrap_or(loaded.dataset.items.id(i))
            .to_string()
    };
    let users: Vec<u32> = (0..c.model.n_users() as u32).collect();
    let recs = c.model.recommend_users(&users, 10)?;
    let mut all = serde_json::Map::new();
    for (u, r) in users.iter().zip(&recs) {
        let list: Vec<serde_json::Value> = r.iter().map(|s| json!({ "item": loaded.dataset.items.id(s.item), "title": title(s.item), "score": s.score })).collect();
        all.insert(loaded.dataset.users.id(*u).to_string(), list.into());
    }
    write_json(
        &out.join("recommendations.json"),
        &json!({ "model": c.rows[c.best].spec, "k": 10, "exclude_seen": true, "users": all }),
    )?;
    let catalog = Catalog {
        model: &c.model,
        users: &loaded.dataset.users,
        items: &loaded.dataset.items,
        titles: &[],
    };
    let mut shown = Vec::new();
    let mut explained = Vec::new();
    for &u in users.iter().take(3) {
        let (hist, values) = c.model.history(u);
        let recent: Vec<String> = hist.iter().rev().take(3).map(|&i| title(i)).collect();
        let top: Vec<String> = recs[u as usize]
            .iter()
            .take(5)
            .map(|s| title(s.item))
            .collect();
        println!(
            "user {}: has {}, e.g. {}\n   -> {}",
            loaded.dataset.users.id(u),
            hist.len(),
            recent.join("; "),
            top.join("; ")
        );
        // Why the first recommendation: every reason the model and the data support.
        let (mut why, mut more, mut without) = (None, Vec::new(), None);
        if let Some(first) = recs[u as usize].first() {
            let h = History {
                items: hist.to_vec(),
                values: values.to_vec(),
                who: format!("user {}", loaded.dataset.users.id(u)),
                user: Some(u),
            };
            if let Ok((e, lines)) = explanation_of(&catalog, src, &h, first.item, 10) {
                println!("   why {}:", title(first.item));
                for l in &lines {
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
            user: loaded.dataset.users.id(u).to_string(),
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
        users.len(),
        out.join("recommendations.json").display(),
        explained.len(),
        out.join("explanations.json").display()
    );
    Ok(shown)
}

/// The demo's fidelity table and the figures written for it.
type FidelitySummary = (Vec<Vec<String>>, Vec<std::path::PathBuf>);

/// The demo's explanation step: fidelity of the best model's explanations
/// and the global view, printed, saved and returned for the report.
pub fn explain_demo(
    loaded: &Loaded,
    c: &DemoComparison,
    items: Option<&because_data::features::Features>,
    out: &Path,
) -> anyhow::Result<Option<FidelitySummary>> {
    let model = &c.model;
    let users: Vec<u32> = (0..model.n_users() as u32)
        .step_by((model.n_users() / 100).max(1))
        .take(100)
        .collect();
    let m = match because_explain::measure(model, &users, 10, 3, 3, 5, 7) {
        Ok(m) => m,
        Err(e) => {
            println!("   ({} does not explain: {e})", c.rows[c.best].spec);
            return Ok(None);
        }
    };
    let mean = |f: &dyn Fn(&because_explain::Measured) -> f64| {
        m.iter().map(f).sum::<f64>() / m.len().max(1) as f64
    };
    let named = mean(&|r| r.deletion.explained_drop);
    let random = mean(&|r| r.deletion.random_drop);
    let valid = mean(&|r| f64::from(u8::from(r.counterfactual.verified)));
    let covered = mean(&|r| f64::from(u8::from(r.covered)));
    let all_users: Vec<u32> = (0..model.n_users() as u32).collect();
    let bias = because_explain::global::popularity_bias(
        &model.recommend_users(&all_users, 10)?,
        &model
            .train()
            .iu
            .indptr()
            .windows(2)
            .map(|w| (w[1] - w[0]) as u32)
            .collect::<Vec<_>>(),
    );
    let genre = items.and_then(|f| f.genre_like());
    let genres = genre
        .map(|g| because_explain::global::feature_drivers(&m, &g.codes, &g.levels))
        .unwrap_or_default();
    let title = |i: u32| {
        items
            .and_then(|f| f.title(i))
            .unwrap_or(loaded.dataset.items.id(i))
            .to_string()
    };
    let rows = vec![
        vec!["recommendations explained".into(), m.len().to_string()],
        vec![
            "rank drop removing the 3 items named".into(),
            format!("{named:.2}"),
        ],
        vec![
            "rank drop removing 3 random history items".into(),
            format!("{random:.2}"),
        ],
        vec![
            "verified counterfactual (at most 5 items, out of the top 10)".into(),
            format!("{:.0}%", 100.0 * valid),
        ],
        vec![
            "explanation coverage".into(),
            format!("{:.0}%", 100.0 * covered),
        ],
        vec![
            "top 1% of items: share of recommendations".into(),
            format!("{:.1}%", 100.0 * bias.top1_share_of_recommendations),
        ],
        vec![
            "top 1% of items: share of interactions".into(),
            format!("{:.1}%", 100.0 * bias.top1_share_of_interactions),
        ],
        vec![
            "genres behind the reasons".into(),
            genres
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
    let mut figs = vec![(
        "deletion",
        Figure::Bars(Bars {
            title: "Deletion test: mean rank drop, 3 items removed".into(),
            x_label: "items removed".into(),
            y_label: "rank drop".into(),
            labels: vec![
                "named by the explanation".into(),
                "random history items".into(),
            ],
            values: vec![named, random],
            log_y: false,
        }),
    )];
    if let Some((factors, d)) = model.item_embeddings() {
        let xy = because_explain::global::pca_2d(factors, d);
        let (names, of): (Vec<String>, Vec<usize>) = match genre {
            Some(g) => (
                g.levels.clone(),
                g.codes
                    .iter()
                    .map(|c| c.first().map(|&l| l as usize).unwrap_or(0))
                    .collect(),
            ),
            None => (vec!["items".into()], vec![0; xy.len()]),
        };
        figs.push((
            "embedding_map",
            Figure::Scatter(because_plot::Scatter {
                title: "Item embeddings (PCA), coloured by genre".into(),
                x_label: "component 1".into(),
                y_label: "component 2".into(),
                points: xy.iter().zip(&of).map(|(&(x, y), &g)| (x, y, g)).collect(),
                groups: names,
            }),
        ));
        if let Some(g) = genre {
            for t in because_explain::global::themes(factors, d, 5, Some((&g.codes, &g.levels)))
                .iter()
                .take(4)
            {
                let items: Vec<String> = t.top_items.iter().map(|&i| title(i)).collect();
                println!(
                    "   theme {}: {} [{}]",
                    t.dimension,
                    items.join("; "),
                    t.dominant
                        .iter()
                        .map(|(l, n)| format!("{l} {n}/5"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    let paths = save_figures(&figs, &out.join("figures"))?;
    write_json(
        &out.join("fidelity.json"),
        &json!({ "model": c.rows[c.best].spec, "summary": rows }),
    )?;
    Ok(Some((rows, paths)))
}

/// The demo report's model and recommendation sections.
pub fn report_demo(r: &mut Report, c: &DemoComparison, shown: &[Shown]) {
    r.section("Models").paragraph(final_note(FinalArg::FoldIn));
    let table: Vec<Vec<String>> = c
        .rows
        .iter()
        .map(|row| {
            let t = |m: &str| format!("{:.4}", row.test.mean(m).unwrap_or(f64::NAN));
            vec![
                row.spec.clone(),
                format!("{:.2}", row.fit_seconds),
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
            "model", "fit s", "P@10", "R@10", "nDCG@10", "coverage", "novelty",
        ],
        &table,
    );
    r.paragraph(&format!("Best on validation: {}.", c.rows[c.best].spec));
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
        assert!(parse_ks("5,0").is_err());
    }

    #[test]
    fn grids_expand_in_order() {
        let c = grid_configs(&["lambda=1,2".into(), "x=a,b".into()]).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(
            c[1],
            vec![
                ("lambda".to_string(), "1".to_string()),
                ("x".to_string(), "b".to_string())
            ]
        );
        assert!(grid_configs(&["lambda".into()]).is_err());
    }
}
