//! Train / validation / test splits without leakage.
//!
//! A split assigns every interaction (in the log's row order) to one
//! [`Part`], so the parts partition the input exactly. Two rules hold for
//! every method:
//!
//! * **Deterministic.** The same input, method and seed give the same split,
//!   whatever the number of threads.
//! * **No pair leakage.** All interactions of one (user, item) pair land in
//!   the same part: the latest part (in the order train, validation
//!   fold-in, validation, test fold-in, test) that any of them was assigned.
//!   So an evaluation pair is never in training, and training never gains an
//!   interaction from after its cutoff (an earlier repeat of an evaluation
//!   pair moves to the evaluation part instead). With the default duplicate
//!   policy there are no repeats and nothing moves.
//!
//! Methods:
//!
//! * [`SplitMethod::Random`]: a random share of all interactions (global) or
//!   of each user's interactions (per user) to validation and test.
//! * [`SplitMethod::GlobalTemporal`]: everything before a cutoff time to
//!   train, then validation, then test; cutoffs given as times or as shares
//!   of the interactions (quantiles of time). Interactions at a cutoff go to
//!   the later part. This is the only split with no future information in
//!   training at all.
//! * [`SplitMethod::UserTemporal`]: each user's most recent share to test,
//!   the share before it to validation.
//! * [`SplitMethod::LeaveLastOut`]: each user's last interaction to test and
//!   the one before to validation.
//! * [`SplitMethod::HeldOutUsers`]: disjoint users for validation and test
//!   (strong generalization); each held-out user's earlier interactions are a
//!   fold-in part given to the model as history, the later ones are scored.
//!
//! Per-user shares: a user with `n` interactions gives `max(1, round(n * share))`
//! to each evaluation part when `n >= 3` (so every such user has at least one
//! validation and one test interaction when both shares are positive), one to
//! test when `n == 2`, and none when `n == 1`; training always keeps at least one.

use crate::rng::Rng;
use crate::{Error, Interactions, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The part an interaction is assigned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Part {
    /// Training data.
    Train = 0,
    /// History of a held-out validation user, given to the model.
    ValidationFoldIn = 1,
    /// Validation targets.
    Validation = 2,
    /// History of a held-out test user, given to the model.
    TestFoldIn = 3,
    /// Test targets.
    Test = 4,
}

impl Part {
    /// All parts in order.
    pub const ALL: [Part; 5] = [
        Part::Train,
        Part::ValidationFoldIn,
        Part::Validation,
        Part::TestFoldIn,
        Part::Test,
    ];

    /// The part's file-name stem.
    pub fn name(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::ValidationFoldIn => "validation_foldin",
            Part::Validation => "validation",
            Part::TestFoldIn => "test_foldin",
            Part::Test => "test",
        }
    }
}

/// Where the temporal cutoffs of a global temporal split come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cutoff {
    /// Shares of all interactions for validation and test, taken from the end.
    Ratio {
        /// Share for validation.
        validation: f64,
        /// Share for test.
        test: f64,
    },
    /// Times (milliseconds) at which validation and test start.
    Time {
        /// Validation starts here.
        validation_start: i64,
        /// Test starts here.
        test_start: i64,
    },
}

/// The name of a split method, as the command line, the Python package
/// and every JSON file spell it (`user-temporal`; `user_temporal` reads the
/// same).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitKind {
    /// [`SplitMethod::Random`].
    Random,
    /// [`SplitMethod::GlobalTemporal`].
    Temporal,
    /// [`SplitMethod::UserTemporal`].
    UserTemporal,
    /// [`SplitMethod::LeaveLastOut`].
    LeaveLastOut,
    /// [`SplitMethod::HeldOutUsers`].
    HeldOutUsers,
}

impl SplitKind {
    /// Every kind, in the order they are documented.
    pub const ALL: [SplitKind; 5] = [
        SplitKind::Random,
        SplitKind::Temporal,
        SplitKind::UserTemporal,
        SplitKind::LeaveLastOut,
        SplitKind::HeldOutUsers,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            SplitKind::Random => "random",
            SplitKind::Temporal => "temporal",
            SplitKind::UserTemporal => "user-temporal",
            SplitKind::LeaveLastOut => "leave-last-out",
            SplitKind::HeldOutUsers => "held-out-users",
        }
    }
}

impl fmt::Display for SplitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SplitKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<SplitKind> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        SplitKind::ALL
            .into_iter()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = SplitKind::ALL.iter().map(|k| k.name()).collect();
                Error::param(
                    "method",
                    format!(
                        "{s:?} is not a split method; use one of {}",
                        names.join(", ")
                    ),
                )
            })
    }
}

/// How to split. It reads and writes (serde) as its kind's stable name
/// with the settings that apply to it:
/// `{"name": "user-temporal", "validation": 0.1, "test": 0.1}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "SplitRecord", try_from = "SplitRecord")]
pub enum SplitMethod {
    /// Random shares for validation and test.
    Random {
        /// Share for validation.
        validation: f64,
        /// Share for test.
        test: f64,
        /// Take the shares of each user's interactions rather than of all.
        per_user: bool,
    },
    /// One pair of cutoff times for everybody.
    GlobalTemporal(Cutoff),
    /// Each user's most recent shares.
    UserTemporal {
        /// Share for validation.
        validation: f64,
        /// Share for test.
        test: f64,
    },
    /// Last interaction to test, second last to validation.
    LeaveLastOut,
    /// Disjoint users for validation and test.
    HeldOutUsers {
        /// Share of users held out for validation.
        validation_users: f64,
        /// Share of users held out for test.
        test_users: f64,
        /// Share of each held-out user's most recent interactions that is scored.
        target: f64,
    },
}

/// A split method as JSON holds it: its kind's name and its settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitRecord {
    name: Option<SplitKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    validation: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    test: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    per_user: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    validation_start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    test_start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<f64>,
}

impl From<SplitMethod> for SplitRecord {
    fn from(m: SplitMethod) -> SplitRecord {
        let r = SplitRecord {
            name: Some(m.kind()),
            ..SplitRecord::default()
        };
        match m {
            SplitMethod::Random {
                validation,
                test,
                per_user,
            } => SplitRecord {
                validation: Some(validation),
                test: Some(test),
                per_user: Some(per_user),
                ..r
            },
            SplitMethod::GlobalTemporal(Cutoff::Ratio { validation, test })
            | SplitMethod::UserTemporal { validation, test } => SplitRecord {
                validation: Some(validation),
                test: Some(test),
                ..r
            },
            SplitMethod::GlobalTemporal(Cutoff::Time {
                validation_start,
                test_start,
            }) => SplitRecord {
                validation_start: Some(validation_start),
                test_start: Some(test_start),
                ..r
            },
            SplitMethod::LeaveLastOut => r,
            SplitMethod::HeldOutUsers {
                validation_users,
                test_users,
                target,
            } => SplitRecord {
                validation: Some(validation_users),
                test: Some(test_users),
                target: Some(target),
                ..r
            },
        }
    }
}

impl TryFrom<SplitRecord> for SplitMethod {
    type Error = Error;

    fn try_from(r: SplitRecord) -> Result<SplitMethod> {
        let kind = r
            .name
            .ok_or_else(|| Error::param("name", "a split method needs its name"))?;
        let mut m = SplitMethod::of_kind(
            kind,
            r.validation.unwrap_or(DEFAULT_SHARE),
            r.test.unwrap_or(DEFAULT_SHARE),
        );
        match &mut m {
            SplitMethod::Random { per_user, .. } => *per_user = r.per_user.unwrap_or(false),
            SplitMethod::GlobalTemporal(c) => {
                if let (Some(validation_start), Some(test_start)) =
                    (r.validation_start, r.test_start)
                {
                    *c = Cutoff::Time {
                        validation_start,
                        test_start,
                    };
                }
            }
            SplitMethod::HeldOutUsers { target, .. } => {
                *target = r.target.unwrap_or(DEFAULT_TARGET)
            }
            SplitMethod::UserTemporal { .. } | SplitMethod::LeaveLastOut => {}
        }
        m.validate()?;
        Ok(m)
    }
}

/// The share of validation and test where none is given.
pub const DEFAULT_SHARE: f64 = 0.1;

/// The share of a held-out user's latest interactions that is scored,
/// where none is given.
pub const DEFAULT_TARGET: f64 = 0.2;

impl fmt::Display for SplitMethod {
    /// The kind's name with its settings:
    /// `user-temporal (validation 0.1, test 0.2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind())?;
        match *self {
            SplitMethod::Random {
                validation,
                test,
                per_user,
            } => write!(
                f,
                " ({}validation {validation}, test {test})",
                if per_user { "per user, " } else { "" }
            ),
            SplitMethod::GlobalTemporal(Cutoff::Ratio { validation, test })
            | SplitMethod::UserTemporal { validation, test } => {
                write!(f, " (validation {validation}, test {test})")
            }
            SplitMethod::GlobalTemporal(Cutoff::Time {
                validation_start,
                test_start,
            }) => write!(
                f,
                " (validation from {validation_start} ms, test from {test_start} ms)"
            ),
            SplitMethod::LeaveLastOut => Ok(()),
            SplitMethod::HeldOutUsers {
                validation_users,
                test_users,
                target,
            } => write!(
                f,
                " (validation users {validation_users}, test users {test_users}, target {target})"
            ),
        }
    }
}

fn check_share(name: &'static str, v: f64) -> Result<()> {
    if !(0.0..1.0).contains(&v) || v.is_nan() {
        return Err(Error::param(name, format!("{v} is not in [0, 1)")));
    }
    Ok(())
}

impl SplitMethod {
    /// The method of `kind` with shares `validation` and `test` (of users
    /// for held-out users), random over all interactions, temporal by
    /// shares, and [`DEFAULT_TARGET`] for held-out users; not yet validated.
    pub fn of_kind(kind: SplitKind, validation: f64, test: f64) -> SplitMethod {
        match kind {
            SplitKind::Random => SplitMethod::Random {
                validation,
                test,
                per_user: false,
            },
            SplitKind::Temporal => SplitMethod::GlobalTemporal(Cutoff::Ratio { validation, test }),
            SplitKind::UserTemporal => SplitMethod::UserTemporal { validation, test },
            SplitKind::LeaveLastOut => SplitMethod::LeaveLastOut,
            SplitKind::HeldOutUsers => SplitMethod::HeldOutUsers {
                validation_users: validation,
                test_users: test,
                target: DEFAULT_TARGET,
            },
        }
    }

    /// Its kind.
    pub fn kind(&self) -> SplitKind {
        match self {
            SplitMethod::Random { .. } => SplitKind::Random,
            SplitMethod::GlobalTemporal(_) => SplitKind::Temporal,
            SplitMethod::UserTemporal { .. } => SplitKind::UserTemporal,
            SplitMethod::LeaveLastOut => SplitKind::LeaveLastOut,
            SplitMethod::HeldOutUsers { .. } => SplitKind::HeldOutUsers,
        }
    }

    /// Validates the shares.
    pub fn validate(&self) -> Result<()> {
        let pair = |v: f64, t: f64| -> Result<()> {
            check_share("validation", v)?;
            check_share("test", t)?;
            if v + t >= 1.0 {
                return Err(Error::param(
                    "test",
                    format!("validation + test = {} leaves nothing to train", v + t),
                ));
            }
            Ok(())
        };
        match *self {
            SplitMethod::Random {
                validation, test, ..
            }
            | SplitMethod::UserTemporal { validation, test } => pair(validation, test),
            SplitMethod::GlobalTemporal(Cutoff::Ratio { validation, test }) => {
                pair(validation, test)
            }
            SplitMethod::GlobalTemporal(Cutoff::Time {
                validation_start,
                test_start,
            }) => {
                if validation_start > test_start {
                    return Err(Error::param("validation-start", "is after the test start"));
                }
                Ok(())
            }
            SplitMethod::LeaveLastOut => Ok(()),
            SplitMethod::HeldOutUsers {
                validation_users,
                test_users,
                target,
            } => {
                pair(validation_users, test_users)?;
                if !(target > 0.0 && target < 1.0) {
                    return Err(Error::param("target", format!("{target} is not in (0, 1)")));
                }
                Ok(())
            }
        }
    }

    fn needs_time(&self) -> bool {
        matches!(self, SplitMethod::GlobalTemporal(_))
    }
}

/// Numbers of a user's `n` interactions for validation and test (see the
/// module docs).
pub fn holdout_counts(n: usize, validation: f64, test: f64) -> (usize, usize) {
    if n < 2 {
        return (0, 0);
    }
    let take = |share: f64| {
        if share > 0.0 {
            ((n as f64 * share).round() as usize).max(1)
        } else {
            0
        }
    };
    if n == 2 {
        return (0, take(test).min(1));
    }
    let (mut v, mut t) = (take(validation), take(test));
    while v + t > n - 1 {
        if v > 1 || (v == 1 && t <= 1) {
            v -= 1;
        } else {
            t -= 1;
        }
    }
    (v, t)
}

/// The result of a split: one part per interaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    assignment: Vec<Part>,
    pairs_merged: usize,
}

/// `split_report.json`: how a log was split and what came of it, as
/// `because split` and the demo write it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SplitFile {
    /// The method and its settings.
    pub method: SplitMethod,
    /// The seed of the split.
    pub seed: u64,
    /// What it produced.
    pub report: SplitReport,
}

/// What a split produced, for reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SplitReport {
    /// Interactions per part (parts with none are left out).
    pub interactions: Vec<(Part, usize)>,
    /// Users with at least one interaction per part.
    pub users: Vec<(Part, usize)>,
    /// Users of validation targets with no training interaction.
    pub unknown_users_validation: usize,
    /// Users of test targets with no training interaction.
    pub unknown_users_test: usize,
    /// Items of validation targets with no training interaction.
    pub unknown_items_validation: usize,
    /// Items of test targets with no training interaction.
    pub unknown_items_test: usize,
    /// Interactions moved to an earlier part to keep each (user, item) pair in one part.
    pub moved_for_pair_consistency: usize,
    /// (user, item) pairs of validation or test that also occur in training (always 0).
    pub leaked_pairs: usize,
}

impl Split {
    /// Splits `x` by `method` with `seed`. `has_time` tells whether the
    /// times are real timestamps (not row numbers).
    pub fn new(x: &Interactions, method: SplitMethod, seed: u64, has_time: bool) -> Result<Split> {
        method.validate()?;
        if method.needs_time() && !has_time {
            return Err(Error::NoTimestamps {
                op: "a global temporal split",
            });
        }
        if x.is_empty() {
            return Err(Error::Empty("cannot split an empty log".into()));
        }
        let mut a = vec![Part::Train; x.len()];
        match method {
            SplitMethod::Random {
                validation,
                test,
                per_user: false,
            } => {
                let mut order: Vec<usize> = (0..x.len()).collect();
                Rng::new(seed).shuffle(&mut order);
                let n_test = (x.len() as f64 * test).round() as usize;
                let n_val = (x.len() as f64 * validation).round() as usize;
                for &k in &order[..n_test] {
                    a[k] = Part::Test;
                }
                for &k in &order[n_test..n_test + n_val] {
                    a[k] = Part::Validation;
                }
            }
            SplitMethod::Random {
                validation,
                test,
                per_user: true,
            } => {
                for u in 0..x.n_users() as u32 {
                    let r = x.range(u);
                    let (nv, nt) = holdout_counts(r.len(), validation, test);
                    let mut order: Vec<usize> = r.collect();
                    Rng::stream(seed, u as u64).shuffle(&mut order);
                    for &k in &order[..nt] {
                        a[k] = Part::Test;
                    }
                    for &k in &order[nt..nt + nv] {
                        a[k] = Part::Validation;
                    }
                }
            }
            SplitMethod::GlobalTemporal(cut) => {
                let (vs, ts) = match cut {
                    Cutoff::Time {
                        validation_start,
                        test_start,
                    } => (validation_start, test_start),
                    Cutoff::Ratio { validation, test } => {
                        let mut t = x.times().to_vec();
                        t.sort_unstable();
                        let at = |share: f64| {
                            let k = ((t.len() as f64) * (1.0 - share)).round() as usize;
                            t.get(k).copied().unwrap_or(i64::MAX)
                        };
                        (at(validation + test), at(test))
                    }
                };
                for (k, &t) in x.times().iter().enumerate() {
                    a[k] = if t >= ts {
                        Part::Test
                    } else if t >= vs {
                        Part::Validation
                    } else {
                        Part::Train
                    };
                }
            }
            SplitMethod::UserTemporal { validation, test } => {
                for u in 0..x.n_users() as u32 {
                    let r = x.range(u);
                    let (nv, nt) = holdout_counts(r.len(), validation, test);
                    assign_tail(&mut a[r], nv, nt, Part::Validation, Part::Test);
                }
            }
            SplitMethod::LeaveLastOut => {
                for u in 0..x.n_users() as u32 {
                    let r = x.range(u);
                    let (nv, nt) = match r.len() {
                        0 | 1 => (0, 0),
                        2 => (0, 1),
                        _ => (1, 1),
                    };
                    assign_tail(&mut a[r], nv, nt, Part::Validation, Part::Test);
                }
            }
            SplitMethod::HeldOutUsers {
                validation_users,
                test_users,
                target,
            } => {
                let mut users: Vec<u32> = (0..x.n_users() as u32)
                    .filter(|&u| !x.range(u).is_empty())
                    .collect();
                Rng::new(seed).shuffle(&mut users);
                let n_test = (users.len() as f64 * test_users).round() as usize;
                let n_val = (users.len() as f64 * validation_users).round() as usize;
                for (pos, &u) in users.iter().enumerate() {
                    let (fold_in, scored) = if pos < n_test {
                        (Part::TestFoldIn, Part::Test)
                    } else if pos < n_test + n_val {
                        (Part::ValidationFoldIn, Part::Validation)
                    } else {
                        continue;
                    };
                    let r = x.range(u);
                    let n = r.len();
                    let n_target = if n < 2 {
                        n
                    } else {
                        ((n as f64 * target).round() as usize).clamp(1, n - 1)
                    };
                    let cut = n - n_target;
                    for (j, slot) in a[r].iter_mut().enumerate() {
                        *slot = if j < cut { fold_in } else { scored };
                    }
                }
            }
        }
        let pairs_merged = make_pairs_consistent(x, &mut a);
        Ok(Split {
            assignment: a,
            pairs_merged,
        })
    }

    /// The part of each interaction, in the log's row order.
    pub fn assignment(&self) -> &[Part] {
        &self.assignment
    }

    /// The interactions of one part, in the same index space as the input.
    pub fn part(&self, x: &Interactions, part: Part) -> Interactions {
        let keep: Vec<bool> = self.assignment.iter().map(|&p| p == part).collect();
        x.select(&keep)
    }

    /// The parts that received at least one interaction.
    pub fn nonempty_parts(&self) -> Vec<Part> {
        Part::ALL
            .into_iter()
            .filter(|p| self.assignment.contains(p))
            .collect()
    }

    /// Counts, unknown users and items, and a leakage check.
    pub fn report(&self, x: &Interactions) -> SplitReport {
        let users = x.users();
        let mut per_part = [0usize; 5];
        let mut user_seen = vec![[false; 5]; x.n_users()];
        let mut item_in_train = vec![false; x.n_items()];
        for (k, &p) in self.assignment.iter().enumerate() {
            per_part[p as usize] += 1;
            user_seen[users[k] as usize][p as usize] = true;
            if p == Part::Train {
                item_in_train[x.items()[k] as usize] = true;
            }
        }
        let mut report = SplitReport {
            moved_for_pair_consistency: self.pairs_merged,
            ..Default::default()
        };
        for p in self.nonempty_parts() {
            report.interactions.push((p, per_part[p as usize]));
            report
                .users
                .push((p, user_seen.iter().filter(|s| s[p as usize]).count()));
        }
        report.unknown_users_validation = user_seen
            .iter()
            .filter(|s| s[Part::Validation as usize] && !s[Part::Train as usize])
            .count();
        report.unknown_users_test = user_seen
            .iter()
            .filter(|s| s[Part::Test as usize] && !s[Part::Train as usize])
            .count();
        let unknown_items = |part: Part| {
            let mut seen = vec![false; x.n_items()];
            for (k, &p) in self.assignment.iter().enumerate() {
                let i = x.items()[k] as usize;
                if p == part && !item_in_train[i] {
                    seen[i] = true;
                }
            }
            seen.iter().filter(|&&s| s).count()
        };
        report.unknown_items_validation = unknown_items(Part::Validation);
        report.unknown_items_test = unknown_items(Part::Test);
        report.leaked_pairs = count_leaked_pairs(x, &self.assignment);
        report
    }
}

/// Assigns the last `nt` slots to `test` and the `nv` before them to `validation`.
fn assign_tail(slots: &mut [Part], nv: usize, nt: usize, validation: Part, test: Part) {
    let n = slots.len();
    for (j, slot) in slots.iter_mut().enumerate() {
        if j >= n - nt {
            *slot = test;
        } else if j >= n - nt - nv {
            *slot = validation;
        }
    }
}

/// Moves every interaction of a (user, item) pair to the latest part any of
/// them has; returns how many moved.
fn make_pairs_consistent(x: &Interactions, a: &mut [Part]) -> usize {
    let mut moved = 0;
    let mut first: std::collections::HashMap<u32, Part> = Default::default();
    for u in 0..x.n_users() as u32 {
        let r = x.range(u);
        if r.len() < 2 {
            continue;
        }
        first.clear();
        for k in r.clone() {
            let e = first.entry(x.items()[k]).or_insert(a[k]);
            *e = (*e).max(a[k]);
        }
        for k in r {
            let p = first[&x.items()[k]];
            if a[k] != p {
                a[k] = p;
                moved += 1;
            }
        }
    }
    moved
}

/// Number of (user, item) pairs in an evaluation part that are also in training.
fn count_leaked_pairs(x: &Interactions, a: &[Part]) -> usize {
    let mut leaked = 0;
    let mut train: std::collections::HashSet<u32> = Default::default();
    for u in 0..x.n_users() as u32 {
        train.clear();
        let r = x.range(u);
        for k in r.clone() {
            if a[k] == Part::Train {
                train.insert(x.items()[k]);
            }
        }
        for k in r {
            if matches!(a[k], Part::Validation | Part::Test) && train.contains(&x.items()[k]) {
                leaked += 1;
            }
        }
    }
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn methods_read_and_write_by_their_stable_names() {
        let methods = [
            SplitMethod::Random {
                validation: 0.1,
                test: 0.2,
                per_user: true,
            },
            SplitMethod::GlobalTemporal(Cutoff::Ratio {
                validation: 0.1,
                test: 0.1,
            }),
            SplitMethod::GlobalTemporal(Cutoff::Time {
                validation_start: 10,
                test_start: 20,
            }),
            SplitMethod::UserTemporal {
                validation: 0.0,
                test: 0.2,
            },
            SplitMethod::LeaveLastOut,
            SplitMethod::HeldOutUsers {
                validation_users: 0.1,
                test_users: 0.1,
                target: 0.3,
            },
        ];
        for m in methods {
            let json = serde_json::to_value(m).unwrap();
            assert_eq!(json["name"], m.kind().name(), "{json}");
            let back: SplitMethod = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(back, m, "{json}");
            assert!(m.to_string().starts_with(m.kind().name()), "{m}");
        }
        assert_eq!(
            serde_json::to_string(&methods[3]).unwrap(),
            r#"{"name":"user-temporal","validation":0.0,"test":0.2}"#
        );
        // Names as the CLI spells them, or with underscores; nothing else.
        for k in SplitKind::ALL {
            assert_eq!(k.name().parse::<SplitKind>().unwrap(), k);
            assert_eq!(k.name().replace('-', "_").parse::<SplitKind>().unwrap(), k);
        }
        let e = "global_temporal"
            .parse::<SplitKind>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("temporal, user-temporal"), "{e}");
        // Settings are validated on reading.
        let bad = serde_json::json!({"name": "user-temporal", "validation": 0.6, "test": 0.6});
        assert!(serde_json::from_value::<SplitMethod>(bad).is_err());
        let unknown = serde_json::json!({"name": "random", "shares": 0.1});
        assert!(serde_json::from_value::<SplitMethod>(unknown).is_err());
    }

    fn arb_log() -> impl Strategy<Value = Interactions> {
        (
            1usize..8,
            1usize..10,
            proptest::collection::vec((0u32..8, 0u32..10, 0i64..50), 1..120),
        )
            .prop_map(|(nu, ni, rows)| {
                Interactions::from_tuples(
                    nu,
                    ni,
                    rows.into_iter()
                        .map(|(u, i, t)| (u % nu as u32, i % ni as u32, 1.0, t)),
                )
                .unwrap()
            })
    }

    fn methods() -> Vec<SplitMethod> {
        vec![
            SplitMethod::Random {
                validation: 0.1,
                test: 0.2,
                per_user: false,
            },
            SplitMethod::Random {
                validation: 0.1,
                test: 0.2,
                per_user: true,
            },
            SplitMethod::GlobalTemporal(Cutoff::Ratio {
                validation: 0.1,
                test: 0.2,
            }),
            SplitMethod::GlobalTemporal(Cutoff::Time {
                validation_start: 20,
                test_start: 30,
            }),
            SplitMethod::UserTemporal {
                validation: 0.1,
                test: 0.1,
            },
            SplitMethod::LeaveLastOut,
            SplitMethod::HeldOutUsers {
                validation_users: 0.2,
                test_users: 0.2,
                target: 0.3,
            },
        ]
    }

    proptest! {
        #[test]
        fn splits_partition_without_leakage(x in arb_log(), seed in 0u64..1000) {
            for m in methods() {
                let s = Split::new(&x, m, seed, true).unwrap();
                // Exact partition: every interaction in exactly one part, counts add up.
                let total: usize = s.nonempty_parts().iter().map(|&p| s.part(&x, p).len()).sum();
                prop_assert_eq!(total, x.len());
                prop_assert_eq!(s.assignment().len(), x.len());
                let r = s.report(&x);
                prop_assert_eq!(r.leaked_pairs, 0, "{:?}", m);
                // Deterministic.
                prop_assert_eq!(&Split::new(&x, m, seed, true).unwrap(), &s);
                // A temporal split keeps everything after the cutoff out of training.
                if let SplitMethod::GlobalTemporal(Cutoff::Time { validation_start, .. }) = m {
                    let late = x.times().iter().zip(s.assignment()).any(|(&t, &p)| p == Part::Train && t >= validation_start);
                    prop_assert!(!late);
                }
            }
        }
    }

    #[test]
    fn holdout_count_rules() {
        assert_eq!(holdout_counts(1, 0.1, 0.1), (0, 0));
        assert_eq!(holdout_counts(2, 0.1, 0.1), (0, 1));
        assert_eq!(holdout_counts(3, 0.1, 0.1), (1, 1));
        assert_eq!(holdout_counts(10, 0.1, 0.1), (1, 1));
        assert_eq!(holdout_counts(100, 0.1, 0.1), (10, 10));
        assert_eq!(holdout_counts(4, 0.4, 0.4), (1, 2));
        for n in 3..200 {
            let (v, t) = holdout_counts(n, 0.45, 0.45);
            assert!(v >= 1 && t >= 1 && v + t < n, "{n}: {v} {t}");
        }
    }

    #[test]
    fn user_temporal_takes_the_latest() {
        let x =
            Interactions::from_tuples(1, 5, (0..5).map(|i| (0, i, 1.0, 10 - i as i64))).unwrap();
        let s = Split::new(
            &x,
            SplitMethod::UserTemporal {
                validation: 0.2,
                test: 0.2,
            },
            0,
            true,
        )
        .unwrap();
        // Time order is items 4, 3, 2, 1, 0.
        assert_eq!(s.part(&x, Part::Test).user_items(0), &[0]);
        assert_eq!(s.part(&x, Part::Validation).user_items(0), &[1]);
    }

    #[test]
    fn repeated_pairs_follow_their_latest_part() {
        let x = Interactions::from_tuples(1, 2, [(0, 0, 1.0, 1), (0, 1, 1.0, 2), (0, 0, 1.0, 3)])
            .unwrap();
        let s = Split::new(&x, SplitMethod::LeaveLastOut, 0, true).unwrap();
        assert_eq!(s.assignment(), &[Part::Test, Part::Validation, Part::Test]);
        assert_eq!(s.report(&x).moved_for_pair_consistency, 1);
    }

    #[test]
    fn bad_shares_name_the_key() {
        let e = SplitMethod::UserTemporal {
            validation: 0.6,
            test: 0.5,
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`test`"), "{e}");
        let x = Interactions::from_tuples(1, 1, [(0, 0, 1.0, 0)]).unwrap();
        let e = Split::new(
            &x,
            SplitMethod::GlobalTemporal(Cutoff::Ratio {
                validation: 0.1,
                test: 0.1,
            }),
            0,
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("timestamps"));
    }
}
