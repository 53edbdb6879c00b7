//! Storage: record batch validation, segments, indexes, partition logs and their recovery.
//!
//! Owns: the on-disk layout of one partition (a directory of `<base offset>.log` data files with their
//! `.index` and `.timeindex` files), and the one error type every storage operation returns.
//! Must not touch: Kafka error codes (the broker maps `StorageError` and `BatchError` to them), async
//! executors, locks or threads. Everything here is synchronous and owned by exactly one shard, except
//! `syncer.rs`: the one helper thread per shard that makes sealed segments durable off the reactor,
//! fed by a bounded queue.

pub mod batch;
pub mod index;
pub mod log;
pub mod recovery;
pub mod segment;
pub mod syncer;

#[cfg(test)]
pub(crate) mod testing;

use std::fs::File;
use std::path::Path;

use self::batch::BatchError;

/// Every operating error the storage layer reports. Bugs are assertions, not variants.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A system call failed; `context` says what we were doing and to which file.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A fetch or lookup asked for an offset the log does not hold.
    #[error("offset {offset} is outside the log range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// Bytes on disk are not what the log wrote, and recovery could not repair them without losing
    /// acknowledged data (for example a bad batch in the middle of a sealed segment).
    #[error("corrupt log data: {0}")]
    Corrupt(String),
    /// The bytes handed to `append` are not well-formed record batches.
    #[error("invalid record batch for append: {0}")]
    InvalidBatch(#[from] BatchError),
    /// A `LogConfig` that the log cannot honour.
    #[error("invalid log config: {0}")]
    InvalidConfig(&'static str),
    /// Assigning offsets would overflow `i64`; only a hostile producer can get here.
    #[error("offset overflow: the log cannot assign offsets past {0}")]
    OffsetOverflow(i64),
}

impl StorageError {
    /// Wraps an `io::Error` with a sentence saying what failed and to which file.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> StorageError {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Returns a closure for `map_err` that attaches `context` to an I/O error.
pub(crate) fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
    let context = context.into();
    move |source| StorageError::io(context, source)
}

/// Makes creations, renames and deletions inside `dir` durable. Without this a power loss can forget a
/// new segment file or resurrect a deleted one even though its data was synced.
pub(crate) fn sync_directory(dir: &Path) -> Result<(), StorageError> {
    let handle = File::open(dir).map_err(io_error(format!("open directory {}", dir.display())))?;
    handle
        .sync_all()
        .map_err(io_error(format!("fsync directory {}", dir.display())))
}

/// The file name stem shared by a segment's data and index files: the base offset as 20 zero-padded
/// digits, so that a plain directory listing sorts segments by offset (Kafka's convention).
pub(crate) fn file_stem(base_offset: i64) -> String {
    assert!(base_offset >= 0);
    format!("{base_offset:020}")
}
