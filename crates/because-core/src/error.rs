use std::fmt;

/// Errors of the core crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam {
        /// The parameter's name as the user would write it.
        name: std::borrow::Cow<'static, str>,
        /// What is wrong with it.
        reason: String,
    },
    /// The operation needs timestamps, but the data has none.
    #[error("{op} needs timestamps, but the data has no time column")]
    NoTimestamps {
        /// The operation that needed them.
        op: &'static str,
    },
    /// The data is empty where it must not be.
    #[error("{0}")]
    Empty(String),
    /// The model cannot do this.
    #[error("{op} is not supported by the {model} model")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// The model kind.
        model: &'static str,
    },
    /// A user index beyond the model's users.
    #[error("unknown user index {user} (the model knows {n_users} users)")]
    UnknownUser {
        /// The index.
        user: u32,
        /// Users known.
        n_users: usize,
    },
    /// An item index beyond the model's items.
    #[error("unknown item index {item} (the model knows {n_items} items)")]
    UnknownItem {
        /// The index.
        item: u32,
        /// Items known.
        n_items: usize,
    },
    /// Training produced NaN or infinite values.
    #[error("training the {model} model produced non-finite values ({detail})")]
    NonFinite {
        /// The model kind.
        model: &'static str,
        /// Where.
        detail: String,
    },
    /// More of something than is supported (such as event types).
    #[error("{0}")]
    TooMany(String),
    /// The work needs more memory than the machine has available.
    #[error("{what} needs about {need_gb:.1} GB of memory; {available_gb:.1} GB is available")]
    OutOfMemory {
        /// The work.
        what: String,
        /// Its estimate, in GB.
        need_gb: f64,
        /// Memory available now (`MemAvailable`), in GB.
        available_gb: f64,
    },
    /// Arrays that must have the same length do not.
    #[error("shape mismatch: {0}")]
    Shape(String),
}

/// Result with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An invalid-parameter error.
    pub fn param(
        name: impl Into<std::borrow::Cow<'static, str>>,
        reason: impl fmt::Display,
    ) -> Error {
        Error::InvalidParam {
            name: name.into(),
            reason: reason.to_string(),
        }
    }
}
