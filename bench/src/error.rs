//! The one error type of the tool: a message for the operator.
//!
//! Owns: `Error`, `Result` and conversions. Never: retry policy (callers decide what to do).
//! Load-generator errors are operating errors (a broker refused, a socket closed); they are reported
//! and counted, never turned into a success.

use std::fmt;
use std::io;

/// What went wrong, in words for the person running the benchmark.
#[derive(Debug)]
pub struct Error {
    message: String,
}

/// The result type used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
        }
    }

    /// Wraps a lower-level error (for example kafka-protocol's decode errors) with what we were doing.
    pub fn context(context: &str, cause: impl fmt::Display) -> Error {
        Error::new(format!("{context}: {cause}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Error {
        Error::new(format!("i/o error: {error}"))
    }
}
