//! A partition's segmented log: an ordered run of segments in one directory, where the last segment is
//! the active one that takes appends and every earlier one is sealed.
//!
//! Owns: offset assignment, rolling, finding the segment and batch for a fetch, timestamp lookups,
//! retention, flush and clean shutdown of one partition. Must not touch: Kafka API types or error codes,
//! other partitions, and the details of boot-time repair (`recovery.rs` builds the segments `open` uses).
//!
//! Durability of a sealed segment (fdatasync, index files, directory) is the shard's syncer's job, off
//! the reactor (`syncer.rs`); the log remembers each segment's ticket so that retention never deletes
//! a segment whose job is still queued and `close`, `flush` and `delete` wait for them.
//!
//! Invariants: segments are contiguous (each starts at the previous one's end offset), offsets inside a
//! segment are contiguous (each batch starts at the previous batch's last offset + 1), and the log end
//! offset is the last record's offset + 1. Recovery establishes them from disk; `append` keeps them.

use std::cell::{Cell, Ref, RefCell};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::batch::{
    first_record_at_or_after, set_base_offset, set_log_append_time, set_partition_leader_epoch,
    verify_crc, BatchError, BatchHeader, Batches, BATCH_HEADER_BYTES,
};
use super::index::{OffsetEntry, SegmentIndex, INDEX_INTERVAL_BYTES_DEFAULT};
use super::segment::Segment;
use super::syncer::{CachedSegment, SealJob, Syncer, Ticket};

/// The smallest read `PartitionLog::done_reading` unmaps right after its copy: a quarter of a
/// consumer's default 1 MiB partition fetch.
pub const UNMAPPED_AFTER_COPY_BYTES_MIN: usize = 256 << 10;
use super::{io_error, recovery, sync_directory, StorageError};

/// Largest segment: batch positions are stored as u32 in the offset index, and Kafka caps
/// `segment.bytes` at `i32::MAX` too.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
/// Smallest segment: it must hold at least one batch header.
pub const SEGMENT_BYTES_MIN: u64 = BATCH_HEADER_BYTES as u64;
/// Largest distance between a segment's base offset and any offset in it. Relative offsets are u32 in
/// the indexes; like Kafka we roll at `i32::MAX` so a hostile `lastOffsetDelta` cannot wrap them.
pub const SEGMENT_RELATIVE_OFFSET_MAX: i64 = i32::MAX as i64;
/// Written by `close` after everything is durable, deleted by `open` before the first append. Its
/// presence at boot means the indexes can be trusted and the active segment ends where they say.
pub const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";

/// Per-partition storage settings, mirroring the Kafka topic configs of the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: how many bytes of batches a segment takes before the log rolls.
    pub segment_bytes: u64,
    /// `segment.ms`: a non-empty active segment older than this is rolled on the next append.
    pub segment_ms: i64,
    /// `index.interval.bytes`: bytes of batches between offset index entries.
    pub index_interval_bytes: u32,
    /// `message.timestamp.type=LogAppendTime`: stamp each batch with the broker's clock.
    pub log_append_time: bool,
    /// `max.message.bytes`: largest batch. It may exceed `segment_bytes` (Kafka's defaults do, by 12
    /// bytes); such a batch gets a segment of its own, grown to fit.
    pub max_batch_bytes: usize,
    /// `retention.ms`, -1 to keep forever.
    pub retention_ms: i64,
    /// `retention.bytes`, -1 for no size limit.
    pub retention_bytes: i64,
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: INDEX_INTERVAL_BYTES_DEFAULT,
            log_append_time: false,
            max_batch_bytes: 1_048_588,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
        }
    }
}

impl LogConfig {
    pub fn validate(&self) -> Result<(), StorageError> {
        if self.segment_bytes < SEGMENT_BYTES_MIN || self.segment_bytes > SEGMENT_BYTES_MAX {
            return Err(StorageError::InvalidConfig(
                "segment_bytes is outside [61, 2^31 - 1]",
            ));
        }
        if self.max_batch_bytes < BATCH_HEADER_BYTES
            || self.max_batch_bytes as u64 > SEGMENT_BYTES_MAX
        {
            return Err(StorageError::InvalidConfig(
                "max_batch_bytes is outside [61, 2^31 - 1]",
            ));
        }
        if self.segment_ms <= 0 {
            return Err(StorageError::InvalidConfig("segment_ms must be positive"));
        }
        if self.retention_ms < -1 || self.retention_bytes < -1 {
            return Err(StorageError::InvalidConfig(
                "retention limits must be -1 or non-negative",
            ));
        }
        Ok(())
    }
}

/// What an append did, for the produce response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker time stamped into the batches, or -1 when the topic uses CreateTime.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

/// A segment's indexes: in memory, or, for a durable sealed segment, only in their files. A sealed
/// segment's entries (about 24 bytes per batch of at least 4 KiB: ~100 KiB per 64 MiB segment of
/// 16 KiB batches) would otherwise stay in memory for as long as the segment is retained, a gigabyte
/// and more on a broker holding terabytes. The log drops them once nobody needs them
/// (`PartitionLog::drop_idle_indexes`) and a lookup loads them again from the files
/// (`recovery::reload_sealed_index`): two small reads on the reactor, as a read of a segment that left
/// the page cache faults its pages in on the reactor (damaged files are rebuilt from the data and
/// rewritten, as at open).
pub(crate) struct Indexes {
    state: RefCell<IndexState>,
    /// Set by every lookup, cleared by `PartitionLog::drop_idle_indexes`: entries looked up since the
    /// last roll are kept through it.
    used: Cell<bool>,
}

enum IndexState {
    Loaded(SegmentIndex),
    /// Dropped from memory. The largest timestamp stays: retention and ListOffsets ask every segment.
    InFiles {
        interval_bytes: u32,
        timestamp_max: Option<(i64, u32)>,
    },
}

impl Indexes {
    pub(crate) fn loaded(index: SegmentIndex) -> Indexes {
        Indexes {
            state: RefCell::new(IndexState::Loaded(index)),
            used: Cell::new(false),
        }
    }

    /// Largest timestamp of any batch, with the relative offset of the first batch carrying it.
    fn timestamp_max(&self) -> Option<(i64, u32)> {
        match &*self.state.borrow() {
            IndexState::Loaded(index) => index.timestamp_max(),
            IndexState::InFiles { timestamp_max, .. } => *timestamp_max,
        }
    }

    /// The entries, loaded from the files of `data` first if they were dropped.
    fn get(&self, data: &Segment) -> Result<Ref<'_, SegmentIndex>, StorageError> {
        self.used.set(true);
        let reload = match &*self.state.borrow() {
            IndexState::Loaded(_) => None,
            IndexState::InFiles { interval_bytes, .. } => Some(*interval_bytes),
        };
        if let Some(interval_bytes) = reload {
            let index = recovery::reload_sealed_index(data, interval_bytes)?;
            *self.state.borrow_mut() = IndexState::Loaded(index);
        }
        Ok(Ref::map(self.state.borrow(), |state| match state {
            IndexState::Loaded(index) => index,
            IndexState::InFiles { .. } => unreachable!("loaded just above"),
        }))
    }

    /// The entries of a segment that is still written to (or being sealed), which are never dropped.
    fn active(&mut self) -> &mut SegmentIndex {
        match self.state.get_mut() {
            IndexState::Loaded(index) => index,
            IndexState::InFiles { .. } => {
                unreachable!("an unsealed segment's indexes are in memory")
            }
        }
    }

    fn is_loaded(&self) -> bool {
        matches!(&*self.state.borrow(), IndexState::Loaded(_))
    }

    /// Drops the entries from memory. Only for a sealed segment whose index files are durable.
    fn drop_entries(&self, interval_bytes: u32) {
        let timestamp_max = self.timestamp_max();
        *self.state.borrow_mut() = IndexState::InFiles {
            interval_bytes,
            timestamp_max,
        };
    }
}

/// One segment with its indexes and the offsets it covers. Built by recovery or by a roll.
pub(crate) struct LogSegment {
    pub(crate) data: Segment,
    pub(crate) index: Indexes,
    /// The offset after the segment's last record; equals the base offset while it is empty.
    pub(crate) end_offset: i64,
    /// Clock reading the `segment_ms` roll is measured from.
    pub(crate) created_ms: i64,
    /// The syncer job making this sealed segment durable; `None` for the active segment and for
    /// segments that were sealed when the log opened.
    pub(crate) seal_ticket: Option<Ticket>,
}

impl LogSegment {
    fn base_offset(&self) -> i64 {
        self.data.base_offset()
    }

    fn relative(&self, offset: i64) -> u32 {
        let relative = offset - self.base_offset();
        assert!(relative >= 0);
        assert!(relative <= SEGMENT_RELATIVE_OFFSET_MAX);
        relative as u32
    }

    fn corrupt(&self, position: usize, error: BatchError) -> StorageError {
        let path = self.data.path().display();
        StorageError::Corrupt(format!("{path} at position {position}: {error}"))
    }

    /// Walks batches from an index entry after checking that the entry names the batch found there.
    /// Recovery verified only the last entry of a loaded index; a damaged middle entry must surface as
    /// an error here rather than as a misparsed batch.
    fn batches_from(&self, entry: OffsetEntry) -> Result<Batches<'_>, StorageError> {
        let bytes = self.data.written();
        let position = entry.position as usize;
        let header = BatchHeader::parse(bytes.get(position..).unwrap_or_default())
            .map_err(|error| self.corrupt(position, error))?;
        if header.base_offset != self.base_offset() + i64::from(entry.relative_offset) {
            let mismatch = BatchError::Invalid("index entry does not match the batch it points at");
            return Err(self.corrupt(position, mismatch));
        }
        Ok(Batches::starting_at(bytes, position))
    }

    /// Position and header of the batch holding `offset`, found from the floor index entry.
    fn find_batch(&self, offset: i64) -> Result<(usize, BatchHeader), StorageError> {
        assert!(offset >= self.base_offset());
        assert!(offset < self.end_offset);
        let entry = self
            .index
            .get(&self.data)?
            .lookup_offset(self.relative(offset));
        let mut position = entry.position as usize;
        // Bounded by the segment: each step moves forward by at least one batch header.
        for item in self.batches_from(entry)? {
            let (batch_position, header) = item.map_err(|error| self.corrupt(position, error))?;
            if header.last_offset() >= offset {
                return Ok((batch_position, header));
            }
            position = batch_position + header.total_bytes();
        }
        Err(self.corrupt(
            position,
            BatchError::Invalid("no batch holds an offset below the segment end"),
        ))
    }

    /// Whole batches from the one holding `fetch_offset`; the first always, more while the total stays
    /// within `max_bytes`.
    /// Whole batches from the one holding `fetch_offset`, and where in the segment they start.
    fn read_from(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
    ) -> Result<(usize, &[u8]), StorageError> {
        let (start, first) = self.find_batch(fetch_offset)?;
        let mut end = start + first.total_bytes();
        for item in Batches::starting_at(self.data.written(), end) {
            let (position, header) = item.map_err(|error| self.corrupt(end, error))?;
            assert!(position == end);
            if position + header.total_bytes() - start > max_bytes {
                break;
            }
            end = position + header.total_bytes();
        }
        Ok((start, self.data.read(start, end - start)))
    }

    /// First record at or after `target_ms` in this segment, at record precision.
    fn search_timestamp(&self, target_ms: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let start = {
            let index = self.index.get(&self.data)?;
            index.lookup_offset(index.scan_start_for_timestamp(target_ms))
        };
        let bytes = self.data.written();
        for item in self.batches_from(start)? {
            let (position, header) =
                item.map_err(|error| self.corrupt(start.position as usize, error))?;
            if header.max_timestamp < target_ms {
                continue;
            }
            let batch = &bytes[position..position + header.total_bytes()];
            let found = first_record_at_or_after(batch, target_ms)
                .map_err(|error| self.corrupt(position, error))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Offset of the first record in the batch at `batch_offset` whose timestamp is `timestamp_ms`.
    fn locate_record(&self, batch_offset: i64, timestamp_ms: i64) -> Result<i64, StorageError> {
        let (position, header) = self.find_batch(batch_offset)?;
        let batch = &self.data.written()[position..position + header.total_bytes()];
        let found = first_record_at_or_after(batch, timestamp_ms)
            .map_err(|error| self.corrupt(position, error))?;
        // A producer may claim a maxTimestamp no record carries; report the batch then, as Kafka did
        // before it located records.
        Ok(found.map_or(header.last_offset(), |(offset, _)| offset))
    }

    /// The timestamp retention measures age from: the largest batch timestamp, or the file's
    /// modification time when no batch carries one.
    fn retention_timestamp_ms(&self) -> Result<i64, StorageError> {
        match self.index.timestamp_max() {
            Some((timestamp, _)) if timestamp >= 0 => Ok(timestamp),
            _ => self.data.modified_ms(),
        }
    }
}

/// The log of one partition. Owned by one shard; every method is synchronous.
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Never empty; the last one is the active segment.
    segments: Vec<LogSegment>,
    /// The shard's syncer, shared by all its logs.
    syncer: Rc<Syncer>,
    /// The newest seal job this log submitted: every earlier one finishes before it.
    seal_ticket_last: Option<Ticket>,
    /// Set by the syncer when a seal job of this log failed; `close` then leaves no clean-shutdown
    /// marker, so the next start checks the data instead of trusting it.
    seal_failed: Arc<AtomicBool>,
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, running recovery: see `recovery.rs`. Sealed segments are
    /// made durable by `syncer`, the shard's.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        now_ms: i64,
        syncer: Rc<Syncer>,
    ) -> Result<PartitionLog, StorageError> {
        config.validate()?;
        std::fs::create_dir_all(dir)
            .map_err(io_error(format!("create log directory {}", dir.display())))?;
        let segments = recovery::recover(dir, &config, now_ms)?;
        assert!(!segments.is_empty());
        let log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            syncer,
            seal_ticket_last: None,
            seal_failed: Arc::new(AtomicBool::new(false)),
        };
        // Recovery loaded every segment's indexes to check them; a log of many segments keeps few.
        log.drop_idle_indexes();
        Ok(log)
    }

    /// Drops from memory the index entries of the durable sealed segments that no lookup used since the
    /// last call, except the newest sealed segment's (a consumer at the tail reads it right after a
    /// roll); clears the mark of those that were used. Called at every roll and at open, so the entries
    /// in memory are those of the active segment, the newest sealed one, and the segments read within
    /// the last two rolls.
    fn drop_idle_indexes(&self) {
        let sealed_before_newest = self.segments.len().saturating_sub(2);
        for segment in &self.segments[..sealed_before_newest] {
            if !segment.index.is_loaded() || !self.is_durable(segment) {
                continue;
            }
            if !segment.index.used.replace(false) {
                segment.index.drop_entries(self.config.index_interval_bytes);
            }
        }
    }

    /// Whether a sealed segment's data and index files are durable (its seal job has run), so that its
    /// index entries can be loaded again from the files.
    fn is_durable(&self, segment: &LogSegment) -> bool {
        segment.data.is_sealed()
            && segment
                .seal_ticket
                .is_none_or(|ticket| self.syncer.is_finished(ticket))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn log_start_offset(&self) -> i64 {
        self.segments[0].base_offset()
    }

    /// The offset the next record will get: the last record's offset + 1.
    pub fn log_end_offset(&self) -> i64 {
        self.active().end_offset
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments
            .iter()
            .map(|segment| segment.data.written_bytes() as u64)
            .sum()
    }

    fn active(&self) -> &LogSegment {
        let last = self.segments.last();
        last.expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        let last = self.segments.last_mut();
        last.expect("a log always has an active segment")
    }

    /// Appends batches that `validate_batches` accepted. Each batch gets base offset = log end offset and
    /// leader epoch 0, and LogAppendTime when configured. If an I/O error interrupts a multi-batch append,
    /// the batches before it stay appended; the caller should treat the partition as failed.
    pub fn append(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendInfo, StorageError> {
        self.check_append_input(batches)?;
        let base_offset = self.log_end_offset();
        for item in Batches::new(batches) {
            let (position, header) = item?;
            let batch = &batches[position..position + header.total_bytes()];
            self.append_batch(batch, &header, now_ms)?;
        }
        assert!(self.log_end_offset() > base_offset);
        let log_append_time_ms = match self.config.log_append_time {
            true => now_ms,
            false => -1,
        };
        Ok(AppendInfo {
            base_offset,
            last_offset: self.log_end_offset() - 1,
            log_append_time_ms,
            log_start_offset: self.log_start_offset(),
        })
    }

    /// Rechecks the framing before the first byte is written, so that malformed input cannot leave half
    /// an append behind. The CRC was checked by `validate_batches` and is not recomputed here.
    fn check_append_input(&self, batches: &[u8]) -> Result<(), StorageError> {
        if batches.is_empty() {
            return Err(BatchError::Invalid("records hold no record batch").into());
        }
        for item in Batches::new(batches) {
            let (_, header) = item?;
            if header.total_bytes() > self.config.max_batch_bytes {
                let size_bytes = header.total_bytes();
                let limit_bytes = self.config.max_batch_bytes;
                return Err(BatchError::TooLarge {
                    size_bytes,
                    limit_bytes,
                }
                .into());
            }
            if header.last_offset_delta < 0 {
                return Err(BatchError::Invalid("lastOffsetDelta is negative").into());
            }
        }
        Ok(())
    }

    fn append_batch(
        &mut self,
        batch: &[u8],
        header: &BatchHeader,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let base_offset = self.log_end_offset();
        let last_offset = base_offset
            .checked_add(i64::from(header.last_offset_delta))
            .filter(|last_offset| *last_offset < i64::MAX)
            .ok_or(StorageError::OffsetOverflow(base_offset))?;
        if self.should_roll(batch.len(), last_offset, now_ms) {
            self.roll(now_ms)?;
        }
        let log_append_time = self.config.log_append_time;
        let active = self.active_mut();
        if batch.len() > active.data.remaining_bytes() {
            // Only an empty segment gets here (`should_roll` rolled a non-empty one), and the batch is
            // at most `max_batch_bytes <= SEGMENT_BYTES_MAX`, so positions still fit the index.
            assert!(active.data.is_empty());
            active.data.grow(batch.len())?;
        }
        let relative_offset = active.relative(base_offset);
        let position = active.data.written_bytes();
        // Stamp a copy of the header; the records go from the request to the page cache in one copy.
        let (records_header, records) = batch.split_at(BATCH_HEADER_BYTES);
        let mut stamped = [0u8; BATCH_HEADER_BYTES];
        stamped.copy_from_slice(records_header);
        set_base_offset(&mut stamped, base_offset);
        set_partition_leader_epoch(&mut stamped, 0);
        let max_timestamp = match log_append_time {
            true => {
                set_log_append_time(&mut stamped, records, now_ms);
                now_ms
            }
            false => header.max_timestamp,
        };
        active.data.append(&stamped, records)?;
        // Pair of the check before append: what the mapping shows is the valid batch we wrote, with
        // its offset. O(n), so debug only.
        debug_assert!({
            let stored = &active.data.written()[position..];
            BatchHeader::parse(stored).is_ok_and(|stored_header| {
                stored_header.base_offset == base_offset
                    && verify_crc(&stored[..stored_header.total_bytes()], &stored_header).is_ok()
            })
        });
        active.index.active().on_batch(
            relative_offset,
            position as u32,
            batch.len() as u32,
            max_timestamp,
        );
        active.end_offset = last_offset + 1;
        assert!(active.relative(last_offset) >= relative_offset);
        Ok(())
    }

    /// Roll when the batch does not fit, the active segment is older than `segment_ms`, or its offsets
    /// would no longer fit relative to the base. An empty segment always takes the batch (growing if
    /// needed), so that a roll never creates an empty sealed segment.
    fn should_roll(&self, size_bytes: usize, last_offset: i64, now_ms: i64) -> bool {
        let active = self.active();
        if active.data.is_empty() {
            return false;
        }
        let full = size_bytes > active.data.remaining_bytes();
        let old = now_ms.saturating_sub(active.created_ms) > self.config.segment_ms;
        let offsets_overflow = last_offset - active.base_offset() > SEGMENT_RELATIVE_OFFSET_MAX;
        full || old || offsets_overflow
    }

    /// Seals the active segment (unless a failed roll already did), hands its durability to the
    /// syncer and starts a new segment at the log end. Nothing here waits for the disk: the old
    /// segment's bytes are already in the page cache, which is all an acknowledgement promises, and the
    /// new segment is an empty file and a mapping. The new file's directory entry becomes durable with
    /// the directory fsync of a later seal job or of `close`.
    fn roll(&mut self, now_ms: i64) -> Result<(), StorageError> {
        let base_offset = self.log_end_offset();
        let active = self
            .segments
            .last_mut()
            .expect("a log always has an active segment");
        if !active.data.is_sealed() {
            active.index.active().finish();
            active.data.seal()?;
            let job = SealJob {
                data: active.data.sync_handle(),
                data_path: active.data.path().to_path_buf(),
                dir: self.dir.clone(),
                index: active.index.active().clone(),
                failed: self.seal_failed.clone(),
                evicted: active.data.eviction_flag(),
            };
            let ticket = self.syncer.submit(job);
            active.seal_ticket = Some(ticket);
            self.seal_ticket_last = Some(ticket);
        }
        let capacity_bytes = self.config.segment_bytes as usize;
        let data = Segment::create(&self.dir, base_offset, capacity_bytes)?;
        self.segments.push(LogSegment {
            data,
            index: Indexes::loaded(SegmentIndex::new(
                base_offset,
                self.config.index_interval_bytes,
            )),
            end_offset: base_offset,
            created_ms: now_ms,
            seal_ticket: None,
        });
        self.drop_idle_indexes();
        Ok(())
    }

    /// The segments that were sealed and durable when the log opened, each with its file's
    /// modification time, for the shard's page-cache budget (`Syncer::admit_cached`).
    pub(crate) fn durable_sealed_segments(&self) -> Vec<(i64, CachedSegment)> {
        self.segments
            .iter()
            .filter(|segment| segment.data.is_sealed() && segment.seal_ticket.is_none())
            .map(|segment| {
                let modified_ms = segment.data.modified_ms().unwrap_or(0);
                (modified_ms, CachedSegment::of(&segment.data))
            })
            .collect()
    }

    /// Unmaps the pages of a slice `read` returned, once the caller has copied it: a consumer catching
    /// up then holds none of its last read in the process's page tables. Reads smaller than
    /// `UNMAPPED_AFTER_COPY_BYTES_MIN` are left to the windows of `Segment::read`: each `madvise`
    /// that drops mappings flushes the TLB of every core running a shard, which a tail consumer's
    /// small fetches would do thousands of times a second.
    pub fn done_reading(&self, bytes: &[u8]) {
        if bytes.len() < UNMAPPED_AFTER_COPY_BYTES_MIN {
            return;
        }
        // Reads come from the newest segments most of the time.
        for segment in self.segments.iter().rev() {
            if segment.data.unmap_read(bytes) {
                return;
            }
        }
    }

    /// Whole batches starting with the one that holds `fetch_offset`, all from one segment. The first
    /// batch is returned even when it is larger than `max_bytes`, so a consumer always makes progress.
    pub fn read(&self, fetch_offset: i64, max_bytes: usize) -> Result<&[u8], StorageError> {
        self.check_range(fetch_offset)?;
        if fetch_offset == self.log_end_offset() {
            return Ok(&[]);
        }
        let first = self.segment_position_for(fetch_offset);
        // A segment that ends at `fetch_offset` (or is empty) hands over to the next one.
        let found = self.segments[first..]
            .iter()
            .position(|segment| fetch_offset < segment.end_offset);
        let index = first + found.expect("contiguous segments hold every offset below the log end");
        let (start, bytes) = self.segments[index].read_from(fetch_offset, max_bytes)?;
        // `Segment::read` unmaps behind a reader within its segment; a reader that has just moved on to
        // the next segment is done with the last windows of this one.
        if start == 0 {
            if let Some(previous) = index.checked_sub(1).and_then(|at| self.segments.get(at)) {
                previous.data.unmap_all();
                // And with its index, unless it is the newest sealed segment (where tail consumers
                // read) or not durable yet.
                let newest_sealed = index + 1 == self.segments.len();
                if !newest_sealed && previous.index.is_loaded() && self.is_durable(previous) {
                    previous
                        .index
                        .drop_entries(self.config.index_interval_bytes);
                }
            }
        }
        Ok(bytes)
    }

    /// Calls `visit` with the header and bytes of every batch from the one holding `from_offset` to the
    /// log end, in offset order. Used at open to rebuild producer state; it touches batch headers (and
    /// the bytes of the few control batches), not records.
    pub fn scan_batches(
        &self,
        from_offset: i64,
        mut visit: impl FnMut(&BatchHeader, &[u8]),
    ) -> Result<(), StorageError> {
        let from = from_offset.max(self.log_start_offset());
        if from >= self.log_end_offset() {
            return Ok(());
        }
        let first = self.segment_position_for(from);
        // Bounded by the log: each step moves forward by at least one batch header.
        for segment in &self.segments[first..] {
            if segment.end_offset <= from {
                continue;
            }
            let bytes = segment.data.written();
            let start = match from > segment.base_offset() {
                true => segment.find_batch(from)?.0,
                false => 0,
            };
            for item in Batches::starting_at(bytes, start) {
                let (position, header) = item.map_err(|error| segment.corrupt(start, error))?;
                visit(&header, &bytes[position..position + header.total_bytes()]);
            }
        }
        Ok(())
    }

    fn check_range(&self, offset: i64) -> Result<(), StorageError> {
        if offset < self.log_start_offset() || offset > self.log_end_offset() {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset: self.log_end_offset(),
            });
        }
        Ok(())
    }

    /// Index of the last segment whose base offset is at or below `offset`.
    fn segment_position_for(&self, offset: i64) -> usize {
        let count = self
            .segments
            .partition_point(|segment| segment.base_offset() <= offset);
        assert!(count >= 1);
        count - 1
    }

    /// First record (in offset order) whose timestamp is at least `target_ms`, as `(offset, timestamp)`;
    /// `None` when every record is older.
    pub fn offset_for_timestamp(&self, target_ms: i64) -> Result<Option<(i64, i64)>, StorageError> {
        // Bounded by the segment count; segments whose largest timestamp is too old are skipped whole.
        for segment in &self.segments {
            let Some((timestamp_max, _)) = segment.index.timestamp_max() else {
                continue;
            };
            if timestamp_max < target_ms {
                continue;
            }
            if let Some(found) = segment.search_timestamp(target_ms)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The largest record timestamp and the offset of the first record carrying it, as `(timestamp,
    /// offset)`, for ListOffsets MAX_TIMESTAMP. `None` for an empty log. If the batch holding it cannot
    /// be decoded, the batch's last offset is reported and the error logged.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, &LogSegment, u32)> = None;
        for segment in &self.segments {
            if let Some((timestamp, relative_offset)) = segment.index.timestamp_max() {
                if best.is_none_or(|(best_timestamp, _, _)| timestamp > best_timestamp) {
                    best = Some((timestamp, segment, relative_offset));
                }
            }
        }
        let (timestamp, segment, relative_offset) = best?;
        let batch_offset = segment.base_offset() + i64::from(relative_offset);
        match segment.locate_record(batch_offset, timestamp) {
            Ok(offset) => Some((timestamp, offset)),
            Err(error) => {
                log::warn!("cannot locate the record with the max timestamp: {error}");
                Some((timestamp, batch_offset))
            }
        }
    }

    /// Makes every appended byte durable: waits for the log's queued seal jobs (normally finished long
    /// ago), then fdatasyncs the active segment. Blocks the calling thread; not for the produce path.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.wait_for_seal_jobs()?;
        self.active_mut().data.flush()
    }

    /// Waits until every seal job this log submitted has run; fails if one of them failed.
    fn wait_for_seal_jobs(&self) -> Result<(), StorageError> {
        if let Some(ticket) = self.seal_ticket_last {
            self.syncer.wait(ticket);
        }
        match self.seal_failed.load(Ordering::Acquire) {
            false => Ok(()),
            true => Err(StorageError::io(
                format!("make the sealed segments of {} durable", self.dir.display()),
                std::io::Error::other("a seal job failed; its error was logged"),
            )),
        }
    }

    /// Clean shutdown: wait for the seal jobs, seal and sync the active segment, write its indexes,
    /// then leave the `clean-shutdown` marker so the next `open` can trust the indexes.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.wait_for_seal_jobs()?;
        let active = self
            .segments
            .last_mut()
            .expect("a log always has an active segment");
        if !active.data.is_sealed() {
            active.index.active().finish();
            active.data.seal()?;
        }
        active.data.flush()?;
        active.index.active().write_files(&self.dir)?;
        // The index renames must be durable before the marker that vouches for them.
        sync_directory(&self.dir)?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        let context = format!("write {}", marker.display());
        let file = File::create(&marker).map_err(io_error(context.clone()))?;
        file.sync_all().map_err(io_error(context))?;
        sync_directory(&self.dir)
    }

    /// Removes the partition's directory and everything in it, once no seal job uses it any more (a
    /// job finishing later would write index files into a directory a new topic of the same name may
    /// own by then).
    pub fn delete(self) -> Result<(), StorageError> {
        if let Some(ticket) = self.seal_ticket_last {
            self.syncer.wait(ticket);
        }
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir)
            .map_err(io_error(format!("delete log directory {}", dir.display())))
    }

    /// Deletes the oldest sealed segments that are past `retention_ms` (by their largest timestamp) or
    /// beyond `retention_bytes`, stopping at the first one that is not; never the active segment, and
    /// never one whose seal job is still queued (the job would write index files after the deletion).
    /// Returns how many were deleted; the log start offset moves to the first remaining segment.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, StorageError> {
        let count = self.expired_segment_count(now_ms)?;
        if count == 0 {
            return Ok(0);
        }
        for segment in self.segments.drain(..count) {
            let base_offset = segment.base_offset();
            // Data first: an index left behind by a crash here is deleted by recovery.
            segment.data.delete()?;
            SegmentIndex::delete_files(&self.dir, base_offset)?;
        }
        sync_directory(&self.dir)?;
        assert!(!self.segments.is_empty());
        Ok(count)
    }

    fn expired_segment_count(&self, now_ms: i64) -> Result<usize, StorageError> {
        let mut size_bytes = self.size_bytes();
        let mut count = 0;
        let sealed = &self.segments[..self.segments.len() - 1];
        for segment in sealed {
            let sealing = segment
                .seal_ticket
                .is_some_and(|ticket| !self.syncer.is_finished(ticket));
            if sealing {
                break;
            }
            let segment_bytes = segment.data.written_bytes() as u64;
            let limit_bytes = self.config.retention_bytes;
            let over_size = limit_bytes >= 0 && size_bytes - segment_bytes >= limit_bytes as u64;
            let too_old = self.config.retention_ms >= 0
                && now_ms.saturating_sub(segment.retention_timestamp_ms()?)
                    > self.config.retention_ms;
            if !over_size && !too_old {
                break;
            }
            size_bytes -= segment_bytes;
            count += 1;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::{BatchHeader, TimestampType};
    use crate::storage::index::{offset_index_path, time_index_path};
    use crate::storage::segment::RESIDENT_WINDOW_BYTES;
    use crate::storage::testing::{
        build_batch, cached_pages, disk_tempdir, mapped_pages, simple_batch, small_config,
        stored_copy, syncer, syncer_with_budget, BlockedSyncer, Codec, Random,
    };

    /// A stored batch and the offsets it covers.
    struct Expected {
        base_offset: i64,
        last_offset: i64,
        bytes: Vec<u8>,
    }

    /// Appends `count` batches of 1-5 records with varied sizes, one or two per append call.
    fn fill(log: &mut PartitionLog, count: usize, random: &mut Random) -> Vec<Expected> {
        let mut expected = Vec::new();
        while expected.len() < count {
            let per_call = 1 + random.below(2) as usize;
            let mut input = Vec::new();
            let mut batches = Vec::new();
            for _ in 0..per_call {
                let records = 1 + random.below(5) as usize;
                let batch = simple_batch(records, random.below(120) as usize, 1_000);
                input.extend_from_slice(&batch);
                batches.push(batch);
            }
            let end_before = log.log_end_offset();
            let info = log.append(&input, 5).unwrap();
            assert_eq!(info.base_offset, end_before);
            assert_eq!(info.log_append_time_ms, -1);
            let mut next = end_before;
            for batch in batches {
                let header = BatchHeader::parse(&batch).unwrap();
                let last_offset = next + i64::from(header.last_offset_delta);
                expected.push(Expected {
                    base_offset: next,
                    last_offset,
                    bytes: stored_copy(&batch, next),
                });
                next = last_offset + 1;
            }
            assert_eq!(info.last_offset, next - 1);
            assert_eq!(log.log_end_offset(), next);
        }
        expected
    }

    /// Checks that a read from every offset returns the batch holding it, whole, and more batches after
    /// it when allowed, all byte-equal to what was appended.
    fn check_reads(log: &PartitionLog, expected: &[Expected], first_batch: usize) {
        let mut batch_index = first_batch;
        for offset in log.log_start_offset()..log.log_end_offset() {
            while expected[batch_index].last_offset < offset {
                batch_index += 1;
            }
            let holder = &expected[batch_index];
            assert!(holder.base_offset <= offset);
            assert_eq!(
                log.read(offset, 1).unwrap(),
                &holder.bytes[..],
                "offset {offset}"
            );
            let many = log.read(offset, 2_000).unwrap();
            assert!(many.len() <= 2_000.max(holder.bytes.len()));
            let mut position = 0;
            for following in &expected[batch_index..] {
                if position == many.len() {
                    break;
                }
                assert_eq!(
                    &many[position..position + following.bytes.len()],
                    &following.bytes[..]
                );
                position += following.bytes.len();
            }
            assert_eq!(position, many.len());
        }
    }

    #[test]
    fn a_reader_across_segments_leaves_only_its_current_windows_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config(5 * RESIDENT_WINDOW_BYTES as u64);
        let mut log = PartitionLog::open(dir.path(), config, 0, syncer()).unwrap();
        let batch = simple_batch(4, 900, 0);
        while log.size_bytes() < 4 * 5 * RESIDENT_WINDOW_BYTES as u64 {
            log.append(&batch, 0).unwrap();
        }
        assert!(log.segment_count() >= 4);
        let mapped = |log: &PartitionLog| -> usize {
            let segments = log.segments.iter();
            segments
                .map(|segment| mapped_pages(segment.data.written()))
                .sum()
        };
        let mut offset = 0;
        while offset < log.log_end_offset() {
            let bytes = log.read(offset, 256 << 10).unwrap();
            let last = Batches::new(bytes).last().unwrap().unwrap().1;
            offset = last.base_offset + i64::from(last.last_offset_delta) + 1;
            // Two windows of the segment being read, plus the page the next batch header is on.
            assert!(mapped(&log) <= 2 * RESIDENT_WINDOW_BYTES / 4096 + 1);
        }
        assert!(mapped(&log) > 0);
    }

    /// Cached pages of each segment's data file, oldest first.
    fn cached_pages_per_segment(log: &PartitionLog) -> Vec<usize> {
        let segments = log.segments.iter();
        segments
            .map(|segment| cached_pages(segment.data.path()))
            .collect()
    }

    #[test]
    fn sealed_segments_past_the_budget_leave_the_page_cache_and_read_back_from_disk() {
        let dir = disk_tempdir();
        let segment_bytes = 4 * RESIDENT_WINDOW_BYTES as u64;
        let config = small_config(segment_bytes);
        // Room for the two newest sealed segments.
        let syncer = syncer_with_budget(2 * segment_bytes);
        let mut log = PartitionLog::open(dir.path(), config, 0, syncer).unwrap();
        let mut random = Random::new(7);
        let mut expected = Vec::new();
        while log.segment_count() < 7 {
            expected.extend(fill(&mut log, 100, &mut random));
        }
        log.wait_for_seal_jobs().unwrap();
        let cached = cached_pages_per_segment(&log);
        let pages = |segment: &LogSegment| segment.data.written_bytes().div_ceil(4096);
        let count = cached.len();
        for (position, segment) in log.segments.iter().enumerate() {
            if position < count - 3 {
                assert_eq!(
                    cached[position], 0,
                    "evicted segment {position}: {cached:?}"
                );
            } else {
                // The two newest sealed segments and the active one stay cached.
                assert_eq!(cached[position], pages(segment), "{position}: {cached:?}");
            }
        }
        // Every byte reads back from the disk, and a reader leaves no evicted page behind it.
        check_reads(&log, &expected, 0);
        let mut offset = 0;
        while offset < log.log_end_offset() {
            let bytes = log.read(offset, 256 << 10).unwrap();
            let last = Batches::new(bytes).last().unwrap().unwrap().1;
            offset = last.base_offset + i64::from(last.last_offset_delta) + 1;
        }
        let cached = cached_pages_per_segment(&log);
        assert!(
            cached[..count - 3].iter().all(|pages| *pages == 0),
            "{cached:?}"
        );
        assert_eq!(cached[count - 1], pages(log.active()), "{cached:?}");
    }

    #[test]
    fn a_budget_of_zero_evicts_every_durable_segment_and_unlimited_none() {
        for (budget, evicted) in [(0, true), (u64::MAX, false)] {
            let dir = disk_tempdir();
            let config = small_config(RESIDENT_WINDOW_BYTES as u64);
            let mut log =
                PartitionLog::open(dir.path(), config, 0, syncer_with_budget(budget)).unwrap();
            let mut random = Random::new(3);
            while log.segment_count() < 4 {
                fill(&mut log, 100, &mut random);
            }
            log.wait_for_seal_jobs().unwrap();
            let cached = cached_pages_per_segment(&log);
            let sealed = &cached[..cached.len() - 1];
            if evicted {
                assert!(sealed.iter().all(|pages| *pages == 0), "{cached:?}");
            } else {
                assert!(sealed.iter().all(|pages| *pages > 0), "{cached:?}");
            }
            assert!(
                *cached.last().unwrap() > 0,
                "the active segment stays: {cached:?}"
            );
        }
    }

    #[test]
    fn done_reading_unmaps_a_large_read_and_leaves_small_ones_to_the_windows() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config(64 * RESIDENT_WINDOW_BYTES as u64);
        let mut log = PartitionLog::open(dir.path(), config, 0, syncer()).unwrap();
        let batch = simple_batch(4, 900, 0);
        while log.size_bytes() < 4 * UNMAPPED_AFTER_COPY_BYTES_MIN as u64 {
            log.append(&batch, 0).unwrap();
        }
        let small = log.read(0, 4096).unwrap();
        assert!(small.len() < UNMAPPED_AFTER_COPY_BYTES_MIN);
        let copied = small.to_vec();
        log.done_reading(small);
        assert!(mapped_pages(small) > 0);
        let large = log.read(0, 2 * UNMAPPED_AFTER_COPY_BYTES_MIN).unwrap();
        assert!(large.len() >= UNMAPPED_AFTER_COPY_BYTES_MIN);
        let copied_large = large.to_vec();
        assert!(mapped_pages(large) > 0);
        log.done_reading(large);
        assert_eq!(mapped_pages(large), 0);
        // Unmapped is not gone: the bytes fault back from the page cache.
        assert_eq!(log.read(0, 4096).unwrap(), &copied[..]);
        assert_eq!(large, &copied_large[..]);
        // A slice that is not the log's is ignored.
        log.done_reading(&copied_large);
    }

    #[test]
    fn ten_thousand_batches_across_rolls_read_back_from_every_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), small_config(64 << 10), 0, syncer()).unwrap();
        let mut random = Random::new(1);
        let expected = fill(&mut log, 10_000, &mut random);
        assert!(log.segment_count() > 10, "{} segments", log.segment_count());
        let total: usize = expected.iter().map(|batch| batch.bytes.len()).sum();
        assert_eq!(log.size_bytes(), total as u64);
        let last = expected.last().unwrap();
        assert_eq!(log.log_end_offset(), last.last_offset + 1);
        for pair in expected.windows(2) {
            assert_eq!(pair[1].base_offset, pair[0].last_offset + 1);
        }
        check_reads(&log, &expected, 0);

        log.close().unwrap();
        assert!(dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
        let mut log = PartitionLog::open(dir.path(), small_config(64 << 10), 0, syncer()).unwrap();
        assert!(!dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
        assert_eq!(log.log_end_offset(), last.last_offset + 1);
        assert_eq!(log.size_bytes(), total as u64);
        check_reads(&log, &expected, 0);
        let info = log.append(&simple_batch(2, 10, 0), 0).unwrap();
        assert_eq!(info.base_offset, last.last_offset + 1);
    }

    #[test]
    fn read_edges_and_out_of_range() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), small_config(4096), 0, syncer()).unwrap();
        assert_eq!(log.read(0, 100).unwrap(), b"");
        let out_of_range = log.read(1, 100).unwrap_err();
        assert!(matches!(
            out_of_range,
            StorageError::OffsetOutOfRange { offset: 1, .. }
        ));
        let first = simple_batch(3, 10, 0);
        log.append(&first, 0).unwrap();
        log.append(&simple_batch(4, 900, 0), 0).unwrap();
        // The first batch comes whole even when max_bytes is smaller, or zero.
        assert_eq!(log.read(1, 0).unwrap(), &stored_copy(&first, 0)[..]);
        assert_eq!(
            log.read(3, 10).unwrap().len(),
            simple_batch(4, 900, 0).len()
        );
        assert_eq!(log.read(7, 10).unwrap(), b"");
        assert!(matches!(
            log.read(8, 10),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert!(matches!(
            log.read(-1, 10),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
    }

    #[test]
    fn a_read_never_spans_segments_and_continues_at_a_segment_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), small_config(1024), 0, syncer()).unwrap();
        let batch = simple_batch(2, 300, 0); // About 700 bytes: one per segment.
        for _ in 0..3 {
            log.append(&batch, 0).unwrap();
        }
        assert_eq!(log.segment_count(), 3);
        assert_eq!(log.read(0, 1 << 20).unwrap(), &stored_copy(&batch, 0)[..]);
        assert_eq!(log.read(2, 1 << 20).unwrap(), &stored_copy(&batch, 2)[..]);
        assert_eq!(log.read(5, 1 << 20).unwrap(), &stored_copy(&batch, 4)[..]);
    }

    #[test]
    fn append_rejects_malformed_input_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), small_config(8192), 0, syncer()).unwrap();
        assert!(matches!(
            log.append(&[], 0),
            Err(StorageError::InvalidBatch(_))
        ));
        let mut input = simple_batch(1, 10, 0);
        let good_len = input.len();
        input.extend_from_slice(&simple_batch(1, 10, 0)[..40]);
        assert!(matches!(
            log.append(&input, 0),
            Err(StorageError::InvalidBatch(_))
        ));
        let big = simple_batch(50, 100, 0);
        assert!(matches!(
            log.append(&big, 0),
            Err(StorageError::InvalidBatch(BatchError::TooLarge { .. }))
        ));
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(log.size_bytes(), 0);
        log.append(&input[..good_len], 0).unwrap();
        assert_eq!(log.log_end_offset(), 1);
    }

    #[test]
    fn a_batch_larger_than_a_segment_gets_a_segment_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            max_batch_bytes: 8192,
            ..small_config(1024)
        };
        let mut log = PartitionLog::open(dir.path(), config, 0, syncer()).unwrap();
        let small = simple_batch(1, 10, 0);
        let big = simple_batch(10, 500, 0);
        assert!(big.len() > 1024);
        log.append(&big, 0).unwrap(); // Into the empty first segment, which grows.
        log.append(&small, 0).unwrap();
        log.append(&big, 0).unwrap();
        log.append(&small, 0).unwrap();
        // The grown segments hold exactly their big batch, so every append here rolls.
        assert_eq!(log.segment_count(), 4);
        assert_eq!(log.read(0, 1).unwrap(), &stored_copy(&big, 0)[..]);
        assert_eq!(log.read(11, 1).unwrap(), &stored_copy(&big, 11)[..]);
        assert_eq!(log.read(21, 1).unwrap(), &stored_copy(&small, 21)[..]);
        log.close().unwrap();
        let log = PartitionLog::open(dir.path(), config, 0, syncer()).unwrap();
        assert_eq!(log.read(11, 1).unwrap(), &stored_copy(&big, 11)[..]);
        assert_eq!(log.log_end_offset(), 22);
    }

    #[test]
    fn log_append_time_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            log_append_time: true,
            ..small_config(8192)
        };
        let mut log = PartitionLog::open(dir.path(), config, 0, syncer()).unwrap();
        let info = log
            .append(&build_batch(10, &[0, 1, 2], 5, Codec::Zstd), 77_000)
            .unwrap();
        assert_eq!(info.log_append_time_ms, 77_000);
        let stored = log.read(0, 1 << 20).unwrap();
        assert!(crate::storage::batch::validate_batches(stored, 1 << 20).is_ok());
        let header = BatchHeader::parse(stored).unwrap();
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(header.max_timestamp, 77_000);
        assert_eq!(log.offset_for_timestamp(50_000).unwrap(), Some((0, 77_000)));
        assert_eq!(log.max_timestamp(), Some((77_000, 0)));
    }

    /// Appends batches with non-monotonic record timestamps in several codecs; returns every record's
    /// `(offset, timestamp)`.
    fn fill_with_timestamps(log: &mut PartitionLog, random: &mut Random) -> Vec<(i64, i64)> {
        let codecs = [
            Codec::None,
            Codec::Gzip,
            Codec::Lz4,
            Codec::Zstd,
            Codec::SnappyXerial,
        ];
        let mut records = Vec::new();
        for batch_number in 0..300i64 {
            let base_timestamp = 10_000 + batch_number * 10 - random.below(40) as i64;
            let deltas: Vec<i64> = (0..1 + random.below(6) as i64)
                .map(|_| random.below(30) as i64)
                .collect();
            let codec = codecs[batch_number as usize % codecs.len()];
            let info = log
                .append(&build_batch(base_timestamp, &deltas, 40, codec), 0)
                .unwrap();
            for (index, delta) in deltas.iter().enumerate() {
                records.push((info.base_offset + index as i64, base_timestamp + delta));
            }
        }
        records
    }

    /// Which segments hold their index entries in memory, oldest first.
    fn indexes_loaded(log: &PartitionLog) -> Vec<bool> {
        log.segments
            .iter()
            .map(|segment| segment.index.is_loaded())
            .collect()
    }

    /// Appends until the log rolls once more, waiting for the seal jobs first so that every sealed
    /// segment is durable when the roll looks at them.
    fn fill_until_roll(log: &mut PartitionLog, random: &mut Random) -> Vec<Expected> {
        log.flush().unwrap();
        let segments = log.segment_count();
        let mut expected = Vec::new();
        while log.segment_count() == segments {
            expected.extend(fill(log, 1, random));
        }
        expected
    }

    #[test]
    fn idle_sealed_indexes_leave_memory_and_lookups_load_them_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), small_config(4096), 0, syncer()).unwrap();
        let mut random = Random::new(11);
        let mut expected = fill(&mut log, 300, &mut random);
        expected.extend(fill_until_roll(&mut log, &mut random));
        let count = log.segment_count();
        assert!(count > 6, "{count} segments");
        // Only the active segment and the newest sealed one keep their entries.
        let mut only_newest = vec![false; count - 2];
        only_newest.extend([true, true]);
        assert_eq!(indexes_loaded(&log), only_newest);

        // Every lookup answers as before; a reader moving on drops what it leaves behind.
        check_reads(&log, &expected, 0);
        let loaded_sealed = indexes_loaded(&log)[..count - 2]
            .iter()
            .filter(|l| **l)
            .count();
        assert!(loaded_sealed <= 1, "{:?}", indexes_loaded(&log));

        // Entries looked up since the last roll survive one roll, not two.
        let in_second = log.segments[1].base_offset();
        log.read(in_second, 1).unwrap();
        expected.extend(fill_until_roll(&mut log, &mut random));
        assert!(indexes_loaded(&log)[1]);
        expected.extend(fill_until_roll(&mut log, &mut random));
        assert!(!indexes_loaded(&log)[1]);

        // Damaged files of a dropped index: the lookup rebuilds the entries from the data.
        assert!(!indexes_loaded(&log)[0]);
        std::fs::write(offset_index_path(dir.path(), 0), [1, 2, 3]).unwrap();
        std::fs::write(time_index_path(dir.path(), 0), []).unwrap();
        check_reads(&log, &expected, 0);
        let max_timestamp = log.max_timestamp();
        assert_eq!(
            log.offset_for_timestamp(0)
                .unwrap()
                .map(|(offset, _)| offset),
            Some(0)
        );

        // A reopened log keeps the entries of the last two segments only, and answers the same.
        log.close().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(4096), 0, syncer()).unwrap();
        let count = log.segment_count();
        let mut only_newest = vec![false; count - 2];
        only_newest.extend([true, true]);
        assert_eq!(indexes_loaded(&log), only_newest);
        assert_eq!(log.max_timestamp(), max_timestamp);
        check_reads(&log, &expected, 0);
    }

    #[test]
    fn offset_for_timestamp_is_record_precise() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), small_config(8192), 0, syncer()).unwrap();
        assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
        assert_eq!(log.max_timestamp(), None);
        let mut random = Random::new(3);
        let records = fill_with_timestamps(&mut log, &mut random);
        assert!(log.segment_count() > 3);
        let brute_force = |target: i64| {
            records
                .iter()
                .copied()
                .find(|(_, timestamp)| *timestamp >= target)
        };
        let latest = records
            .iter()
            .map(|(_, timestamp)| *timestamp)
            .max()
            .unwrap();
        for target in (9_900..latest + 5).step_by(3) {
            assert_eq!(
                log.offset_for_timestamp(target).unwrap(),
                brute_force(target),
                "target {target}"
            );
        }
        assert_eq!(log.offset_for_timestamp(latest + 1).unwrap(), None);
        assert_eq!(
            log.offset_for_timestamp(i64::MIN).unwrap(),
            Some(records[0])
        );
        let max_record = records
            .iter()
            .copied()
            .find(|(_, timestamp)| *timestamp == latest)
            .unwrap();
        assert_eq!(log.max_timestamp(), Some((latest, max_record.0)));

        log.close().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(8192), 0, syncer()).unwrap();
        for target in (9_900..latest + 5).step_by(7) {
            assert_eq!(
                log.offset_for_timestamp(target).unwrap(),
                brute_force(target),
                "target {target}"
            );
        }
        assert_eq!(log.max_timestamp(), Some((latest, max_record.0)));
    }

    #[test]
    fn segments_roll_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_ms: 1_000,
            ..small_config(1 << 20)
        };
        let mut log = PartitionLog::open(dir.path(), config, 0, syncer()).unwrap();
        log.append(&simple_batch(1, 10, 0), 0).unwrap();
        log.append(&simple_batch(1, 10, 0), 1_000).unwrap();
        assert_eq!(log.segment_count(), 1);
        log.append(&simple_batch(1, 10, 0), 1_001).unwrap();
        assert_eq!(log.segment_count(), 2);
        assert_eq!(
            log.read(2, 1 << 20).unwrap(),
            &stored_copy(&simple_batch(1, 10, 0), 2)[..]
        );
    }

    #[test]
    fn retention_by_time_and_size_deletes_whole_sealed_segments() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            retention_ms: 10_000,
            ..small_config(1024)
        };
        let mut log = PartitionLog::open(dir.path(), config, 0, syncer()).unwrap();
        let batch_at = |timestamp| simple_batch(2, 300, timestamp);
        for timestamp in [1_000, 2_000, 3_000, 50_000, 60_000] {
            log.append(&batch_at(timestamp), 0).unwrap();
        }
        assert_eq!(log.segment_count(), 5);
        // Retention waits for seal jobs (see the next test); let them finish.
        log.flush().unwrap();
        // Newest records at 1.001 s, 2.001 s, 3.001 s, ...: at 11.5 s only the first is 10 s old.
        assert_eq!(log.enforce_retention(11_500).unwrap(), 1);
        assert_eq!(log.log_start_offset(), 2);
        assert_eq!(log.enforce_retention(14_000).unwrap(), 2);
        assert_eq!(log.log_start_offset(), 6);
        assert!(matches!(
            log.read(5, 100),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert!(!dir.path().join("00000000000000000000.log").exists());
        assert!(!dir.path().join("00000000000000000000.index").exists());
        // Never the active segment, however old.
        assert_eq!(log.enforce_retention(1_000_000).unwrap(), 1);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.log_start_offset(), 8);

        let one_segment = batch_at(0).len() as i64;
        log.config.retention_ms = -1;
        log.config.retention_bytes = 2 * one_segment;
        for _ in 0..4 {
            log.append(&batch_at(0), 0).unwrap();
        }
        assert_eq!(log.segment_count(), 5);
        log.flush().unwrap();
        assert_eq!(log.enforce_retention(0).unwrap(), 3);
        assert_eq!(log.size_bytes(), 2 * one_segment as u64);
        assert_eq!(log.log_start_offset(), 14);
        log.close().unwrap();
        let log = PartitionLog::open(dir.path(), config, 0, syncer()).unwrap();
        assert_eq!(log.log_start_offset(), 14);
        assert_eq!(log.log_end_offset(), 18);
    }

    #[test]
    fn seal_jobs_run_off_the_caller_and_retention_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            retention_ms: 10,
            ..small_config(1024)
        };
        let syncer = syncer();
        let blocked = BlockedSyncer::new(&syncer);
        let mut log = PartitionLog::open(dir.path(), config, 0, syncer.clone()).unwrap();
        let batch = simple_batch(2, 300, 1_000);
        for _ in 0..4 {
            log.append(&batch, 0).unwrap();
        }
        // Three rolls returned while the syncer could not run a single job.
        assert_eq!(log.segment_count(), 4);
        assert!(!offset_index_path(dir.path(), 0).exists());
        assert_eq!(log.read(2, 1).unwrap(), &stored_copy(&batch, 2)[..]);
        assert_eq!(log.enforce_retention(1_000_000).unwrap(), 0);
        drop(blocked);
        log.flush().unwrap();
        assert!(offset_index_path(dir.path(), 0).exists());
        assert!(time_index_path(dir.path(), 4).exists());
        assert_eq!(log.enforce_retention(1_000_000).unwrap(), 3);
        assert_eq!(log.log_start_offset(), 6);
    }

    #[test]
    fn close_and_delete_wait_for_seal_jobs() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("topic-0");
        let syncer = syncer();
        let mut log = PartitionLog::open(&dir, small_config(1024), 0, syncer.clone()).unwrap();
        let batch = simple_batch(2, 300, 1_000);
        for _ in 0..3 {
            log.append(&batch, 0).unwrap();
        }
        log.close().unwrap();
        for base_offset in [0, 2, 4] {
            assert!(offset_index_path(&dir, base_offset).exists());
            assert!(time_index_path(&dir, base_offset).exists());
        }
        let mut log = PartitionLog::open(&dir, small_config(1024), 0, syncer.clone()).unwrap();
        for _ in 0..3 {
            log.append(&batch, 0).unwrap();
        }
        log.delete().unwrap();
        // Nothing the syncer did after `delete` returned brought the directory back.
        drop(syncer);
        assert!(!dir.exists());
    }

    #[test]
    fn delete_removes_the_directory_and_config_is_validated() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("topic-0");
        let mut log = PartitionLog::open(&dir, small_config(4096), 0, syncer()).unwrap();
        log.append(&simple_batch(1, 1, 0), 0).unwrap();
        log.flush().unwrap();
        log.delete().unwrap();
        assert!(!dir.exists());

        let tiny_batches = LogConfig {
            max_batch_bytes: 60,
            ..small_config(4096)
        };
        let result = PartitionLog::open(&dir, tiny_batches, 0, syncer());
        assert!(matches!(result, Err(StorageError::InvalidConfig(_))));
        let huge_segments = small_config(SEGMENT_BYTES_MAX + 1);
        assert!(matches!(
            PartitionLog::open(&dir, huge_segments, 0, syncer()),
            Err(StorageError::InvalidConfig(_))
        ));
        assert!(LogConfig::default().validate().is_ok());
    }
}
