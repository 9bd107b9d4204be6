//! Using a trained model: recommend, explain and similar items.

use crate::args::{ExplainArgs, ExplainSources, RecommendArgs, SimilarArgs};
use crate::commands::write_json;
use anyhow::{anyhow, bail};
use because_core::{
    top_k, Dataset, DuplicatePolicy, Query, Recommender, Request, Scored, Vocab,
    DEFAULT_SESSION_TIMEOUT_MS,
};
use because_data::features::{read_features, FeatureKind, Features};
use because_data::{read_interactions, ReadOptions};
use because_explain::reasons::{Activity, Evidence, Funnel, ItemRef, Trend, UserColumn};
use because_explain::{Explainer, Subject};
use because_models::persist::{self, Meta};
use because_models::Model;
use because_plot::{Bars, Figure};
use because_report::save_figures;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// Most popular items in the model's training data, for users nobody knows.
fn popular(model: &dyn Recommender, k: usize, exclude: &[u32]) -> Vec<Scored> {
    let mut counts = vec![0.0f32; model.n_items()];
    for u in 0..model.n_users() as u32 {
        for &i in model.history(u).0 {
            counts[i as usize] += 1.0;
        }
    }
    for &i in exclude {
        counts[i as usize] = f32::NEG_INFINITY;
    }
    top_k(&counts, k)
}

struct Opened {
    model: Model,
    meta: Meta,
    users: Vocab,
    items: Vocab,
}

fn open(dir: &Path) -> anyhow::Result<Opened> {
    let l = persist::load(dir)?;
    let users = Vocab::from_ids(&l.meta.user_ids);
    let items = Vocab::from_ids(&l.meta.item_ids);
    Ok(Opened {
        model: l.model,
        meta: l.meta,
        users,
        items,
    })
}

impl Opened {
    fn label(&self, i: u32) -> String {
        let id = self.items.id(i);
        match self
            .meta
            .item_titles
            .get(i as usize)
            .filter(|t| !t.is_empty())
        {
            Some(t) => format!("{t} [{id}]"),
            None => id.to_string(),
        }
    }
    fn item_json(&self, s: &Scored) -> serde_json::Value {
        let mut v = json!({ "item": self.items.id(s.item), "score": s.score });
        if let Some(t) = self
            .meta
            .item_titles
            .get(s.item as usize)
            .filter(|t| !t.is_empty())
        {
            v["title"] = json!(t);
        }
        v
    }
}

pub fn recommend(a: &RecommendArgs) -> anyhow::Result<()> {
    if a.k == 0 {
        bail!("--k: must be at least 1");
    }
    let o = open(&a.model)?;
    if a.all {
        let users: Vec<u32> = (0..o.model.n_users() as u32).collect();
        let start = Instant::now();
        let recs = o.model.recommend_users(&users, a.k)?;
        let mut out = serde_json::Map::new();
        for (u, r) in users.iter().zip(&recs) {
            out.insert(
                o.users.id(*u).to_string(),
                r.iter().map(|s| o.item_json(s)).collect::<Vec<_>>().into(),
            );
        }
        let path = a
            .out
            .clone()
            .unwrap_or_else(|| a.model.join("recommendations.json"));
        write_json(
            &path,
            &json!({ "model": o.model.spec().to_string(), "k": a.k, "exclude_seen": true, "users": out }),
        )?;
        println!(
            "wrote top-{} for {} users to {} in {:.2}s",
            a.k,
            users.len(),
            path.display(),
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    if a.user.is_none() && a.history.is_none() {
        bail!("give --user, --history or --all");
    }
    // An unknown user or an empty history gets the popularity fallback, and is told so.
    let h = match &a.user {
        Some(user) if o.users.get(user).is_none() => {
            println!("user {user} is unknown to the model: showing the most popular items instead (fallback: popularity)");
            History {
                who: format!("unknown user {user}"),
                ..History::default()
            }
        }
        _ => history_of(&o, a.user.as_deref(), a.history.as_deref())?,
    };
    let recs = if h.items.is_empty() {
        if a.history.is_some() {
            println!("no known items in the history: showing the most popular items instead (fallback: popularity)");
        }
        popular(&o.model, a.k, &[])
    } else {
        o.model.recommend(&Request::new(
            Query::History {
                items: &h.items,
                values: &h.values,
            },
            a.k,
        ))?
    };
    println!("top {} for {} ({}):", a.k, h.who, o.model.spec());
    let src = if a.explain {
        Sources::read(&o, &a.sources)?
    } else {
        Sources::default()
    };
    for (rank, s) in recs.iter().enumerate() {
        println!("{:>3}. {:<60} {:.4}", rank + 1, o.label(s.item), s.score);
        if a.explain {
            match explanation_of(&o.catalog(), &src, &h, s.item, a.k) {
                Ok((_, lines)) => lines.iter().for_each(|l| println!("       {l}")),
                Err(e) => println!("       (no explanation: {e})"),
            }
        }
    }
    Ok(())
}

/// A history to explain: items, values, a description, and the user's
/// index if the model knows the user.
#[derive(Default)]
pub(crate) struct History {
    pub items: Vec<u32>,
    pub values: Vec<f32>,
    pub who: String,
    pub user: Option<u32>,
}

/// A known user's history, or ad-hoc item IDs (unknown ones are ignored, and said so).
fn history_of(o: &Opened, user: Option<&str>, history: Option<&str>) -> anyhow::Result<History> {
    if let Some(user) = user {
        let u = o.users.get(user).ok_or_else(|| {
            anyhow!("--user: {user} is unknown to the model; give --history instead")
        })?;
        let (items, values) = o.model.history(u);
        return Ok(History {
            items: items.to_vec(),
            values: values.to_vec(),
            who: format!("user {user}"),
            user: Some(u),
        });
    }
    let h = history.ok_or_else(|| anyhow!("give --user or --history"))?;
    let mut items = Vec::new();
    for id in h.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match o.items.get(id) {
            Some(i) => items.push(i),
            None => println!("item {id} is unknown to the model and is ignored"),
        }
    }
    let n = items.len();
    Ok(History {
        items,
        values: vec![1.0; n],
        who: format!("a history of {n} items"),
        user: None,
    })
}

/// What explanations draw on besides the model, read once per command.
#[derive(Default)]
pub(crate) struct Sources {
    pub items: Option<Features>,
    pub users: Vec<UserColumn>,
    pub log: Option<Dataset>,
    pub funnel: Option<Funnel>,
    pub trend: Option<Trend>,
}

impl Sources {
    fn read(o: &Opened, s: &ExplainSources) -> anyhow::Result<Sources> {
        let items = match &s.items {
            Some(p) => Some(read_features(p, &o.items, None)?),
            None => None,
        };
        let users = match &s.users {
            Some(p) => user_columns(&read_features(p, &o.users, None)?),
            None => Vec::new(),
        };
        if !(s.trend_days > 0.0 && s.trend_days.is_finite()) {
            bail!("--trend-days: must be a positive number of days");
        }
        let (log, funnel) = match &s.events {
            Some(p) => {
                let (log, funnel) = read_log(p, &ReadOptions::default())?;
                (Some(log), funnel)
            }
            None => (None, None),
        };
        let trend = log
            .as_ref()
            .and_then(|l| Trend::from_log(l, &o.items, (s.trend_days * 86_400_000.0) as i64));
        Ok(Sources {
            items,
            users,
            log,
            funnel,
            trend,
        })
    }
}

/// User features as explanation groups: categorical columns as they are,
/// numeric ones in quartiles.
pub(crate) fn user_columns(f: &Features) -> Vec<UserColumn> {
    f.columns
        .iter()
        .map(|c| match c.kind {
            FeatureKind::Numeric => UserColumn::numeric(&c.name, &c.numeric, 4),
            _ => UserColumn::categorical(
                &c.name,
                c.levels.clone(),
                c.codes.iter().map(|v| v.first().copied()).collect(),
            ),
        })
        .collect()
}

/// The raw event log (every event, duplicates kept) and its funnel, if it
/// has event types.
pub(crate) fn read_log(
    path: &Path,
    opts: &ReadOptions,
) -> anyhow::Result<(Dataset, Option<Funnel>)> {
    let opts = ReadOptions {
        duplicates: Some(DuplicatePolicy::Keep),
        ..opts.clone()
    };
    let log = read_interactions(path, &opts)?.dataset;
    let funnel = (!log.event_names.is_empty()).then(|| Funnel {
        strength: log
            .event_names
            .iter()
            .map(|n| opts.event_weights.weight(n))
            .collect(),
        names: log.event_names.clone(),
    });
    Ok((log, funnel))
}

/// A model with the names of its users and items.
pub(crate) struct Catalog<'a> {
    pub model: &'a Model,
    pub users: &'a Vocab,
    pub items: &'a Vocab,
    /// Titles by item (may be empty).
    pub titles: &'a [String],
}

impl Opened {
    fn catalog(&self) -> Catalog<'_> {
        Catalog {
            model: &self.model,
            users: &self.users,
            items: &self.items,
            titles: &self.meta.item_titles,
        }
    }
}

/// The explanation of one recommendation as JSON and as text lines; an
/// unknown user or an empty history gets the popularity fallback's reason.
pub(crate) fn explanation_of(
    o: &Catalog,
    src: &Sources,
    h: &History,
    item: u32,
    n: usize,
) -> anyhow::Result<(because_explain::Explained, Vec<String>)> {
    let name = |i: u32| ItemRef {
        index: i,
        id: o.items.id(i).to_string(),
        title: o
            .titles
            .get(i as usize)
            .filter(|t| !t.is_empty())
            .map(String::as_str)
            .or_else(|| src.items.as_ref().and_then(|f| f.title(i)))
            .unwrap_or(o.items.id(i))
            .to_string(),
    };
    let mut x = Explainer::new(o.model, &name);
    x.n = n;
    x.item_features = src
        .items
        .as_ref()
        .and_then(|f| f.genre_like())
        .map(|g| (g.codes.as_slice(), g.levels.as_slice()));
    x.user_features = &src.users;
    x.funnel = src.funnel.as_ref();
    x.trend = src.trend.as_ref();
    let (items, values) = (&h.items[..], &h.values[..]);
    let e = if items.is_empty() {
        x.explain_fallback(item)
    } else {
        let activity = match (&src.log, h.user) {
            (Some(log), Some(u)) => Activity::of_user(log, o.users.id(u), o.items),
            _ => None,
        };
        let session = activity
            .as_ref()
            .map(|a| a.latest_session(DEFAULT_SESSION_TIMEOUT_MS));
        x.explain(
            &Subject {
                items,
                values,
                user: h.user,
                latest_session: session.as_deref(),
                activity: activity.as_ref(),
            },
            item,
        )?
    };
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
    Ok((e, lines))
}

pub fn explain(a: &ExplainArgs) -> anyhow::Result<()> {
    let o = open(&a.model)?;
    let item = o
        .items
        .get(&a.item)
        .ok_or_else(|| anyhow!("--item: {} is unknown to the model", a.item))?;
    let h = history_of(&o, a.user.as_deref(), a.history.as_deref())?;
    let src = Sources::read(&o, &a.sources)?;
    let (explained, lines) = explanation_of(&o.catalog(), &src, &h, item, a.n)?;
    let (items, values, who) = (&h.items[..], &h.values[..], &h.who);
    if let Some(dir) = &a.plot {
        let title = |i: u32| {
            o.meta
                .item_titles
                .get(i as usize)
                .filter(|t| !t.is_empty())
                .cloned()
                .unwrap_or_else(|| o.items.id(i).to_string())
        };
        let e = because_explain::explain(&o.model, items, values, item)?;
        let top: Vec<_> = e.contributions.iter().take(12).collect();
        let bars = Figure::Bars(Bars {
            title: format!("Why {}: contributions (exact)", title(item)),
            x_label: "history item".into(),
            y_label: "contribution to the score".into(),
            labels: top.iter().map(|c| title(c.item)).collect(),
            values: top.iter().map(|c| c.weight as f64).collect(),
            log_y: false,
        });
        // History items × top recommendations: each cell is an exact contribution.
        let recs = o
            .model
            .recommend(&Request::new(Query::History { items, values }, 10))?;
        let mut by_rec = Vec::new();
        for r in &recs {
            by_rec.push(because_explain::explain(&o.model, items, values, r.item)?);
        }
        let mut totals: Vec<(u32, f32)> = items
            .iter()
            .map(|&h| {
                (
                    h,
                    by_rec
                        .iter()
                        .flat_map(|e| {
                            e.contributions
                                .iter()
                                .filter(|c| c.item == h)
                                .map(|c| c.weight.abs())
                        })
                        .sum(),
                )
            })
            .collect();
        totals.sort_by(|a, b| b.1.total_cmp(&a.1));
        totals.truncate(15);
        let heat = Figure::Heatmap(because_plot::Heatmap {
            title: "How the history drives the top 10 (exact contributions)".into(),
            rows: totals.iter().map(|&(h, _)| title(h)).collect(),
            cols: recs.iter().map(|r| title(r.item)).collect(),
            values: totals
                .iter()
                .flat_map(|&(h, _)| {
                    by_rec.iter().map(move |e| {
                        e.contributions
                            .iter()
                            .find(|c| c.item == h)
                            .map(|c| c.weight as f64)
                            .unwrap_or(0.0)
                    })
                })
                .collect(),
        });
        // The same history items × recommendations, by item similarity.
        let model = &o.model;
        let similarity = Figure::Heatmap(because_plot::Heatmap {
            title: if o.model.item_embeddings().is_some() {
                "History and the top 10: cosine of item embeddings".into()
            } else {
                "History and the top 10: cosine of co-occurrence".into()
            },
            rows: totals.iter().map(|&(h, _)| title(h)).collect(),
            cols: recs.iter().map(|r| title(r.item)).collect(),
            values: totals
                .iter()
                .flat_map(|&(h, _)| {
                    recs.iter().map(move |r| {
                        because_explain::global::item_similarity(model, h, r.item) as f64
                    })
                })
                .collect(),
        });
        let scores = Figure::Bars(Bars {
            title: "Scores of the top 10".into(),
            x_label: "recommended item".into(),
            y_label: "score".into(),
            labels: recs.iter().map(|r| title(r.item)).collect(),
            values: recs.iter().map(|r| r.score as f64).collect(),
            log_y: false,
        });
        let paths = save_figures(
            &[
                ("contributions", bars),
                ("history_heatmap", heat),
                ("history_similarity", similarity),
                ("scores", scores),
            ],
            dir,
        )?;
        println!("wrote {} figures in {}", paths.len(), dir.display());
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&explained)?);
    } else {
        println!(
            "why {} for {who} ({}): score {:.4}",
            o.label(item),
            o.model.spec(),
            explained.score
        );
        for l in lines {
            println!("  {l}");
        }
    }
    Ok(())
}

pub fn similar(a: &SimilarArgs) -> anyhow::Result<()> {
    let o = open(&a.model)?;
    let item = o
        .items
        .get(&a.item)
        .ok_or_else(|| anyhow!("--item: {} is unknown to the model", a.item))?;
    let sim = o.model.similar_items(item, a.k)?;
    println!(
        "items most similar to {} ({}):",
        o.label(item),
        o.model.spec()
    );
    for (rank, s) in sim.iter().enumerate() {
        println!("{:>3}. {:<60} {:.4}", rank + 1, o.label(s.item), s.score);
    }
    Ok(())
}
