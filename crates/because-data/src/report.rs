//! The cleaning report: every row read is either kept or dropped for a
//! counted reason, and the first examples of each reason are kept with their
//! file, line and column.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Why a row was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The row has a different number of fields than the header.
    WrongFieldCount,
    /// The row is not valid JSON (JSON Lines).
    MalformedJson,
    /// A field is not valid UTF-8.
    InvalidUtf8,
    /// The user ID is empty or missing.
    EmptyUserId,
    /// The item ID is empty or missing.
    EmptyItemId,
    /// The rating is not a finite number.
    BadRating,
    /// The rating is outside the declared range.
    RatingOutOfRange,
    /// The timestamp cannot be parsed.
    BadTimestamp,
    /// Merged into another row of the same user and item.
    Duplicate,
    /// Below the binarization threshold.
    BelowThreshold,
    /// Outside the per-user or per-item activity bounds.
    ActivityBounds,
    /// Removed by the iterated k-core filter.
    KCore,
}

impl Reason {
    /// The reason's key in reports.
    pub fn key(self) -> &'static str {
        match self {
            Reason::WrongFieldCount => "wrong_field_count",
            Reason::MalformedJson => "malformed_json",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::EmptyUserId => "empty_user_id",
            Reason::EmptyItemId => "empty_item_id",
            Reason::BadRating => "bad_rating",
            Reason::RatingOutOfRange => "rating_out_of_range",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::Duplicate => "duplicate",
            Reason::BelowThreshold => "below_threshold",
            Reason::ActivityBounds => "activity_bounds",
            Reason::KCore => "kcore",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Reason::WrongFieldCount => "wrong number of fields",
            Reason::MalformedJson => "malformed JSON",
            Reason::InvalidUtf8 => "invalid UTF-8",
            Reason::EmptyUserId => "empty user ID",
            Reason::EmptyItemId => "empty item ID",
            Reason::BadRating => "bad rating",
            Reason::RatingOutOfRange => "rating out of range",
            Reason::BadTimestamp => "bad timestamp",
            Reason::Duplicate => "duplicate",
            Reason::BelowThreshold => "below threshold",
            Reason::ActivityBounds => "outside activity bounds",
            Reason::KCore => "k-core",
        }
    }
}

/// One bad row: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file.
    pub file: String,
    /// The line (text formats) or row (Parquet) number, 1-based.
    pub line: usize,
    /// Whether `line` counts rows of a columnar file rather than text lines.
    pub row_based: bool,
    /// The column, 1-based, with its name, if the problem is in one field.
    pub column: Option<(usize, String)>,
    /// The reason.
    pub reason: Reason,
    /// Details, such as the offending value.
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.row_based { "row " } else { "" };
        write!(f, "{}:{unit}{}", self.file, self.line)?;
        if let Some((k, name)) = &self.column {
            write!(f, ": column {k} ({name})")?;
        }
        write!(f, ": {}: {}", self.reason.describe(), self.detail)
    }
}

/// How many examples of each reason a report keeps.
pub const EXAMPLES_PER_REASON: usize = 5;

/// Rows read, kept and dropped by reason, with examples.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CleanReport {
    /// The input file.
    pub file: String,
    /// Data rows read (blank lines and the header excluded).
    pub rows_read: usize,
    /// Rows that made it into the dataset.
    pub rows_kept: usize,
    /// Rows dropped, by reason key.
    pub dropped: BTreeMap<&'static str, usize>,
    /// Blank lines skipped (not rows).
    pub blank_lines: usize,
    /// The first examples of each reason, in file order.
    pub examples: Vec<Problem>,
    /// Users and items in the final dataset.
    pub users: usize,
    /// Items in the final dataset.
    pub items: usize,
    /// Each processing step with the interactions before and after it.
    pub steps: Vec<Step>,
}

/// A processing step and its effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What the step did.
    pub name: String,
    /// Interactions before.
    pub before: usize,
    /// Interactions after.
    pub after: usize,
}

impl CleanReport {
    /// Total rows dropped.
    pub fn total_dropped(&self) -> usize {
        self.dropped.values().sum()
    }

    /// Counts `n` rows dropped for `reason` by a whole-data step and records the step.
    pub fn drop_many(
        &mut self,
        reason: Reason,
        step: impl Into<String>,
        before: usize,
        after: usize,
    ) {
        let n = before - after;
        if n > 0 {
            *self.dropped.entry(reason.key()).or_insert(0) += n;
        }
        self.rows_kept = after;
        self.steps.push(Step {
            name: step.into(),
            before,
            after,
        });
    }

    /// Whether read = kept + dropped holds.
    pub fn balances(&self) -> bool {
        self.rows_read == self.rows_kept + self.total_dropped()
    }

    /// A readable multi-line summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} rows read, {} kept, {} dropped",
            self.file,
            self.rows_read,
            self.rows_kept,
            self.total_dropped()
        );
        if self.blank_lines > 0 {
            s += &format!(" ({} blank lines skipped)", self.blank_lines);
        }
        s.push('\n');
        for (reason, n) in &self.dropped {
            s += &format!("  dropped {n:>9}  {reason}\n");
        }
        // The first example of each reason.
        for reason in self.dropped.keys() {
            if let Some(p) = self.examples.iter().find(|p| p.reason.key() == *reason) {
                s += &format!("  e.g. {p}\n");
            }
        }
        s
    }
}
