//! Printing: what the commands show people, from what the libraries
//! return. A leaf module: it imports nothing from the rest of the crate.

use because_core::SplitReport;
use because_data::features::{FeatureReport, Features};
use because_data::Loaded;
use because_eval::experiment::{Comparison, Parts, Source, Trial};
use because_explain::fidelity::{self, FidelitySummary, GlobalView};
use because_explain::reasons::Evidence;
use because_explain::Explained;
use because_service::{Recommendations, Recommended, SubjectInfo};

/// Prints what was read, kept and dropped, step by step.
pub fn loaded(loaded: &Loaded) {
    print!("{}", loaded.report.summary());
    for step in loaded.report.steps.iter().skip(1) {
        println!(
            "  step {:<28} {:>10} -> {:>10}",
            step.name, step.before, step.after
        );
    }
    println!(
        "  {} users, {} items, {} interactions",
        loaded.dataset.users.len(),
        loaded.dataset.items.len(),
        loaded.dataset.interactions.len(),
    );
}

/// How early stopping chose the epochs `train` then refitted with.
pub fn early_stopped(s: &because_models::persist::EarlyStopped) {
    let best = s
        .checks
        .iter()
        .find(|c| Some(c.epoch) == s.best_epoch)
        .map(|c| format!(", NDCG@10 {:.4} there", c.ndcg))
        .unwrap_or_default();
    match s.best_epoch {
        Some(e) => println!(
            "early stopping: best check at epoch {e} of {} run on {} held-out users{best} ({:.1}s); refitting on everything for {e} epochs",
            s.epochs_run, s.validation_users, s.search_seconds
        ),
        None => println!(
            "early stopping: no check came in {} epochs; refitting on everything with the given epochs",
            s.epochs_run
        ),
    }
}

/// How a log became sessions to train on and to replay.
pub fn session_report(r: &because_eval::experiment::SessionReport) {
    let cut = if r.timeout_minutes > 0.0 {
        format!("at gaps over {} minutes", r.timeout_minutes)
    } else {
        "one per user ID".to_string()
    };
    println!(
        "{} sessions ({cut}); {} of a single event dropped; training {} sessions ({} events); validation {} sessions ({} predictions); test {} sessions ({} predictions); {} replayed events of items training never saw and {} sessions left too short dropped",
        r.sessions,
        r.single_event,
        r.train_sessions,
        r.train_events,
        r.validation_sessions,
        r.validation_predictions,
        r.test_sessions,
        r.test_predictions,
        r.unknown_item_events,
        r.too_short_after
    );
}

/// The next-item metrics of each model on test, and the one chosen.
pub fn session_comparison(c: &because_eval::experiment::SessionComparison) {
    let names: Vec<String> =
        c.ks.iter()
            .flat_map(|k| {
                [
                    format!("hitrate@{k}"),
                    format!("mrr@{k}"),
                    format!("ndcg@{k}"),
                ]
            })
            .collect();
    print!("\n{:<36} {:>8}", "test (next item)", "fit s");
    for n in &names {
        print!(" {n:>10}");
    }
    println!();
    for t in &c.trials {
        print!("{:<36} {:>8.2}", t.spec, t.fit_seconds);
        for n in &names {
            print!(
                " {:>10.4}",
                t.test.metrics.get(n).copied().unwrap_or(f64::NAN)
            );
        }
        println!();
    }
    println!("best on {}: {}", c.selected_by, c.best);
}

/// How a feature file matched the vocabulary of `n` users or items.
pub fn features_report(r: &FeatureReport, n: usize, of: &str) {
    println!(
        "{}: {} rows, {} matched, {} for unknown IDs, {} malformed, {} repeated IDs; {} of {n} {of} have no row",
        r.file, r.rows_read, r.matched, r.unmatched, r.malformed, r.duplicates, r.missing,
    );
}

/// The titles (or IDs) of `items`, by `features` where they have titles.
pub fn titles(items: &[u32], features: &Features, id: &dyn Fn(u32) -> String) -> String {
    items
        .iter()
        .map(|&i| features.title(i).map_or_else(|| id(i), str::to_string))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a split produced, part by part, and its leakage check.
pub fn split(r: &SplitReport) {
    for ((part, n), (_, users)) in r.interactions.iter().zip(&r.users) {
        println!(
            "  {:<18} {:>10} interactions  {:>8} users",
            part.name(),
            n,
            users
        );
    }
    println!(
        "  unknown to train: {} users and {} items in validation, {} users and {} items in test",
        r.unknown_users_validation,
        r.unknown_items_validation,
        r.unknown_users_test,
        r.unknown_items_test
    );
    println!(
        "  leakage check: {} validation/test pairs also in train; {} repeats moved to keep pairs together",
        r.leaked_pairs, r.moved_for_pair_consistency
    );
}

/// The parts of an experiment: where they came from, their sizes, and
/// what was dropped.
pub fn parts(p: &Parts) {
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

/// The comparison table: one line per model.
pub fn trials(trials: &[Trial], k: usize) {
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
pub fn report_rows(trials: &[Trial], k: usize) -> Vec<Vec<String>> {
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

/// The header of [`report_rows`].
pub const REPORT_HEADER: [&str; 12] = [
    "model", "fit s", "val nDCG", "P", "R", "nDCG", "MAP", "MRR", "HR", "coverage", "gini",
    "novelty",
];

/// The best model, intervals and paired tests, and slices.
pub fn comparison(c: &Comparison, slice_by: Option<&str>) {
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

/// Fidelity measurements with their intervals.
pub fn fidelity(s: &FidelitySummary) {
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

/// The global view of a model's explanations.
pub fn global(g: &GlobalView, genre: Option<&str>, themes: usize) {
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

pub fn who(s: &SubjectInfo) -> String {
    match (&s.user, s.known) {
        (Some(u), true) => format!("user {u}"),
        (Some(u), false) => format!("unknown user {u}"),
        (None, _) => format!("a history of {} items", s.history_items),
    }
}

pub fn label(id: &str, title: Option<&str>) -> String {
    match title {
        Some(t) => format!("{t} [{id}]"),
        None => id.to_string(),
    }
}

/// An explanation as text lines: the narrative, the other reasons, and
/// the largest contributions.
pub fn explanation_lines(e: &Explained) -> Vec<String> {
    let mut lines = vec![e.narrative.clone()];
    for r in e.reasons.iter().skip(1) {
        if !e.narrative.contains(&r.sentence) {
            lines.push(match &r.evidence {
                Evidence::Counterfactual {
                    verified: true,
                    rank_before,
                    rank_after,
                    ..
                } => format!(
                    "{} (verified by re-scoring: rank {rank_before} -> {rank_after})",
                    r.sentence
                ),
                _ => r.sentence.clone(),
            });
        }
    }
    if !e.contributions.is_empty() {
        let shown: Vec<String> = e
            .contributions
            .iter()
            .take(5)
            .map(|c| format!("{} {:+.4}", c.item.title, c.weight))
            .collect();
        let how = if e.exact {
            "exact, they add up to the score".to_string()
        } else {
            match e.fidelity {
                Some(f) => format!(
                    "{}: approximate; in this model's deletion test the items it names matter {f:.1}x as much as random ones",
                    e.method.name()
                ),
                None => format!("{}: approximate", e.method.name()),
            }
        };
        lines.push(format!("contributions ({how}): {}", shown.join("; ")));
    }
    for p in &e.parts {
        let items: Vec<String> = p
            .contributions
            .iter()
            .map(|c| format!("{} {:+.4}", c.item.title, c.weight))
            .collect();
        lines.push(format!(
            "{} part ({}, explained by {}): {:+.4} of the score; {}",
            p.name,
            p.model,
            p.method.name(),
            p.share,
            if items.is_empty() {
                "no history item".to_string()
            } else {
                items.join("; ")
            }
        ));
    }
    if let Some(a) = &e.inputs {
        let side = |v: &[because_core::InputShare]| -> String {
            v.iter()
                .take(5)
                .map(|s| format!("{} {:+.4}", s.input, s.share))
                .collect::<Vec<_>>()
                .join("; ")
        };
        lines.push(format!(
            "inputs (integrated gradients; with the baseline {:.4} they add up to the score): item: {} | you: {}",
            a.baseline,
            side(&a.item_inputs),
            side(&a.user_inputs)
        ));
    }
    lines
}

/// Items a request named that the model does not know, and the fallback.
pub fn fallback_and_ignored(r: &Recommendations) {
    for id in &r.ignored_items {
        println!("item {id} is unknown to the model and is ignored");
    }
    if let Some(f) = &r.fallback {
        println!(
            "{}: showing the most popular items instead (fallback: {})",
            f.reason, f.strategy
        );
    }
}

/// One recommended item: rank, label and score.
pub fn item(it: &Recommended) {
    println!(
        "{:>3}. {:<60} {:.4}",
        it.rank,
        label(&it.item, it.title.as_deref()),
        it.score
    );
}

/// The approximate-retrieval index a saved model got.
pub fn index(i: &because_models::index::IndexInfo) {
    println!(
        "built an approximate-retrieval index in {:.1}s: {} lists, {} scanned per request, recall@10 {:.4} against exact scoring on {} of the model's users ({:.1} MB)",
        i.build_seconds,
        i.lists,
        i.probe,
        i.recall_at_10,
        i.calibration_queries,
        i.bytes as f64 / 1e6
    );
}
