//! Reading, cleaning, describing and generating interaction data.
//!
//! # Brief overview
//!
//! * [`read_interactions`] reads CSV, TSV, MovieLens (`u.data`,
//!   `ratings.dat`), JSON Lines and Parquet logs, gzip-compressed or not,
//!   maps columns by name, parses timestamps and event types, and returns a
//!   [`Loaded`] dataset with a [`CleanReport`] that accounts for every row.
//! * [`clean::apply_filters`] binarizes, bounds activity and takes k-cores,
//!   recording each step in the report.
//! * [`features`] reads user and item feature files; [`eda`] computes the
//!   statistics behind `because eda`; [`synth`] generates the demo data;
//!   [`write_interactions`] writes parts back in the input's format.
//!
//! ```
//! # fn main() -> Result<(), because_data::Error> {
//! let dir = std::env::temp_dir().join(format!("because-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("ratings.csv");
//! std::fs::write(&path, "userId,movieId,rating,timestamp\n1,10,4.0,881250949\n1,11,oops,881250950\n2,10,5,881250951\n").unwrap();
//! let loaded = because_data::read_interactions(&path, &Default::default())?;
//! assert_eq!(loaded.report.rows_read, 3);
//! assert_eq!(loaded.report.rows_kept, 2);
//! assert_eq!(loaded.report.dropped["bad_rating"], 1);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod clean;
mod delim;
pub mod eda;
mod error;
pub mod features;
mod read;
pub mod report;
mod settings;
pub mod synth;
pub mod testing;
pub mod time;
mod write;

pub use delim::Dialect;
pub use error::{Error, Result};
pub use read::{
    normalize_name, open_maybe_gzip, read_interactions, sniff_delimiter, ColumnSpec, EventWeights,
    Format, Loaded, ReadOptions, SourceInfo, SplitLog,
};
pub use report::{CleanReport, Problem, Reason};
pub use settings::ReadSettings;
pub use write::{extension, write_atomic, write_interactions};
