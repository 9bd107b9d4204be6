//! The demo report's sections on its models: the comparison and the
//! sample recommendations, a sequential model's first recommendation with
//! its attention, and the two-tower model's split over its inputs.

use crate::figures;
use crate::{save_figures, Report, Result};
use because_core::{Recommender, Scored};
use because_eval::experiment::demo::DemoOutcome;
use because_eval::experiment::Final;
use because_models::Model;
use std::path::Path;

/// Names items and users in the demo's report: titles where the item
/// features have them, IDs otherwise.
pub struct Titles {
    titles: Vec<String>,
    items: because_core::Vocab,
    users: because_core::Vocab,
}

impl Titles {
    /// Names by the vocabularies of `outcome`'s parts and item `titles`
    /// (in item order, or none).
    pub fn new(outcome: &DemoOutcome, titles: Vec<String>) -> Titles {
        Titles {
            titles,
            items: outcome.parts.items.clone(),
            users: outcome.parts.users.clone(),
        }
    }

    /// Item `i`'s title, or its ID where it has none.
    pub fn title(&self, i: u32) -> String {
        match self.titles.get(i as usize) {
            Some(t) if !t.is_empty() => t.clone(),
            _ => self.items.id(i).to_string(),
        }
    }
}

/// A sample user of the demo: ID, recent history, recommended titles, and
/// why the first one (narrative and counterfactual), when the model explains.
pub struct Sample {
    /// The user's ID.
    pub user: String,
    /// Their latest items' titles.
    pub recent: Vec<String>,
    /// Their top recommendations' titles.
    pub top: Vec<String>,
    /// Why the first: the narrative.
    pub why: Option<String>,
    /// Other reasons that support it.
    pub more: Vec<String>,
    /// Its verified counterfactual.
    pub without: Option<String>,
}

/// The first user with at least `min_history` training items, and the
/// model's first recommendation for them.
fn first_pick(model: &Model, min_history: usize) -> Result<Option<(u32, Scored)>> {
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

/// The report's models and sample recommendations.
pub fn models_section(r: &mut Report, outcome: &DemoOutcome, samples: &[Sample]) {
    let cmp = &outcome.comparison;
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
    let rows: Vec<Vec<String>> = samples
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

/// The sequential model of the demo's comparison, shown on one user: its
/// first recommendation explained by occlusion (measured effects), and the
/// attention heat map behind it (written to `figures`).
pub fn sequential_section(
    r: &mut Report,
    outcome: &DemoOutcome,
    c: &Titles,
    dir: &Path,
) -> Result<()> {
    let Some(model) = &outcome.sequential else {
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
    if let Some(fig) = figures::attention(model, user, first.item, &title) {
        let paths = save_figures(&[("attention", fig)], dir)?;
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

/// The report's section on the two-tower model: a sample user's first
/// recommendation split over history and features by integrated gradients.
pub fn featured_section(r: &mut Report, outcome: &DemoOutcome, c: &Titles) -> Result<()> {
    let Some(model) = &outcome.featured else {
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
