use std::path::PathBuf;

/// Everything that can go wrong in the model code.
///
/// Each message carries the value that went wrong and, where one exists, the
/// step that fixes it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    // The reason is part of the message, not a `source`: a CLI that prints
    // the error chain would otherwise say it twice.
    #[error("{path}: {reason}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the operating system said.
        reason: std::io::Error,
    },
    /// A bundle file's bytes do not match the sha256 its manifest records.
    #[error(
        "model bundle {bundle}: file `{file}` does not match its checksum in manifest.json \
         (expected sha256 {expected}, found {actual}); rebuild the bundle with `edgerec index`"
    )]
    ChecksumMismatch {
        /// The bundle directory.
        bundle: PathBuf,
        /// The file, relative to the bundle.
        file: String,
        /// The checksum the manifest records.
        expected: String,
        /// The checksum of the bytes on disk.
        actual: String,
    },
    /// The bundle (manifest or data file) is malformed.
    #[error("model bundle {bundle}: {reason}")]
    InvalidBundle {
        /// The bundle directory or file.
        bundle: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The text encoder could not be loaded or run.
    #[error("encoder: {0}")]
    Encoder(String),
    /// A model file does not follow its documented layout.
    #[error("{what}: {reason}")]
    Format {
        /// The file (e.g. `user_tower.bin`).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Training failed (the autograd backend reported an error).
    #[error("training: {0}")]
    Train(String),
    /// Raw input data could not be prepared.
    #[error("{0}")]
    Data(String),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), reason: source }
    }
}
