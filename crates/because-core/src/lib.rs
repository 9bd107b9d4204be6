//! The shared vocabulary of `because`.
//!
//! # Brief overview
//!
//! * [`Vocab`] maps external user and item IDs (any string, integers of any
//!   size) to dense `u32` indices and back.
//! * [`Interactions`] is a cleaned interaction log in compressed-row form:
//!   each user's interactions ordered by time, with values, timestamps and
//!   optional event types. [`CsrMatrix`] is the user-item matrix models train on.
//! * [`filter`] holds thresholds, activity bounds and iterated k-cores;
//!   [`Sessions`] cuts users' timelines at inactivity gaps; [`Split`]
//!   partitions a log into train, validation and test without leakage.
//! * [`rng::Rng`] is the project's stable, seedable generator;
//!   [`stats`] has the bootstrap interval of a mean.
//!
//! This crate does no I/O, reads no environment variables and knows nothing
//! of files, HTTP or the command line.
//!
//! ```
//! use because_core::{Interactions, Part, Split, SplitMethod};
//!
//! let x = Interactions::from_tuples(2, 3, [
//!     (0, 0, 1.0, 10), (0, 1, 1.0, 20), (0, 2, 1.0, 30),
//!     (1, 1, 1.0, 15), (1, 2, 1.0, 25),
//! ]).unwrap();
//! let split = Split::new(&x, SplitMethod::LeaveLastOut, 42, true).unwrap();
//! assert_eq!(split.part(&x, Part::Test).len(), 2);
//! assert_eq!(split.report(&x).leaked_pairs, 0);
//! ```
#![deny(missing_docs)]

pub mod capability;
mod dataset;
mod error;
pub mod features;
pub mod filter;
mod interactions;
mod query;
mod recommend;
pub mod rng;
mod session;
mod sparse;
pub mod split;
pub mod stats;
pub mod testing;
mod vocab;

pub use capability::{
    AttentionMaps, Attribute, Attribution, Capabilities, Decompose, Decomposition, Described,
    FeatureAttribution, Featured, InnerProduct, InputShare, ItemEmbeddings, ItemVectors,
    PopularityPrior, QueryVector, RatingPredictor,
};
pub use dataset::{Dataset, OneVocabulary};
pub use error::{Error, Result};
pub use features::{FeatureTable, SideInfo};
pub use interactions::{Columns, DuplicatePolicy, Interaction, Interactions};
pub use recommend::{
    no_observer, select, top_k, Epoch, EpochObserver, Query, Recommender, Request, Scored, Sequence,
};
pub use session::{Sessions, DEFAULT_SESSION_TIMEOUT_MS};
pub use sparse::CsrMatrix;
pub use split::{
    Cutoff, Part, Split, SplitFile, SplitKind, SplitMethod, SplitReport, DEFAULT_SHARE,
    DEFAULT_TARGET,
};
pub use vocab::{canonical_int, IdBuildHasher, IdHasher, Vocab};
