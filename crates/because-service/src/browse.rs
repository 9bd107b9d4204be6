//! What a person browsing a model asks: a user's history, items found by
//! title, an item's standing (popularity, trend, reach), and the map of the
//! catalogue in the model's embedding space. The dashboard draws these.

use crate::{bad, ModelHandle, Result, ServiceError};
use because_core::Recommender;
use because_explain::reasons::ItemRef;
use serde::Serialize;

/// The most entries one history, search or map request may ask for.
pub const MAX_BROWSE: usize = 1_000;

/// The list length reach is counted in: how many users have an item in
/// their top [`REACH_K`].
pub const REACH_K: usize = 10;

/// One entry of a user's history.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct HistoryEntry {
    /// The item.
    pub item: ItemRef,
    /// The value it carries (summed over repeats in training data).
    pub value: f32,
    /// The event type, when the log has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Milliseconds since the epoch, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
}

/// Where a history comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HistorySource {
    /// The raw event log given as context: every event, with type and time.
    EventLog,
    /// The model's training matrix: one entry per item, with its value.
    Training,
}

/// A user's history as the model knows it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct UserHistory {
    /// The user ID.
    pub user: String,
    /// Whether the model knows the user.
    pub known: bool,
    /// Where the entries come from.
    pub source: HistorySource,
    /// Entries in all (the list may show fewer).
    pub total: usize,
    /// Newest first for an event log; largest value first for training data.
    pub entries: Vec<HistoryEntry>,
    /// What the model scores the user from: one entry per item with its
    /// training value (largest first; all of it, up to the
    /// [`MAX_HISTORY`](crate::MAX_HISTORY) a request may carry). Sent back
    /// as a `sequence` of `{item, value}`, less some items, it asks "what
    /// if these were not in the history?".
    pub profile: Vec<ProfileEntry>,
}

/// One item of the history the model scores from.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ProfileEntry {
    /// The item.
    pub item: ItemRef,
    /// Its value in training.
    pub value: f32,
}

/// An item found by a search.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ItemHit {
    /// The item.
    pub item: ItemRef,
    /// Training users who have it.
    pub popularity: f32,
}

/// Items whose ID or title matches a query.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ItemSearch {
    /// The query.
    pub query: String,
    /// Exact ID first, then by popularity.
    pub items: Vec<ItemHit>,
}

/// One feature of an item, as text.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ItemFeature {
    /// The column.
    pub name: String,
    /// Its values (several for a multi-valued column such as genres).
    pub values: Vec<String>,
}

/// How an item does lately, from the event log.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ItemTrend {
    /// The window, in days before the log's latest event.
    pub window_days: f64,
    /// Events on the item in the window.
    pub recent_events: u32,
    /// Its rate in the window over its rate across the whole log (1: as usual).
    pub lift: f32,
}

/// Events on an item in one span of time.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ActivityBucket {
    /// Start of the span, milliseconds since the epoch.
    pub start: i64,
    /// Events in it.
    pub events: u32,
}

/// To how many users the model recommends an item (aggregated: no user is
/// named).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Reach {
    /// The list length counted in.
    pub k: usize,
    /// Users whose top `k` holds the item.
    pub users: usize,
    /// Their share of all users the model knows.
    pub share: f64,
}

/// An item's standing in the model and the data.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ItemInfo {
    /// The item.
    pub item: ItemRef,
    /// Training users who have it (for a popularity model, its count).
    pub popularity: f32,
    /// 1 for the most popular item.
    pub popularity_rank: usize,
    /// Items in the catalogue.
    pub n_items: usize,
    /// Its features, when item features are given.
    pub features: Vec<ItemFeature>,
    /// Its trend, when an event log with times is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend: Option<ItemTrend>,
    /// Events on it over the log's span in 20 equal buckets, when an event
    /// log with times is given.
    pub activity: Vec<ActivityBucket>,
    /// To how many users it is recommended.
    pub reach: Reach,
}

/// One item placed on the embedding map.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MapPoint {
    /// The item.
    pub item: ItemRef,
    /// First principal component.
    pub x: f64,
    /// Second principal component.
    pub y: f64,
    /// Training users who have it.
    pub popularity: f32,
    /// Its first genre (or category), when item features are given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// The catalogue in the model's item-embedding space, projected on its first
/// two principal components.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct EmbeddingMap {
    /// The model, as a full spec.
    pub model: String,
    /// The most popular items, at most as many as asked for (empty when the
    /// model has no item embeddings).
    pub points: Vec<MapPoint>,
    /// Why there are no points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

fn check_limit(field: &'static str, n: usize) -> Result<()> {
    if n == 0 || n > MAX_BROWSE {
        return Err(bad(field, format!("must be between 1 and {MAX_BROWSE}")));
    }
    Ok(())
}

impl ModelHandle {
    /// A user's history: their events in the context's log (newest first,
    /// with types and times) when there is one, else their row of the
    /// training data (largest value first). An unknown user has an empty
    /// history, not an error.
    pub fn history(&self, user: &str, limit: usize) -> Result<UserHistory> {
        check_limit("limit", limit)?;
        let i = &self.inner;
        let known = i.users.get(user);
        let (items, values) = known.map_or((&[][..], &[][..]), |u| i.model.history(u));
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| {
            values[b]
                .total_cmp(&values[a])
                .then(items[a].cmp(&items[b]))
        });
        order.truncate(crate::MAX_HISTORY);
        let profile: Vec<ProfileEntry> = order
            .iter()
            .map(|&k| ProfileEntry {
                item: self.item_ref(items[k]),
                value: values[k],
            })
            .collect();
        if let Some(log) = &i.context.log {
            if let Some(u) = log.users.get(user) {
                let x = &log.interactions;
                let range = x.range(u);
                let total = range.len();
                let entries = range
                    .rev()
                    .filter_map(|k| {
                        let item = i.items.get(log.items.id(x.items()[k]))?;
                        Some(HistoryEntry {
                            item: self.item_ref(item),
                            value: x.values()[k],
                            event: x
                                .events()
                                .and_then(|e| log.event_names.get(e[k] as usize).cloned()),
                            time: log.has_time.then(|| x.times()[k]),
                        })
                    })
                    .take(limit)
                    .collect();
                return Ok(UserHistory {
                    user: user.to_string(),
                    known: known.is_some(),
                    source: HistorySource::EventLog,
                    total,
                    entries,
                    profile,
                });
            }
        }
        Ok(UserHistory {
            user: user.to_string(),
            known: known.is_some(),
            source: HistorySource::Training,
            total: items.len(),
            entries: profile
                .iter()
                .take(limit)
                .map(|p| HistoryEntry {
                    item: p.item.clone(),
                    value: p.value,
                    event: None,
                    time: None,
                })
                .collect(),
            profile,
        })
    }

    /// Items whose ID equals `query` or whose title or ID contains it
    /// (ignoring case): the exact ID first, then the most popular.
    pub fn search_items(&self, query: &str, limit: usize) -> Result<ItemSearch> {
        check_limit("limit", limit)?;
        let q = query.trim();
        if q.is_empty() || q.chars().count() > 200 {
            return Err(bad("q", "must have 1 to 200 characters"));
        }
        let needle = q.to_lowercase();
        let i = &self.inner;
        let exact = i.items.get(q);
        let mut hits: Vec<u32> = (0..i.items.len() as u32)
            .filter(|&k| Some(k) != exact)
            .filter(|&k| {
                i.items.id(k).to_lowercase().contains(&needle)
                    || self
                        .title(k)
                        .is_some_and(|t| t.to_lowercase().contains(&needle))
            })
            .collect();
        hits.sort_by(|&a, &b| self.more_popular(a, b));
        let items = exact
            .into_iter()
            .chain(hits)
            .take(limit)
            .map(|k| ItemHit {
                item: self.item_ref(k),
                popularity: i.popularity[k as usize],
            })
            .collect();
        Ok(ItemSearch {
            query: q.to_string(),
            items,
        })
    }

    /// The more popular item first; ties by index.
    fn more_popular(&self, a: u32, b: u32) -> std::cmp::Ordering {
        let p = &self.inner.popularity;
        p[b as usize].total_cmp(&p[a as usize]).then(a.cmp(&b))
    }

    /// For how many users each item is in the model's top [`REACH_K`],
    /// counted once per handle.
    fn reach_counts(&self) -> Result<&[u32]> {
        let counts = self.inner.reach.get_or_init(|| {
            let m = &self.inner.model;
            let users: Vec<u32> = (0..m.n_users() as u32).collect();
            let mut counts = vec![0u32; m.n_items()];
            for chunk in users.chunks(4096) {
                let recs = m
                    .recommend_users(chunk, REACH_K)
                    .map_err(|e| e.to_string())?;
                for s in recs.iter().flatten() {
                    counts[s.item as usize] += 1;
                }
            }
            Ok(counts)
        });
        counts
            .as_deref()
            .map_err(|e| ServiceError::Model(because_core::Error::Shape(e.clone())))
    }

    /// An item's popularity, features, trend, activity over time and reach.
    pub fn item_info(&self, id: &str) -> Result<ItemInfo> {
        let item = self.item_index(id)?;
        let i = &self.inner;
        let pop = i.popularity[item as usize];
        let popularity_rank = 1 + i
            .popularity
            .iter()
            .enumerate()
            .filter(|&(k, &p)| p > pop || (p == pop && (k as u32) < item))
            .count();
        let features = i
            .context
            .items
            .as_ref()
            .map(|f| {
                f.columns
                    .iter()
                    .filter_map(|c| {
                        let values: Vec<String> = match c.kind {
                            because_data::features::FeatureKind::Numeric => c
                                .numeric
                                .get(item as usize)
                                .copied()
                                .flatten()
                                .map(|v| v.to_string())
                                .into_iter()
                                .collect(),
                            _ => c
                                .codes
                                .get(item as usize)
                                .map(|codes| {
                                    codes
                                        .iter()
                                        .map(|&l| c.levels[l as usize].clone())
                                        .collect()
                                })
                                .unwrap_or_default(),
                        };
                        (!values.is_empty()).then(|| ItemFeature {
                            name: c.name.clone(),
                            values,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let trend = i.context.trend.as_ref().map(|t| {
            let (recent_events, lift) = t.of(item);
            ItemTrend {
                window_days: t.window_ms() as f64 / 86_400_000.0,
                recent_events,
                lift,
            }
        });
        let users = self.reach_counts()?[item as usize] as usize;
        Ok(ItemInfo {
            item: self.item_ref(item),
            popularity: pop,
            popularity_rank,
            n_items: i.items.len(),
            features,
            trend,
            activity: self.activity(item),
            reach: Reach {
                k: REACH_K,
                users,
                share: users as f64 / i.model.n_users().max(1) as f64,
            },
        })
    }

    /// Events on `item` in the context's log, in 20 equal spans of its time.
    fn activity(&self, item: u32) -> Vec<ActivityBucket> {
        const BUCKETS: usize = 20;
        let Some(log) = self.inner.context.log.as_ref().filter(|l| l.has_time) else {
            return Vec::new();
        };
        let Some(local) = log.items.get(self.inner.items.id(item)) else {
            return Vec::new();
        };
        let x = &log.interactions;
        let (Some(&first), Some(&last)) = (x.times().iter().min(), x.times().iter().max()) else {
            return Vec::new();
        };
        // Rounded up, so the last bucket is no wider than the others.
        let width = ((last - first) / BUCKETS as i64 + 1).max(1);
        let mut counts = [0u32; BUCKETS];
        for (k, &i) in x.items().iter().enumerate() {
            if i == local {
                let b = (((x.times()[k] - first) / width) as usize).min(BUCKETS - 1);
                counts[b] += 1;
            }
        }
        counts
            .iter()
            .enumerate()
            .map(|(b, &events)| ActivityBucket {
                start: first + b as i64 * width,
                events,
            })
            .collect()
    }

    /// The `limit` most popular items placed by the first two principal
    /// components of the model's item embeddings.
    pub fn embedding_map(&self, limit: usize) -> Result<EmbeddingMap> {
        check_limit("limit", limit)?;
        let i = &self.inner;
        let model = i.model.spec().to_string();
        let Some((factors, d)) = i.model.item_embeddings() else {
            return Ok(EmbeddingMap {
                model,
                points: Vec::new(),
                unavailable: Some(format!("{} has no item embeddings", i.model.kind())),
            });
        };
        let xy = because_explain::global::pca_2d(factors, d);
        let genre = i.context.items.as_ref().and_then(|f| f.genre_like());
        let mut order: Vec<u32> = (0..i.items.len() as u32).collect();
        order.sort_by(|&a, &b| self.more_popular(a, b));
        let points = order
            .into_iter()
            .take(limit)
            .map(|k| MapPoint {
                item: self.item_ref(k),
                x: xy[k as usize].0,
                y: xy[k as usize].1,
                popularity: i.popularity[k as usize],
                group: genre.and_then(|g| {
                    g.codes
                        .get(k as usize)
                        .and_then(|c| c.first())
                        .map(|&l| g.levels[l as usize].clone())
                }),
            })
            .collect();
        Ok(EmbeddingMap {
            model,
            points,
            unavailable: None,
        })
    }
}
