use std::fmt;

/// Errors of the core crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam {
        /// The parameter's name as the user would write it.
        name: &'static str,
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
    /// Arrays that must have the same length do not.
    #[error("shape mismatch: {0}")]
    Shape(String),
}

/// Result with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn param(name: &'static str, reason: impl fmt::Display) -> Error {
        Error::InvalidParam { name, reason: reason.to_string() }
    }
}
