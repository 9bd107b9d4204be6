//! Recommendation models.
//!
//! # Brief overview
//!
//! Each model has a parameter struct (`FooParams`) whose `fit` returns an
//! immutable fitted model implementing [`because_core::Recommender`]:
//! [`Popularity`], [`ItemKnn`], [`UserKnn`], [`Ease`], [`PureSvd`], [`Als`], [`Bpr`] and,
//! for explicit ratings, [`BiasedMf`].
//! Each fitted type implements [`ModelKind`] and is listed in the
//! [`registry`], which is the only place that knows every kind: [`Model`]
//! holds any of them, is built from a [`ModelSpec`] (a kind and
//! `key=value` parameters, as the command line gives them) and is saved and
//! loaded as a model folder by [`persist`]. Other crates add kinds with
//! [`register`].
//!
//! ```
//! use because_core::{Interactions, Query, Recommender, Request};
//! use because_models::EaseParams;
//!
//! let x = Interactions::from_tuples(3, 3, [
//!     (0, 0, 1.0, 0), (0, 1, 1.0, 1), (1, 0, 1.0, 0), (1, 1, 1.0, 1), (2, 0, 1.0, 0),
//! ]).unwrap();
//! let ease = EaseParams { lambda: 1.0 }.fit(&x).unwrap();
//! let top = ease.recommend(&Request::new(Query::User(2), 1)).unwrap();
//! assert_eq!(top[0].item, 1); // users who have item 0 also have item 1
//! ```
#![deny(missing_docs)]

mod als;
mod bpr;
mod common;
mod ease;
pub mod index;
mod knn;
mod mapped;
mod mf;
mod model;
pub mod persist;
mod popularity;
pub mod registry;
mod svd;
mod tensors;
pub mod testing;
mod userknn;

pub use als::{Als, AlsParams, Scaling, Solver};
pub use bpr::{Bpr, BprParams, Loss};
pub use common::{dot, Train};
pub use ease::{Ease, EaseParams};
pub use knn::{ItemKnn, ItemKnnParams, Weighting};
pub use mapped::Floats;
pub use mf::{BiasedMf, MfParams};
pub use model::{Model, ModelSpec};
pub use popularity::{Popularity, PopularityParams};
pub use registry::{register, Fused, ModelKind, Part, Validate};
pub use svd::{PureSvd, SvdParams};
pub use userknn::{UserKnn, UserKnnParams};
