use crate::report::Problem;
use std::path::PathBuf;

/// Errors of reading, cleaning and writing data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file has no data at all.
    #[error("{}: the file is empty", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The file has a header but no data rows.
    #[error("{}: the file has a header but no data rows", path.display())]
    HeaderOnly {
        /// The file.
        path: PathBuf,
    },
    /// Every row was dropped.
    #[error("{}: no usable rows ({read} read, all dropped; first problem: {first})", path.display())]
    NothingKept {
        /// The file.
        path: PathBuf,
        /// Rows read.
        read: usize,
        /// The first problem met.
        first: String,
    },
    /// A column that is needed is not in the file.
    #[error("{}: no {role} column{}; columns are: {}", path.display(), wanted.as_ref().map(|w| format!(" named {w:?}")).unwrap_or_default(), available.join(", "))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// What the column is for (user, item, ...).
        role: &'static str,
        /// The name asked for, if one was given.
        wanted: Option<String>,
        /// The columns the file has.
        available: Vec<String>,
    },
    /// A bad row in strict mode.
    #[error("{0}")]
    BadRow(Box<Problem>),
    /// The file is not valid in its format (Parquet metadata, say).
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A parameter is invalid.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam {
        /// The parameter's name as the user writes it.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An error from the core crate.
    #[error(transparent)]
    Core(#[from] because_core::Error),
}

/// Result with the data [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn param(name: &'static str, reason: impl std::fmt::Display) -> Error {
        Error::InvalidParam {
            name,
            reason: reason.to_string(),
        }
    }
}
