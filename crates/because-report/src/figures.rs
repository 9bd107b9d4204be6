//! Figures of what the libraries return: a comparison, a tuning run, a
//! training curve, a model's attention and embeddings, an explanation.
//! Commands and bindings call these instead of assembling figures.

use crate::experiment::{
    attention_figure, comparison_figure, embedding_map, training_figure, tuning_figure,
    validation_figure,
};
use because_core::Recommender;
use because_data::features::FeatureColumn;
use because_eval::experiment::{Comparison, Tuned};
use because_explain::Explained;
use because_models::Model;
use because_plot::{Bars, Figure, Heatmap};
use because_service::ExplanationMap;

/// Test nDCG and recall at `k` of each model compared, by kind.
pub fn comparison(c: &Comparison, k: usize) -> Figure {
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

/// The training loss per epoch of `model` (NaN epochs left out), when it
/// has at least two.
pub fn training_loss(model: &str, losses: &[f64]) -> Option<Figure> {
    let points: Vec<(f64, f64)> = losses
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .map(|(e, &l)| (e as f64 + 1.0, l))
        .collect();
    (points.len() > 1).then(|| training_figure(model, &points, None))
}

/// The early-stopping checks of `train` (NDCG@10 on the held-out
/// interactions after each checked epoch); `None` without checks.
pub fn early_stopping(model: &str, s: &because_models::persist::EarlyStopped) -> Option<Figure> {
    let points: Vec<(f64, f64)> = s
        .checks
        .iter()
        .filter(|c| c.ndcg.is_finite())
        .map(|c| (c.epoch as f64, c.ndcg))
        .collect();
    (!points.is_empty()).then(|| validation_figure(model, "ndcg@10", &points))
}

/// A tuning run's figures, each with its file stem: for each parameter
/// searched, the validation metric of each value tried; with early
/// stopping, the chosen configuration's training loss and validation curve.
pub fn tuning(tuned: &Tuned) -> Vec<(String, Figure)> {
    let metric = tuned.options.metric.to_string();
    let metric = metric.as_str();
    let mut figs = Vec::new();
    for key in &tuned.parameters {
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
        figs.push((key.clone(), tuning_figure(key, metric, &points)));
    }
    let t = &tuned.trials[tuned.chosen];
    let as_f64 =
        |v: &[(usize, f64)]| -> Vec<(f64, f64)> { v.iter().map(|&(e, x)| (e as f64, x)).collect() };
    let name = t.spec.to_string();
    if t.losses.len() > 1 {
        figs.push((
            "training_loss".into(),
            training_figure(&name, &as_f64(&t.losses), None),
        ));
    }
    if !t.checks.is_empty() {
        figs.push((
            "validation_curve".into(),
            validation_figure(&name, metric, &as_f64(&t.checks)),
        ));
    }
    figs
}

/// Where an attention model's attention went when it recommended `item`
/// to `user` (by index): layers and heads against the user's latest 12
/// items, named by `name`; `None` for models without attention.
pub fn attention(
    model: &Model,
    user: u32,
    item: u32,
    name: &dyn Fn(u32) -> String,
) -> Option<Figure> {
    let (history, _) = model.history(user);
    let maps = model.attributor()?.attention_maps(history)?;
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

/// The attention map a served explanation carries (layers and heads against
/// the history's latest 12 items) for the recommendation of `item`.
pub fn served_attention(item: &str, a: &because_service::Attention) -> Figure {
    let keep = a.items.len().min(12);
    let start = a.items.len() - keep;
    let short = |t: &str| match t.char_indices().nth(11) {
        Some((cut, _)) => format!("{}…", &t[..cut]),
        None => t.to_string(),
    };
    let labels: Vec<String> = a.items[start..].iter().map(|i| short(&i.title)).collect();
    let rows: Vec<Vec<f32>> = a.weights.iter().map(|r| r[start..].to_vec()).collect();
    attention_figure(item, &labels, a.layers, a.heads, &rows)
}

/// The map of a model's item embeddings (first two principal components),
/// coloured by `genres` when given; `None` for models without embeddings.
pub fn embedding(model: &Model, genres: Option<&FeatureColumn>) -> Option<Figure> {
    model.item_embeddings().map(|(factors, d)| {
        embedding_map(
            &because_explain::global::pca_2d(factors, d),
            genres.map(|g| (g.codes.as_slice(), g.levels.as_slice())),
        )
    })
}

/// An explanation's figures, each with its file stem: the item's
/// contributions, how the history drives the top recommendations (exact
/// contributions and similarity, from `map`), and their scores.
pub fn explanation(e: &Explained, map: &ExplanationMap) -> Vec<(&'static str, Figure)> {
    let titles = |v: &[because_explain::reasons::ItemRef]| -> Vec<String> {
        v.iter().map(|i| i.title.clone()).collect()
    };
    let recommended: Vec<String> = map
        .recommended
        .iter()
        .map(|r| r.title.clone().unwrap_or_else(|| r.item.clone()))
        .collect();
    let flat = |m: &[Vec<f32>]| -> Vec<f64> { m.iter().flatten().map(|&v| v as f64).collect() };
    let top = recommended.len();
    vec![
        (
            "contributions",
            Figure::Bars(Bars {
                title: format!(
                    "Why {}: contributions ({})",
                    e.item.title,
                    if e.exact { "exact" } else { "approximate" }
                ),
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
                title: format!("How the history drives the top {top} (exact contributions)"),
                rows: titles(&map.history),
                cols: recommended.clone(),
                values: flat(&map.contributions),
            }),
        ),
        (
            "history_similarity",
            Figure::Heatmap(Heatmap {
                title: format!("History and the top {top}: {}", map.similarity_basis),
                rows: titles(&map.history),
                cols: recommended.clone(),
                values: flat(&map.similarity),
            }),
        ),
        (
            "scores",
            Figure::Bars(Bars {
                title: format!("Scores of the top {top}"),
                x_label: "recommended item".into(),
                y_label: "score".into(),
                labels: recommended,
                values: map.recommended.iter().map(|r| r.score as f64).collect(),
                log_y: false,
            }),
        ),
    ]
}
