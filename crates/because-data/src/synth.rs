//! The built-in demo data: a deterministic synthetic generator with a known,
//! planted structure.
//!
//! * **Items** belong to one or two of a fixed list of genres, have a
//!   Zipf-distributed popularity within their genre, a generated title and
//!   a release year. About a quarter of the items have a *sequel* (the next
//!   item, same genre, title suffixed "II").
//! * **Users** have latent tastes: one to three favourite genres carry almost
//!   all of their probability mass. Activity is log-normal, so a few users
//!   are very active and most are not.
//! * **Timelines.** Each user's interactions come in sessions (minutes apart
//!   within, days apart between).
//! * **Planted causes.** At each step a user follows up an earlier item with
//!   its sequel with probability `sequel_prob`; such an interaction's planted
//!   cause is the earlier item. Every other interaction is caused by taste.
//!   [`SynthData::causes`] records the truth, so explanations can be scored.
//! * **Events** (optional): every consumption is a `view`; liked items are
//!   added to the cart, and some carted items bought, giving a funnel.
//! * **Ratings** (optional): 1 to 5, higher for favourite genres and sequels.
//!
//! The [`Shape::Retail`] shape is an online shop's log instead, shaped as
//! RetailRocket's (1.4M visitors, 235k items, 2.76M events, 97% views):
//!
//! * **Visitors** mostly have one or two events (log-normal activity with a
//!   mean under two), a few have hundreds.
//! * **Sessions:** events minutes apart, sessions more than 30 minutes
//!   (usually days) apart.
//! * **Planted order.** Each item has three *successors* in its category
//!   (chosen by popularity, weighted 0.6, 0.3, 0.1); within a session, the
//!   next view follows one of the previous item's successors with
//!   probability `sequel_prob`, its planted cause being the previous item.
//!   The relation is directed (an item's successors rarely lead back to
//!   it), so order-aware models have something co-occurrence cannot see.
//! * **The funnel:** about 2.5% of views add to cart, and about a third of
//!   carts are bought.
//!
//! Generation is parallel over blocks of users with one random stream per
//! user, so the output does not depend on the number of threads.

use crate::time::days_from_civil;
use crate::write::write_atomic;
use crate::{Error, Result};
use because_core::rng::Rng;
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Genre names used by the generator.
pub const GENRES: [&str; 16] = [
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Horror",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
    "Musical",
];

const ADJECTIVES: [&str; 32] = [
    "Silent",
    "Crimson",
    "Hidden",
    "Last",
    "Electric",
    "Broken",
    "Golden",
    "Distant",
    "Midnight",
    "Wild",
    "Lost",
    "Frozen",
    "Burning",
    "Quiet",
    "Savage",
    "Hollow",
    "Secret",
    "Endless",
    "Iron",
    "Velvet",
    "Northern",
    "Pale",
    "Restless",
    "Shattered",
    "Sunlit",
    "Twisted",
    "Wandering",
    "Brave",
    "Lonely",
    "Final",
    "Stolen",
    "Glass",
];
const NOUNS: [&str; 32] = [
    "Harbor", "Empire", "Garden", "Frontier", "Machine", "River", "Kingdom", "Signal", "Storm",
    "Mirror", "Voyage", "Planet", "Witness", "Letter", "Horizon", "Station", "Forest", "Circus",
    "Island", "Protocol", "Orchard", "Engine", "Canyon", "Carnival", "Lantern", "Covenant",
    "Meadow", "Citadel", "Bridge", "Archive", "Tide", "Song",
];

/// Generator settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    /// Number of users.
    pub n_users: usize,
    /// Number of items.
    pub n_items: usize,
    /// Number of genres (at most 16).
    pub n_genres: usize,
    /// Mean interactions (consumptions) per user.
    pub mean_per_user: f64,
    /// Fewest interactions per user.
    pub min_per_user: usize,
    /// Probability that a step follows up an earlier item with its sequel.
    pub sequel_prob: f64,
    /// Share of items that have a sequel.
    pub sequel_share: f64,
    /// Zipf exponent of item popularity.
    pub popularity_exponent: f64,
    /// Write an event column (view / addtocart / transaction).
    pub events: bool,
    /// Write a rating column (1 to 5).
    pub ratings: bool,
    /// Share of deliberately malformed rows to inject (for demonstrating the cleaning report).
    pub noise: f64,
    /// Seed.
    pub seed: u64,
    /// First day of activity (milliseconds since the epoch).
    pub start_ms: i64,
    /// Days over which users join.
    pub span_days: i64,
    /// The kind of log.
    pub shape: Shape,
}

/// The kind of log generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Users who each consume many items over months (a film catalogue);
    /// sequels planted.
    Catalogue,
    /// An online shop's visitors in short sessions, mostly views; each item
    /// tends to be followed by a few others (planted successors).
    Retail,
}

/// Named sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// 300 users, 200 items: for tests.
    Tiny,
    /// 3,000 users, 1,500 items: the default demo.
    Small,
    /// 30,000 users, 8,000 items.
    Medium,
    /// MovieLens-20M shape: 138,493 users, 26,744 items, about 20M interactions.
    Ml20m,
    /// RetailRocket's shape: 1,407,580 visitors, 235,061 items, about 2.8M
    /// events in sessions, 97% views.
    Retail,
    /// The retail shape at a twentieth: 70,000 visitors, 12,000 items, for
    /// tests.
    RetailSmall,
}

impl std::str::FromStr for Size {
    type Err = Error;
    fn from_str(s: &str) -> Result<Size> {
        Ok(match s {
            "tiny" => Size::Tiny,
            "small" => Size::Small,
            "medium" => Size::Medium,
            "ml20m" | "ml-20m" => Size::Ml20m,
            "retail" => Size::Retail,
            "retail-small" => Size::RetailSmall,
            other => {
                return Err(Error::param(
                    "size",
                    format!(
                        "unknown size {other:?} (tiny, small, medium, ml20m, retail, retail-small)"
                    ),
                ))
            }
        })
    }
}

impl SynthConfig {
    /// Settings for a named size (events on, ratings off, no noise).
    pub fn sized(size: Size) -> SynthConfig {
        let (n_users, n_items, mean) = match size {
            Size::Tiny => (300, 200, 20.0),
            Size::Small => (3_000, 1_500, 40.0),
            Size::Medium => (30_000, 8_000, 60.0),
            Size::Ml20m => (138_493, 26_744, 144.41),
            Size::Retail => (1_407_580, 235_061, 1.35),
            Size::RetailSmall => (70_000, 12_000, 1.35),
        };
        if matches!(size, Size::Retail | Size::RetailSmall) {
            return SynthConfig {
                n_users,
                n_items,
                n_genres: 16,
                mean_per_user: mean,
                min_per_user: 1,
                sequel_prob: 0.5,
                sequel_share: 0.0,
                popularity_exponent: 0.9,
                events: true,
                ratings: false,
                noise: 0.0,
                seed: 42,
                start_ms: days_from_civil(2015, 5, 3) * 86_400_000,
                span_days: 137,
                shape: Shape::Retail,
            };
        }
        SynthConfig {
            n_users,
            n_items,
            n_genres: 12,
            mean_per_user: mean,
            min_per_user: 5,
            sequel_prob: 0.25,
            sequel_share: 0.25,
            popularity_exponent: 0.9,
            events: true,
            ratings: false,
            noise: 0.0,
            seed: 42,
            start_ms: days_from_civil(2024, 1, 1) * 86_400_000,
            span_days: 365,
            shape: Shape::Catalogue,
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.n_users == 0 || self.n_items < 2 {
            return Err(Error::param(
                "n-users",
                "need at least one user and two items",
            ));
        }
        if self.n_genres == 0 || self.n_genres > GENRES.len() {
            return Err(Error::param(
                "n-genres",
                format!("must be in 1..={}", GENRES.len()),
            ));
        }
        for (name, p) in [
            ("sequel-prob", self.sequel_prob),
            ("sequel-share", self.sequel_share),
            ("noise", self.noise),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::param(name, format!("{p} is not in [0, 1]")));
            }
        }
        if !(self.mean_per_user >= 1.0) || self.mean_per_user.is_infinite() {
            return Err(Error::param("mean-per-user", "must be at least 1"));
        }
        Ok(())
    }
}

/// Item catalogue of the synthetic world.
#[derive(Clone, Debug)]
pub struct Catalogue {
    /// Genres of each item (first is primary).
    pub genres: Vec<Vec<u8>>,
    /// Title of each item.
    pub titles: Vec<String>,
    /// Release year of each item.
    pub years: Vec<u16>,
    /// The sequel of each item, if any.
    pub sequel: Vec<Option<u32>>,
    /// The retail shape's successors of each item, most likely first
    /// (empty for the catalogue shape).
    pub successors: Vec<[u32; 3]>,
    /// Items of each genre (primary genre), with cumulative popularity weights.
    by_genre: Vec<(Vec<u32>, Vec<f64>)>,
}

/// One user's generated interactions.
#[derive(Clone, Debug, Default)]
struct UserRows {
    items: Vec<u32>,
    times: Vec<i64>,
    ratings: Vec<f32>,
    events: Vec<u8>,
    causes: Vec<Option<u32>>,
}

/// Event names, by code.
pub const EVENTS: [&str; 3] = ["view", "addtocart", "transaction"];

/// Generated data in memory (for tests and small sizes).
#[derive(Clone, Debug)]
pub struct SynthData {
    /// The settings.
    pub config: SynthConfig,
    /// The items.
    pub catalogue: Catalogue,
    /// Favourite genres of each user.
    pub favourites: Vec<Vec<u8>>,
    /// User index of each row (0-based; written as `index + 1`).
    pub users: Vec<u32>,
    /// Item index of each row.
    pub items: Vec<u32>,
    /// Time of each row (milliseconds).
    pub times: Vec<i64>,
    /// Rating of each row (when ratings are on).
    pub ratings: Vec<f32>,
    /// Event code of each row (when events are on).
    pub events: Vec<u8>,
    /// Planted cause of each row: the earlier item whose sequel it is.
    pub causes: Vec<Option<u32>>,
}

fn catalogue(cfg: &SynthConfig) -> Catalogue {
    let mut rng = Rng::stream(cfg.seed, u64::MAX);
    let n = cfg.n_items;
    let mut genres: Vec<Vec<u8>> = Vec::with_capacity(n);
    let mut titles = Vec::with_capacity(n);
    let mut years = Vec::with_capacity(n);
    let mut sequel = vec![None; n];
    let mut i = 0;
    while i < n {
        let g = rng.below(cfg.n_genres as u64) as u8;
        let mut gs = vec![g];
        if rng.chance(0.3) && cfg.n_genres > 1 {
            let h = rng.below(cfg.n_genres as u64) as u8;
            if h != g {
                gs.push(h);
            }
        }
        let adj = ADJECTIVES[rng.below(ADJECTIVES.len() as u64) as usize];
        let noun = NOUNS[rng.below(NOUNS.len() as u64) as usize];
        let base = if i % 3 == 0 {
            format!("The {adj} {noun}")
        } else {
            format!("{adj} {noun}")
        };
        let year = 1960 + rng.below(64) as u16;
        let round = i / (ADJECTIVES.len() * NOUNS.len() * 2);
        let base = if round > 0 {
            format!("{base} {}", round + 1)
        } else {
            base
        };
        titles.push(format!("{base} ({year})"));
        years.push(year);
        genres.push(gs.clone());
        if i + 1 < n && rng.chance(cfg.sequel_share) {
            sequel[i] = Some(i as u32 + 1);
            let y2 = (year + 1 + rng.below(4) as u16).min(2025);
            titles.push(format!("{base} II ({y2})"));
            years.push(y2);
            genres.push(gs);
            i += 2;
        } else {
            i += 1;
        }
    }
    // Popularity: a random rank per item, Zipf weights, cumulative per genre.
    let mut ranks: Vec<u32> = (0..n as u32).collect();
    rng.shuffle(&mut ranks);
    let mut by_genre: Vec<(Vec<u32>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); cfg.n_genres];
    for item in 0..n {
        let w = 1.0 / ((ranks[item] + 1) as f64).powf(cfg.popularity_exponent);
        let (items, cum) = &mut by_genre[genres[item][0] as usize];
        let last = cum.last().copied().unwrap_or(0.0);
        items.push(item as u32);
        cum.push(last + w);
    }
    let mut cat = Catalogue {
        genres,
        titles,
        years,
        sequel,
        successors: Vec::new(),
        by_genre,
    };
    if cfg.shape == Shape::Retail {
        // Successors from a stream of their own, by popularity in the
        // item's category.
        let mut rng = Rng::stream(cfg.seed ^ 0x5ECC, u64::MAX);
        cat.successors = (0..n)
            .map(|i| {
                let g = cat.genres[i][0] as usize;
                let mut next = [i as u32; 3];
                for k in 0..3 {
                    for _ in 0..20 {
                        match cat.sample_in_genre(g, &mut rng) {
                            Some(j) if j as usize != i && !next[..k].contains(&j) => {
                                next[k] = j;
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                next
            })
            .collect();
    }
    cat
}

impl Catalogue {
    fn sample_in_genre(&self, g: usize, rng: &mut Rng) -> Option<u32> {
        let (items, cum) = &self.by_genre[g];
        let total = *cum.last()?;
        let x = rng.next_f64() * total;
        let k = cum.partition_point(|&c| c <= x).min(items.len() - 1);
        Some(items[k])
    }
}

fn favourites(cfg: &SynthConfig, user: usize) -> (Vec<u8>, Vec<f64>) {
    let mut rng = Rng::stream(cfg.seed ^ 0xFA40_0000, user as u64);
    let k = 1 + rng.below(3.min(cfg.n_genres as u64)) as usize;
    let mut fav = Vec::with_capacity(k);
    while fav.len() < k {
        let g = rng.below(cfg.n_genres as u64) as u8;
        if !fav.contains(&g) {
            fav.push(g);
        }
    }
    // 92% of the mass on favourites (decreasing), the rest spread evenly.
    let mut taste = vec![0.08 / cfg.n_genres as f64; cfg.n_genres];
    let weights = [0.55, 0.27, 0.10];
    let wsum: f64 = weights[..k].iter().sum();
    for (j, &g) in fav.iter().enumerate() {
        taste[g as usize] += 0.92 * weights[j] / wsum;
    }
    (fav, taste)
}

/// A user's weight of each genre, the largest, and their running sums.
struct Taste {
    taste: Vec<f64>,
    max_taste: f64,
    cum: Vec<f64>,
}

impl Taste {
    fn of(cfg: &SynthConfig, user: usize) -> Taste {
        let (_, taste) = favourites(cfg, user);
        let max_taste = taste.iter().cloned().fold(0.0, f64::max);
        let cum = taste
            .iter()
            .scan(0.0, |s, &t| {
                *s += t;
                Some(*s)
            })
            .collect();
        Taste {
            taste,
            max_taste,
            cum,
        }
    }
}

/// Log-normal activity with the configured mean and `sigma`, clamped.
fn activity(cfg: &SynthConfig, sigma: f64, rng: &mut Rng) -> usize {
    let mu = cfg.mean_per_user.ln() - sigma * sigma / 2.0;
    ((mu + sigma * rng.normal()).exp().round() as usize)
        .max(cfg.min_per_user)
        .min(cfg.n_items / 2)
        .max(1)
}

/// A draw by taste: a genre by the user's weights `cum` (cumulative), an
/// item by popularity in it, up to ten tries for one not in `seen`.
fn by_taste(
    cfg: &SynthConfig,
    cat: &Catalogue,
    cum: &[f64],
    seen: &std::collections::HashSet<u32>,
    rng: &mut Rng,
) -> Option<u32> {
    for _ in 0..10 {
        let x = rng.next_f64() * cum[cum.len() - 1];
        let g = cum.partition_point(|&c| c <= x).min(cfg.n_genres - 1);
        if let Some(i) = cat.sample_in_genre(g, rng) {
            if !seen.contains(&i) {
                return Some(i);
            }
        }
    }
    None
}

/// One visitor of the retail shape: sessions of views that follow the
/// planted successors, and the funnel.
fn retail_rows(cfg: &SynthConfig, cat: &Catalogue, user: usize) -> UserRows {
    let mut rng = Rng::stream(cfg.seed, user as u64);
    let Taste {
        taste,
        max_taste,
        cum,
    } = Taste::of(cfg, user);
    // A heavy tail: most visitors come once, a few hundreds of times.
    let count = activity(cfg, 1.7, &mut rng);
    let mut t = cfg.start_ms + (rng.next_f64() * cfg.span_days as f64 * 86_400_000.0) as i64;
    let mut seen = std::collections::HashSet::with_capacity(count * 2);
    let mut prev: Option<u32> = None;
    let mut out = UserRows::default();
    for step in 0..count {
        if step > 0 {
            if rng.chance(0.2) {
                // A new session: more than 30 minutes later, usually days.
                t += (rng.exponential(3.0) * 86_400_000.0) as i64 + 1_860_000;
                prev = None;
            } else {
                t += (rng.exponential(1.5) * 60_000.0) as i64 + 5_000;
            }
        }
        let follow = prev.and_then(|p| {
            if !rng.chance(cfg.sequel_prob) {
                return None;
            }
            let next = cat.successors[p as usize];
            let x = rng.next_f64();
            let k = if x < 0.6 {
                0
            } else if x < 0.9 {
                1
            } else {
                2
            };
            let s = next[k];
            (s != p && !seen.contains(&s)).then_some((s, Some(p)))
        });
        let Some((item, cause)) =
            follow.or_else(|| by_taste(cfg, cat, &cum, &seen, &mut rng).map(|i| (i, None)))
        else {
            continue;
        };
        seen.insert(item);
        prev = Some(item);
        let affinity = taste[cat.genres[item as usize][0] as usize] / max_taste;
        let mut push = |time: i64, event: u8| {
            out.items.push(item);
            out.times.push(time);
            out.ratings.push(0.0);
            out.events.push(event);
            out.causes.push(cause);
        };
        push(t, 0);
        if rng.chance(0.06) {
            // The same product viewed again a little later.
            push(t + (rng.exponential(1.0) * 60_000.0) as i64 + 1000, 0);
        }
        if rng.chance(0.01 + 0.025 * affinity) {
            let t2 = t + (rng.exponential(0.5) * 60_000.0) as i64 + 2000;
            push(t2, 1);
            if rng.chance(0.33) {
                push(t2 + (rng.exponential(0.3) * 60_000.0) as i64 + 5000, 2);
            }
        }
    }
    // Funnel events come a little after their view: the log in time order.
    let mut order: Vec<usize> = (0..out.items.len()).collect();
    order.sort_by_key(|&k| (out.times[k], k));
    UserRows {
        items: order.iter().map(|&k| out.items[k]).collect(),
        times: order.iter().map(|&k| out.times[k]).collect(),
        ratings: order.iter().map(|&k| out.ratings[k]).collect(),
        events: order.iter().map(|&k| out.events[k]).collect(),
        causes: order.iter().map(|&k| out.causes[k]).collect(),
    }
}

fn user_rows(cfg: &SynthConfig, cat: &Catalogue, user: usize) -> UserRows {
    if cfg.shape == Shape::Retail {
        return retail_rows(cfg, cat, user);
    }
    let mut rng = Rng::stream(cfg.seed, user as u64);
    let Taste {
        taste,
        max_taste,
        cum,
    } = Taste::of(cfg, user);
    let count = activity(cfg, 1.0, &mut rng);
    let mut t = cfg.start_ms + (rng.next_f64() * cfg.span_days as f64 * 86_400_000.0) as i64;
    let mut seen = std::collections::HashSet::with_capacity(count * 2);
    let mut pending: Vec<(u32, u32)> = Vec::new();
    let mut out = UserRows::default();
    for _ in 0..count {
        t += if rng.chance(0.75) {
            (rng.exponential(4.0) * 60_000.0) as i64 + 1000
        } else {
            (rng.exponential(3.0) * 86_400_000.0) as i64 + 3_600_000
        };
        let (item, cause) = if !pending.is_empty() && rng.chance(cfg.sequel_prob) {
            let k = rng.below(pending.len() as u64) as usize;
            let (s, c) = pending.swap_remove(k);
            (s, Some(c))
        } else {
            match by_taste(cfg, cat, &cum, &seen, &mut rng) {
                Some(i) => (i, None),
                None => continue,
            }
        };
        if !seen.insert(item) {
            continue;
        }
        pending.retain(|&(s, _)| s != item);
        if let Some(s) = cat.sequel[item as usize] {
            if !seen.contains(&s) {
                pending.push((s, item));
            }
        }
        let affinity = taste[cat.genres[item as usize][0] as usize] / max_taste;
        let bonus = if cause.is_some() { 0.5 } else { 0.0 };
        let rating = (1.5 + 3.0 * affinity + bonus + 0.7 * rng.normal())
            .round()
            .clamp(1.0, 5.0) as f32;
        out.items.push(item);
        out.times.push(t);
        out.ratings.push(rating);
        out.events.push(0);
        out.causes.push(cause);
        if cfg.events {
            if rng.chance(0.08) {
                // A repeat view a little later.
                let t2 = t + (rng.exponential(2.0) * 60_000.0) as i64 + 1000;
                out.items.push(item);
                out.times.push(t2);
                out.ratings.push(rating);
                out.events.push(0);
                out.causes.push(cause);
            }
            if rng.chance(0.1 + 0.3 * affinity) {
                let t2 = t + (rng.exponential(3.0) * 60_000.0) as i64 + 2000;
                out.items.push(item);
                out.times.push(t2);
                out.ratings.push(rating);
                out.events.push(1);
                out.causes.push(cause);
                if rng.chance(0.45) {
                    out.items.push(item);
                    out.times
                        .push(t2 + (rng.exponential(5.0) * 60_000.0) as i64 + 5000);
                    out.ratings.push(rating);
                    out.events.push(2);
                    out.causes.push(cause);
                }
            }
        }
    }
    out
}

/// Generates the whole data set in memory.
pub fn generate(cfg: &SynthConfig) -> Result<SynthData> {
    cfg.validate()?;
    let cat = catalogue(cfg);
    let rows: Vec<UserRows> = (0..cfg.n_users)
        .into_par_iter()
        .map(|u| user_rows(cfg, &cat, u))
        .collect();
    let n: usize = rows.iter().map(|r| r.items.len()).sum();
    let mut d = SynthData {
        config: cfg.clone(),
        favourites: (0..cfg.n_users).map(|u| favourites(cfg, u).0).collect(),
        catalogue: cat,
        users: Vec::with_capacity(n),
        items: Vec::with_capacity(n),
        times: Vec::with_capacity(n),
        ratings: Vec::with_capacity(n),
        events: Vec::with_capacity(n),
        causes: Vec::with_capacity(n),
    };
    for (u, r) in rows.into_iter().enumerate() {
        d.users.extend(std::iter::repeat_n(u as u32, r.items.len()));
        d.items.extend(r.items);
        d.times.extend(r.times);
        d.ratings.extend(r.ratings);
        d.events.extend(r.events);
        d.causes.extend(r.causes);
    }
    Ok(d)
}

/// Paths of the files [`write_files`] wrote.
#[derive(Clone, Debug)]
pub struct SynthFiles {
    /// The interaction log.
    pub interactions: PathBuf,
    /// Item features: id, title, genres, year.
    pub items: PathBuf,
    /// User features: id, age group, country.
    pub users: PathBuf,
    /// Planted causes: user, item, cause item.
    pub planted: PathBuf,
    /// Rows written to the interaction log (bad rows included).
    pub rows: usize,
    /// Deliberately bad rows among them.
    pub bad_rows: usize,
}

const COUNTRIES: [&str; 6] = ["DE", "FR", "GB", "US", "BR", "JP"];
const AGES: [&str; 5] = ["18-24", "25-34", "35-44", "45-54", "55+"];

/// Writes the data set as CSV files into `dir`, streaming blocks of users so
/// that the MovieLens-20M size never sits in memory.
pub fn write_files(cfg: &SynthConfig, dir: &Path) -> Result<SynthFiles> {
    cfg.validate()?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let cat = catalogue(cfg);
    let files = SynthFiles {
        interactions: dir.join("interactions.csv"),
        items: dir.join("items.csv"),
        users: dir.join("users.csv"),
        planted: dir.join("planted_causes.csv"),
        rows: 0,
        bad_rows: 0,
    };
    let mut rows = 0usize;
    let mut bad = 0usize;
    let mut planted_text = String::from("user_id,item_id,cause_item_id\n");
    write_atomic(&files.interactions, |w| {
        let mut header = vec!["user_id", "item_id"];
        if cfg.ratings {
            header.push("rating");
        }
        header.push("timestamp");
        if cfg.events {
            header.push("event");
        }
        writeln!(w, "{}", header.join(","))?;
        const BLOCK: usize = 8192;
        for start in (0..cfg.n_users).step_by(BLOCK) {
            let end = (start + BLOCK).min(cfg.n_users);
            let texts: Vec<(String, String, usize, usize)> = (start..end)
                .into_par_iter()
                .map(|u| {
                    let r = user_rows(cfg, &cat, u);
                    let mut noise_rng = Rng::stream(cfg.seed ^ 0xBAD0, u as u64);
                    let mut s = String::with_capacity(r.items.len() * 32);
                    let mut p = String::new();
                    let mut bad = 0;
                    use std::fmt::Write as _;
                    for k in 0..r.items.len() {
                        let line_start = s.len();
                        let _ = write!(s, "{},{}", u + 1, r.items[k] + 1);
                        if cfg.ratings {
                            let _ = write!(s, ",{}", r.ratings[k]);
                        }
                        if cfg.events {
                            let _ = write!(s, ",{},{}", r.times[k], EVENTS[r.events[k] as usize]);
                        } else {
                            let _ = write!(s, ",{}", r.times[k] / 1000);
                        }
                        s.push('\n');
                        if let Some(c) = r.causes[k] {
                            if r.events[k] == 0 {
                                let _ = writeln!(p, "{},{},{}", u + 1, r.items[k] + 1, c + 1);
                            }
                        }
                        if cfg.noise > 0.0 && noise_rng.chance(cfg.noise) {
                            bad += 1;
                            let good = s[line_start..].to_string();
                            let fields: Vec<&str> = good.trim_end().split(',').collect();
                            let ts_col = if cfg.ratings { 3 } else { 2 };
                            match noise_rng.below(5) {
                                0 => s.push_str(&good.replacen(&format!("{},", u + 1), ",", 1)),
                                1 => {
                                    let mut f = fields.clone();
                                    f[ts_col] = "not-a-time";
                                    let _ = writeln!(s, "{}", f.join(","));
                                }
                                2 => {
                                    let _ = writeln!(s, "{},{}", fields[0], fields[1]);
                                }
                                3 if cfg.ratings => {
                                    let mut f = fields.clone();
                                    f[2] = "n/a";
                                    let _ = writeln!(s, "{}", f.join(","));
                                }
                                _ => {
                                    let mut f = fields.clone();
                                    f[1] = "";
                                    let _ = writeln!(s, "{}", f.join(","));
                                }
                            }
                        }
                    }
                    let n = s.lines().count();
                    (s, p, n, bad)
                })
                .collect();
            for (s, p, n, b) in texts {
                w.write_all(s.as_bytes())?;
                planted_text.push_str(&p);
                rows += n;
                bad += b;
            }
        }
        Ok(())
    })?;
    write_atomic(&files.planted, |w| w.write_all(planted_text.as_bytes()))?;
    write_atomic(&files.items, |w| {
        writeln!(w, "item_id,title,genres,year")?;
        for i in 0..cfg.n_items {
            let g: Vec<&str> = cat.genres[i].iter().map(|&g| GENRES[g as usize]).collect();
            writeln!(
                w,
                "{},\"{}\",{},{}",
                i + 1,
                cat.titles[i],
                g.join("|"),
                cat.years[i]
            )?;
        }
        Ok(())
    })?;
    write_atomic(&files.users, |w| {
        writeln!(w, "user_id,age_group,country,favourite_genre")?;
        for u in 0..cfg.n_users {
            let mut rng = Rng::stream(cfg.seed ^ 0x05E4, u as u64);
            let (fav, _) = favourites(cfg, u);
            let age = AGES[rng.below(AGES.len() as u64) as usize];
            let country = COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize];
            writeln!(
                w,
                "{},{},{},{}",
                u + 1,
                age,
                country,
                GENRES[fav[0] as usize]
            )?;
        }
        Ok(())
    })?;
    Ok(SynthFiles {
        rows,
        bad_rows: bad,
        ..files
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retail_shape_is_short_sessions_of_views_that_follow_successors() {
        let cfg = SynthConfig::sized(Size::RetailSmall);
        let d = generate(&cfg).unwrap();
        let n = d.items.len() as f64;
        let per_visitor = n / cfg.n_users as f64;
        assert!(
            (1.6..2.6).contains(&per_visitor),
            "{per_visitor} events per visitor"
        );
        let views = d.events.iter().filter(|&&e| e == 0).count() as f64;
        let carts = d.events.iter().filter(|&&e| e == 1).count() as f64;
        let bought = d.events.iter().filter(|&&e| e == 2).count() as f64;
        assert!(views / n > 0.95, "views {}", views / n);
        assert!(
            carts > bought && bought > 0.0,
            "{carts} carts, {bought} bought"
        );
        // Most visitors have one or two events; some have many.
        let mut per = vec![0usize; cfg.n_users];
        for &u in &d.users {
            per[u as usize] += 1;
        }
        let short = per.iter().filter(|&&c| c <= 2).count() as f64 / cfg.n_users as f64;
        assert!(short > 0.6, "{short} with one or two events");
        assert!(per.iter().any(|&c| c >= 30));
        // Sessions: gaps within are minutes, between are over 30 minutes;
        // a visitor's times never go back.
        let (mut within, mut between) = (0, 0);
        for k in 1..d.users.len() {
            if d.users[k] == d.users[k - 1] && d.events[k] == 0 {
                let gap = d.times[k] - d.times[k - 1];
                assert!(gap >= 0, "time went back");
                if gap > 30 * 60_000 {
                    between += 1;
                } else {
                    within += 1;
                }
            }
        }
        assert!(
            within > 3 * between && between > 0,
            "{within} within, {between} between"
        );
        // The planted order: followed views are a successor of the item
        // viewed just before, and the relation is rarely symmetric.
        let followed = d.causes.iter().filter(|c| c.is_some()).count() as f64;
        assert!(followed / views > 0.15, "{} followed", followed / views);
        for k in 0..d.items.len() {
            if let (Some(c), 0) = (d.causes[k], d.events[k]) {
                assert!(d.catalogue.successors[c as usize].contains(&d.items[k]));
            }
        }
        let cat = &d.catalogue;
        let back = (0..cfg.n_items)
            .filter(|&i| cat.successors[cat.successors[i][0] as usize].contains(&(i as u32)))
            .count() as f64;
        assert!(back / (cfg.n_items as f64) < 0.1, "{back} symmetric");
        // Deterministic.
        assert_eq!(generate(&cfg).unwrap().items, d.items);
    }

    #[test]
    fn deterministic_and_thread_independent() {
        let cfg = SynthConfig::sized(Size::Tiny);
        let a = generate(&cfg).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| generate(&cfg).unwrap());
        assert_eq!(a.items, b.items);
        assert_eq!(a.times, b.times);
        assert!(a.items.len() > cfg.n_users * 5);
    }

    #[test]
    fn planted_sequels_follow_their_cause() {
        let d = generate(&SynthConfig::sized(Size::Tiny)).unwrap();
        let mut planted = 0;
        for k in 0..d.items.len() {
            if let Some(c) = d.causes[k] {
                planted += 1;
                assert_eq!(d.catalogue.sequel[c as usize], Some(d.items[k]));
                // The cause was consumed earlier by the same user.
                let earlier = (0..k).any(|j| {
                    d.users[j] == d.users[k] && d.items[j] == c && d.times[j] < d.times[k]
                });
                assert!(earlier);
            }
        }
        assert!(planted > 100, "{planted}");
    }

    #[test]
    fn tastes_concentrate_on_favourite_genres() {
        let d = generate(&SynthConfig::sized(Size::Tiny)).unwrap();
        let on_fav = (0..d.items.len())
            .filter(|&k| {
                d.favourites[d.users[k] as usize]
                    .contains(&d.catalogue.genres[d.items[k] as usize][0])
            })
            .count();
        assert!(on_fav as f64 / d.items.len() as f64 > 0.8);
    }
}
