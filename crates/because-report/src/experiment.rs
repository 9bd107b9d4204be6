//! Figures of model comparisons, tuning runs and explanation fidelity,
//! each built from plain numbers.

use because_plot::{Bars, Figure, Heatmap, Lines, Scatter, Series};

/// Test nDCG@k and Recall@k per model: `(label, ndcg, recall)`.
pub fn comparison_figure(k: usize, models: &[(String, f64, f64)]) -> Figure {
    Figure::Bars(Bars {
        title: format!("Test nDCG@{k} and Recall@{k}"),
        x_label: "model".into(),
        y_label: "score".into(),
        labels: models
            .iter()
            .flat_map(|(m, _, _)| [format!("{m} nDCG"), format!("{m} R")])
            .collect(),
        values: models.iter().flat_map(|&(_, n, r)| [n, r]).collect(),
        log_y: false,
    })
}

/// The best validation `metric` for each value of `parameter`, from each
/// configuration tried: `(its value of the parameter, its score)`. A line
/// over numeric values (logarithmic when they span 20× or more), bars
/// otherwise.
pub fn tuning_figure(parameter: &str, metric: &str, trials: &[(String, f64)]) -> Figure {
    let mut points: Vec<(String, f64)> = Vec::new();
    for (value, v) in trials {
        match points.iter_mut().find(|p| p.0 == *value) {
            Some(p) => p.1 = p.1.max(*v),
            None => points.push((value.clone(), *v)),
        }
    }
    let title = format!("Validation {metric} against {parameter}");
    let numeric: Option<Vec<(f64, f64)>> = points
        .iter()
        .map(|(x, v)| x.parse::<f64>().ok().map(|x| (x, *v)))
        .collect();
    match numeric {
        Some(mut pts) if pts.len() > 1 => {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let log_x = pts.iter().all(|p| p.0 > 0.0)
                && pts.last().map(|l| l.0).unwrap_or(1.0) / pts[0].0 >= 20.0;
            Figure::Lines(Lines {
                title,
                x_label: parameter.into(),
                y_label: metric.into(),
                series: vec![Series {
                    name: parameter.into(),
                    points: pts,
                }],
                log_x,
                log_y: false,
                x_ticks: None,
            })
        }
        _ => Figure::Bars(Bars {
            title,
            x_label: parameter.into(),
            y_label: metric.into(),
            labels: points.iter().map(|p| p.0.clone()).collect(),
            values: points.iter().map(|p| p.1).collect(),
            log_y: false,
        }),
    }
}

/// The deletion test: mean rank drop removing the `k` items explanations
/// name against `k` random history items.
pub fn deletion_figure(k: usize, named: f64, random: f64) -> Figure {
    Figure::Bars(Bars {
        title: format!("Deletion test: mean rank drop, {k} items removed"),
        x_label: "items removed".into(),
        y_label: "rank drop".into(),
        labels: vec![
            "named by the explanation".into(),
            "random history items".into(),
        ],
        values: vec![named, random],
        log_y: false,
    })
}

/// Diversity across users: for how many users each recommended item is in
/// the top `n` (`reach`, most reached first).
pub fn reach_figure(n: usize, reach: &[usize]) -> Figure {
    Figure::Lines(Lines {
        title: format!(
            "Diversity across users: {} distinct items in everyone's top {n}",
            reach.len()
        ),
        x_label: "recommended item (rank by reach)".into(),
        y_label: "users it is recommended to".into(),
        series: vec![Series {
            name: "items".into(),
            points: reach
                .iter()
                .enumerate()
                .map(|(r, &c)| ((r + 1) as f64, c as f64))
                .collect(),
        }],
        log_x: true,
        log_y: true,
        x_ticks: None,
    })
}

/// Item embeddings projected on the plane (`xy`, one point per item),
/// coloured by each item's first level of a categorical feature
/// (`genres`: levels per item, level names): the 9 most common levels,
/// the rest as "other".
pub fn embedding_map(xy: &[(f64, f64)], genres: Option<(&[Vec<u32>], &[String])>) -> Figure {
    let (groups, group_of): (Vec<String>, Vec<usize>) = match genres {
        Some((codes, levels)) => {
            let mut counts = vec![0usize; levels.len()];
            codes
                .iter()
                .filter_map(|c| c.first())
                .for_each(|&l| counts[l as usize] += 1);
            let mut order: Vec<usize> = (0..levels.len()).collect();
            order.sort_by_key(|&l| std::cmp::Reverse(counts[l]));
            order.truncate(9);
            let mut names: Vec<String> = order.iter().map(|&l| levels[l].clone()).collect();
            let other = names.len();
            names.push("other".into());
            let of = (0..xy.len())
                .map(|i| {
                    codes
                        .get(i)
                        .and_then(|c| c.first())
                        .and_then(|&l| order.iter().position(|&o| o == l as usize))
                        .unwrap_or(other)
                })
                .collect();
            (names, of)
        }
        None => (vec!["items".into()], vec![0; xy.len()]),
    };
    Figure::Scatter(Scatter {
        title: "Item embeddings, first two principal components".into(),
        x_label: "component 1".into(),
        y_label: "component 2".into(),
        points: xy
            .iter()
            .zip(&group_of)
            .map(|(&(x, y), &g)| (x, y, g))
            .collect(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuning_figures_keep_the_best_per_value() {
        let trials = [
            ("1".to_string(), 0.1),
            ("100".to_string(), 0.3),
            ("1".to_string(), 0.2),
        ];
        match tuning_figure("lambda", "ndcg@10", &trials) {
            Figure::Lines(l) => {
                assert_eq!(l.series[0].points, vec![(1.0, 0.2), (100.0, 0.3)]);
                assert!(l.log_x);
            }
            other => panic!("{other:?}"),
        }
        let trials = [("cg".to_string(), 0.1), ("cholesky".to_string(), 0.2)];
        assert!(matches!(
            tuning_figure("solver", "ndcg@10", &trials),
            Figure::Bars(b) if b.labels == ["cg", "cholesky"]
        ));
    }

    #[test]
    fn embedding_maps_group_the_common_levels() {
        let xy = vec![(0.0, 0.0); 4];
        let codes = vec![vec![1], vec![1, 0], vec![], vec![0]];
        let levels = vec!["a".to_string(), "b".to_string()];
        match embedding_map(&xy, Some((&codes, &levels))) {
            Figure::Scatter(s) => {
                assert_eq!(s.groups, ["b", "a", "other"]);
                let g: Vec<usize> = s.points.iter().map(|p| p.2).collect();
                assert_eq!(g, [0, 0, 2, 1]);
            }
            other => panic!("{other:?}"),
        }
        let f = comparison_figure(10, &[("ease".into(), 0.3, 0.2)]);
        assert!(matches!(f, Figure::Bars(b) if b.values == [0.3, 0.2]));
    }
}

/// The attention of the last position over the history (columns, oldest
/// first) in each layer and head (rows), for one recommendation.
pub fn attention_figure(
    item: &str,
    history: &[String],
    layers: usize,
    heads: usize,
    rows: &[Vec<f32>],
) -> Figure {
    let labels: Vec<String> = (0..layers)
        .flat_map(|l| (0..heads).map(move |h| format!("layer {} head {}", l + 1, h + 1)))
        .collect();
    Figure::Heatmap(Heatmap {
        title: format!("Attention behind {item}: the last position over the history"),
        rows: labels,
        cols: history.to_vec(),
        values: rows
            .iter()
            .flat_map(|r| r.iter().map(|&v| v as f64))
            .collect(),
    })
}

/// A validation metric over the epochs at which it was checked.
pub fn validation_figure(model: &str, metric: &str, points: &[(f64, f64)]) -> Figure {
    Figure::Lines(Lines {
        title: format!("Validation while training {model}"),
        x_label: "epoch".into(),
        y_label: metric.to_string(),
        series: vec![Series {
            name: format!("validation {metric}"),
            points: points.to_vec(),
        }],
        log_x: false,
        log_y: false,
        x_ticks: None,
    })
}

/// Training curves: the loss of each epoch, and where measured, a
/// validation metric (each as `(epoch, value)`).
pub fn training_figure(
    model: &str,
    loss: &[(f64, f64)],
    validation: Option<(&str, &[(f64, f64)])>,
) -> Figure {
    let mut series = vec![Series {
        name: "training loss".into(),
        points: loss.to_vec(),
    }];
    if let Some((metric, points)) = validation {
        series.push(Series {
            name: format!("validation {metric}"),
            points: points.to_vec(),
        });
    }
    Figure::Lines(Lines {
        title: format!("Training {model}"),
        x_label: "epoch".into(),
        y_label: "loss".into(),
        series,
        log_x: false,
        log_y: false,
        x_ticks: None,
    })
}
