//! One partition as its owning shard holds it: the log, its producer state, and the identity of the
//! topic it belongs to.
//!
//! Owns: validating batches at the storage boundary (framing, CRC, and the producer id, epoch and
//! sequence checks of idempotent and transactional producers, in the same synchronous call that
//! appends), transaction markers, the last stable offset, and mapping storage errors to
//! [`PartitionError`]. Never: mutation from another shard (a `Partition` is only reachable through its
//! shard's map).

use std::path::{Path, PathBuf};
use std::rc::Rc;

use log::warn;

use crate::mesh::{AppendResult, PartitionError};
use crate::producer_state::{AbortedTxn, Plan, ProducerEntry, ProducerError, ProducerStates};
use crate::storage::batch::{self, BatchError, BatchHeader, Batches, ControlType};
use crate::storage::log::{LogConfig, PartitionLog};
use crate::storage::syncer::Syncer;
use crate::storage::StorageError;
use crate::TopicPartition;

pub struct Partition {
    pub topic_id: [u8; 16],
    log: PartitionLog,
    max_batch_bytes: usize,
    producers: ProducerStates,
    /// The log end offset the snapshot on disk covers, so an unchanged partition is not rewritten.
    snapshot_end_offset: i64,
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
        syncer: Rc<Syncer>,
    ) -> Result<Partition, PartitionError> {
        let max_batch_bytes = config.max_batch_bytes;
        let log = PartitionLog::open(dir, config, now_ms, syncer).map_err(storage_error)?;
        let (producers, snapshot_end_offset) = rebuild_producer_state(&log, now_ms)?;
        Ok(Partition {
            topic_id,
            log,
            max_batch_bytes,
            producers,
            snapshot_end_offset,
        })
    }

    /// Validates the batches (framing, magic, CRC-32C, size, producer sequences) and appends them.
    /// Nothing is written unless every batch in `records` is valid, as Kafka rejects the whole
    /// partition's data. A retried batch of an idempotent producer is answered with the offsets it got
    /// the first time and not written again.
    pub fn append(&mut self, records: &[u8], now_ms: i64) -> Result<AppendResult, PartitionError> {
        batch::validate_batches(records, self.max_batch_bytes).map_err(batch_error)?;
        let base_offset = self.log.log_end_offset();
        let mut planned: Vec<(BatchHeader, i64)> = Vec::new();
        let mut next_offset = base_offset;
        for item in Batches::new(records) {
            let (_, header) = item.map_err(batch_error)?;
            if header.is_control() {
                return Err(PartitionError::InvalidRecord(
                    "clients may not write control batches".into(),
                ));
            }
            planned.push((header, next_offset));
            next_offset += i64::from(header.last_offset_delta) + 1;
        }
        let updated = match self
            .producers
            .plan(&planned, now_ms)
            .map_err(producer_error)?
        {
            Plan::Append(updated) => updated,
            Plan::Duplicate(original) => {
                return Ok(AppendResult {
                    base_offset: original.first_offset,
                    log_append_time_ms: -1,
                    log_start_offset: self.log.log_start_offset(),
                })
            }
        };
        let info = self.log.append(records, now_ms).map_err(storage_error)?;
        assert!(info.base_offset == base_offset);
        assert!(info.last_offset + 1 == next_offset);
        self.producers.commit(updated);
        Ok(AppendResult {
            base_offset: info.base_offset,
            log_append_time_ms: info.log_append_time_ms,
            log_start_offset: info.log_start_offset,
        })
    }

    /// Writes a transaction marker for `producer_id` (from the transaction coordinator) and returns its
    /// offset. The marker closes the producer's open transaction on this partition, if it has one.
    pub fn write_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        control: ControlType,
        now_ms: i64,
    ) -> Result<i64, PartitionError> {
        self.producers
            .check_marker(producer_id, producer_epoch)
            .map_err(producer_error)?;
        let marker = batch::build_control_batch(producer_id, producer_epoch, control, 0, now_ms);
        let info = self.log.append(&marker, now_ms).map_err(storage_error)?;
        self.producers.apply_marker(
            producer_id,
            producer_epoch,
            control,
            info.base_offset,
            now_ms,
        );
        Ok(info.base_offset)
    }

    /// The offset below which every transaction is decided: the first offset of the oldest open
    /// transaction, or the high watermark when none is open.
    pub fn last_stable_offset(&self) -> i64 {
        self.producers
            .first_unstable_offset()
            .unwrap_or_else(|| self.log.log_end_offset())
    }

    /// Like `read`, but only whole batches below the last stable offset (`read_committed`).
    pub fn read_stable(&self, offset: i64, max_bytes: usize) -> Result<&[u8], PartitionError> {
        let bytes = self.read(offset, max_bytes)?;
        let stable = self.last_stable_offset();
        let mut end = 0;
        for item in Batches::new(bytes) {
            let (position, header) = item.map_err(batch_error)?;
            if header.base_offset >= stable {
                break;
            }
            end = position + header.total_bytes();
        }
        Ok(&bytes[..end])
    }

    /// Aborted transactions overlapping `[start, end)`, for a `read_committed` fetch.
    pub fn aborted_between(&self, start: i64, end: i64) -> Vec<AbortedTxn> {
        self.producers.aborted_between(start, end)
    }

    pub fn producers(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.producers()
    }

    /// Periodic upkeep: forget expired producers and refresh the producer-state snapshot if the log
    /// moved since the last one, so a crash rescans at most what came after it.
    pub fn maintain(&mut self, now_ms: i64) {
        self.producers.expire(now_ms, self.log.log_start_offset());
        self.write_snapshot();
    }

    fn write_snapshot(&mut self) {
        let end = self.log.log_end_offset();
        if end == self.snapshot_end_offset {
            return;
        }
        // The snapshot must not claim offsets the disk may not have: flush the log first.
        if let Err(error) = self.log.flush() {
            warn!(
                "cannot flush {} before its producer snapshot: {error}",
                self.log.dir().display()
            );
            return;
        }
        match self.producers.write_snapshot(self.log.dir(), end) {
            Ok(()) => self.snapshot_end_offset = end,
            Err(error) => warn!(
                "cannot write the producer snapshot of {}: {error}",
                self.log.dir().display()
            ),
        }
    }

    /// Clean close: the producer snapshot, then the log's own clean shutdown.
    pub fn close(mut self) -> Result<(), crate::storage::StorageError> {
        self.write_snapshot();
        self.log.close()
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

fn producer_error(error: ProducerError) -> PartitionError {
    match error {
        ProducerError::OutOfOrderSequence(detail) => PartitionError::OutOfOrderSequence(detail),
        ProducerError::InvalidProducerEpoch(detail) => PartitionError::InvalidProducerEpoch(detail),
        ProducerError::InvalidTxnState(detail) => PartitionError::InvalidTxnState(detail),
    }
}

/// Producer state at open: the snapshot when it is usable, then every batch after it. A snapshot past
/// the log end (the log lost data it covered) is useless, and the whole log is scanned instead.
fn rebuild_producer_state(
    log: &PartitionLog,
    now_ms: i64,
) -> Result<(ProducerStates, i64), PartitionError> {
    let end = log.log_end_offset();
    let (mut states, from) = match ProducerStates::read_snapshot(log.dir()) {
        Some((states, covered)) if covered <= end => (states, covered),
        _ => (ProducerStates::default(), log.log_start_offset()),
    };
    let mut damaged = None;
    log.scan_batches(from, |header, bytes| {
        let control = match header.is_control() {
            true => match batch::control_type(bytes, header) {
                Ok(control) => Some(control),
                Err(error) => {
                    damaged.get_or_insert(error);
                    return;
                }
            },
            false => None,
        };
        states.replay(header, control, now_ms);
    })
    .map_err(storage_error)?;
    if let Some(error) = damaged {
        warn!(
            "{}: unreadable transaction marker: {error}",
            log.dir().display()
        );
    }
    let snapshot_end_offset = if from == end { end } else { -1 };
    Ok((states, snapshot_end_offset))
}

pub fn storage_error(error: StorageError) -> PartitionError {
    match error {
        StorageError::OffsetOutOfRange { .. } => PartitionError::OffsetOutOfRange,
        other => PartitionError::Storage(other.to_string()),
    }
}
