//! Everything that can be said about one recommendation, as typed plain data.
//!
//! [`Explainer`] gathers, for one history and one recommended item, the
//! exact decomposition ([`crate::explain`]) and every reason the evidence
//! at hand supports: the history items that carry the score, popularity
//! and trend, the latest session, funnel stages reached on the supporting items
//! ("you added *Alien* to your cart"), item features shared with them,
//! an aggregated exemplar, user features whose holders choose the item
//! unusually often, and a verified counterfactual. The result,
//! [`Explained`], names items by external ID and title and serializes to
//! the JSON that `because explain --json` prints.
//!
//! Each [`Reason`] says what it rests on ([`Basis`]): a claim about the
//! model's score (checked against the model by the fidelity tests) or a
//! fact counted in the training data. Group statistics are reported only
//! for groups of at least [`crate::MIN_GROUP`] people, and no reason ever
//! holds another user's identity or history.

use crate::{
    exemplar_with, feature_matches, narrative, session_reason, Contribution, Counterfactual,
    Explanation, Templates,
};
use because_core::{Dataset, Recommender, Result, Vocab};
use because_models::Model;
use serde::Serialize;

/// An item as people see it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ItemRef {
    /// Dense index in the model (not shown: it means nothing outside).
    #[serde(skip)]
    pub index: u32,
    /// External ID.
    pub id: String,
    /// Title, or the ID when there is none.
    pub title: String,
}

/// A history item and its additive share of the score.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Weighted {
    /// The history item.
    pub item: ItemRef,
    /// Its contribution.
    pub weight: f32,
}

/// A supporting item and how often the user reached a funnel stage on it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Engaged {
    /// The item.
    pub item: ItemRef,
    /// Events of the stage's type on it.
    pub count: usize,
    /// Of which in the seven days before the user's latest event.
    pub this_week: usize,
}

/// What a reason rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// A claim about the model's score for this history, checked against the
    /// model (contributions add up; removing named items lowers the rank;
    /// counterfactuals are re-scored).
    Model,
    /// A fact counted in the training data, true whatever the model does.
    Data,
}

/// The evidence behind a reason, by kind.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// History items that carry the score (a collaborative reason).
    History {
        /// The supporting items named, strongest first.
        items: Vec<Weighted>,
    },
    /// How often the item was chosen in the training data.
    Popularity {
        /// Interactions with the item (within the model's window, if any).
        interactions: f32,
        /// Its rank by that count (1 = most chosen).
        rank: usize,
        /// Number of items ranked.
        of: usize,
        /// The popularity window in days, when the count is recent only.
        window_days: Option<f64>,
    },
    /// The item is chosen more often lately than over the whole log.
    Trend {
        /// Events on the item in the window.
        recent: u32,
        /// The window, in days before the log's latest event.
        window_days: f64,
        /// Its rate in the window over its rate across the whole log.
        lift: f32,
    },
    /// Supporting items from the user's latest session.
    Session {
        /// The items.
        items: Vec<ItemRef>,
    },
    /// Supporting items on which the user reached this funnel stage (their
    /// furthest), or which they viewed repeatedly.
    Intent {
        /// The event type of the stage (`addtocart`, say).
        event: String,
        /// The items, strongest supporter first.
        items: Vec<Engaged>,
    },
    /// An item feature level the item shares with supporting items.
    ItemFeature {
        /// The level (a genre, say).
        level: String,
        /// The supporting items that have it.
        items: Vec<ItemRef>,
    },
    /// People who share the top supporting items also chose the item.
    Exemplar {
        /// The shared history items.
        items: Vec<ItemRef>,
        /// People with all of them who chose the item.
        people: usize,
        /// People with all of them.
        of: usize,
    },
    /// Features of the item and of the user that raise the score of a model
    /// that reads them (integrated-gradient shares, in score units).
    Features {
        /// The user's features, largest share first.
        user_features: Vec<because_core::InputShare>,
        /// The item's features, largest share first.
        item_features: Vec<because_core::InputShare>,
    },
    /// People who share one of the user's features choose the item more
    /// often than people overall.
    UserFeature {
        /// The feature (column) name.
        feature: String,
        /// The user's level of it.
        level: String,
        /// Other people with that level who chose the item.
        people: usize,
        /// Other people with that level.
        of: usize,
        /// Their rate of choosing it over everybody's rate.
        lift: f32,
    },
    /// A set of history items without which the item leaves the top `n`.
    Counterfactual {
        /// The items removed.
        removed: Vec<ItemRef>,
        /// Whether re-scoring the reduced history confirmed it.
        verified: bool,
        /// The list size.
        n: usize,
        /// Rank with the full history.
        rank_before: usize,
        /// Rank without the removed items.
        rank_after: usize,
    },
}

/// One reason: its evidence, how much it weighs and a sentence.
///
/// `weight` is in the units of the score for model-based reasons (the part
/// of the score the named items account for; for popularity, the count);
/// for data-based reasons it is a rate: the share of the group who chose
/// the item (exemplar) or the lift (user feature, trend); for item features, the
/// number of supporting items sharing the level; for a counterfactual, the
/// ranks lost.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Reason {
    /// What the reason rests on.
    pub basis: Basis,
    /// How much it weighs (see above).
    pub weight: f32,
    /// The evidence.
    #[serde(flatten)]
    pub evidence: Evidence,
    /// A sentence for people, from the templates.
    pub sentence: String,
}

/// A recommendation explained: score, exact contributions and reasons.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Explained {
    /// The recommended item.
    pub item: ItemRef,
    /// The score decomposed: the model's score for this subject, the one
    /// that was served (single, batched and explained paths agree to 1e-5
    /// relative; the conformance suite checks it for every model).
    pub score: f32,
    /// Whether `contributions`, `other_contributions` and `bias` add up to the score.
    pub exact: bool,
    /// What the contributions are: `exact` (a decomposition), `popularity`,
    /// `occlusion` (each item's measured effect on the score), or a model's
    /// own approximate attribution (`attention`, `attention_rollout`,
    /// `gradient_input`).
    pub method: crate::Method,
    /// How faithful `method` measured on this model when it was saved: the
    /// deletion test's named ÷ random rank lost (how many times more a
    /// recommendation loses when the items the method names are removed
    /// than when as many random ones are); absent when the model folder
    /// holds no measurement of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fidelity: Option<f64>,
    /// The part of the score no history item accounts for.
    pub bias: f32,
    /// Share of the positive contributions carried by the top three.
    pub confidence: f32,
    /// The largest contributions (at most [`Explainer::shown`]).
    pub contributions: Vec<Weighted>,
    /// The sum of the contributions not shown.
    pub other_contributions: f32,
    /// Every reason found, the main one first.
    pub reasons: Vec<Reason>,
    /// A short narrative: the main reason's sentence and the next one's.
    pub narrative: String,
    /// For models that read features: the score split over every input
    /// (user and item features, IDs, the history) by integrated gradients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<because_core::FeatureAttribution>,
    /// For a fused model (the session + history hybrid): each part's exact
    /// share of the score, explained by the part's own model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartExplained>,
}

/// One part of a fused model's score.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PartExplained {
    /// The part: `session` (the latest events, read by a sequential model)
    /// or `history` (everything, read by a long-term model).
    pub name: String,
    /// The part's model, as a spec.
    pub model: String,
    /// How the part's model explains its score.
    pub method: crate::Method,
    /// The part's share of the score; the parts add up to it.
    pub share: f32,
    /// The part's strongest history items, in the fused score's units.
    pub contributions: Vec<Weighted>,
}

/// One user's raw event log (before duplicates were merged), for intent
/// reasons. Items are model indices.
#[derive(Clone, Debug, Default)]
pub struct Activity {
    /// Item of each event.
    pub items: Vec<u32>,
    /// Event code of each event.
    pub events: Vec<u8>,
    /// Time of each event (milliseconds).
    pub times: Vec<i64>,
}

impl Activity {
    /// The events of `user` in a raw log (read with duplicates kept), with
    /// items mapped into `items` (the model's vocabulary). Events on items
    /// the model does not know are left out; `None` when the log has no
    /// event types or does not know the user.
    pub fn of_user(log: &Dataset, user: &str, items: &Vocab) -> Option<Activity> {
        let x = &log.interactions;
        let events = x.events()?;
        let u = log.users.get(user)?;
        let mut a = Activity::default();
        for k in x.range(u) {
            if let Some(i) = items.get(log.items.id(x.items()[k])) {
                a.items.push(i);
                a.events.push(events[k]);
                a.times.push(x.times()[k]);
            }
        }
        Some(a)
    }

    /// The distinct items of the latest session: the events after the last
    /// gap longer than `timeout_ms`.
    pub fn latest_session(&self, timeout_ms: i64) -> Vec<u32> {
        let mut order: Vec<usize> = (0..self.items.len()).collect();
        order.sort_by_key(|&k| self.times[k]);
        let Some(mut start) = order.len().checked_sub(1) else {
            return Vec::new();
        };
        while start > 0 && self.times[order[start]] - self.times[order[start - 1]] <= timeout_ms {
            start -= 1;
        }
        let mut out: Vec<u32> = Vec::new();
        for &k in &order[start..] {
            if !out.contains(&self.items[k]) {
                out.push(self.items[k]);
            }
        }
        out
    }
}

/// The event types of a log, in code order, with their funnel strength
/// (the configured event weight: a purchase outweighs a view).
#[derive(Clone, Debug, Default)]
pub struct Funnel {
    /// Event names.
    pub names: Vec<String>,
    /// Strength of each.
    pub strength: Vec<f32>,
}

/// How often each item was chosen lately, against the whole log.
#[derive(Clone, Debug)]
pub struct Trend {
    recent: Vec<u32>,
    total: Vec<u32>,
    window_ms: i64,
    span_ms: i64,
}

impl Trend {
    /// Counts the events on each item of `items` (the model's vocabulary)
    /// in `log`, in all and in the `window_ms` before the latest event.
    /// `None` when the log has no times or spans no more than the window.
    pub fn from_log(log: &Dataset, items: &Vocab, window_ms: i64) -> Option<Trend> {
        let x = &log.interactions;
        let (&first, &last) = (x.times().iter().min()?, x.times().iter().max()?);
        if !log.has_time || last - first <= window_ms || window_ms <= 0 {
            return None;
        }
        let map: Vec<Option<u32>> = log.items.ids().map(|id| items.get(id)).collect();
        let (mut recent, mut total) = (vec![0u32; items.len()], vec![0u32; items.len()]);
        for (k, &i) in x.items().iter().enumerate() {
            if let Some(j) = map[i as usize] {
                total[j as usize] += 1;
                if x.times()[k] > last - window_ms {
                    recent[j as usize] += 1;
                }
            }
        }
        Some(Trend {
            recent,
            total,
            window_ms,
            span_ms: last - first,
        })
    }

    /// The window, in milliseconds before the log's latest event.
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// Events on `item` in the window, and its rate there over its rate
    /// across the whole log.
    pub fn of(&self, item: u32) -> (u32, f32) {
        let (r, t) = (self.recent[item as usize], self.total[item as usize]);
        if t == 0 {
            return (0, 0.0);
        }
        let lift = (r as f64 / self.window_ms as f64) / (t as f64 / self.span_ms as f64);
        (r, lift as f32)
    }
}

/// One user feature, binned into levels, for every user of the model.
#[derive(Clone, Debug)]
pub struct UserColumn {
    /// Feature name.
    pub name: String,
    /// Level names.
    pub levels: Vec<String>,
    /// Each user's level (`None`: unknown).
    pub codes: Vec<Option<u32>>,
    sizes: Vec<usize>,
}

impl UserColumn {
    /// A categorical column.
    pub fn categorical(name: &str, levels: Vec<String>, codes: Vec<Option<u32>>) -> UserColumn {
        let mut sizes = vec![0; levels.len()];
        for c in codes.iter().flatten() {
            sizes[*c as usize] += 1;
        }
        UserColumn {
            name: name.to_string(),
            levels,
            codes,
            sizes,
        }
    }

    /// A numeric column cut into (at most) `bins` quantile bins named by
    /// their ranges, such as `25–34`.
    pub fn numeric(name: &str, values: &[Option<f32>], bins: usize) -> UserColumn {
        let mut sorted: Vec<f32> = values.iter().flatten().copied().collect();
        sorted.sort_by(f32::total_cmp);
        let mut edges: Vec<f32> = (1..bins.max(1))
            .map(|b| sorted.get(b * sorted.len() / bins).copied().unwrap_or(0.0))
            .collect();
        edges.dedup();
        let fmt = |v: f32| {
            if v.fract() == 0.0 {
                format!("{v}")
            } else {
                format!("{v:.2}")
            }
        };
        let (lo, hi) = (
            sorted.first().copied().unwrap_or(0.0),
            sorted.last().copied().unwrap_or(0.0),
        );
        // Bin b holds values in [edges[b-1], edges[b]).
        let mut levels = Vec::new();
        for b in 0..=edges.len() {
            let from = if b == 0 { lo } else { edges[b - 1] };
            levels.push(match edges.get(b) {
                Some(&to) => format!("{}–{}", fmt(from), fmt(to)),
                None => format!("{}–{}", fmt(from), fmt(hi)),
            });
        }
        let codes = values
            .iter()
            .map(|v| v.map(|v| edges.partition_point(|&e| e <= v) as u32))
            .collect();
        UserColumn::categorical(name, levels, codes)
    }
}

/// Builds [`Explained`] values for one model.
pub struct Explainer<'a> {
    model: &'a Model,
    name: &'a dyn Fn(u32) -> ItemRef,
    /// The sentences.
    pub templates: Templates,
    /// Item feature levels (genres, say): codes per item and level names.
    pub item_features: Option<(&'a [Vec<u32>], &'a [String])>,
    /// User features, aligned with the model's users.
    pub user_features: &'a [UserColumn],
    /// Event types, for intent reasons.
    pub funnel: Option<&'a Funnel>,
    /// Recent counts, for trend reasons.
    pub trend: Option<&'a Trend>,
    /// Smallest group a data-based reason may describe.
    pub min_group: usize,
    /// The list size counterfactuals are about; 0 skips them.
    pub n: usize,
    /// Largest counterfactual searched.
    pub max_removed: usize,
    /// How many contributions [`Explained`] lists.
    pub shown: usize,
    /// Smallest lift worth a user-feature reason.
    pub min_lift: f32,
    /// The explanation method (`None`: the model's default, the first of
    /// [`crate::methods`]); one the model does not offer is an error.
    pub method: Option<crate::Method>,
    /// The model folder's deletion test of each method, for
    /// [`Explained::fidelity`].
    pub measured: &'a [because_models::persist::MethodRatio],
}

/// Whom an explanation is for: a history, and what else is known.
#[derive(Clone, Copy, Debug, Default)]
pub struct Subject<'a> {
    /// History items.
    pub items: &'a [u32],
    /// Their values.
    pub values: &'a [f32],
    /// The user's index in the model's training data, when known (their
    /// own row is left out of group counts, and user features apply).
    pub user: Option<u32>,
    /// Items of the user's latest session.
    pub latest_session: Option<&'a [u32]>,
    /// The user's raw events.
    pub activity: Option<&'a Activity>,
    /// Feature tokens given for the subject (a new user described by
    /// features), for models that read them; `None`: a known user's own.
    pub features: Option<&'a [(u32, f32)]>,
}

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

impl<'a> Explainer<'a> {
    /// An explainer for `model`, naming items with `name`.
    pub fn new(model: &'a Model, name: &'a dyn Fn(u32) -> ItemRef) -> Explainer<'a> {
        Explainer {
            model,
            name,
            templates: Templates::default(),
            item_features: None,
            user_features: &[],
            funnel: None,
            trend: None,
            min_group: crate::MIN_GROUP,
            n: 10,
            max_removed: 5,
            shown: 10,
            min_lift: 1.5,
            method: None,
            measured: &[],
        }
    }

    fn names(&self, items: &[u32]) -> Vec<ItemRef> {
        items.iter().map(|&i| (self.name)(i)).collect()
    }

    fn list(&self, items: &[ItemRef]) -> String {
        let titles: Vec<&str> = items.iter().map(|i| i.title.as_str()).collect();
        self.templates.list(&titles)
    }

    /// The method `s` is explained by: [`Explainer::method`] when the model
    /// offers it (`None`: the model's default); a subject described by
    /// feature tokens only by the model's integrated gradients over them.
    pub fn method_for(&self, s: &Subject) -> Result<crate::Method> {
        let method = crate::offered(self.model, self.method)?;
        let over_features =
            self.model.featured().is_some() && method == crate::Method::IntegratedGradients;
        if s.features.is_some() && !over_features {
            return Err(because_core::Error::param(
                "method",
                "a subject described by user features is explained by integrated_gradients",
            ));
        }
        Ok(method)
    }

    /// Explains `target` for `s`.
    pub fn explain(&self, s: &Subject, target: u32) -> Result<Explained> {
        Ok(self
            .explain_many(s, &[target])?
            .pop()
            .expect("one explanation per target"))
    }

    /// Explains each of `targets` for `s`, as [`Explainer::explain`] does
    /// one, sharing the decomposition's work (one factorization of the
    /// subject's system for ALS).
    pub fn explain_many(&self, s: &Subject, targets: &[u32]) -> Result<Vec<Explained>> {
        let mut groups = crate::Groups::default();
        let method = self.method_for(s)?;
        if self.model.featured().is_some() && method == crate::Method::IntegratedGradients {
            // The subject as the model scores it: their features and ID too.
            let mut out = Vec::with_capacity(targets.len());
            for &t in targets {
                let who = because_core::Described {
                    user: s.user,
                    features: s.features,
                    items: Some(s.items),
                };
                let (e, inputs) = crate::explain_described(self.model, &who, t)?
                    .expect("a model that reads features");
                let mut x = self.assemble_with(s, &e, &mut groups);
                if let Some(r) = self.inputs_reason(&inputs) {
                    // The features lead when they carry more of the score
                    // than the history items named first.
                    let lead = x.reasons.first().is_none_or(|h| r.weight > h.weight);
                    x.reasons
                        .insert(if lead { 0 } else { 1.min(x.reasons.len()) }, r);
                    x.narrative = narrative_of(&x.reasons);
                }
                x.inputs = Some(inputs);
                out.push(x);
            }
            return Ok(out);
        }
        let es = if method == crate::Method::Exact {
            crate::explain_many(self.model, s.items, s.values, targets)?
        } else {
            targets
                .iter()
                .map(|&t| crate::explain_by(self.model, s.items, s.values, t, method))
                .collect::<Result<Vec<_>>>()?
        };
        Ok(es
            .iter()
            .map(|e| self.assemble_with(s, e, &mut groups))
            .collect())
    }

    /// The features that raise the score most (at most two per side, each
    /// at least a tenth of the positive feature shares), as a reason.
    fn inputs_reason(&self, a: &because_core::FeatureAttribution) -> Option<Reason> {
        let features = |side: &[because_core::InputShare]| -> Vec<because_core::InputShare> {
            side.iter()
                .filter(|s| s.input != "id" && s.input != "history")
                .cloned()
                .collect()
        };
        let (user, item) = (features(&a.user_inputs), features(&a.item_inputs));
        let positive: f32 = user.iter().chain(&item).map(|s| s.share.max(0.0)).sum();
        if positive <= 0.0 {
            return None;
        }
        let top = |side: Vec<because_core::InputShare>| -> Vec<because_core::InputShare> {
            side.into_iter()
                .filter(|s| s.share > 0.1 * positive)
                .take(2)
                .collect()
        };
        let (user, item) = (top(user), top(item));
        let names = |side: &[because_core::InputShare]| -> String {
            let n: Vec<&str> = side.iter().map(|s| s.input.as_str()).collect();
            self.templates.list(&n)
        };
        let t = &self.templates;
        let sentence = match (item.is_empty(), user.is_empty()) {
            (true, true) => return None,
            (false, false) => t.fill(
                "inputs_both",
                &[("item", &names(&item)), ("user", &names(&user))],
            ),
            (false, true) => t.fill("inputs_item", &[("item", &names(&item))]),
            (true, false) => t.fill("inputs_user", &[("user", &names(&user))]),
        };
        let weight = user.iter().chain(&item).map(|s| s.share).sum();
        Some(Reason {
            basis: Basis::Model,
            weight,
            sentence,
            evidence: Evidence::Features {
                user_features: user,
                item_features: item,
            },
        })
    }

    /// Explains an item recommended by the popularity fallback (an unknown
    /// user, an empty history): how often it was chosen.
    pub fn explain_fallback(&self, target: u32) -> Explained {
        let counts = item_counts(self.model);
        let count = counts.get(target as usize).copied().unwrap_or(0.0);
        let mut reasons = vec![self.popularity_reason(&counts, target, count, Basis::Data, None)];
        reasons.extend(self.trend_reason(target));
        Explained {
            item: (self.name)(target),
            score: count,
            exact: false,
            method: crate::Method::Popularity,
            fidelity: None,
            bias: count,
            confidence: 0.0,
            contributions: Vec::new(),
            other_contributions: 0.0,
            narrative: reasons
                .iter()
                .map(|r| r.sentence.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            reasons,
            inputs: None,
            parts: Vec::new(),
        }
    }

    /// A trend reason, when the item's recent rate is at least `min_lift`
    /// times its usual one over at least `min_group` events.
    fn trend_reason(&self, item: u32) -> Option<Reason> {
        let t = self.trend?;
        let (recent, lift) = t.of(item);
        if (recent as usize) < self.min_group || lift < self.min_lift {
            return None;
        }
        let window_days = t.window_ms as f64 / 86_400_000.0;
        Some(Reason {
            basis: Basis::Data,
            weight: lift,
            sentence: self.templates.fill(
                "trend",
                &[
                    ("count", &recent.to_string()),
                    ("days", &format!("{window_days:.0}")),
                    ("lift", &format!("{lift:.1}")),
                ],
            ),
            evidence: Evidence::Trend {
                recent,
                window_days,
                lift,
            },
        })
    }

    fn popularity_reason(
        &self,
        counts: &[f32],
        target: u32,
        count: f32,
        basis: Basis,
        window_days: Option<f64>,
    ) -> Reason {
        let rank = 1 + counts
            .iter()
            .enumerate()
            .filter(|&(i, &c)| c > count || (c == count && (i as u32) < target))
            .count();
        let sentence = match window_days {
            Some(days) => self.templates.fill(
                "popular_recent",
                &[
                    ("count", &format!("{count}")),
                    ("days", &format!("{days:.0}")),
                ],
            ),
            None => self.templates.fill(
                "popular_count",
                &[("count", &format!("{count}")), ("rank", &rank.to_string())],
            ),
        };
        Reason {
            basis,
            weight: count,
            evidence: Evidence::Popularity {
                interactions: count,
                rank,
                of: counts.len(),
                window_days,
            },
            sentence,
        }
    }

    fn assemble_with(&self, s: &Subject, e: &Explanation, groups: &mut crate::Groups) -> Explained {
        let t = &self.templates;
        let title = |i: u32| (self.name)(i).title;
        let mut reasons = Vec::new();
        let top = e.top_items(3);
        let weight_of = |items: &[u32]| -> f32 {
            e.contributions
                .iter()
                .filter(|c| items.contains(&c.item))
                .map(|c| c.weight)
                .sum()
        };
        if let Some(count) = e.popularity {
            let window = self.model.popularity().and_then(|p| p.window_days());
            let counts = item_counts(self.model);
            reasons.push(self.popularity_reason(&counts, e.item, count, Basis::Model, window));
        } else if !top.is_empty() {
            reasons.push(Reason {
                basis: Basis::Model,
                weight: weight_of(&top),
                evidence: Evidence::History {
                    items: e
                        .contributions
                        .iter()
                        .filter(|c| c.weight > 0.0)
                        .take(3)
                        .map(|c| self.weighted(c))
                        .collect(),
                },
                sentence: narrative(e, &title, t),
            });
        }
        if let Some(latest) = s.latest_session {
            let follows = session_reason(e, latest);
            if !follows.is_empty() {
                let items = self.names(&follows);
                reasons.push(Reason {
                    basis: Basis::Model,
                    weight: weight_of(&follows),
                    sentence: t.fill("session", &[("items", &self.list(&items))]),
                    evidence: Evidence::Session { items },
                });
            }
        }
        if let (Some(a), Some(f)) = (s.activity, self.funnel) {
            reasons.extend(self.intent_reasons(e, a, f));
        }
        if let Some((codes, levels)) = self.item_features {
            if let Some((level, _)) = feature_matches(e, codes, levels).into_iter().next() {
                let with: Vec<u32> = top
                    .iter()
                    .copied()
                    .filter(|&i| {
                        codes
                            .get(i as usize)
                            .is_some_and(|c| c.iter().any(|&l| levels[l as usize] == level))
                    })
                    .collect();
                let items = self.names(&with);
                reasons.push(Reason {
                    basis: Basis::Model,
                    weight: with.len() as f32,
                    sentence: t.fill(
                        "feature",
                        &[("items", &self.list(&items)), ("level", &level)],
                    ),
                    evidence: Evidence::ItemFeature { level, items },
                });
            }
        }
        if let Some(x) = exemplar_with(self.model, e, s.user, self.min_group, groups) {
            let items = self.names(&x.items);
            reasons.push(Reason {
                basis: Basis::Data,
                weight: x.people as f32 / x.of.max(1) as f32,
                sentence: t.fill(
                    "exemplar",
                    &[
                        ("people", &x.people.to_string()),
                        ("of", &x.of.to_string()),
                        ("items", &self.list(&items)),
                    ],
                ),
                evidence: Evidence::Exemplar {
                    items,
                    people: x.people,
                    of: x.of,
                },
            });
        }
        if let Some(u) = s.user {
            if let Some(r) = self.user_feature_reason(u, e.item) {
                reasons.push(r);
            }
        }
        reasons.extend(self.trend_reason(e.item));
        // A counterfactual re-ranks by the history alone: not for a subject
        // scored with given features.
        if self.n > 0
            && self.max_removed > 0
            && e.popularity.is_none()
            && !top.is_empty()
            && s.features.is_none()
        {
            if let Ok(c) = crate::counterfactual_for(
                self.model,
                s.user,
                s.items,
                s.values,
                e,
                self.n,
                self.max_removed,
            ) {
                reasons.push(self.counterfactual_reason(&c));
            }
        }
        let narrative = narrative_of(&reasons);
        let shown: Vec<Weighted> = if e.popularity.is_some() {
            Vec::new()
        } else {
            e.contributions
                .iter()
                .take(self.shown)
                .map(|c| self.weighted(c))
                .collect()
        };
        let other: f32 = if e.popularity.is_some() {
            0.0
        } else {
            e.contributions
                .iter()
                .skip(self.shown)
                .map(|c| c.weight)
                .sum()
        };
        Explained {
            item: (self.name)(e.item),
            score: e.score,
            exact: e.exact,
            method: e.method,
            fidelity: self
                .measured
                .iter()
                .find(|m| m.method == e.method.name())
                .and_then(|m| m.named_over_random),
            bias: e.bias,
            confidence: e.confidence,
            contributions: shown,
            other_contributions: other,
            parts: e
                .parts
                .iter()
                .map(|p| PartExplained {
                    name: p.name.to_string(),
                    model: p.model.clone(),
                    method: p.method,
                    share: p.share,
                    contributions: p
                        .contributions
                        .iter()
                        .take(3)
                        .map(|c| self.weighted(c))
                        .collect(),
                })
                .collect(),
            reasons,
            narrative,
            inputs: None,
        }
    }

    fn weighted(&self, c: &Contribution) -> Weighted {
        Weighted {
            item: (self.name)(c.item),
            weight: c.weight,
        }
    }

    fn counterfactual_reason(&self, c: &Counterfactual) -> Reason {
        let removed = self.names(&c.removed);
        let sentence = if c.verified {
            self.templates.fill(
                "counterfactual",
                &[("items", &self.list(&removed)), ("n", &self.n.to_string())],
            )
        } else {
            self.templates.fill(
                "no_counterfactual",
                &[
                    ("size", &c.removed.len().to_string()),
                    ("n", &self.n.to_string()),
                ],
            )
        };
        Reason {
            basis: Basis::Model,
            weight: c.rank_after as f32 - c.rank_before as f32,
            evidence: Evidence::Counterfactual {
                removed,
                verified: c.verified,
                n: self.n,
                rank_before: c.rank_before,
                rank_after: c.rank_after,
            },
            sentence,
        }
    }

    /// For each of the top three supporting items the user went further
    /// than a single view on (a deeper funnel stage, or repeated views):
    /// the furthest stage, how often, and how often this week.
    fn intent_reasons(&self, e: &Explanation, a: &Activity, f: &Funnel) -> Vec<Reason> {
        let now = a.times.iter().copied().max().unwrap_or(0);
        let lowest = f.strength.iter().copied().fold(f32::INFINITY, f32::min);
        // (stage, contribution, engagement) of each supporting item worth a word.
        let mut found: Vec<(u8, f32, Engaged)> = Vec::new();
        for c in e.contributions.iter().filter(|c| c.weight > 0.0).take(3) {
            let mine: Vec<usize> = (0..a.items.len())
                .filter(|&k| a.items[k] == c.item)
                .collect();
            let Some(&deepest) = mine.iter().max_by(|&&x, &&y| {
                let s = |k: usize| f.strength.get(a.events[k] as usize).copied().unwrap_or(0.0);
                s(x).total_cmp(&s(y)).then(y.cmp(&x))
            }) else {
                continue;
            };
            let code = a.events[deepest];
            let at_stage: Vec<usize> = mine
                .iter()
                .copied()
                .filter(|&k| a.events[k] == code)
                .collect();
            let strength = f.strength.get(code as usize).copied().unwrap_or(0.0);
            if strength <= lowest && at_stage.len() < 2 {
                continue;
            }
            let this_week = at_stage
                .iter()
                .filter(|&&k| a.times[k] > now - WEEK_MS)
                .count();
            found.push((
                code,
                c.weight,
                Engaged {
                    item: (self.name)(c.item),
                    count: at_stage.len(),
                    this_week,
                },
            ));
        }
        // One reason per stage, in the order of the strongest supporter.
        let mut out = Vec::new();
        let mut stages: Vec<u8> = Vec::new();
        for x in &found {
            if !stages.contains(&x.0) {
                stages.push(x.0);
            }
        }
        for code in stages {
            let group: Vec<&(u8, f32, Engaged)> = found.iter().filter(|x| x.0 == code).collect();
            let event = f
                .names
                .get(code as usize)
                .cloned()
                .unwrap_or_else(|| format!("event {code}"));
            let named: Vec<String> = group
                .iter()
                .map(|(_, _, g)| match (g.count, g.this_week) {
                    (1, _) => g.item.title.clone(),
                    (n, w) => {
                        let key = if w == n { "often_week" } else { "often" };
                        let often = self.templates.fill(key, &[("count", &n.to_string())]);
                        format!("{} ({often})", g.item.title)
                    }
                })
                .collect();
            let items = self.templates.list(&named);
            let key = format!("intent.{}", event.to_lowercase());
            let args = [("items", items.as_str()), ("event", event.as_str())];
            let sentence = if self.templates.has(&key) {
                self.templates.fill(&key, &args)
            } else {
                self.templates.fill("intent", &args)
            };
            out.push(Reason {
                basis: Basis::Model,
                weight: group.iter().map(|x| x.1).sum(),
                evidence: Evidence::Intent {
                    event,
                    items: group.into_iter().map(|x| x.2.clone()).collect(),
                },
                sentence,
            });
        }
        out
    }

    /// The user feature whose level's holders choose `item` most often
    /// relative to everybody (at least `min_lift` times), counted without
    /// the user, over groups of at least `min_group`.
    fn user_feature_reason(&self, user: u32, item: u32) -> Option<Reason> {
        let iu = &self.model.train().iu;
        let chose = iu.row_indices(item as usize);
        let n_users = self.model.n_users();
        let me = chose.binary_search(&user).is_ok() as usize;
        let overall = (chose.len() - me) as f64 / (n_users.max(2) - 1) as f64;
        if overall <= 0.0 {
            return None;
        }
        let mut best: Option<(f64, &UserColumn, u32, usize, usize)> = None;
        for col in self.user_features {
            let Some(level) = col.codes.get(user as usize).copied().flatten() else {
                continue;
            };
            let of = col.sizes[level as usize] - 1;
            let people = chose
                .iter()
                .filter(|&&v| {
                    v != user && col.codes.get(v as usize).copied().flatten() == Some(level)
                })
                .count();
            if people < self.min_group || of < self.min_group {
                continue;
            }
            let lift = people as f64 / of as f64 / overall;
            if lift >= self.min_lift as f64 && best.as_ref().is_none_or(|b| lift > b.0) {
                best = Some((lift, col, level, people, of));
            }
        }
        let (lift, col, level, people, of) = best?;
        let level = col.levels[level as usize].clone();
        Some(Reason {
            basis: Basis::Data,
            weight: lift as f32,
            sentence: self.templates.fill(
                "user_feature",
                &[
                    ("feature", &col.name.replace('_', " ")),
                    ("level", &level),
                    ("lift", &format!("{lift:.1}")),
                    ("people", &people.to_string()),
                    ("of", &of.to_string()),
                ],
            ),
            evidence: Evidence::UserFeature {
                feature: col.name.clone(),
                level,
                people,
                of,
                lift: lift as f32,
            },
        })
    }
}

/// How many training users chose each item.
fn item_counts(model: &Model) -> Vec<f32> {
    match model.popularity() {
        Some(p) => p.item_counts().to_vec(),
        None => model
            .train()
            .iu
            .indptr()
            .windows(2)
            .map(|w| (w[1] - w[0]) as f32)
            .collect(),
    }
}

/// The narrative: the main reason, then the first reason of another kind
/// that adds something a person can check (session, intent, feature, trend).
fn narrative_of(reasons: &[Reason]) -> String {
    let mut narrative = reasons
        .first()
        .map(|r| r.sentence.clone())
        .unwrap_or_default();
    if let Some(r) = reasons.iter().skip(1).find(|r| {
        matches!(
            r.evidence,
            Evidence::Session { .. }
                | Evidence::Intent { .. }
                | Evidence::ItemFeature { .. }
                | Evidence::Features { .. }
                | Evidence::Trend { .. }
        )
    }) {
        narrative = format!("{narrative} {}", r.sentence);
    }
    narrative
}
