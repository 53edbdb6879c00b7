//! One partition as its owning shard holds it: the log plus the identity of the topic it belongs to.
//!
//! Owns: validating batches at the storage boundary and mapping storage errors to [`PartitionError`].
//! Never: mutation from another shard (a `Partition` is only reachable through its shard's map).

use std::path::{Path, PathBuf};

use crate::mesh::{AppendResult, PartitionError};
use crate::storage::batch::{self, BatchError};
use crate::storage::log::{LogConfig, PartitionLog};
use crate::storage::StorageError;
use crate::TopicPartition;

pub struct Partition {
    pub topic_id: [u8; 16],
    log: PartitionLog,
    max_batch_bytes: usize,
}

/// The directory of a partition's log: `<data-dir>/<topic>-<partition>`, as Kafka names them.
pub fn partition_dir(data_dir: &Path, partition: &TopicPartition) -> PathBuf {
    data_dir.join(format!("{}-{}", partition.topic, partition.partition))
}

impl Partition {
    pub fn open(
        dir: &Path,
        topic_id: [u8; 16],
        config: LogConfig,
        now_ms: i64,
    ) -> Result<Partition, PartitionError> {
        let max_batch_bytes = config.max_batch_bytes;
        let log = PartitionLog::open(dir, config, now_ms).map_err(storage_error)?;
        Ok(Partition {
            topic_id,
            log,
            max_batch_bytes,
        })
    }

    /// Validates the batches (framing, magic, CRC-32C, size) and appends them. Nothing is written
    /// unless every batch in `records` is valid, as Kafka rejects the whole partition's data.
    pub fn append(&mut self, records: &[u8], now_ms: i64) -> Result<AppendResult, PartitionError> {
        batch::validate_batches(records, self.max_batch_bytes).map_err(batch_error)?;
        let info = self.log.append(records, now_ms).map_err(storage_error)?;
        Ok(AppendResult {
            base_offset: info.base_offset,
            log_append_time_ms: info.log_append_time_ms,
            log_start_offset: info.log_start_offset,
        })
    }

    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<&[u8], PartitionError> {
        self.log.read(offset, max_bytes).map_err(storage_error)
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    pub fn log_mut(&mut self) -> &mut PartitionLog {
        &mut self.log
    }

    pub fn into_log(self) -> PartitionLog {
        self.log
    }
}

fn batch_error(error: BatchError) -> PartitionError {
    match error {
        BatchError::TooLarge { .. } => PartitionError::MessageTooLarge,
        BatchError::Corrupt(detail) => PartitionError::CorruptMessage(detail.to_string()),
        other => PartitionError::InvalidRecord(other.to_string()),
    }
}

pub fn storage_error(error: StorageError) -> PartitionError {
    match error {
        StorageError::OffsetOutOfRange { .. } => PartitionError::OffsetOutOfRange,
        other => PartitionError::Storage(other.to_string()),
    }
}
