//! Neural and sequential recommendation models, trained on burn.
//!
//! # Brief overview
//!
//! [`Item2Vec`] learns item vectors by skip-gram with negative sampling
//! over each user's sequence (plain Rust), and scores a history by its mean
//! vector, which decomposes exactly into one similarity per history item.
//! [`Gru4Rec`] (a GRU over the sequence, session-parallel mini-batches) and
//! [`SasRec`] (self-attention over each user's latest items) and
//! [`TwoTower`] (user and item towers over IDs, features and the history,
//! explained by exact integrated gradients) are trained on
//! burn's autodiff over its `flex` CPU backend ([`train`](crate::train) holds
//! the training graphs); the trained weights are plain arrays, so scoring,
//! attention weights and occlusion run without the framework. Each model
//! registers with the model registry through [`register`], the one list of
//! this crate's kinds; callers (the command line, the server, the Python
//! package) call it once at start-up, after which `sasrec:dim=64,...` specs
//! work everywhere a built-in kind does.
//!
//! Training is deterministic for a seed: weights start from our own seeded
//! generator and the backend's generator (dropout) is seeded from the same
//! seed.
#![deny(missing_docs)]

mod gru4rec;
mod hybrid;
mod item2vec;
mod optim;
mod sampled;
mod sasrec;
mod seq;
mod train;
mod twotower;

pub use gru4rec::{Gru4Rec, Gru4RecParams, GruLoss};

/// Catalogue size above which SASRec and GRU4Rec train with the sampled
/// softmax by default (`loss=auto`): above it, scoring every item at every
/// step costs more than the network itself.
pub const SAMPLED_ABOVE: usize = 20_000;
pub use hybrid::{Hybrid, HybridParams};
pub use item2vec::{Item2Vec, Item2VecParams, Scoring};
pub use sasrec::{SasRec, SasRecParams, SeqLoss};
pub use seq::Sequences;
pub use twotower::{TwoTower, TwoTowerParams};

/// Adds this crate's model kinds to the registry (idempotent) and
/// returns their names.
pub fn register() -> because_core::Result<Vec<&'static str>> {
    let mut names = Vec::new();
    macro_rules! register {
        ($($kind:ty),*) => {$(
            because_models::register::<$kind>()?;
            names.push(<$kind as because_models::ModelKind>::NAME);
        )*};
    }
    register!(SasRec, Item2Vec, Gru4Rec, TwoTower, Hybrid);
    Ok(names)
}
