//! [`ReadSettings`]: how to read and filter a log, as people write it (the
//! command line's reading flags, an experiment file's `[read]` table, the
//! Python package's options), validated once into [`ReadOptions`] and
//! [`FilterOptions`]. An invalid value is an [`Error::InvalidParam`] naming
//! its key as written here (`rating_range`); each front end spells the key
//! its own way (`--rating-range`).

use crate::clean::FilterOptions;
use crate::time::TimeUnit;
use crate::{ColumnSpec, Error, EventWeights, Format, ReadOptions, Result};
use because_core::filter::ActivityBounds;
use because_core::DuplicatePolicy;
use serde::{Deserialize, Serialize};

/// How to read a log and which filters to apply, every value as text or a
/// number as given (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadSettings {
    /// The format, when the file name does not tell (csv, tsv, jsonl, parquet).
    pub format: Option<String>,
    /// Field delimiter of delimited text (detected when absent; `tab` for a tab).
    pub delimiter: Option<String>,
    /// The first line is data, not a header.
    pub no_header: bool,
    /// The first line is a header.
    pub header: bool,
    /// User ID column (name or 1-based position).
    pub user_col: Option<String>,
    /// Item ID column.
    pub item_col: Option<String>,
    /// Rating column.
    pub rating_col: Option<String>,
    /// Time column.
    pub time_col: Option<String>,
    /// Event type column.
    pub event_col: Option<String>,
    /// Ignore any rating column (implicit feedback).
    pub no_rating: bool,
    /// Valid ratings, as `LO,HI`; others are dropped.
    pub rating_range: Option<String>,
    /// Event weights, as `view=1,addtocart=3,transaction=5`.
    pub event_weights: Option<String>,
    /// Repeated user-item pairs: `auto` (max for event logs, last
    /// otherwise), `keep`, `sum`, `max`, `first` or `last`.
    pub duplicates: String,
    /// Stop at the first bad row instead of dropping it.
    pub strict: bool,
    /// Unit of numeric times: `auto`, `s` or `ms`.
    pub time_unit: String,
    /// Keep interactions with value at least this, as implicit feedback (value 1).
    pub binarize: Option<f32>,
    /// Drop users with fewer interactions.
    pub min_user_interactions: Option<u32>,
    /// Drop users with more interactions.
    pub max_user_interactions: Option<u32>,
    /// Drop items with fewer interactions.
    pub min_item_interactions: Option<u32>,
    /// Drop items with more interactions.
    pub max_item_interactions: Option<u32>,
    /// Iterated k-core: `K` for users and items, or `KU,KI`.
    pub kcore: Option<String>,
}

impl Default for ReadSettings {
    fn default() -> ReadSettings {
        ReadSettings {
            format: None,
            delimiter: None,
            no_header: false,
            header: false,
            user_col: None,
            item_col: None,
            rating_col: None,
            time_col: None,
            event_col: None,
            no_rating: false,
            rating_range: None,
            event_weights: None,
            duplicates: "auto".into(),
            strict: false,
            time_unit: "auto".into(),
            binarize: None,
            min_user_interactions: None,
            max_user_interactions: None,
            min_item_interactions: None,
            max_item_interactions: None,
            kcore: None,
        }
    }
}

/// One value, or two separated by a comma.
fn pair<T: std::str::FromStr>(key: &'static str, s: &str) -> Result<(T, T)> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let parse = |p: &str| {
        p.parse::<T>()
            .map_err(|_| Error::param(key, format!("{p:?} is not a number")))
    };
    match parts.as_slice() {
        [a] => Ok((parse(a)?, parse(a)?)),
        [a, b] => Ok((parse(a)?, parse(b)?)),
        _ => Err(Error::param(
            key,
            format!("expected one value or two separated by a comma, got {s:?}"),
        )),
    }
}

impl ReadSettings {
    /// The validated reading and filtering options.
    pub fn options(&self) -> Result<(ReadOptions, FilterOptions)> {
        let format = self
            .format
            .as_deref()
            .map(|f| {
                f.parse::<Format>()
                    .map_err(|e| Error::param("format", e.to_string()))
            })
            .transpose()?;
        let delimiter = self.delimiter.as_deref().map(|d| match d {
            "tab" | "\\t" => b"\t".to_vec(),
            other => other.as_bytes().to_vec(),
        });
        if delimiter.as_ref().is_some_and(|d| d.is_empty()) {
            return Err(Error::param("delimiter", "must not be empty"));
        }
        if self.header && self.no_header {
            return Err(Error::param("header", "give header or no_header, not both"));
        }
        let rating_range = match &self.rating_range {
            Some(r) => {
                let (lo, hi): (f32, f32) = pair("rating_range", r)?;
                if !(lo <= hi) {
                    return Err(Error::param("rating_range", format!("{lo} is above {hi}")));
                }
                Some((lo, hi))
            }
            None => None,
        };
        let event_weights = match &self.event_weights {
            Some(w) => {
                EventWeights::parse(w).map_err(|e| Error::param("event_weights", e.to_string()))?
            }
            None => EventWeights::default(),
        };
        let duplicates = match self.duplicates.as_str() {
            "auto" => None,
            other => Some(
                other
                    .parse::<DuplicatePolicy>()
                    .map_err(|e| Error::param("duplicates", e.to_string()))?,
            ),
        };
        let time_unit = match self.time_unit.as_str() {
            "auto" => TimeUnit::Auto,
            "s" => TimeUnit::Seconds,
            "ms" => TimeUnit::Millis,
            other => {
                return Err(Error::param(
                    "time_unit",
                    format!("{other:?} is not auto, s or ms"),
                ))
            }
        };
        let kcore = self
            .kcore
            .as_deref()
            .map(|k| pair::<u32>("kcore", k))
            .transpose()?;
        let read = ReadOptions {
            format,
            delimiter,
            has_header: if self.no_header {
                Some(false)
            } else if self.header {
                Some(true)
            } else {
                None
            },
            columns: ColumnSpec {
                user: self.user_col.clone(),
                item: self.item_col.clone(),
                rating: self.rating_col.clone(),
                time: self.time_col.clone(),
                event: self.event_col.clone(),
            },
            ignore_rating: self.no_rating,
            rating_range,
            event_weights,
            duplicates,
            strict: self.strict,
            time_unit,
        };
        let filters = FilterOptions {
            binarize: self.binarize,
            bounds: ActivityBounds {
                min_user: self.min_user_interactions,
                max_user: self.max_user_interactions,
                min_item: self.min_item_interactions,
                max_item: self.max_item_interactions,
            },
            kcore,
        };
        filters.validate()?;
        Ok((read, filters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_options_and_bad_values_name_their_key() {
        let s: ReadSettings = serde_json::from_str(
            r#"{"user_col": "who", "kcore": "5,3", "rating_range": "1,5", "delimiter": "tab"}"#,
        )
        .unwrap();
        let (read, filters) = s.options().unwrap();
        assert_eq!(read.columns.user.as_deref(), Some("who"));
        assert_eq!(read.delimiter.as_deref(), Some(&b"\t"[..]));
        assert_eq!(read.rating_range, Some((1.0, 5.0)));
        assert_eq!(filters.kcore, Some((5, 3)));
        assert_eq!(
            ReadSettings::default().options().unwrap().1,
            FilterOptions::default()
        );
        for (json, key) in [
            (r#"{"kcore": "a"}"#, "kcore"),
            (r#"{"rating_range": "5,1"}"#, "rating_range"),
            (r#"{"duplicates": "often"}"#, "duplicates"),
            (r#"{"time_unit": "h"}"#, "time_unit"),
            (r#"{"delimiter": ""}"#, "delimiter"),
        ] {
            let s: ReadSettings = serde_json::from_str(json).unwrap();
            match s.options() {
                Err(Error::InvalidParam { name, .. }) => assert_eq!(name, key, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
        let unknown = serde_json::from_str::<ReadSettings>(r#"{"user": "who"}"#);
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("unknown field `user`"));
    }
}
