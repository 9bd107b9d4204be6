//! Statistics for exploratory data analysis: activity, long tail, ratings,
//! activity over time, sessions and the event funnel.

use crate::read::EventWeights;
use crate::time::{civil_from_days, days_from_civil};
use because_core::{Dataset, Sessions};
use serde::Serialize;
use std::collections::HashMap;

/// Order statistics of a count distribution.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Smallest.
    pub min: u32,
    /// Median.
    pub median: f64,
    /// Mean.
    pub mean: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Largest.
    pub max: u32,
}

impl Summary {
    /// Summary of `xs` (not necessarily sorted).
    pub fn of(xs: &[u32]) -> Summary {
        if xs.is_empty() {
            return Summary::default();
        }
        let mut s = xs.to_vec();
        s.sort_unstable();
        let q = |p: f64| {
            let pos = p * (s.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            s[lo] as f64 + (s[hi] as f64 - s[lo] as f64) * (pos - lo as f64)
        };
        Summary {
            min: s[0],
            median: q(0.5),
            mean: s.iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64,
            p90: q(0.9),
            max: s[s.len() - 1],
        }
    }
}

/// A histogram with logarithmic (powers of two) bins: bin `k` counts values in
/// `[2^k, 2^(k+1))`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LogHistogram {
    /// Lower edge of each bin.
    pub lower: Vec<u64>,
    /// Count in each bin.
    pub counts: Vec<usize>,
}

impl LogHistogram {
    /// Histogram of positive counts (zeros are skipped).
    pub fn of(xs: &[u32]) -> LogHistogram {
        let mut counts: Vec<usize> = Vec::new();
        for &x in xs.iter().filter(|&&x| x > 0) {
            let k = 31 - x.leading_zeros() as usize;
            if counts.len() <= k {
                counts.resize(k + 1, 0);
            }
            counts[k] += 1;
        }
        LogHistogram {
            lower: (0..counts.len()).map(|k| 1u64 << k).collect(),
            counts,
        }
    }
}

/// The item popularity long tail.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LongTail {
    /// Gini coefficient of interactions over items (0: equal, 1: one item has all).
    pub gini: f64,
    /// Share of interactions on the most popular 1% of items.
    pub top1_share: f64,
    /// Share on the most popular 10%.
    pub top10_share: f64,
    /// Share on the most popular 20%.
    pub top20_share: f64,
    /// Share of items (most popular first) that make up half of all interactions.
    pub head_items_for_half: f64,
    /// Item counts, most popular first.
    #[serde(skip)]
    pub sorted_counts: Vec<u32>,
}

/// Gini coefficient of non-negative values.
pub fn gini(values: &[u32]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let mut s: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    s.sort_by(|a, b| a.total_cmp(b));
    let total: f64 = s.iter().sum();
    if total == 0.0 {
        return 0.0;
    }
    let weighted: f64 = s
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as f64 + 1.0) * x)
        .sum();
    (2.0 * weighted) / (n as f64 * total) - (n as f64 + 1.0) / n as f64
}

impl LongTail {
    /// Long-tail statistics of item counts.
    pub fn of(item_counts: &[u32]) -> LongTail {
        let mut sorted = item_counts.to_vec();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let total: f64 = sorted.iter().map(|&c| c as f64).sum();
        let share = |p: f64| {
            if total == 0.0 {
                return 0.0;
            }
            let k = ((sorted.len() as f64 * p).ceil() as usize)
                .max(1)
                .min(sorted.len());
            sorted[..k].iter().map(|&c| c as f64).sum::<f64>() / total
        };
        let mut acc = 0.0;
        let mut half = sorted.len();
        for (k, &c) in sorted.iter().enumerate() {
            acc += c as f64;
            if acc >= total / 2.0 {
                half = k + 1;
                break;
            }
        }
        LongTail {
            gini: gini(item_counts),
            top1_share: share(0.01),
            top10_share: share(0.10),
            top20_share: share(0.20),
            head_items_for_half: if sorted.is_empty() {
                0.0
            } else {
                half as f64 / sorted.len() as f64
            },
            sorted_counts: sorted,
        }
    }
}

/// Interactions per time bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Activity {
    /// `day`, `week` or `month`.
    pub bucket: &'static str,
    /// Start of each bucket (`YYYY-MM-DD`).
    pub labels: Vec<String>,
    /// Interactions in each bucket.
    pub counts: Vec<usize>,
}

fn activity(times: &[i64]) -> Activity {
    let (Some(&lo), Some(&hi)) = (times.iter().min(), times.iter().max()) else {
        return Activity::default();
    };
    let day = |t: i64| t.div_euclid(86_400_000);
    let span = day(hi) - day(lo);
    let (bucket, key): (&'static str, Box<dyn Fn(i64) -> i64>) = if span <= 120 {
        ("day", Box::new(day))
    } else if span <= 3 * 365 {
        // Weeks starting on Monday (1970-01-05 was a Monday).
        ("week", Box::new(move |t| (day(t) - 4).div_euclid(7)))
    } else {
        (
            "month",
            Box::new(move |t| {
                let (y, m, _) = civil_from_days(day(t));
                y * 12 + (m - 1)
            }),
        )
    };
    let (k0, k1) = (key(lo), key(hi));
    let mut counts = vec![0usize; (k1 - k0 + 1) as usize];
    for &t in times {
        counts[(key(t) - k0) as usize] += 1;
    }
    let label = |k: i64| {
        let d = match bucket {
            "day" => k,
            "week" => k * 7 + 4,
            _ => days_from_civil(k.div_euclid(12), k.rem_euclid(12) + 1, 1),
        };
        let (y, m, dd) = civil_from_days(d);
        format!("{y:04}-{m:02}-{dd:02}")
    };
    Activity {
        bucket,
        labels: (k0..=k1).map(label).collect(),
        counts,
    }
}

/// Session statistics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SessionStats {
    /// Inactivity timeout in minutes.
    pub timeout_minutes: f64,
    /// Number of sessions.
    pub sessions: usize,
    /// Session length distribution.
    pub length: Summary,
    /// Sessions of each length 1..=30; the last bin counts 30 and more.
    pub length_counts: Vec<usize>,
}

/// One stage of the event funnel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stage {
    /// Event name.
    pub event: String,
    /// Its weight.
    pub weight: f32,
    /// Interactions with this event in the cleaned data.
    pub interactions: usize,
    /// (user, item) pairs whose strongest event reached at least this stage.
    pub pairs: usize,
    /// Users with at least one pair at this stage or beyond.
    pub users: usize,
    /// `pairs` over the previous stage's `pairs`.
    pub conversion: Option<f64>,
}

/// The whole EDA.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Eda {
    /// Users.
    pub users: usize,
    /// Items.
    pub items: usize,
    /// Interactions.
    pub interactions: usize,
    /// Share of the user-item matrix that is filled.
    pub density: f64,
    /// Interactions per user.
    pub user_activity: Summary,
    /// Interactions per item.
    pub item_popularity: Summary,
    /// Users with fewer than 5 interactions.
    pub cold_users: usize,
    /// Items with fewer than 5 interactions.
    pub cold_items: usize,
    /// Histogram of interactions per user.
    pub user_histogram: LogHistogram,
    /// Histogram of interactions per item.
    pub item_histogram: LogHistogram,
    /// The long tail.
    pub long_tail: LongTail,
    /// Rating values and their counts, when the data has ratings.
    pub ratings: Option<Vec<(f32, usize)>>,
    /// Activity over time, when the data has timestamps.
    pub activity: Option<Activity>,
    /// Sessions, when the data has timestamps.
    pub sessions: Option<SessionStats>,
    /// The funnel, when the data has event types.
    pub funnel: Option<Vec<Stage>>,
    /// The first and last time (`YYYY-MM-DD`).
    pub time_range: Option<(String, String)>,
}

/// Computes the EDA of `d` with sessions cut at `session_timeout_ms`.
pub fn describe(d: &Dataset, weights: &EventWeights, session_timeout_ms: i64) -> Eda {
    let x = &d.interactions;
    let uc = x.user_counts();
    let ic = x.item_counts();
    let ratings = d.has_ratings.then(|| {
        let mut m: Vec<(f32, usize)> = Vec::new();
        let mut sorted = x.values().to_vec();
        sorted.sort_by(|a, b| a.total_cmp(b));
        for v in sorted {
            match m.last_mut() {
                Some((last, n)) if *last == v => *n += 1,
                _ => m.push((v, 1)),
            }
        }
        m
    });
    let sessions = d
        .has_time
        .then(|| Sessions::build(x, session_timeout_ms).ok())
        .flatten()
        .map(|s| {
            let lengths = s.lengths();
            let mut length_counts = vec![0usize; 30];
            for &l in &lengths {
                length_counts[(l as usize).clamp(1, 30) - 1] += 1;
            }
            SessionStats {
                timeout_minutes: session_timeout_ms as f64 / 60_000.0,
                sessions: s.len(),
                length: Summary::of(&lengths),
                length_counts,
            }
        });
    let funnel = x.events().map(|events| {
        let w: Vec<f32> = d.event_names.iter().map(|n| weights.weight(n)).collect();
        // Strongest weight reached by each pair.
        let mut pair_max: HashMap<(u32, u32), f32> = HashMap::new();
        let users = x.users();
        for (k, &e) in events.iter().enumerate() {
            let m = pair_max.entry((users[k], x.items()[k])).or_insert(f32::MIN);
            *m = m.max(w[e as usize]);
        }
        let mut order: Vec<usize> = (0..d.event_names.len()).collect();
        order.sort_by(|&a, &b| w[a].total_cmp(&w[b]).then(a.cmp(&b)));
        let mut stages: Vec<Stage> = Vec::new();
        for e in order {
            let reached = |m: &f32| *m >= w[e];
            let pairs = pair_max.values().filter(|m| reached(m)).count();
            let mut us: Vec<u32> = pair_max
                .iter()
                .filter(|(_, m)| reached(m))
                .map(|((u, _), _)| *u)
                .collect();
            us.sort_unstable();
            us.dedup();
            let conversion = stages.last().map(|p: &Stage| {
                if p.pairs == 0 {
                    0.0
                } else {
                    pairs as f64 / p.pairs as f64
                }
            });
            stages.push(Stage {
                event: d.event_names[e].clone(),
                weight: w[e],
                interactions: events.iter().filter(|&&c| c as usize == e).count(),
                pairs,
                users: us.len(),
                conversion,
            });
        }
        stages
    });
    let time_range = d.has_time.then(|| {
        let lo = x.times().iter().min().copied().unwrap_or(0);
        let hi = x.times().iter().max().copied().unwrap_or(0);
        (crate::time::ymd(lo), crate::time::ymd(hi))
    });
    Eda {
        users: d.users.len(),
        items: d.items.len(),
        interactions: x.len(),
        density: 1.0 - d.sparsity(),
        user_activity: Summary::of(&uc),
        item_popularity: Summary::of(&ic),
        cold_users: uc.iter().filter(|&&c| c < 5).count(),
        cold_items: ic.iter().filter(|&&c| c < 5).count(),
        user_histogram: LogHistogram::of(&uc),
        item_histogram: LogHistogram::of(&ic),
        long_tail: LongTail::of(&ic),
        ratings,
        activity: d.has_time.then(|| activity(x.times())),
        sessions,
        funnel,
        time_range,
    }
}

impl Eda {
    /// A readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let pct = |x: f64| format!("{:.1}%", 100.0 * x);
        s += &format!(
            "{} users, {} items, {} interactions (density {:.4}%, sparsity {})\n",
            self.users,
            self.items,
            self.interactions,
            100.0 * self.density,
            pct(1.0 - self.density)
        );
        if let Some((a, b)) = &self.time_range {
            s += &format!("time range: {a} to {b}\n");
        }
        let a = &self.user_activity;
        s += &format!(
            "interactions per user: min {}, median {:.0}, mean {:.1}, p90 {:.0}, max {} ({} users with fewer than 5)\n",
            a.min, a.median, a.mean, a.p90, a.max, self.cold_users
        );
        let p = &self.item_popularity;
        s += &format!(
            "interactions per item: min {}, median {:.0}, mean {:.1}, p90 {:.0}, max {} ({} items with fewer than 5)\n",
            p.min, p.median, p.mean, p.p90, p.max, self.cold_items
        );
        let t = &self.long_tail;
        s += &format!(
            "long tail: Gini {:.3}; top 1% of items get {}, top 10% get {}, top 20% get {}; {} of items make half of all interactions\n",
            t.gini,
            pct(t.top1_share),
            pct(t.top10_share),
            pct(t.top20_share),
            pct(t.head_items_for_half)
        );
        if let Some(r) = &self.ratings {
            let total: usize = r.iter().map(|x| x.1).sum();
            let mean =
                r.iter().map(|&(v, n)| v as f64 * n as f64).sum::<f64>() / total.max(1) as f64;
            let shown: Vec<String> = r
                .iter()
                .take(12)
                .map(|(v, n)| format!("{v}: {n}"))
                .collect();
            s += &format!("ratings: mean {mean:.2}; {}\n", shown.join(", "));
        }
        if let Some(ss) = &self.sessions {
            s += &format!(
                "sessions ({} min timeout): {}, length median {:.0}, mean {:.1}, max {}\n",
                ss.timeout_minutes, ss.sessions, ss.length.median, ss.length.mean, ss.length.max
            );
        }
        if let Some(f) = &self.funnel {
            let parts: Vec<String> = f
                .iter()
                .map(|st| match st.conversion {
                    Some(c) => format!("{} {} ({} of previous)", st.event, st.pairs, pct(c)),
                    None => format!("{} {}", st.event, st.pairs),
                })
                .collect();
            s += &format!(
                "funnel (user-item pairs reaching each stage): {}\n",
                parts.join(" -> ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gini_extremes() {
        assert!(gini(&[5, 5, 5, 5]).abs() < 1e-12);
        assert!((gini(&[0, 0, 0, 10]) - 0.75).abs() < 1e-12);
        assert_eq!(gini(&[]), 0.0);
    }

    #[test]
    fn summaries_and_histograms() {
        let s = Summary::of(&[1, 2, 3, 4, 100]);
        assert_eq!((s.min, s.median, s.max), (1, 3.0, 100));
        let h = LogHistogram::of(&[1, 2, 3, 4, 100, 0]);
        assert_eq!(h.counts, vec![1, 2, 1, 0, 0, 0, 1]);
        let t = LongTail::of(&[10, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(t.top1_share, 1.0);
        assert_eq!(t.head_items_for_half, 0.1);
    }

    #[test]
    fn activity_buckets() {
        let day = 86_400_000;
        let a = activity(&[0, day / 2, 3 * day]);
        assert_eq!(a.bucket, "day");
        assert_eq!(a.counts, vec![2, 0, 0, 1]);
        assert_eq!(a.labels[0], "1970-01-01");
        let m = activity(&[0, 1200 * day]);
        assert_eq!(m.bucket, "month");
        assert_eq!(m.labels[1], "1970-02-01");
    }
}
