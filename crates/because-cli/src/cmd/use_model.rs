//! `because recommend`, `explain` and `similar`: a trained model used.
//! Everything they compute comes from `because_service`.

use crate::args::{flags, ExplainArgs, ExplainSources, RecommendArgs, SimilarArgs};
use crate::io::write_json;
use crate::{print, progress};
use anyhow::{anyhow, bail};
use because_report::{figures, save_figures};
use because_service::{
    ContextOptions, ExplainRequest, ModelHandle, RecommendRequest, SimilarRequest,
};
use std::path::Path;
use std::time::Instant;

/// Opens the model, with the explanation context the flags name,
/// answering through its index when `approximate` (and saying so when it
/// cannot).
fn open(
    dir: &Path,
    sources: Option<&ExplainSources>,
    approximate: bool,
) -> anyhow::Result<ModelHandle> {
    let h = ModelHandle::open(dir)?.approximate(approximate);
    let r = h.retrieval();
    if let Some(why) = &r.index_problem {
        eprintln!("note: the model folder's index is not used ({why}); every item is scored");
    } else if approximate && r.index.is_none() {
        eprintln!("note: the model folder has no index (`train --index always` builds one); every item is scored");
    }
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

/// `because recommend`.
pub fn recommend(a: &RecommendArgs) -> anyhow::Result<()> {
    if a.all {
        let h = open(&a.model, None, false)?;
        let start = Instant::now();
        let spinner = progress::spinner(format!("recommending for {} users", h.users().len()));
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
    let subject = a.subject()?;
    let user_features = a.user_features()?;
    let h = open(&a.model, a.explain.then_some(&a.sources), a.approximate)?;
    let req = RecommendRequest {
        explain: a.explain,
        counterfactuals: a.counterfactuals,
        method: a.explain_method,
        user_features,
        ..RecommendRequest::new(subject, a.k)
    };
    let r = h.recommend(&req).map_err(flags)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    print::fallback_and_ignored(&r);
    println!("top {} for {} ({}):", a.k, print::who(&r.subject), r.model);
    for it in &r.items {
        print::item(it);
        if let Some(e) = &it.explanation {
            print::explanation_lines(e)
                .iter()
                .for_each(|l| println!("       {l}"));
        }
    }
    Ok(())
}

/// `because explain`.
pub fn explain(a: &ExplainArgs) -> anyhow::Result<()> {
    let subject = a.subject()?;
    let h = open(&a.model, Some(&a.sources), false)?;
    let r = h
        .explain(&ExplainRequest {
            subject: subject.clone(),
            item: a.item.clone(),
            n: a.k,
            method: a.explain_method,
        })
        .map_err(flags)?;
    if let Some(dir) = &a.plot {
        let map = h
            .explanation_map(&subject, 10, 15)
            .map_err(|err| anyhow!("--plot: {err}"))?;
        if map.history.is_empty() {
            bail!("--plot: the subject has no known history to map");
        }
        let mut figs = figures::explanation(&r.explanation, &map);
        if let Some(att) = &r.attention {
            figs.push((
                "attention",
                figures::served_attention(&r.explanation.item.title, att),
            ));
        }
        let paths = save_figures(&figs, dir)?;
        println!("wrote {} figures in {}", paths.len(), dir.display());
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
        print::label(
            &e.item.id,
            Some(&e.item.title)
                .filter(|t| **t != e.item.id)
                .map(|t| t.as_str())
        ),
        print::who(&r.subject),
        r.model,
        e.score
    );
    for l in print::explanation_lines(e) {
        println!("  {l}");
    }
    Ok(())
}

/// `because similar`.
pub fn similar(a: &SimilarArgs) -> anyhow::Result<()> {
    let h = open(&a.model, None, a.approximate)?;
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
        print::label(
            &r.item.id,
            Some(r.item.title.as_str()).filter(|t| *t != r.item.id)
        ),
        r.model
    );
    r.items.iter().for_each(print::item);
    Ok(())
}
