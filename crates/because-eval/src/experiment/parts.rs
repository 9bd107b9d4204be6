//! The train, validation and test parts an experiment works on, made by a
//! split method or given as three logs.

use super::{Error, Result};
use because_core::Vocab;
use because_core::{Columns, Dataset, DuplicatePolicy, Interactions, Part, Split, SplitMethod};
use serde::{Deserialize, Serialize};

/// Which values models are trained on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Values {
    /// Binary for rating data (every rating is an interaction), the values
    /// as they are (event weights) otherwise.
    #[default]
    Auto,
    /// Every interaction counts 1.
    Binary,
    /// Ratings or event weights as they are.
    AsIs,
}

impl std::str::FromStr for Values {
    type Err = Error;

    /// `auto`, `binary` or `as-is` (`as_is` reads the same).
    fn from_str(s: &str) -> Result<Values> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Ok(Values::Auto),
            "binary" => Ok(Values::Binary),
            "as-is" => Ok(Values::AsIs),
            _ => Err(because_core::Error::param(
                "values",
                format!("{s:?} is not auto, binary or as-is"),
            )
            .into()),
        }
    }
}

impl Values {
    /// Whether every interaction counts 1 for data with (or without)
    /// ratings, and a description of the values for reports.
    pub fn resolve(self, has_ratings: bool) -> (bool, &'static str) {
        match self {
            Values::Binary => (true, "binary"),
            Values::AsIs => (false, "as-is"),
            Values::Auto if has_ratings => (true, "binary (every rating is an interaction)"),
            Values::Auto => (false, "as-is (event weights)"),
        }
    }

    /// `x` with the training values, and their description.
    pub fn apply(self, x: Interactions, has_ratings: bool) -> (Interactions, &'static str) {
        match self.resolve(has_ratings) {
            (true, how) => (x.with_constant_values(1.0), how),
            (false, how) => (x, how),
        }
    }
}

/// Where the parts came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// One log, split by a method.
    Split {
        /// The method and its settings.
        method: SplitMethod,
        /// The seed of the split.
        seed: u64,
    },
    /// Three logs given as they are.
    Given {
        /// The names (files) of the train, validation and test logs.
        train: String,
        /// The validation log.
        validation: String,
        /// The test log.
        test: String,
    },
}

/// Interactions (or users) per part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartCounts {
    /// Training.
    pub train: usize,
    /// Validation.
    pub validation: usize,
    /// Test.
    pub test: usize,
}

/// What the parts hold, and what was left out of evaluation and why.
///
/// Validation and test interactions whose user or item training does not
/// know are dropped from evaluation and counted here, as are (for given
/// parts) validation and test pairs that training also has. Nothing is
/// dropped silently: `given = evaluated + dropped_unknown + dropped_leaked`
/// for validation and test.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartsReport {
    /// Interactions per part as split or given.
    pub given: PartCounts,
    /// Interactions per part that are trained or evaluated on.
    pub evaluated: PartCounts,
    /// Users with at least one evaluated interaction per part.
    pub users: PartCounts,
    /// Users of validation interactions that training does not know.
    pub unknown_users_validation: usize,
    /// Items of validation interactions that training does not know.
    pub unknown_items_validation: usize,
    /// Users of test interactions that training does not know.
    pub unknown_users_test: usize,
    /// Items of test interactions that training does not know.
    pub unknown_items_test: usize,
    /// Validation and test interactions dropped for an unknown user or item.
    pub dropped_unknown: PartCounts,
    /// Validation and test interactions dropped because training has their
    /// (user, item) pair (never for internal splits, which cannot leak).
    pub dropped_leaked: PartCounts,
    /// Interactions an internal split moved to keep each pair in one part.
    pub moved_for_pair_consistency: usize,
}

/// One set of parts in one index space, all with the same values.
#[derive(Clone, Debug)]
pub struct PartSet {
    /// What models are trained on.
    pub train: Interactions,
    /// Validation targets (known users and items only).
    pub validation: Interactions,
    /// Test targets (known users and items only).
    pub test: Interactions,
    /// Every interaction given, dropped ones included: what the model to
    /// deploy is trained on.
    pub all: Interactions,
}

impl PartSet {
    /// Train and validation together, for refitting before the test.
    pub fn train_and_validation(&self) -> Result<Interactions> {
        concat(&[&self.train, &self.validation])
    }
}

/// The parts of an experiment: one vocabulary of users and items, the
/// parts with training values, and with the original ratings when the
/// training values differ from them.
#[derive(Clone, Debug)]
pub struct Parts {
    /// External user IDs, one vocabulary for every part.
    pub users: Vocab,
    /// External item IDs.
    pub items: Vocab,
    /// Whether the values given are explicit ratings.
    pub has_ratings: bool,
    /// How the training values were made from the values given.
    pub values: &'static str,
    /// Where the parts came from.
    pub source: Source,
    /// Counts, and what was dropped.
    pub report: PartsReport,
    /// Event types, in the order of the interactions' event codes (empty
    /// when the logs have none).
    pub event_names: Vec<String>,
    /// User and item features (rows in the order of `users` and `items`),
    /// for the kinds that read them; empty unless set.
    pub side: because_core::SideInfo,
    training: PartSet,
    ratings: Option<PartSet>,
}

impl Parts {
    /// Splits `dataset` by `method` with `seed`.
    pub fn split(
        dataset: &Dataset,
        method: SplitMethod,
        seed: u64,
        values: Values,
    ) -> Result<Parts> {
        let split = Split::new(&dataset.interactions, method, seed, dataset.has_time)?;
        let source = Source::Split { method, seed };
        Parts::from_split(dataset, &split, source, values)
    }

    /// The parts of `split`, a split of `dataset`.
    pub fn from_split(
        dataset: &Dataset,
        split: &Split,
        source: Source,
        values: Values,
    ) -> Result<Parts> {
        if split
            .nonempty_parts()
            .iter()
            .any(|p| matches!(p, Part::ValidationFoldIn | Part::TestFoldIn))
        {
            return Err(Error::Unsupported(
                "splits by held-out users (parts with fold-in histories) are not supported by experiments yet; write their parts with `because split`".into(),
            ));
        }
        let raw = &dataset.interactions;
        let split_report = split.report(raw);
        if split_report.leaked_pairs > 0 {
            return Err(Error::Internal(format!(
                "the split leaks {} pairs",
                split_report.leaked_pairs
            )));
        }
        let (binary, how) = values.resolve(dataset.has_ratings);
        let pick = |x: &Interactions| -> [Interactions; 3] {
            [Part::Train, Part::Validation, Part::Test].map(|p| split.part(x, p))
        };
        let mut parts = assemble(
            dataset.users.clone(),
            dataset.items.clone(),
            pick(raw),
            raw.clone(),
            binary,
            dataset.has_ratings,
            how,
            source,
        )?;
        parts.report.moved_for_pair_consistency = split_report.moved_for_pair_consistency;
        parts.event_names = dataset.event_names.clone();
        Ok(parts)
    }

    /// Parts given as three logs, each with its own vocabulary (`name` says
    /// where it came from). They are mapped to one vocabulary, training's
    /// IDs first, then those only validation and then only test has.
    pub fn given(
        train: (&str, &Dataset),
        validation: (&str, &Dataset),
        test: (&str, &Dataset),
        values: Values,
    ) -> Result<Parts> {
        let datasets = [train.1, validation.1, test.1];
        let because_core::OneVocabulary {
            users,
            items,
            event_names: events,
            interactions: remapped,
        } = Dataset::in_one_vocabulary(&datasets)?;
        let with_events = !events.is_empty();
        let [t, v, s]: [Interactions; 3] = remapped
            .try_into()
            .map_err(|_| Error::Internal("three parts expected".into()))?;
        let (all, _) = concat(&[&t, &v, &s])?.dedup(DuplicatePolicy::Last, &[]);
        let has_ratings = datasets.iter().all(|d| d.has_ratings);
        let (binary, how) = values.resolve(has_ratings);
        let source = Source::Given {
            train: train.0.to_string(),
            validation: validation.0.to_string(),
            test: test.0.to_string(),
        };
        let mut parts = assemble(
            users,
            items,
            [t, v, s],
            all,
            binary,
            has_ratings,
            how,
            source,
        )?;
        if with_events {
            parts.event_names = events;
        }
        Ok(parts)
    }

    /// The parts with training values.
    pub fn training(&self) -> &PartSet {
        &self.training
    }

    /// The parts with the original ratings (the training values when they
    /// are the ratings, or when there are none).
    pub fn ratings(&self) -> &PartSet {
        self.ratings.as_ref().unwrap_or(&self.training)
    }

    /// The parts a model of `spec` trains on: the ratings for rating
    /// predictors (an error when there are none), the training values otherwise.
    pub fn for_spec(&self, spec: &because_models::ModelSpec) -> Result<&PartSet> {
        if !spec.needs_ratings() {
            return Ok(&self.training);
        }
        if !self.has_ratings {
            return Err(Error::NoRatings {
                spec: spec.to_string(),
            });
        }
        Ok(self.ratings())
    }
}

/// Drops what training does not know from validation and test, counts it,
/// and builds the parts with training values (and ratings, if they differ).
#[allow(clippy::too_many_arguments)]
fn assemble(
    users: Vocab,
    items: Vocab,
    raw: [Interactions; 3],
    raw_all: Interactions,
    binary: bool,
    has_ratings: bool,
    how: &'static str,
    source: Source,
) -> Result<Parts> {
    let [train, validation, test] = raw;
    let mut report = PartsReport {
        given: PartCounts {
            train: train.len(),
            validation: validation.len(),
            test: test.len(),
        },
        ..Default::default()
    };
    let known = Known::new(&train);
    let (validation, v) = known.keep(&validation);
    let (test, t) = known.keep(&test);
    report.unknown_users_validation = v.unknown_users;
    report.unknown_items_validation = v.unknown_items;
    report.unknown_users_test = t.unknown_users;
    report.unknown_items_test = t.unknown_items;
    report.dropped_unknown = PartCounts {
        train: 0,
        validation: v.dropped_unknown,
        test: t.dropped_unknown,
    };
    report.dropped_leaked = PartCounts {
        train: 0,
        validation: v.leaked,
        test: t.leaked,
    };
    report.evaluated = PartCounts {
        train: train.len(),
        validation: validation.len(),
        test: test.len(),
    };
    let users_of = |x: &Interactions| x.user_counts().iter().filter(|&&c| c > 0).count();
    report.users = PartCounts {
        train: users_of(&train),
        validation: users_of(&validation),
        test: users_of(&test),
    };
    if train.is_empty() {
        return Err(Error::EmptyPart("train"));
    }
    if validation.is_empty() {
        return Err(Error::EmptyPart("validation"));
    }
    if test.is_empty() {
        return Err(Error::EmptyPart("test"));
    }
    let ratings = PartSet {
        train,
        validation,
        test,
        all: raw_all,
    };
    let (training, ratings) = if binary {
        let one = |x: &Interactions| x.clone().with_constant_values(1.0);
        let training = PartSet {
            train: one(&ratings.train),
            validation: one(&ratings.validation),
            test: one(&ratings.test),
            all: one(&ratings.all),
        };
        (training, has_ratings.then_some(ratings))
    } else {
        (ratings, None)
    };
    Ok(Parts {
        users,
        items,
        has_ratings,
        values: how,
        source,
        report,
        event_names: Vec::new(),
        side: because_core::SideInfo::none(),
        training,
        ratings,
    })
}

/// The users, items and pairs training has.
struct Known<'a> {
    train: &'a Interactions,
    users: Vec<bool>,
    items: Vec<bool>,
}

/// What [`Known::keep`] left out.
#[derive(Default)]
struct Dropped {
    unknown_users: usize,
    unknown_items: usize,
    dropped_unknown: usize,
    leaked: usize,
}

impl<'a> Known<'a> {
    fn new(train: &'a Interactions) -> Known<'a> {
        Known {
            train,
            users: train.user_counts().iter().map(|&c| c > 0).collect(),
            items: train.item_counts().iter().map(|&c| c > 0).collect(),
        }
    }

    /// `x` without interactions of unknown users or items, or of pairs
    /// training has.
    fn keep(&self, x: &Interactions) -> (Interactions, Dropped) {
        let mut d = Dropped::default();
        let mut unknown_item = vec![false; x.n_items()];
        let mut keep = Vec::with_capacity(x.len());
        for u in 0..x.n_users() as u32 {
            let items = x.user_items(u);
            let known_user = self.users.get(u as usize).copied().unwrap_or(false);
            if !known_user && !items.is_empty() {
                d.unknown_users += 1;
            }
            let mut seen: Vec<u32> = if known_user {
                self.train.user_items(u).to_vec()
            } else {
                Vec::new()
            };
            seen.sort_unstable();
            for &i in items {
                let known_item = self.items.get(i as usize).copied().unwrap_or(false);
                if !known_item {
                    unknown_item[i as usize] = true;
                }
                let k = if !known_user || !known_item {
                    d.dropped_unknown += 1;
                    false
                } else if seen.binary_search(&i).is_ok() {
                    d.leaked += 1;
                    false
                } else {
                    true
                };
                keep.push(k);
            }
        }
        d.unknown_items = unknown_item.iter().filter(|&&b| b).count();
        (x.select(&keep), d)
    }
}

/// The interactions of every log in `xs` (one index space), each user's in
/// time order (ties in the order of `xs`).
pub fn concat(xs: &[&Interactions]) -> Result<Interactions> {
    let n_users = xs.iter().map(|x| x.n_users()).max().unwrap_or(0);
    let n_items = xs.iter().map(|x| x.n_items()).max().unwrap_or(0);
    let with_events = xs.iter().all(|x| x.events().is_some() || x.is_empty());
    let mut cols = Columns::default();
    for x in xs {
        for r in x.iter() {
            cols.push(
                r.user,
                r.item,
                r.value,
                r.time,
                r.event.filter(|_| with_events),
            );
        }
    }
    Ok(Interactions::from_columns(n_users, n_items, cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(rows: &[(&str, &str, f32, i64)], ratings: bool) -> Dataset {
        let mut users = Vocab::new();
        let mut items = Vocab::new();
        let mut cols = Columns::default();
        for &(u, i, v, t) in rows {
            cols.push(users.intern(u), items.intern(i), v, t, None);
        }
        let interactions = Interactions::from_columns(users.len(), items.len(), cols).unwrap();
        Dataset {
            users,
            items,
            interactions,
            has_time: true,
            has_ratings: ratings,
            ..Default::default()
        }
    }

    #[test]
    fn given_parts_share_one_vocabulary_and_drop_what_training_lacks() {
        let train = dataset(
            &[("a", "x", 5.0, 1), ("a", "y", 4.0, 2), ("b", "y", 3.0, 1)],
            true,
        );
        // "c" is a new user, "z" a new item, and (a, x) is also in training.
        let validation = dataset(&[("b", "x", 4.0, 5), ("c", "x", 2.0, 5)], true);
        let test = dataset(
            &[("a", "z", 1.0, 9), ("a", "x", 5.0, 9), ("b", "z", 2.0, 9)],
            true,
        );
        let p = Parts::given(
            ("train", &train),
            ("validation", &validation),
            ("test", &test),
            Values::Auto,
        );
        // Test keeps nothing: a clear error, not an empty evaluation.
        assert!(matches!(p, Err(Error::EmptyPart("test"))), "{p:?}");
        let test = dataset(
            &[("a", "z", 1.0, 9), ("a", "x", 5.0, 9), ("b", "x", 2.0, 9)],
            true,
        );
        let p = Parts::given(
            ("train", &train),
            ("validation", &validation),
            ("test", &test),
            Values::Auto,
        )
        .unwrap();
        assert_eq!(p.users.ids().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(p.items.ids().collect::<Vec<_>>(), ["x", "y", "z"]);
        let r = &p.report;
        assert_eq!(r.given.validation, 2);
        assert_eq!(
            (r.unknown_users_validation, r.dropped_unknown.validation),
            (1, 1)
        );
        assert_eq!((r.unknown_items_test, r.dropped_unknown.test), (1, 1));
        assert_eq!(r.dropped_leaked.test, 1);
        assert_eq!(r.evaluated.test, 1);
        for (given, evaluated, unknown, leaked) in [
            (
                r.given.validation,
                r.evaluated.validation,
                r.dropped_unknown.validation,
                r.dropped_leaked.validation,
            ),
            (
                r.given.test,
                r.evaluated.test,
                r.dropped_unknown.test,
                r.dropped_leaked.test,
            ),
        ] {
            assert_eq!(given, evaluated + unknown + leaked);
        }
        // Training values are binary for ratings; the ratings are kept.
        assert!(p.training().train.values().iter().all(|&v| v == 1.0));
        assert_eq!(p.ratings().train.values(), &[5.0, 4.0, 3.0]);
        // Everything given, once per pair, for the model to deploy: test's
        // (a, x) repeats training's and its (b, x) validation's.
        assert_eq!(p.training().all.len(), 3 + 2 + 1);
    }

    #[test]
    fn internal_splits_keep_the_dataset_vocabulary() {
        let rows: Vec<(String, String, f32, i64)> = (0..6)
            .flat_map(|u| (0..5).map(move |i| (u.to_string(), (u + i).to_string(), 1.0, i as i64)))
            .collect();
        let rows: Vec<(&str, &str, f32, i64)> = rows
            .iter()
            .map(|(u, i, v, t)| (u.as_str(), i.as_str(), *v, *t))
            .collect();
        let d = dataset(&rows, false);
        let method = SplitMethod::LeaveLastOut;
        let p = Parts::split(&d, method, 1, Values::Auto).unwrap();
        assert_eq!(p.users.len(), d.users.len());
        assert_eq!(p.training().all.len(), d.interactions.len());
        let r = &p.report;
        assert_eq!(r.given.train + r.given.validation + r.given.test, 30);
        assert_eq!(r.dropped_leaked, PartCounts::default());
        assert!(
            r.unknown_items_test > 0 && r.dropped_unknown.test == r.given.test - r.evaluated.test
        );
        let e = Parts::split(
            &d,
            SplitMethod::HeldOutUsers {
                validation_users: 0.3,
                test_users: 0.3,
                target: 0.5,
            },
            1,
            Values::Auto,
        )
        .unwrap_err();
        assert!(e.to_string().contains("held-out users"), "{e}");
    }
}
