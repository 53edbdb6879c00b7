//! Per-partition producer state: what idempotence and transactions need to know about each producer
//! that wrote to one partition, kept by the partition's owning shard and changed only inside
//! `Partition::append` and `Partition::write_marker` (synchronous, no locks).
//!
//! Owns: for each producer id, its epoch, the sequence ranges and offsets of its last
//! `DEDUP_BATCHES_PER_PRODUCER` batches (to answer a retried batch with its original offsets), and the
//! first offset of its open transaction; the open transactions of the partition (which give the last
//! stable offset); the aborted-transactions index that `read_committed` fetches return; the snapshot
//! file that lets a restart skip rescanning the log. Never: Kafka error codes, I/O other than the
//! snapshot file, or another partition's state.
//!
//! The checks follow Kafka 4's `ProducerAppendInfo`: an older epoch is INVALID_PRODUCER_EPOCH, a new
//! epoch must start at sequence 0, within an epoch each batch must continue the previous one's
//! sequence, and a producer this partition has never seen may start anywhere. A batch identical in
//! epoch and sequence range to one of the last five is a duplicate: it is not written again and the
//! producer is answered with the original offsets.
//!
//! Rebuilding: the same update runs over every batch header of the log at open (`replay`), starting
//! from the snapshot written at the last clean close or periodically when the log still holds
//! everything the snapshot covered. Snapshot format (text, one item per line, written atomically):
//!
//! ```text
//! fluxmq-producer-state 1 <log end offset the state covers>
//! p <producer id> <epoch> <open txn first offset or -1> <last timestamp> <last update ms> [<first seq> <last seq> <first offset> <last offset>]...
//! a <producer id> <first offset> <marker offset>
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use heapless::Deque;

use crate::storage::batch::{last_sequence, BatchHeader, ControlType, NO_PRODUCER_EPOCH};

/// Batches remembered per producer for duplicate detection: Kafka's `NUM_BATCHES_TO_RETAIN`. An
/// idempotent producer has at most `max.in.flight.requests.per.connection` ≤ 5 batches in flight per
/// partition, so a retry always names one of the last five.
pub const DEDUP_BATCHES_PER_PRODUCER: usize = 5;
/// Kafka's `producer.id.expiration.ms` default: a producer with no open transaction that has not
/// written for this long is forgotten, which bounds the table by the producers of the last day.
pub const PRODUCER_EXPIRATION_MS: i64 = 24 * 60 * 60 * 1000;
/// The snapshot file in the partition directory.
pub const SNAPSHOT_FILE: &str = "producer-state";
const SNAPSHOT_MAGIC: &str = "fluxmq-producer-state 1";

/// Why an idempotent or transactional batch was refused; each maps to Kafka's error of that name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
}

/// One appended batch of a producer: its sequence range and the offsets it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first; at most `DEDUP_BATCHES_PER_PRODUCER`.
    pub batches: Deque<BatchMetadata, DEDUP_BATCHES_PER_PRODUCER>,
    /// First offset of the producer's open transaction on this partition.
    pub txn_first_offset: Option<i64>,
    /// Max timestamp of the producer's last batch (DescribeProducers).
    pub last_timestamp: i64,
    /// Broker clock at the last write, for expiration.
    pub last_update_ms: i64,
}

impl ProducerEntry {
    fn new(epoch: i16, now_ms: i64) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: Deque::new(),
            txn_first_offset: None,
            last_timestamp: -1,
            last_update_ms: now_ms,
        }
    }

    pub fn last_sequence(&self) -> i32 {
        self.batches
            .back()
            .map_or(crate::storage::batch::NO_SEQUENCE, |batch| {
                batch.last_sequence
            })
    }

    fn find_duplicate(&self, header: &BatchHeader, last_sequence: i32) -> Option<BatchMetadata> {
        if header.producer_epoch != self.epoch {
            return None;
        }
        self.batches.iter().copied().find(|batch| {
            batch.first_sequence == header.base_sequence && batch.last_sequence == last_sequence
        })
    }

    /// A new epoch forgets the old epoch's sequences (Kafka's `maybeUpdateProducerEpoch`).
    fn set_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
    }

    fn remember(&mut self, batch: BatchMetadata) {
        if self.batches.is_full() {
            self.batches.pop_front();
        }
        // Cannot fail: a slot was just freed if there was none.
        let _ = self.batches.push_back(batch);
    }
}

/// A completed aborted transaction: Kafka's `AbortedTxn` without the LSO field, which clients ignore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
}

/// What `ProducerStates::plan` decided for an append.
#[derive(Debug)]
pub enum Plan {
    /// Append, then `commit` these updated entries.
    Append(Vec<(i64, ProducerEntry)>),
    /// The (first) batch was already appended: answer with its metadata, write nothing.
    Duplicate(BatchMetadata),
}

#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions by first offset: the smallest key is the first unstable offset.
    open: BTreeMap<i64, i64>,
    /// Ordered by marker offset (the order aborts are written).
    aborted: Vec<AbortedTxn>,
}

impl ProducerStates {
    /// Checks the producer fields of `batches` (headers with the offset each will get, in order) as a
    /// client append, without changing anything. Batches without a producer id pass untouched.
    pub fn plan(&self, batches: &[(BatchHeader, i64)], now_ms: i64) -> Result<Plan, ProducerError> {
        let mut updated: Vec<(i64, ProducerEntry)> = Vec::new();
        for (header, first_offset) in batches {
            if header.producer_id < 0 {
                continue;
            }
            let producer_id = header.producer_id;
            let position = updated.iter().position(|(id, _)| *id == producer_id);
            let current = match position {
                Some(position) => Some(&updated[position].1),
                None => self.producers.get(&producer_id),
            };
            let last_seq = match header.base_sequence >= 0 {
                true => last_sequence(header.base_sequence, header.last_offset_delta.max(0)),
                false => header.base_sequence,
            };
            if let Some(duplicate) =
                current.and_then(|entry| entry.find_duplicate(header, last_seq))
            {
                return Ok(Plan::Duplicate(duplicate));
            }
            check_append(current, header, *first_offset)?;
            let mut entry = current
                .cloned()
                .unwrap_or_else(|| ProducerEntry::new(header.producer_epoch, now_ms));
            apply_data_batch(&mut entry, header, *first_offset, last_seq, now_ms);
            match position {
                Some(position) => updated[position].1 = entry,
                None => updated.push((producer_id, entry)),
            }
        }
        Ok(Plan::Append(updated))
    }

    /// Installs the entries of an accepted plan once its batches are in the log.
    pub fn commit(&mut self, updated: Vec<(i64, ProducerEntry)>) {
        for (producer_id, entry) in updated {
            self.install(producer_id, entry);
        }
    }

    fn install(&mut self, producer_id: i64, entry: ProducerEntry) {
        let previous = self
            .producers
            .get(&producer_id)
            .and_then(|old| old.txn_first_offset);
        if previous != entry.txn_first_offset {
            if let Some(first) = previous {
                self.open.remove(&first);
            }
            if let Some(first) = entry.txn_first_offset {
                self.open.insert(first, producer_id);
            }
        }
        self.producers.insert(producer_id, entry);
    }

    /// Checks a transaction marker from the coordinator: it may not carry an epoch older than the
    /// producer's (a fenced coordinator request).
    pub fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<(), ProducerError> {
        match self.producers.get(&producer_id) {
            Some(entry) if epoch < entry.epoch => {
                Err(ProducerError::InvalidProducerEpoch(format!(
                    "marker epoch {epoch} is older than producer {producer_id}'s epoch {}",
                    entry.epoch
                )))
            }
            _ => Ok(()),
        }
    }

    /// Records a transaction marker written at `offset`: the producer's open transaction (if any) is
    /// complete, and an aborted one enters the aborted index.
    pub fn apply_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        control: ControlType,
        offset: i64,
        now_ms: i64,
    ) {
        let mut entry = self
            .producers
            .get(&producer_id)
            .cloned()
            .unwrap_or_else(|| ProducerEntry::new(epoch, now_ms));
        if epoch > entry.epoch {
            entry.set_epoch(epoch);
        }
        if let Some(first_offset) = entry.txn_first_offset.take() {
            if control == ControlType::Abort {
                assert!(self
                    .aborted
                    .last()
                    .is_none_or(|last| last.last_offset < offset));
                self.aborted.push(AbortedTxn {
                    producer_id,
                    first_offset,
                    last_offset: offset,
                });
            }
        }
        entry.last_update_ms = now_ms;
        self.install(producer_id, entry);
    }

    /// Replays one stored batch (at log offset `header.base_offset`) during recovery: the same updates
    /// as an append, without the checks, since the log already accepted it.
    pub fn replay(&mut self, header: &BatchHeader, control: Option<ControlType>, now_ms: i64) {
        if header.producer_id < 0 {
            return;
        }
        if let Some(control) = control {
            self.apply_marker(
                header.producer_id,
                header.producer_epoch,
                control,
                header.base_offset,
                now_ms,
            );
            return;
        }
        let mut entry = self
            .producers
            .get(&header.producer_id)
            .cloned()
            .unwrap_or_else(|| ProducerEntry::new(header.producer_epoch, now_ms));
        let last_seq = match header.base_sequence >= 0 {
            true => last_sequence(header.base_sequence, header.last_offset_delta.max(0)),
            false => header.base_sequence,
        };
        apply_data_batch(&mut entry, header, header.base_offset, last_seq, now_ms);
        self.install(header.producer_id, entry);
    }

    /// The first offset of the oldest open transaction; the last stable offset is this or, with no
    /// open transaction, the high watermark.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.open.keys().next().copied()
    }

    /// Aborted transactions a fetch of `[start, end)` must report: those whose range overlaps it.
    pub fn aborted_between(&self, start: i64, end: i64) -> Vec<AbortedTxn> {
        let from = self.aborted.partition_point(|txn| txn.last_offset < start);
        self.aborted[from..]
            .iter()
            .filter(|txn| txn.first_offset < end)
            .copied()
            .collect()
    }

    pub fn producers(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, entry)| (*id, entry))
    }

    pub fn producer(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Forgets producers idle for `PRODUCER_EXPIRATION_MS` without an open transaction, and aborted
    /// transactions that retention removed from the log. Returns how many producers were forgotten.
    pub fn expire(&mut self, now_ms: i64, log_start_offset: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_update_ms) < PRODUCER_EXPIRATION_MS
        });
        let keep_from = self
            .aborted
            .partition_point(|txn| txn.last_offset < log_start_offset);
        self.aborted.drain(..keep_from);
        before - self.producers.len()
    }

    /// Writes the snapshot for a log whose end offset is `log_end_offset`.
    pub fn write_snapshot(&self, dir: &Path, log_end_offset: i64) -> std::io::Result<()> {
        let mut text = format!("{SNAPSHOT_MAGIC} {log_end_offset}\n");
        for (producer_id, entry) in &self.producers {
            let _ = write!(
                text,
                "p {producer_id} {} {} {} {}",
                entry.epoch,
                entry.txn_first_offset.unwrap_or(-1),
                entry.last_timestamp,
                entry.last_update_ms
            );
            for batch in &entry.batches {
                let _ = write!(
                    text,
                    " {} {} {} {}",
                    batch.first_sequence,
                    batch.last_sequence,
                    batch.first_offset,
                    batch.last_offset
                );
            }
            text.push('\n');
        }
        for txn in &self.aborted {
            let _ = writeln!(
                text,
                "a {} {} {}",
                txn.producer_id, txn.first_offset, txn.last_offset
            );
        }
        crate::catalog::write_atomically(&dir.join(SNAPSHOT_FILE), text.as_bytes())
    }

    /// Loads the snapshot in `dir`, if there is a readable one, with the log end offset it covers.
    /// A damaged snapshot is ignored (the caller rescans the whole log), never half loaded.
    pub fn read_snapshot(dir: &Path) -> Option<(ProducerStates, i64)> {
        let text = std::fs::read_to_string(dir.join(SNAPSHOT_FILE)).ok()?;
        let mut lines = text.lines();
        let end_offset: i64 = lines
            .next()?
            .strip_prefix(SNAPSHOT_MAGIC)?
            .trim()
            .parse()
            .ok()?;
        let mut states = ProducerStates::default();
        for line in lines {
            let mut fields = line.split(' ');
            let kind = fields.next()?;
            let numbers: Vec<i64> = fields
                .map(|field| field.parse().ok())
                .collect::<Option<_>>()?;
            match kind {
                "p" => {
                    let (producer_id, entry) = parse_entry(&numbers)?;
                    states.install(producer_id, entry);
                }
                "a" => {
                    let [producer_id, first_offset, last_offset] = numbers[..] else {
                        return None;
                    };
                    states.aborted.push(AbortedTxn {
                        producer_id,
                        first_offset,
                        last_offset,
                    });
                }
                _ => return None,
            }
        }
        if !states.aborted.is_sorted_by_key(|txn| txn.last_offset) {
            return None;
        }
        Some((states, end_offset))
    }
}

fn parse_entry(numbers: &[i64]) -> Option<(i64, ProducerEntry)> {
    let (head, batches) = numbers.split_at_checked(5)?;
    let [producer_id, epoch, txn_first_offset, last_timestamp, last_update_ms] = head[..] else {
        return None;
    };
    if batches.len() % 4 != 0 || batches.len() / 4 > DEDUP_BATCHES_PER_PRODUCER {
        return None;
    }
    let mut entry = ProducerEntry::new(i16::try_from(epoch).ok()?, last_update_ms);
    entry.txn_first_offset = (txn_first_offset >= 0).then_some(txn_first_offset);
    entry.last_timestamp = last_timestamp;
    for batch in batches.chunks_exact(4) {
        entry.remember(BatchMetadata {
            first_sequence: i32::try_from(batch[0]).ok()?,
            last_sequence: i32::try_from(batch[1]).ok()?,
            first_offset: batch[2],
            last_offset: batch[3],
        });
    }
    Some((producer_id, entry))
}

/// Kafka's `checkProducerEpoch`, `checkSequence` and the transactional-state check for a client append.
fn check_append(
    current: Option<&ProducerEntry>,
    header: &BatchHeader,
    offset: i64,
) -> Result<(), ProducerError> {
    let producer_id = header.producer_id;
    let epoch = header.producer_epoch;
    let Some(entry) = current else {
        // A producer this partition has never seen (or has forgotten) may start at any sequence.
        return Ok(());
    };
    if epoch < entry.epoch {
        return Err(ProducerError::InvalidProducerEpoch(format!(
            "epoch {epoch} of producer {producer_id} at offset {offset} is older than the current epoch {}",
            entry.epoch
        )));
    }
    if epoch != entry.epoch {
        if header.base_sequence != 0 && entry.epoch != NO_PRODUCER_EPOCH {
            return Err(ProducerError::OutOfOrderSequence(format!(
                "new epoch {epoch} of producer {producer_id} must start at sequence 0, not {}",
                header.base_sequence
            )));
        }
    } else {
        let last = entry.last_sequence();
        if !in_sequence(last, header.base_sequence) {
            return Err(ProducerError::OutOfOrderSequence(format!(
                "producer {producer_id} epoch {epoch}: sequence {} does not follow {last}",
                header.base_sequence
            )));
        }
    }
    if entry.txn_first_offset.is_some() && !header.is_transactional() && epoch == entry.epoch {
        return Err(ProducerError::InvalidTxnState(format!(
            "producer {producer_id} sent a non-transactional batch inside its open transaction"
        )));
    }
    Ok(())
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) && last != i32::MAX || (next == 0 && last == i32::MAX)
}

fn apply_data_batch(
    entry: &mut ProducerEntry,
    header: &BatchHeader,
    first_offset: i64,
    last_seq: i32,
    now_ms: i64,
) {
    entry.set_epoch(header.producer_epoch);
    let last_offset = first_offset + i64::from(header.last_offset_delta.max(0));
    if header.base_sequence >= 0 {
        entry.remember(BatchMetadata {
            first_sequence: header.base_sequence,
            last_sequence: last_seq,
            first_offset,
            last_offset,
        });
    }
    if header.is_transactional() && entry.txn_first_offset.is_none() {
        entry.txn_first_offset = Some(first_offset);
    }
    entry.last_timestamp = header.max_timestamp;
    entry.last_update_ms = now_ms;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, sequence: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 5,
            max_timestamp: 5,
            producer_id,
            producer_epoch: epoch,
            base_sequence: sequence,
            records_count: records,
        }
    }

    fn transactional(mut header: BatchHeader) -> BatchHeader {
        header.attributes |= 1 << 4;
        header
    }

    /// Plans and commits one batch at `offset`, returning the first offset the producer is answered.
    fn append(
        states: &mut ProducerStates,
        header: BatchHeader,
        offset: i64,
    ) -> Result<i64, ProducerError> {
        match states.plan(&[(header, offset)], 0)? {
            Plan::Append(updated) => {
                states.commit(updated);
                Ok(offset)
            }
            Plan::Duplicate(batch) => Ok(batch.first_offset),
        }
    }

    #[test]
    fn duplicates_get_their_original_offsets_and_gaps_are_refused() {
        let mut states = ProducerStates::default();
        assert_eq!(append(&mut states, header(7, 0, 0, 3), 0), Ok(0));
        assert_eq!(append(&mut states, header(7, 0, 3, 2), 3), Ok(3));
        // A retry of either batch is answered with its first offset and appends nothing.
        assert_eq!(append(&mut states, header(7, 0, 0, 3), 5), Ok(0));
        assert_eq!(append(&mut states, header(7, 0, 3, 2), 5), Ok(3));
        assert!(matches!(
            append(&mut states, header(7, 0, 6, 1), 5),
            Err(ProducerError::OutOfOrderSequence(_))
        ));
        assert_eq!(append(&mut states, header(7, 0, 5, 1), 5), Ok(5));
        // Only the last five batches are remembered.
        for sequence in 6..12 {
            append(&mut states, header(7, 0, sequence, 1), i64::from(sequence)).unwrap();
        }
        assert!(matches!(
            append(&mut states, header(7, 0, 0, 3), 12),
            Err(ProducerError::OutOfOrderSequence(_))
        ));
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        let mut states = ProducerStates::default();
        append(&mut states, header(9, 3, 40, 1), 0).unwrap();
        assert!(matches!(
            append(&mut states, header(9, 2, 41, 1), 1),
            Err(ProducerError::InvalidProducerEpoch(_))
        ));
        assert!(matches!(
            append(&mut states, header(9, 4, 5, 1), 1),
            Err(ProducerError::OutOfOrderSequence(_))
        ));
        assert_eq!(append(&mut states, header(9, 4, 0, 1), 1), Ok(1));
        assert!(matches!(
            append(&mut states, header(9, 3, 41, 1), 2),
            Err(ProducerError::InvalidProducerEpoch(_))
        ));
    }

    #[test]
    fn sequence_wraps_after_i32_max() {
        let mut states = ProducerStates::default();
        append(&mut states, header(1, 0, i32::MAX - 1, 2), 0).unwrap();
        assert_eq!(append(&mut states, header(1, 0, 0, 1), 2), Ok(2));
    }

    #[test]
    fn several_batches_of_one_producer_in_one_append_are_checked_in_order() {
        let states = ProducerStates::default();
        let batches = [(header(3, 0, 0, 2), 0), (header(3, 0, 2, 2), 2)];
        assert!(matches!(states.plan(&batches, 0), Ok(Plan::Append(_))));
        let gap = [(header(3, 0, 0, 2), 0), (header(3, 0, 3, 2), 2)];
        assert!(states.plan(&gap, 0).is_err());
    }

    #[test]
    fn transactions_set_the_first_unstable_offset_and_aborts_are_indexed() {
        let mut states = ProducerStates::default();
        append(&mut states, transactional(header(1, 0, 0, 2)), 10).unwrap();
        append(&mut states, transactional(header(2, 0, 0, 1)), 12).unwrap();
        append(&mut states, transactional(header(1, 0, 2, 1)), 13).unwrap();
        assert_eq!(states.first_unstable_offset(), Some(10));
        assert!(matches!(
            append(&mut states, header(1, 0, 3, 1), 14),
            Err(ProducerError::InvalidTxnState(_))
        ));
        states.apply_marker(1, 0, ControlType::Abort, 14, 0);
        assert_eq!(states.first_unstable_offset(), Some(12));
        states.apply_marker(2, 0, ControlType::Commit, 15, 0);
        assert_eq!(states.first_unstable_offset(), None);
        let aborted = states.aborted_between(0, 100);
        assert_eq!(
            aborted,
            vec![AbortedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 14
            }]
        );
        assert!(states.aborted_between(15, 100).is_empty());
        assert!(states.aborted_between(0, 10).is_empty());
        assert!(states.check_marker(1, -1).is_err());
        assert!(states.check_marker(1, 0).is_ok());
    }

    #[test]
    fn snapshot_round_trips_and_damage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut states = ProducerStates::default();
        for sequence in 0..7 {
            append(&mut states, header(4, 1, sequence, 1), i64::from(sequence)).unwrap();
        }
        append(&mut states, transactional(header(5, 0, 0, 1)), 7).unwrap();
        states.apply_marker(5, 0, ControlType::Abort, 8, 0);
        append(&mut states, transactional(header(5, 0, 1, 1)), 9).unwrap();
        states.write_snapshot(dir.path(), 10).unwrap();
        let (mut loaded, end) = ProducerStates::read_snapshot(dir.path()).unwrap();
        assert_eq!(end, 10);
        assert_eq!(loaded.first_unstable_offset(), Some(9));
        assert_eq!(loaded.aborted_between(0, 100).len(), 1);
        assert_eq!(loaded.producer(4).unwrap().batches.len(), 5);
        assert_eq!(append(&mut loaded, header(4, 1, 6, 1), 11), Ok(6));
        assert!(append(&mut loaded, header(4, 1, 8, 1), 11).is_err());
        std::fs::write(
            dir.path().join(SNAPSHOT_FILE),
            "fluxmq-producer-state 1 10\np x\n",
        )
        .unwrap();
        assert!(ProducerStates::read_snapshot(dir.path()).is_none());
    }

    #[test]
    fn expiry_keeps_open_transactions() {
        let mut states = ProducerStates::default();
        append(&mut states, header(1, 0, 0, 1), 0).unwrap();
        append(&mut states, transactional(header(2, 0, 0, 1)), 1).unwrap();
        assert_eq!(states.expire(PRODUCER_EXPIRATION_MS, 0), 1);
        assert!(states.producer(2).is_some());
    }
}
