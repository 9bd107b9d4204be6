//! Reading interaction logs: delimited text (CSV, TSV, MovieLens `u.data`
//! and `ratings.dat`, optionally gzip-compressed), JSON Lines and Parquet.
//!
//! Text is read in chunks that end at record boundaries and parsed in
//! parallel; each chunk interns IDs into its own vocabularies, which are
//! merged in file order, so the result is the same for any number of threads
//! and IDs are numbered in order of first appearance.

pub(crate) mod parquet;

use crate::delim::{next_record, ChunkReader, Dialect, Record};
use crate::report::{CleanReport, Problem, Reason, EXAMPLES_PER_REASON};
use crate::time::{parse_time, TimeFormat, TimeUnit};
use crate::{Error, Result};
use because_core::{
    canonical_int, Columns, Dataset, DuplicatePolicy, IdBuildHasher, Interactions, Vocab,
};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// File formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Delimited text: CSV, TSV, MovieLens `::`.
    Delimited,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        Ok(match s {
            "csv" | "tsv" | "delimited" | "movielens" | "dat" => Format::Delimited,
            "jsonl" | "ndjson" | "json" => Format::Jsonl,
            "parquet" => Format::Parquet,
            other => {
                return Err(Error::param(
                    "format",
                    format!("unknown format {other:?} (csv, tsv, jsonl or parquet)"),
                ))
            }
        })
    }
}

/// The roles columns can play.
pub const ROLES: [&str; 5] = ["user", "item", "rating", "time", "event"];
pub(crate) const USER: usize = 0;
pub(crate) const ITEM: usize = 1;
const RATING: usize = 2;
const TIME: usize = 3;
const EVENT: usize = 4;

/// The names each role's column goes by (after [`normalize_name`]), most
/// usual first: the one list of column aliases, for logs and feature files.
pub(crate) const CANDIDATES: [&[&str]; 5] = [
    &[
        "user",
        "userid",
        "visitorid",
        "customerid",
        "reviewerid",
        "uid",
        "users",
    ],
    &[
        "item",
        "itemid",
        "movieid",
        "parentasin",
        "asin",
        "productid",
        "iid",
        "articleid",
        "trackid",
        "bookid",
    ],
    &["rating", "score", "stars", "ratings"],
    &[
        "timestamp",
        "time",
        "ts",
        "eventtime",
        "datetime",
        "date",
        "createdat",
        "unixtime",
    ],
    &[
        "event",
        "eventtype",
        "action",
        "behavior",
        "behaviour",
        "interactiontype",
    ],
];

/// Normalizes a column name for matching: the part before a `:` (as in
/// RecBole's `user_id:token`), lowercased, without `_`, `-` and spaces.
pub fn normalize_name(name: &str) -> String {
    let base = name.split(':').next().unwrap_or(name);
    base.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Which column plays each role: a name, or a 1-based position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColumnSpec {
    /// User ID column.
    pub user: Option<String>,
    /// Item ID column.
    pub item: Option<String>,
    /// Rating column.
    pub rating: Option<String>,
    /// Time column.
    pub time: Option<String>,
    /// Event type column.
    pub event: Option<String>,
}

impl ColumnSpec {
    fn get(&self, role: usize) -> Option<&str> {
        [
            &self.user,
            &self.item,
            &self.rating,
            &self.time,
            &self.event,
        ][role]
            .as_deref()
    }
}

/// Weights of event types, used as interaction values when there is no rating.
#[derive(Clone, Debug, PartialEq)]
pub struct EventWeights(pub Vec<(String, f32)>);

impl Default for EventWeights {
    fn default() -> Self {
        let w = [
            ("view", 1.0),
            ("click", 1.0),
            ("detail", 1.0),
            ("wishlist", 2.0),
            ("addtocart", 3.0),
            ("add_to_cart", 3.0),
            ("cart", 3.0),
            ("transaction", 5.0),
            ("purchase", 5.0),
            ("buy", 5.0),
            ("order", 5.0),
        ];
        EventWeights(w.iter().map(|(n, v)| (n.to_string(), *v)).collect())
    }
}

impl EventWeights {
    /// Parses `name=weight,name=weight`; the given weights override the defaults.
    pub fn parse(spec: &str) -> Result<EventWeights> {
        let mut w = EventWeights::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| {
                Error::param("event-weights", format!("{part:?} is not name=weight"))
            })?;
            let v: f32 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .ok_or_else(|| {
                    Error::param(
                        "event-weights",
                        format!("weight of {name:?} is not a number: {value:?}"),
                    )
                })?;
            let name = name.trim().to_lowercase();
            w.0.retain(|(n, _)| *n != name);
            w.0.push((name, v));
        }
        Ok(w)
    }

    /// The weight of an event type; unknown types weigh 1.
    pub fn weight(&self, name: &str) -> f32 {
        let lower = name.trim().to_lowercase();
        self.0
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, v)| *v)
            .unwrap_or(1.0)
    }
}

/// How to read a log.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// The format; detected from the file name and contents when `None`.
    pub format: Option<Format>,
    /// The delimiter of delimited text; detected from the first line when `None`.
    pub delimiter: Option<Vec<u8>>,
    /// Whether the first line is a header; detected when `None` (no header
    /// when every field of the first line is a number).
    pub has_header: Option<bool>,
    /// Column roles; detected from the usual names when not given.
    pub columns: ColumnSpec,
    /// Ignore any rating column (treat the data as implicit feedback).
    pub ignore_rating: bool,
    /// Ratings outside `[lo, hi]` are dropped.
    pub rating_range: Option<(f32, f32)>,
    /// Event type weights.
    pub event_weights: EventWeights,
    /// What to do with repeated (user, item) pairs; `None` chooses: `max`
    /// for event logs without ratings (the strongest event wins), `last`
    /// otherwise (a re-rating replaces the rating).
    pub duplicates: Option<DuplicatePolicy>,
    /// Fail on the first bad row instead of dropping it.
    pub strict: bool,
    /// How to read numeric times.
    pub time_unit: TimeUnit,
}

/// A log split without leakage: each non-empty part as a log of its own
/// (in the log's vocabularies), and the record of the split.
#[derive(Clone, Debug)]
pub struct SplitLog {
    /// The parts, in the order train, validation fold-in, validation, test
    /// fold-in, test: train, validation and test always (empty when their
    /// share is 0), the fold-in parts when they hold anything.
    pub parts: Vec<(because_core::Part, Loaded)>,
    /// The method, seed and what the split produced.
    pub file: because_core::SplitFile,
}

impl SplitLog {
    /// The part `part`, if the split has it.
    pub fn part(&self, part: because_core::Part) -> Option<&Loaded> {
        self.parts.iter().find(|(p, _)| *p == part).map(|(_, l)| l)
    }
}

impl Loaded {
    /// Splits the log by `method` with `seed`, checking that no (user,
    /// item) pair of validation or test is also in training.
    pub fn split(&self, method: because_core::SplitMethod, seed: u64) -> Result<SplitLog> {
        let d = &self.dataset;
        let split = because_core::Split::new(&d.interactions, method, seed, d.has_time)?;
        let report = split.report(&d.interactions);
        if report.leaked_pairs > 0 {
            return Err(Error::param(
                "method",
                format!(
                    "the split left {} validation or test pairs in training",
                    report.leaked_pairs
                ),
            ));
        }
        // Train, validation and test always (empty where a share is 0),
        // the fold-in parts of held-out users where there are any.
        let nonempty = split.nonempty_parts();
        let parts = because_core::Part::ALL
            .into_iter()
            .filter(|p| {
                matches!(
                    p,
                    because_core::Part::Train
                        | because_core::Part::Validation
                        | because_core::Part::Test
                ) || nonempty.contains(p)
            })
            .map(|p| {
                let dataset = Dataset {
                    interactions: split.part(&d.interactions, p),
                    users: d.users.clone(),
                    items: d.items.clone(),
                    event_names: d.event_names.clone(),
                    has_time: d.has_time,
                    has_ratings: d.has_ratings,
                };
                let mut part = Loaded::from_dataset(p.name(), dataset);
                part.source = self.source.clone();
                (p, part)
            })
            .collect();
        Ok(SplitLog {
            parts,
            file: because_core::SplitFile {
                method,
                seed,
                report,
            },
        })
    }

    /// A log from columns of equal length: user and item IDs, values and
    /// times (milliseconds; ignored without `has_time`), every value finite;
    /// users and items are numbered in order of first appearance.
    pub fn from_columns(
        name: &str,
        users: &[String],
        items: &[String],
        values: &[f32],
        times: &[i64],
        has_time: bool,
        has_ratings: bool,
    ) -> Result<Loaded> {
        let n = users.len();
        if items.len() != n || values.len() != n || times.len() != n {
            return Err(Error::param("columns", "the columns differ in length"));
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::param("values", format!("a value is {v}")));
        }
        let mut uv = because_core::Vocab::new();
        let mut iv = because_core::Vocab::new();
        let mut cols = because_core::Columns::default();
        for k in 0..n {
            let u = uv.intern(&users[k]);
            let i = iv.intern(&items[k]);
            cols.push(u, i, values[k], if has_time { times[k] } else { 0 }, None);
        }
        let interactions = Interactions::from_columns(uv.len(), iv.len(), cols)?;
        let dataset = Dataset {
            interactions,
            users: uv,
            items: iv,
            has_ratings,
            has_time,
            event_names: Vec::new(),
        };
        Ok(Loaded::from_dataset(name, dataset))
    }

    /// A dataset that was not read from a file (such as the events a server
    /// stored), named `name`: every interaction counts as a row read and kept.
    pub fn from_dataset(name: &str, dataset: Dataset) -> Loaded {
        let n = dataset.interactions.len();
        let report = CleanReport {
            file: name.to_string(),
            rows_read: n,
            rows_kept: n,
            users: dataset.users.len(),
            items: dataset.items.len(),
            steps: vec![crate::report::Step {
                name: "read".into(),
                before: n,
                after: n,
            }],
            ..CleanReport::default()
        };
        let source = SourceInfo {
            path: PathBuf::from(name),
            format: Format::Delimited,
            delimiter: None,
            gzip: false,
            has_header: true,
            role_names: [
                Some("user".into()),
                Some("item".into()),
                None,
                Some("time".into()),
                Some("event".into()),
            ],
            time_format: TimeFormat::Millis,
        };
        Loaded {
            dataset,
            report,
            source,
        }
    }

    /// This log and `other` (named `name`) as one: IDs mapped to one
    /// vocabulary (this log's first), `other`'s interactions counted as rows
    /// read, and repeated user-item pairs merged by `policy` (event types
    /// weighed by `weights`), the report counting what was merged.
    pub fn append(
        self,
        name: &str,
        other: Dataset,
        policy: DuplicatePolicy,
        weights: &EventWeights,
    ) -> Result<Loaded> {
        let Loaded {
            dataset,
            mut report,
            source,
        } = self;
        let joint = Dataset::in_one_vocabulary(&[&dataset, &other])?;
        let added = other.interactions.len();
        let before = report.rows_kept;
        let mut cols = Columns::default();
        for x in &joint.interactions {
            for r in x.iter() {
                cols.push(r.user, r.item, r.value, r.time, r.event);
            }
        }
        let all = Interactions::from_columns(joint.users.len(), joint.items.len(), cols)?;
        report.rows_read += added;
        report.file = format!("{} + {name}", report.file);
        report.steps.push(crate::report::Step {
            name: format!("add {name}"),
            before,
            after: before + added,
        });
        report.rows_kept = before + added;
        let dataset = Dataset {
            users: joint.users,
            items: joint.items,
            interactions: all,
            event_names: joint.event_names,
            has_time: dataset.has_time && other.has_time,
            has_ratings: dataset.has_ratings && other.has_ratings,
        };
        Ok(Loaded {
            dataset,
            report,
            source,
        }
        .merge_duplicates(policy, weights))
    }

    /// Repeated user-item pairs merged by `policy` (event types weighed by
    /// `weights`), the report counting what was merged.
    pub fn merge_duplicates(mut self, policy: DuplicatePolicy, weights: &EventWeights) -> Loaded {
        let d = &mut self.dataset;
        let strength: Vec<f32> = d.event_names.iter().map(|n| weights.weight(n)).collect();
        let (all, removed) = std::mem::take(&mut d.interactions).dedup(policy, &strength);
        let kept = all.len();
        d.interactions = all;
        if removed > 0 {
            let step = format!("merge duplicates ({policy:?})").to_lowercase();
            self.report
                .drop_many(Reason::Duplicate, step, kept + removed, kept);
        }
        self.report.users = d.users.len();
        self.report.items = d.items.len();
        self
    }
}

/// Where the data came from, and how to write data back in the same shape.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SourceInfo {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// The delimiter, for delimited text.
    pub delimiter: Option<String>,
    /// Whether it was gzip-compressed.
    pub gzip: bool,
    /// Whether it had a header line.
    pub has_header: bool,
    /// The name of the column of each role (user, item, rating, time, event).
    pub role_names: [Option<String>; 5],
    /// How times were written.
    pub time_format: TimeFormat,
}

/// A log read and cleaned, with its report.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The data.
    pub dataset: Dataset,
    /// What was read, kept and dropped.
    pub report: CleanReport,
    /// Where it came from.
    pub source: SourceInfo,
}

/// Column layout resolved against a header.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    n_fields: usize,
    pub(crate) col: [Option<usize>; 5],
    names: [Option<String>; 5],
}

pub(crate) fn resolve_layout(
    path: &Path,
    header: &[String],
    has_header: bool,
    spec: &ColumnSpec,
    ignore_rating: bool,
) -> Result<Layout> {
    let mut col = [None; 5];
    let mut names: [Option<String>; 5] = Default::default();
    let normalized: Vec<String> = header.iter().map(|h| normalize_name(h)).collect();
    for role in 0..5 {
        if role == RATING && ignore_rating {
            continue;
        }
        let found = match spec.get(role) {
            Some(want) => {
                let by_name = header
                    .iter()
                    .position(|h| h == want)
                    .or_else(|| normalized.iter().position(|h| *h == normalize_name(want)));
                let by_pos = want
                    .parse::<usize>()
                    .ok()
                    .filter(|&p| p >= 1 && p <= header.len())
                    .map(|p| p - 1);
                match by_name.or(by_pos) {
                    Some(c) => Some(c),
                    None => {
                        return Err(Error::MissingColumn {
                            path: path.to_path_buf(),
                            role: ROLES[role],
                            wanted: Some(want.to_string()),
                            available: header.to_vec(),
                        })
                    }
                }
            }
            None if has_header => CANDIDATES[role]
                .iter()
                .find_map(|c| normalized.iter().position(|h| h == c))
                .filter(|c| !col.contains(&Some(*c))),
            // Without a header, MovieLens order: user, item, rating, timestamp.
            None => (role <= TIME && role < header.len()).then_some(role),
        };
        col[role] = found;
        names[role] = found.map(|c| {
            if has_header {
                header[c].clone()
            } else {
                ["user_id", "item_id", "rating", "timestamp", "event"][role].to_string()
            }
        });
    }
    for role in [USER, ITEM] {
        if col[role].is_none() {
            return Err(Error::MissingColumn {
                path: path.to_path_buf(),
                role: ROLES[role],
                wanted: None,
                available: header.to_vec(),
            });
        }
    }
    Ok(Layout {
        n_fields: header.len(),
        col,
        names,
    })
}

/// The result of parsing part of a file, with IDs local to it.
/// IDs interned within one chunk. Integer IDs are keyed by value, so that
/// no text is hashed, compared or copied for them.
#[derive(Default)]
struct LocalIds {
    ints: HashMap<u64, u32, IdBuildHasher>,
    texts: HashMap<Box<str>, u32, IdBuildHasher>,
    keys: Vec<LocalKey>,
}

enum LocalKey {
    Int(u64),
    Text(Box<str>),
}

impl LocalIds {
    #[inline]
    fn intern(&mut self, id: &str) -> u32 {
        let next = self.keys.len() as u32;
        if let Some(v) = canonical_int(id) {
            let keys = &mut self.keys;
            return *self.ints.entry(v).or_insert_with(|| {
                keys.push(LocalKey::Int(v));
                next
            });
        }
        if let Some(&i) = self.texts.get(id) {
            return i;
        }
        self.texts.insert(id.into(), next);
        self.keys.push(LocalKey::Text(id.into()));
        next
    }

    /// The global index of each local ID.
    fn to_global(&self, vocab: &mut Vocab) -> Vec<u32> {
        self.keys
            .iter()
            .map(|k| match k {
                LocalKey::Int(v) => vocab.intern_int(*v),
                LocalKey::Text(s) => vocab.intern(s),
            })
            .collect()
    }
}

#[derive(Default)]
pub(crate) struct Part {
    users: LocalIds,
    items: LocalIds,
    events: Vocab,
    cols: Columns,
    rows: usize,
    blank: usize,
    counts: BTreeMap<Reason, usize>,
    examples: Vec<Problem>,
    first: Option<Problem>,
    time_formats: [bool; 3],
}

/// Validates and interns rows into a [`Part`].
pub(crate) struct Builder<'a> {
    layout: &'a Layout,
    opts: &'a ReadOptions,
    file: &'a str,
    row_based: bool,
    pub(crate) part: Part,
}

/// A field's text, or why it has none.
type FieldText<'a> = std::result::Result<&'a str, ()>;

impl<'a> Builder<'a> {
    pub(crate) fn new(
        layout: &'a Layout,
        opts: &'a ReadOptions,
        file: &'a str,
        row_based: bool,
    ) -> Self {
        Builder {
            layout,
            opts,
            file,
            row_based,
            part: Part::default(),
        }
    }

    fn problem(&mut self, line: usize, role: Option<usize>, reason: Reason, detail: String) {
        let column = role.and_then(|r| {
            self.layout.col[r].map(|c| (c + 1, self.layout.names[r].clone().unwrap_or_default()))
        });
        let p = Problem {
            file: self.file.to_string(),
            line,
            row_based: self.row_based,
            column,
            reason,
            detail,
        };
        let n = self.part.counts.entry(reason).or_insert(0);
        *n += 1;
        if *n <= EXAMPLES_PER_REASON {
            self.part.examples.push(p.clone());
        }
        if self.part.first.is_none() {
            self.part.first = Some(p);
        }
    }

    /// Adds one row given the text of each role's field (`None`: missing,
    /// `Err`: not valid UTF-8).
    pub(crate) fn row(&mut self, line: usize, f: [Option<FieldText<'_>>; 5]) {
        self.part.rows += 1;
        for role in 0..5 {
            if let Some(Err(())) = f[role] {
                self.problem(
                    line,
                    Some(role),
                    Reason::InvalidUtf8,
                    "the field is not valid UTF-8".into(),
                );
                return;
            }
        }
        let text = |role: usize| f[role].and_then(|x| x.ok()).map(str::trim_ascii);
        let Some(user) = text(USER).filter(|s| !s.is_empty()) else {
            return self.problem(
                line,
                Some(USER),
                Reason::EmptyUserId,
                "the user ID is empty".into(),
            );
        };
        let Some(item) = text(ITEM).filter(|s| !s.is_empty()) else {
            return self.problem(
                line,
                Some(ITEM),
                Reason::EmptyItemId,
                "the item ID is empty".into(),
            );
        };
        let mut value = 1.0f32;
        if self.layout.col[RATING].is_some() {
            let raw = text(RATING).unwrap_or("");
            match parse_rating(raw) {
                Ok(v) if v.is_finite() => {
                    if let Some((lo, hi)) = self.opts.rating_range {
                        if v < lo || v > hi {
                            return self.problem(
                                line,
                                Some(RATING),
                                Reason::RatingOutOfRange,
                                format!("{raw} is outside [{lo}, {hi}]"),
                            );
                        }
                    }
                    value = v;
                }
                Ok(_) => {
                    return self.problem(
                        line,
                        Some(RATING),
                        Reason::BadRating,
                        format!("{raw:?} is not finite"),
                    )
                }
                Err(_) => {
                    return self.problem(
                        line,
                        Some(RATING),
                        Reason::BadRating,
                        format!("{:?} is not a number", clip(raw)),
                    )
                }
            }
        }
        let time = if self.layout.col[TIME].is_some() {
            let raw = text(TIME).unwrap_or("");
            match parse_time(raw, self.opts.time_unit) {
                Some((t, fmt)) => {
                    self.part.time_formats[fmt as usize] = true;
                    t
                }
                None => {
                    return self.problem(
                        line,
                        Some(TIME),
                        Reason::BadTimestamp,
                        format!(
                            "{:?} is not epoch seconds, milliseconds or ISO 8601",
                            clip(raw)
                        ),
                    )
                }
            }
        } else {
            line as i64
        };
        let event = if self.layout.col[EVENT].is_some() {
            let name = text(EVENT).unwrap_or("");
            if self.layout.col[RATING].is_none() {
                value = self.opts.event_weights.weight(name);
            }
            Some(self.part.events.intern(name) as u8)
        } else {
            None
        };
        let u = self.part.users.intern(user);
        let i = self.part.items.intern(item);
        self.part.cols.push(u, i, value, time, event);
    }
}

/// Parses a rating, with a fast path for the common `d` and `d.d` forms.
#[inline]
pub(crate) fn parse_rating(s: &str) -> Result<f32, std::num::ParseFloatError> {
    let b = s.as_bytes();
    let digit = |c: u8| c.is_ascii_digit();
    match b.len() {
        1 if digit(b[0]) => Ok((b[0] - b'0') as f32),
        // (10a + b) / 10 is correctly rounded, so it equals parsing "a.b".
        3 if digit(b[0]) && b[1] == b'.' && digit(b[2]) => {
            Ok(((b[0] - b'0') as f32 * 10.0 + (b[2] - b'0') as f32) / 10.0)
        }
        _ => s.parse::<f32>(),
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 40 {
        s.chars().take(40).collect::<String>() + "…"
    } else {
        s.to_string()
    }
}

fn utf8(b: &[u8]) -> FieldText<'_> {
    std::str::from_utf8(b).map_err(|_| ())
}

fn parse_delimited(data: &[u8], start: usize, first_line: usize, d: &Dialect, b: &mut Builder<'_>) {
    // Validating the whole chunk once is much faster than field by field.
    let text = std::str::from_utf8(data).ok();
    let mut pos = start;
    let mut line = first_line;
    let mut rec = Record::default();
    while next_record(data, &mut pos, d, &mut rec) {
        let this_line = line;
        line += rec.lines;
        if rec.is_blank(data) {
            b.part.blank += 1;
            continue;
        }
        if rec.len() != b.layout.n_fields {
            b.part.rows += 1;
            let detail = format!("expected {} fields, found {}", b.layout.n_fields, rec.len());
            b.problem(this_line, None, Reason::WrongFieldCount, detail);
            continue;
        }
        let field = |role: usize| {
            b.layout.col[role].map(|c| match text {
                Some(t) => rec.field_str(t, c).ok_or(()),
                None => utf8(rec.field(data, c)),
            })
        };
        let f = [field(0), field(1), field(2), field(3), field(4)];
        b.row(this_line, f);
    }
}

fn json_text(raw: &serde_json::value::RawValue) -> Option<String> {
    let s = raw.get().trim();
    if s == "null" {
        None
    } else if s.starts_with('"') {
        serde_json::from_str::<String>(s).ok()
    } else {
        Some(s.to_string())
    }
}

type JsonRow<'a> = BTreeMap<String, &'a serde_json::value::RawValue>;

fn parse_jsonl(data: &[u8], first_line: usize, b: &mut Builder<'_>, header: &[String]) {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    if body.is_empty() {
        return;
    }
    for (k, raw_line) in body.split(|&c| c == b'\n').enumerate() {
        let line = first_line + k;
        if raw_line.iter().all(|c| c.is_ascii_whitespace()) {
            b.part.blank += 1;
            continue;
        }
        let obj: JsonRow<'_> = match serde_json::from_slice(raw_line) {
            Ok(o) => o,
            Err(e) => {
                b.part.rows += 1;
                b.problem(line, None, Reason::MalformedJson, e.to_string());
                continue;
            }
        };
        let vals: Vec<Option<String>> = (0..5)
            .map(|role| {
                b.layout.col[role].and_then(|c| obj.get(&header[c]).and_then(|r| json_text(r)))
            })
            .collect();
        let f = std::array::from_fn(|role| {
            b.layout.col[role].map(|_| Ok(vals[role].as_deref().unwrap_or("")))
        });
        b.row(line, f);
    }
}

/// Opens a file, transparently decompressing gzip (detected by its magic bytes).
pub fn open_maybe_gzip(path: &Path) -> Result<(Box<dyn Read + Send>, bool)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = BufReader::with_capacity(1 << 16, file);
    let head = buf.fill_buf().map_err(|e| Error::io(path, e))?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok((Box::new(flate2::read::MultiGzDecoder::new(buf)), true))
    } else {
        Ok((Box::new(buf), false))
    }
}

fn detect_format(path: &Path) -> Format {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".parquet") || name.ends_with(".pq") {
        Format::Parquet
    } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
        Format::Jsonl
    } else {
        Format::Delimited
    }
}

/// Picks the delimiter that occurs most often in the first line.
pub fn sniff_delimiter(first_line: &[u8]) -> Vec<u8> {
    let count = |pat: &[u8]| {
        if pat.len() == 1 {
            first_line.iter().filter(|&&c| c == pat[0]).count()
        } else {
            first_line.windows(pat.len()).filter(|w| *w == pat).count()
        }
    };
    let candidates: [&[u8]; 5] = [b"::", b"\t", b",", b";", b"|"];
    let mut best: &[u8] = b",";
    let mut best_n = 0;
    for c in candidates {
        let n = count(c);
        if n > best_n {
            best = c;
            best_n = n;
        }
    }
    best.to_vec()
}

const CHUNK: usize = 4 << 20;

/// Reads and cleans an interaction log.
pub fn read_interactions(path: &Path, opts: &ReadOptions) -> Result<Loaded> {
    let format = opts.format.unwrap_or_else(|| detect_format(path));
    let file_name = path.display().to_string();
    let mut m = Merger {
        report: CleanReport {
            file: file_name.clone(),
            ..Default::default()
        },
        strict: opts.strict,
        ..Default::default()
    };
    let (header_info, gzip) = match format {
        Format::Parquet => {
            let (part, info) = parquet::read_parquet(path, opts, &file_name)?;
            m.merge(part)?;
            (info, false)
        }
        _ => read_text(path, format, opts, &file_name, &mut m)?,
    };
    let HeaderInfo {
        layout,
        has_header,
        delimiter,
    } = header_info;
    let Merger {
        users,
        items,
        events,
        cols,
        mut report,
        time_formats,
        first_problem,
        ..
    } = m;
    if events.len() > 255 {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: format!(
                "{} distinct event types; at most 255 are supported",
                events.len()
            ),
        });
    }
    if report.rows_read == 0 {
        return Err(if has_header {
            Error::HeaderOnly {
                path: path.to_path_buf(),
            }
        } else {
            Error::EmptyFile {
                path: path.to_path_buf(),
            }
        });
    }
    if cols.is_empty() {
        return Err(Error::NothingKept {
            path: path.to_path_buf(),
            read: report.rows_read,
            first: first_problem.map(|p| p.to_string()).unwrap_or_default(),
        });
    }
    let kept_rows = cols.len();
    let interactions = Interactions::from_columns(users.len(), items.len(), cols)?;
    report.rows_kept = kept_rows;
    report.steps.push(crate::report::Step {
        name: "read".into(),
        before: report.rows_read,
        after: kept_rows,
    });
    let event_names: Vec<String> = events
        .ids()
        .map(|s| {
            if s.is_empty() {
                "(none)".to_string()
            } else {
                s.to_string()
            }
        })
        .collect();
    let strength: Vec<f32> = event_names
        .iter()
        .map(|n| opts.event_weights.weight(n))
        .collect();
    let policy = opts.duplicates.unwrap_or(
        if layout.col[EVENT].is_some() && layout.col[RATING].is_none() {
            DuplicatePolicy::Max
        } else {
            DuplicatePolicy::Last
        },
    );
    let (interactions, removed) = interactions.dedup(policy, &strength);
    if removed > 0 {
        let name = format!("merge duplicates ({policy:?})").to_lowercase();
        report.drop_many(Reason::Duplicate, name, kept_rows, kept_rows - removed);
    }
    let time_format = if time_formats[TimeFormat::Iso as usize] {
        TimeFormat::Iso
    } else if time_formats[TimeFormat::Millis as usize] {
        TimeFormat::Millis
    } else {
        TimeFormat::Seconds
    };
    let dataset = Dataset {
        users,
        items,
        interactions,
        event_names,
        has_time: layout.col[TIME].is_some(),
        has_ratings: layout.col[RATING].is_some(),
    };
    // Users or items all of whose rows were merged away cannot exist, so the
    // vocabularies are already exact.
    report.users = dataset.users.len();
    report.items = dataset.items.len();
    debug_assert!(report.balances());
    let source = SourceInfo {
        path: path.to_path_buf(),
        format,
        delimiter: delimiter.map(|d| String::from_utf8_lossy(&d).into_owned()),
        gzip,
        has_header,
        role_names: layout.names.clone(),
        time_format,
    };
    Ok(Loaded {
        dataset,
        report,
        source,
    })
}

/// Merges parts into global vocabularies and columns, in file order.
#[derive(Default)]
pub(crate) struct Merger {
    users: Vocab,
    items: Vocab,
    events: Vocab,
    cols: Columns,
    report: CleanReport,
    time_formats: [bool; 3],
    first_problem: Option<Problem>,
    strict: bool,
}

impl Merger {
    pub(crate) fn merge(&mut self, part: Part) -> Result<()> {
        if let Some(p) = &part.first {
            if self.strict {
                return Err(Error::BadRow(Box::new(p.clone())));
            }
            if self.first_problem.is_none() {
                self.first_problem = Some(p.clone());
            }
        }
        let report = &mut self.report;
        report.rows_read += part.rows;
        report.blank_lines += part.blank;
        for (reason, n) in &part.counts {
            *report.dropped.entry(reason.key()).or_insert(0) += n;
        }
        for p in part.examples {
            let shown = report
                .examples
                .iter()
                .filter(|e| e.reason == p.reason)
                .count();
            if shown < EXAMPLES_PER_REASON {
                report.examples.push(p);
            }
        }
        for k in 0..3 {
            self.time_formats[k] |= part.time_formats[k];
        }
        let umap = part.users.to_global(&mut self.users);
        let imap = part.items.to_global(&mut self.items);
        let emap: Vec<u8> = part
            .events
            .ids()
            .map(|id| self.events.intern(id).min(255) as u8)
            .collect();
        let c = part.cols;
        let cols = &mut self.cols;
        cols.users.extend(c.users.iter().map(|&u| umap[u as usize]));
        cols.items.extend(c.items.iter().map(|&i| imap[i as usize]));
        cols.values.extend_from_slice(&c.values);
        cols.times.extend_from_slice(&c.times);
        cols.events
            .extend(c.events.iter().map(|&e| emap[e as usize]));
        Ok(())
    }
}

pub(crate) struct HeaderInfo {
    pub(crate) layout: Layout,
    pub(crate) has_header: bool,
    pub(crate) delimiter: Option<Vec<u8>>,
}

fn read_text(
    path: &Path,
    format: Format,
    opts: &ReadOptions,
    file_name: &str,
    m: &mut Merger,
) -> Result<(HeaderInfo, bool)> {
    let (stream, gzip) = open_maybe_gzip(path)?;
    let mut reader = ChunkReader::new(stream, Vec::new(), 1, true, CHUNK);
    let Some(first) = reader.next_chunk().map_err(|e| Error::io(path, e))? else {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    };
    let mut data = first.data;
    if data.starts_with(b"\xEF\xBB\xBF") {
        data.drain(..3);
    }
    if data.iter().all(|c| c.is_ascii_whitespace()) && reader.next_line <= 2 {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    if format == Format::Jsonl {
        // The header is the keys of the first object that parses.
        let header: Vec<String> = data
            .split(|&c| c == b'\n')
            .find_map(|l| serde_json::from_slice::<JsonRow<'_>>(l).ok())
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let layout = resolve_layout(path, &header, true, &opts.columns, opts.ignore_rating)?;
        let parse = |data: &[u8], first_line: usize| {
            let mut b = Builder::new(&layout, opts, file_name, false);
            parse_jsonl(data, first_line, &mut b, &header);
            b.part
        };
        m.merge(parse(&data, 1))?;
        drop(data);
        parallel_chunks(&mut reader, &parse, m).map_err(|e| e.into_error(path))?;
        return Ok((
            HeaderInfo {
                layout,
                has_header: true,
                delimiter: None,
            },
            gzip,
        ));
    }
    let first_line_end = data.iter().position(|&c| c == b'\n').unwrap_or(data.len());
    let delimiter = opts
        .delimiter
        .clone()
        .unwrap_or_else(|| sniff_delimiter(&data[..first_line_end]));
    let dialect = Dialect::new(&delimiter);
    let mut pos = 0;
    let mut rec = Record::default();
    next_record(&data, &mut pos, &dialect, &mut rec);
    let first_fields: Vec<String> = (0..rec.len())
        .map(|k| {
            String::from_utf8_lossy(rec.field(&data, k))
                .trim()
                .to_string()
        })
        .collect();
    let has_header = opts.has_header.unwrap_or_else(|| {
        !first_fields
            .iter()
            .all(|f| !f.is_empty() && f.parse::<f64>().is_ok())
    });
    let (header, start, start_line) = if has_header {
        (first_fields, pos, 1 + rec.lines)
    } else {
        ((1..=rec.len()).map(|k| k.to_string()).collect(), 0, 1)
    };
    let layout = resolve_layout(path, &header, has_header, &opts.columns, opts.ignore_rating)?;
    let parse = |data: &[u8], start: usize, first_line: usize| {
        let mut b = Builder::new(&layout, opts, file_name, false);
        parse_delimited(data, start, first_line, &dialect, &mut b);
        b.part
    };
    m.merge(parse(&data, start, start_line))?;
    drop(data);
    parallel_chunks(&mut reader, &|d: &[u8], l: usize| parse(d, 0, l), m)
        .map_err(|e| e.into_error(path))?;
    Ok((
        HeaderInfo {
            layout,
            has_header,
            delimiter: Some(delimiter),
        },
        gzip,
    ))
}

enum ChunkError {
    Io(std::io::Error),
    Data(Error),
}

impl ChunkError {
    fn into_error(self, path: &Path) -> Error {
        match self {
            ChunkError::Io(e) => Error::io(path, e),
            ChunkError::Data(e) => e,
        }
    }
}

fn read_batch<R: Read>(
    reader: &mut ChunkReader<R>,
    size: usize,
) -> std::io::Result<Vec<crate::delim::Chunk>> {
    let mut batch = Vec::with_capacity(size);
    while batch.len() < size {
        match reader.next_chunk()? {
            Some(c) => batch.push(c),
            None => break,
        }
    }
    Ok(batch)
}

/// Reads the remaining chunks in batches and parses each batch in parallel,
/// while the next batch is read and the previous one merged, so that reading,
/// parsing and merging overlap. Memory holds about three batches at a time.
fn parallel_chunks<R: Read + Send>(
    reader: &mut ChunkReader<R>,
    parse: &(dyn Fn(&[u8], usize) -> Part + Sync),
    m: &mut Merger,
) -> std::result::Result<(), ChunkError> {
    let batch_size = 2 * rayon::current_num_threads().max(1);
    let mut batch = read_batch(reader, batch_size).map_err(ChunkError::Io)?;
    let mut parsed: Vec<Part> = Vec::new();
    while !batch.is_empty() || !parsed.is_empty() {
        let previous = std::mem::take(&mut parsed);
        let (now, (merged, next)) = rayon::join(
            || {
                batch
                    .par_iter()
                    .map(|c| parse(&c.data, c.first_line))
                    .collect::<Vec<Part>>()
            },
            || {
                let merged = previous.into_iter().try_for_each(|p| m.merge(p));
                (merged, read_batch(reader, batch_size))
            },
        );
        merged.map_err(ChunkError::Data)?;
        parsed = now;
        batch = next.map_err(ChunkError::Io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rating_fast_path_equals_parse() {
        for a in 0..10 {
            for b in 0..10 {
                let s = format!("{a}.{b}");
                assert_eq!(parse_rating(&s).unwrap(), s.parse::<f32>().unwrap(), "{s}");
            }
            assert_eq!(parse_rating(&a.to_string()).unwrap(), a as f32);
        }
        assert!(parse_rating("x.5").is_err());
        assert_eq!(parse_rating("-1.25").unwrap(), -1.25);
    }

    #[test]
    fn chunk_ids_map_to_global_ids() {
        let mut local = LocalIds::default();
        assert_eq!(local.intern("7"), 0);
        assert_eq!(local.intern("abc"), 1);
        assert_eq!(local.intern("7"), 0);
        assert_eq!(local.intern("07"), 2);
        let mut global = Vocab::from_ids(["abc"]);
        assert_eq!(local.to_global(&mut global), vec![1, 0, 2]);
        assert_eq!(global.id(2), "07");
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;
    use because_core::{Part, SplitMethod};

    #[test]
    fn a_split_log_keeps_every_interaction_in_one_part_and_names_its_method() {
        let n = 60;
        let users: Vec<String> = (0..n).map(|k| format!("u{}", k % 6)).collect();
        let items: Vec<String> = (0..n).map(|k| format!("i{}", k % 17)).collect();
        let times: Vec<i64> = (0..n as i64).collect();
        let loaded =
            Loaded::from_columns("t", &users, &items, &vec![1.0; n], &times, true, false).unwrap();
        let method = SplitMethod::UserTemporal {
            validation: 0.0,
            test: 0.2,
        };
        let split = loaded.split(method, 1).unwrap();
        let total: usize = split
            .parts
            .iter()
            .map(|(_, l)| l.dataset.interactions.len())
            .sum();
        assert_eq!(total, loaded.dataset.interactions.len());
        // Validation is there, and empty, when its share is 0.
        assert!(split
            .part(Part::Validation)
            .unwrap()
            .dataset
            .interactions
            .is_empty());
        assert!(!split
            .part(Part::Test)
            .unwrap()
            .dataset
            .interactions
            .is_empty());
        assert_eq!(split.file.report.leaked_pairs, 0);
        let json = serde_json::to_value(&split.file).unwrap();
        assert_eq!(json["method"]["name"], "user-temporal");
        // Columns of unequal length or a value that is not a number are
        // errors, not panics.
        assert!(
            Loaded::from_columns("t", &users, &items[1..], &vec![1.0; n], &times, true, false)
                .is_err()
        );
        let mut values = vec![1.0; n];
        values[3] = f32::NAN;
        assert!(Loaded::from_columns("t", &users, &items, &values, &times, true, false).is_err());
    }
}
