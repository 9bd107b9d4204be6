//! Using a trained model: recommend, explain and similar items, printed.
//! Everything they compute comes from `because_service`.

use crate::args::{ExplainArgs, ExplainSources, RecommendArgs, SimilarArgs};
use crate::commands::write_json;
use anyhow::{anyhow, bail};
use because_explain::reasons::Evidence;
use because_explain::Explained;
use because_plot::{Bars, Figure, Heatmap};
use because_report::save_figures;
use because_service::{
    ContextOptions, ExplainRequest, ModelHandle, RecommendRequest, Recommendations, ServiceError,
    SimilarRequest, Subject,
};
use std::path::Path;
use std::time::Instant;

pub(crate) use because_service::{read_log, user_columns, Context as Sources};

/// A service error in the words of the command line: fields become flags.
pub(crate) fn flags(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::UnknownItem { id } => anyhow!("--item: {id} is unknown to the model"),
        ServiceError::BadRequest { field, reason } => {
            anyhow!("--{}: {reason}", field.replace('_', "-"))
        }
        other => other.into(),
    }
}

/// Opens the model, with the explanation context the flags name.
fn open(dir: &Path, sources: Option<&ExplainSources>) -> anyhow::Result<ModelHandle> {
    let h = ModelHandle::open(dir)?;
    Ok(match sources {
        Some(s) => {
            let ctx = h
                .read_context(&ContextOptions {
                    items: s.items.clone(),
                    users: s.users.clone(),
                    events: s.events.clone(),
                    trend_days: s.trend_days,
                    ..ContextOptions::default()
                })
                .map_err(flags)?;
            h.with_context(ctx)
        }
        None => h,
    })
}

/// Comma-separated item IDs.
fn ids(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `--user`, `--history` or `--sequence` as a subject.
fn subject(
    user: Option<&str>,
    history: Option<&str>,
    sequence: Option<&str>,
) -> anyhow::Result<Subject> {
    match (user, history, sequence) {
        (Some(u), _, _) => Ok(Subject::User {
            user: u.to_string(),
        }),
        (None, Some(h), _) => Ok(Subject::History { history: ids(h) }),
        (None, None, Some(s)) => Ok(Subject::Sequence {
            sequence: ids(s)
                .into_iter()
                .map(|item| because_service::SequenceEvent {
                    item,
                    time: None,
                    event: None,
                    value: None,
                })
                .collect(),
        }),
        (None, None, None) => bail!("give --user, --history or --sequence"),
    }
}

fn who(s: &because_service::SubjectInfo) -> String {
    match (&s.user, s.known) {
        (Some(u), true) => format!("user {u}"),
        (Some(u), false) => format!("unknown user {u}"),
        (None, _) => format!("a history of {} items", s.history_items),
    }
}

fn label(id: &str, title: Option<&str>) -> String {
    match title {
        Some(t) => format!("{t} [{id}]"),
        None => id.to_string(),
    }
}

/// An explanation as text lines: the narrative, the other reasons, and
/// the largest contributions.
pub(crate) fn explanation_lines(e: &Explained) -> Vec<String> {
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
        lines.push(format!(
            "contributions ({}): {}",
            if e.exact {
                "exact, they add up to the score"
            } else {
                "approximate"
            },
            shown.join("; ")
        ));
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

fn print_fallback_and_ignored(r: &Recommendations) {
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

pub fn recommend(a: &RecommendArgs) -> anyhow::Result<()> {
    if a.all {
        let h = open(&a.model, None)?;
        let start = Instant::now();
        let spinner =
            crate::progress::spinner(format!("recommending for {} users", h.users().len()));
        let all = h.recommend_all(a.k).map_err(flags)?;
        spinner.finish_and_clear();
        let path = a
            .out
            .clone()
            .unwrap_or_else(|| a.model.join("recommendations.json"));
        write_json(&path, &all)?;
        println!(
            "wrote top-{} for {} users to {} in {:.2}s",
            a.k,
            all.users.len(),
            path.display(),
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    if a.user.is_none() && a.history.is_none() && a.sequence.is_none() && a.user_features.is_none()
    {
        bail!("give --user, --history, --sequence, --user-features or --all");
    }
    let h = open(&a.model, a.explain.then_some(&a.sources))?;
    let mut user_features = std::collections::BTreeMap::new();
    for part in a
        .user_features
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--user-features: {part:?} is not column=value"))?;
        user_features.insert(k.trim().to_string(), v.trim().to_string());
    }
    let req = RecommendRequest {
        explain: a.explain,
        counterfactuals: a.counterfactuals,
        user_features,
        ..RecommendRequest::new(
            subject(
                a.user.as_deref(),
                // Features alone describe a new user with no history.
                a.history
                    .as_deref()
                    .or(a.user_features.as_ref().map(|_| "")),
                a.sequence.as_deref(),
            )?,
            a.k,
        )
    };
    let r = h.recommend(&req).map_err(flags)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    print_fallback_and_ignored(&r);
    println!("top {} for {} ({}):", a.k, who(&r.subject), r.model);
    for it in &r.items {
        print_item(it);
        if let Some(e) = &it.explanation {
            explanation_lines(e)
                .iter()
                .for_each(|l| println!("       {l}"));
        }
    }
    Ok(())
}

pub fn explain(a: &ExplainArgs) -> anyhow::Result<()> {
    let h = open(&a.model, Some(&a.sources))?;
    let subject = subject(
        a.user.as_deref(),
        a.history.as_deref(),
        a.sequence.as_deref(),
    )?;
    let r = h
        .explain(&ExplainRequest {
            subject: subject.clone(),
            item: a.item.clone(),
            n: a.k,
        })
        .map_err(flags)?;
    if let Some(dir) = &a.plot {
        plot(&h, &subject, &r.explanation, dir)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    for id in &r.ignored_items {
        println!("item {id} is unknown to the model and is ignored");
    }
    let e = &r.explanation;
    println!(
        "why {} for {} ({}): score {:.4}",
        label(
            &e.item.id,
            Some(&e.item.title)
                .filter(|t| **t != e.item.id)
                .map(|t| t.as_str())
        ),
        who(&r.subject),
        r.model,
        e.score
    );
    for l in explanation_lines(e) {
        println!("  {l}");
    }
    Ok(())
}

/// `explain --plot`: the item's contributions, and how the history drives
/// the top 10 (exact contributions and item similarity).
fn plot(h: &ModelHandle, subject: &Subject, e: &Explained, dir: &Path) -> anyhow::Result<()> {
    let map = h
        .explanation_map(subject, 10, 15)
        .map_err(|err| anyhow!("--plot: {err}"))?;
    if map.history.is_empty() {
        anyhow::bail!("--plot: the subject has no known history to map");
    }
    let titles = |v: &[because_explain::reasons::ItemRef]| -> Vec<String> {
        v.iter().map(|i| i.title.clone()).collect()
    };
    let rec_titles: Vec<String> = map
        .recommended
        .iter()
        .map(|r| r.title.clone().unwrap_or_else(|| r.item.clone()))
        .collect();
    let flat = |m: &[Vec<f32>]| -> Vec<f64> { m.iter().flatten().map(|&v| v as f64).collect() };
    let figures = [
        (
            "contributions",
            Figure::Bars(Bars {
                title: format!("Why {}: contributions (exact)", e.item.title),
                x_label: "history item".into(),
                y_label: "contribution to the score".into(),
                labels: e
                    .contributions
                    .iter()
                    .map(|c| c.item.title.clone())
                    .collect(),
                values: e.contributions.iter().map(|c| c.weight as f64).collect(),
                log_y: false,
            }),
        ),
        (
            "history_heatmap",
            Figure::Heatmap(Heatmap {
                title: "How the history drives the top 10 (exact contributions)".into(),
                rows: titles(&map.history),
                cols: rec_titles.clone(),
                values: flat(&map.contributions),
            }),
        ),
        (
            "history_similarity",
            Figure::Heatmap(Heatmap {
                title: format!("History and the top 10: {}", map.similarity_basis),
                rows: titles(&map.history),
                cols: rec_titles.clone(),
                values: flat(&map.similarity),
            }),
        ),
        (
            "scores",
            Figure::Bars(Bars {
                title: "Scores of the top 10".into(),
                x_label: "recommended item".into(),
                y_label: "score".into(),
                labels: rec_titles,
                values: map.recommended.iter().map(|r| r.score as f64).collect(),
                log_y: false,
            }),
        ),
    ];
    let paths = save_figures(&figures, dir)?;
    println!("wrote {} figures in {}", paths.len(), dir.display());
    Ok(())
}

pub fn similar(a: &SimilarArgs) -> anyhow::Result<()> {
    let h = open(&a.model, None)?;
    let r = h
        .similar(&SimilarRequest {
            item: a.item.clone(),
            k: a.k,
        })
        .map_err(flags)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "items most similar to {} ({}):",
        label(
            &r.item.id,
            Some(r.item.title.as_str()).filter(|t| *t != r.item.id)
        ),
        r.model
    );
    r.items.iter().for_each(print_item);
    Ok(())
}

fn print_item(it: &because_service::Recommended) {
    println!(
        "{:>3}. {:<60} {:.4}",
        it.rank,
        label(&it.item, it.title.as_deref()),
        it.score
    );
}
