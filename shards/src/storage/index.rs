//! Sparse per-segment indexes: an offset index (batch offset → file position) and a time index (largest
//! timestamp so far → the batch holding it). Both live in memory while the segment is in use and are
//! written to their files when the segment is sealed or the log is closed. `PartitionLog::flush` does
//! not write them: without the clean-shutdown marker recovery rebuilds the active segment's indexes
//! from its data anyway, so writing them on every flush would cost two fsyncs and buy nothing.
//!
//! Owns: the two entry lists, their lookups, their file format and its validation on load.
//! Must not touch: segment data bytes. Rebuilding an index means walking batches, which recovery does
//! by feeding each batch to `on_batch`.
//!
//! File format. Both files are flat arrays of fixed-size little-endian entries, with no header, named
//! after the segment's base offset:
//!
//! ```text
//! <base>.index      8 bytes per entry:  relative_offset u32 | position u32
//! <base>.timeindex 12 bytes per entry:  timestamp_ms i64    | relative_offset u32
//! ```
//!
//! `relative_offset` is a batch's base offset minus the segment's base offset; `position` is the byte
//! position of that batch in `<base>.log`. Offset entries are strictly increasing in both fields, and the
//! first batch of a segment is always indexed, so a non-empty index starts with `(0, 0)`. An entry is
//! added for the first batch that starts at least `interval_bytes` after the previous entry's batch.
//!
//! A time entry `(t, r)` says: no batch at or before relative offset `r` has a timestamp above `t`, and
//! the batch at `r` has timestamp `t`. Entries are added at the same points as offset entries when the
//! largest timestamp grew since the last time entry, plus once more when the segment is sealed or
//! closed, so the last entry holds the segment's largest timestamp. Both fields strictly increase.
//! Files are replaced atomically (write to `.tmp`, fsync, rename), so a crash leaves either the old file,
//! the new one, or a stray `.tmp` that recovery deletes.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::batch::BATCH_HEADER_BYTES;
use super::{file_stem, io_error, StorageError};

/// Kafka's default `index.interval.bytes`: one entry per 4 KiB of batches keeps the index at 0.2 % of
/// the data while bounding a lookup's forward scan to about one page of batch headers.
pub const INDEX_INTERVAL_BYTES_DEFAULT: u32 = 4096;
pub const OFFSET_ENTRY_BYTES: usize = 8;
pub const TIME_ENTRY_BYTES: usize = 12;

/// One offset index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One time index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

/// Path of the offset index of the segment starting at `base_offset`.
pub fn offset_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.index", file_stem(base_offset)))
}

/// Path of the time index of the segment starting at `base_offset`.
pub fn time_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.timeindex", file_stem(base_offset)))
}

/// Both indexes of one segment, plus the running state needed to extend them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    base_offset: i64,
    interval_bytes: u32,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    /// Bytes of batches from the last indexed batch (included) onwards.
    bytes_since_entry: u64,
    /// Largest batch max timestamp seen, `i64::MIN` before the first batch.
    timestamp_max: i64,
    /// Relative offset of the first batch carrying `timestamp_max`.
    relative_offset_of_timestamp_max: u32,
}

impl SegmentIndex {
    pub fn new(base_offset: i64, interval_bytes: u32) -> SegmentIndex {
        assert!(base_offset >= 0);
        SegmentIndex {
            base_offset,
            interval_bytes,
            offsets: Vec::new(),
            times: Vec::new(),
            bytes_since_entry: 0,
            timestamp_max: i64::MIN,
            relative_offset_of_timestamp_max: 0,
        }
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn offset_entries(&self) -> &[OffsetEntry] {
        &self.offsets
    }

    pub fn time_entries(&self) -> &[TimeEntry] {
        &self.times
    }

    /// Largest timestamp of any batch, with the relative offset of the first batch carrying it; `None`
    /// for a segment without batches.
    pub fn timestamp_max(&self) -> Option<(i64, u32)> {
        match self.timestamp_max {
            i64::MIN => None,
            timestamp => Some((timestamp, self.relative_offset_of_timestamp_max)),
        }
    }

    /// Records a batch. Batches are reported in file order. Reporting the batch of the last offset entry
    /// again is allowed (recovery resumes a loaded index from that batch) and adds no entry.
    pub fn on_batch(
        &mut self,
        relative_offset: u32,
        position: u32,
        size_bytes: u32,
        max_timestamp: i64,
    ) {
        let resumed = match self.offsets.last() {
            Some(last) if position <= last.position => {
                assert!(position == last.position);
                assert!(relative_offset == last.relative_offset);
                true
            }
            Some(last) => {
                assert!(relative_offset > last.relative_offset);
                false
            }
            None => false,
        };
        if max_timestamp > self.timestamp_max {
            self.timestamp_max = max_timestamp;
            self.relative_offset_of_timestamp_max = relative_offset;
        }
        let due =
            self.offsets.is_empty() || self.bytes_since_entry >= u64::from(self.interval_bytes);
        if !resumed && due {
            self.offsets.push(OffsetEntry {
                relative_offset,
                position,
            });
            self.bytes_since_entry = 0;
            self.add_time_entry_if_grown();
        }
        self.bytes_since_entry += u64::from(size_bytes);
    }

    /// Adds the final time entry so that the files carry the segment's largest timestamp. Called before
    /// writing the files when the segment is sealed or the log closes.
    pub fn finish(&mut self) {
        self.add_time_entry_if_grown();
        // A sealed segment's entries stay in memory for its whole life: give back what the vectors
        // reserved while growing (up to half of them), about 1 MiB per GB of sealed data.
        self.offsets.shrink_to_fit();
        self.times.shrink_to_fit();
    }

    fn add_time_entry_if_grown(&mut self) {
        // Both fields must grow. They always do for entries this index added itself; a loaded entry
        // that points past the data (a damaged file) fails the check instead of an assertion, and
        // recovery then rebuilds the index from the data (`covers_at_most`).
        let grown = self.times.last().is_none_or(|last| {
            self.timestamp_max > last.timestamp_ms
                && self.relative_offset_of_timestamp_max > last.relative_offset
        });
        if self.timestamp_max != i64::MIN && grown {
            self.times.push(TimeEntry {
                timestamp_ms: self.timestamp_max,
                relative_offset: self.relative_offset_of_timestamp_max,
            });
        }
    }

    /// Whether every entry refers to a batch below `relative_offset_end`, the relative offset after the
    /// segment's last record. Recovery rejects a loaded index that points past the data it walked.
    pub fn covers_at_most(&self, relative_offset_end: u64) -> bool {
        let offsets_fit = self
            .offsets
            .last()
            .is_none_or(|last| u64::from(last.relative_offset) < relative_offset_end);
        let times_fit = self
            .times
            .last()
            .is_none_or(|last| u64::from(last.relative_offset) < relative_offset_end);
        offsets_fit && times_fit
    }

    /// The entry with the largest relative offset at or below `relative_offset`: the batch to start a
    /// forward scan from. `(0, 0)`, the segment start, when no entry qualifies.
    pub fn lookup_offset(&self, relative_offset: u32) -> OffsetEntry {
        let count = self
            .offsets
            .partition_point(|entry| entry.relative_offset <= relative_offset);
        match count {
            0 => OffsetEntry {
                relative_offset: 0,
                position: 0,
            },
            _ => self.offsets[count - 1],
        }
    }

    /// The first time entry whose timestamp is at least `timestamp_ms`.
    pub fn first_time_entry_at_or_after(&self, timestamp_ms: i64) -> Option<TimeEntry> {
        let index = self
            .times
            .partition_point(|entry| entry.timestamp_ms < timestamp_ms);
        self.times.get(index).copied()
    }

    /// Relative offset where a scan for the first record at or after `timestamp_ms` can start: every
    /// batch before it has only smaller timestamps (see the time entry meaning in the file comment).
    pub fn scan_start_for_timestamp(&self, timestamp_ms: i64) -> u32 {
        let index = self
            .times
            .partition_point(|entry| entry.timestamp_ms < timestamp_ms);
        match index {
            0 => 0,
            _ => self.times[index - 1].relative_offset,
        }
    }

    /// Writes both files atomically and durably. The caller syncs the directory.
    pub fn write_files(&self, dir: &Path) -> Result<(), StorageError> {
        let mut offsets = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_BYTES);
        for entry in &self.offsets {
            offsets.extend_from_slice(&entry.relative_offset.to_le_bytes());
            offsets.extend_from_slice(&entry.position.to_le_bytes());
        }
        let mut times = Vec::with_capacity(self.times.len() * TIME_ENTRY_BYTES);
        for entry in &self.times {
            times.extend_from_slice(&entry.timestamp_ms.to_le_bytes());
            times.extend_from_slice(&entry.relative_offset.to_le_bytes());
        }
        write_atomically(&offset_index_path(dir, self.base_offset), &offsets)?;
        write_atomically(&time_index_path(dir, self.base_offset), &times)
    }

    /// Loads both files of a segment whose data is `segment_bytes` long. Returns `None` when a file is
    /// missing or fails validation, and the caller rebuilds from the data. After loading, the index
    /// covers batches up to its last offset entry; recovery walks the rest and feeds them to `on_batch`.
    pub fn load(
        dir: &Path,
        base_offset: i64,
        interval_bytes: u32,
        segment_bytes: usize,
    ) -> Result<Option<SegmentIndex>, StorageError> {
        let offsets_path = offset_index_path(dir, base_offset);
        let times_path = time_index_path(dir, base_offset);
        // An index can never have more entries than the segment has batches.
        let entries_max = segment_bytes / BATCH_HEADER_BYTES;
        let Some(offsets) = read_bounded(&offsets_path, entries_max * OFFSET_ENTRY_BYTES)? else {
            return Ok(None);
        };
        let Some(times) = read_bounded(&times_path, entries_max * TIME_ENTRY_BYTES)? else {
            return Ok(None);
        };
        let mut index = SegmentIndex::new(base_offset, interval_bytes);
        match (
            decode_offsets(&offsets, segment_bytes),
            decode_times(&times),
        ) {
            (Ok(offsets), Ok(times)) => {
                index.offsets = offsets;
                index.times = times;
            }
            (Err(reason), _) | (_, Err(reason)) => {
                log::warn!(
                    "rebuilding index of segment {base_offset} in {}: {reason}",
                    dir.display()
                );
                return Ok(None);
            }
        }
        if let Some(last) = index.times.last() {
            index.timestamp_max = last.timestamp_ms;
            index.relative_offset_of_timestamp_max = last.relative_offset;
        }
        Ok(Some(index))
    }

    /// Removes both files, for retention. Missing files are fine: they may never have been written.
    pub fn delete_files(dir: &Path, base_offset: i64) -> Result<(), StorageError> {
        for path in [
            offset_index_path(dir, base_offset),
            time_index_path(dir, base_offset),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(StorageError::io(
                        format!("delete {}", path.display()),
                        error,
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Reads a whole file if it exists and is at most `bytes_max` long; `None` if it is missing or longer.
fn read_bounded(path: &Path, bytes_max: usize) -> Result<Option<Vec<u8>>, StorageError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StorageError::io(format!("open {}", path.display()), error)),
    };
    let mut bytes = Vec::new();
    file.take(bytes_max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(format!("read {}", path.display())))?;
    if bytes.len() > bytes_max {
        log::warn!("index {} is larger than its segment allows", path.display());
        return Ok(None);
    }
    Ok(Some(bytes))
}

fn decode_offsets(bytes: &[u8], segment_bytes: usize) -> Result<Vec<OffsetEntry>, &'static str> {
    if bytes.len() % OFFSET_ENTRY_BYTES != 0 {
        return Err("offset index size is not a multiple of its entry size");
    }
    let mut entries: Vec<OffsetEntry> = Vec::with_capacity(bytes.len() / OFFSET_ENTRY_BYTES);
    for chunk in bytes.chunks_exact(OFFSET_ENTRY_BYTES) {
        let entry = OffsetEntry {
            relative_offset: le_u32(&chunk[0..4]),
            position: le_u32(&chunk[4..8]),
        };
        let increasing = entries.last().is_none_or(|last| {
            entry.relative_offset > last.relative_offset && entry.position > last.position
        });
        if !increasing {
            return Err("offset index entries are not strictly increasing");
        }
        if entry.position as usize + BATCH_HEADER_BYTES > segment_bytes {
            return Err("offset index points past the end of the segment");
        }
        entries.push(entry);
    }
    let starts_at_zero = entries
        .first()
        .is_none_or(|first| first.relative_offset == 0 && first.position == 0);
    if !starts_at_zero {
        return Err("offset index does not start with the first batch");
    }
    Ok(entries)
}

fn decode_times(bytes: &[u8]) -> Result<Vec<TimeEntry>, &'static str> {
    if bytes.len() % TIME_ENTRY_BYTES != 0 {
        return Err("time index size is not a multiple of its entry size");
    }
    let mut entries: Vec<TimeEntry> = Vec::with_capacity(bytes.len() / TIME_ENTRY_BYTES);
    for chunk in bytes.chunks_exact(TIME_ENTRY_BYTES) {
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&chunk[0..8]);
        let entry = TimeEntry {
            timestamp_ms: i64::from_le_bytes(timestamp),
            relative_offset: le_u32(&chunk[8..12]),
        };
        let increasing = entries.last().is_none_or(|last| {
            entry.timestamp_ms > last.timestamp_ms && entry.relative_offset > last.relative_offset
        });
        if !increasing || entry.timestamp_ms == i64::MIN {
            return Err("time index entries are not strictly increasing");
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(bytes);
    u32::from_le_bytes(field)
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new contents, never a mix.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let context = format!("write {}", temporary.display());
    let mut file = File::create(&temporary).map_err(io_error(context.clone()))?;
    file.write_all(bytes).map_err(io_error(context.clone()))?;
    file.sync_data().map_err(io_error(context))?;
    std::fs::rename(&temporary, path).map_err(io_error(format!("rename to {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `count` batches of 1000 bytes with 10 records each; timestamps rise except every 4th batch.
    fn filled(count: u32) -> SegmentIndex {
        let mut index = SegmentIndex::new(100, 4096);
        for batch in 0..count {
            let timestamp = match batch % 4 {
                3 => 0,
                _ => 1_000 + i64::from(batch),
            };
            index.on_batch(batch * 10, batch * 1000, 1000, timestamp);
        }
        index
    }

    #[test]
    fn entries_follow_the_interval() {
        let index = filled(20);
        let positions: Vec<u32> = index
            .offset_entries()
            .iter()
            .map(|entry| entry.position)
            .collect();
        // 1000-byte batches and a 4096-byte interval: an entry every fifth batch.
        assert_eq!(positions, vec![0, 5000, 10000, 15000]);
        let times: Vec<(i64, u32)> = index
            .time_entries()
            .iter()
            .map(|entry| (entry.timestamp_ms, entry.relative_offset))
            .collect();
        assert_eq!(
            times,
            vec![(1_000, 0), (1_005, 50), (1_010, 100), (1_014, 140)]
        );
        assert_eq!(index.timestamp_max(), Some((1_018, 180)));
    }

    #[test]
    fn lookups_find_the_floor_offset_and_the_time_scan_start() {
        let mut index = filled(20);
        assert_eq!(index.lookup_offset(0).position, 0);
        assert_eq!(index.lookup_offset(49).position, 0);
        assert_eq!(index.lookup_offset(50).position, 5000);
        assert_eq!(index.lookup_offset(u32::MAX).position, 15000);
        assert_eq!(SegmentIndex::new(0, 4096).lookup_offset(7).position, 0);

        assert_eq!(
            index
                .first_time_entry_at_or_after(1_006)
                .map(|entry| entry.relative_offset),
            Some(100)
        );
        assert_eq!(index.first_time_entry_at_or_after(1_015), None);
        assert_eq!(index.scan_start_for_timestamp(0), 0);
        assert_eq!(index.scan_start_for_timestamp(1_006), 50);
        assert_eq!(index.scan_start_for_timestamp(1_017), 140);
        index.finish();
        assert_eq!(
            index
                .time_entries()
                .last()
                .map(|entry| entry.relative_offset),
            Some(180)
        );
        assert_eq!(index.scan_start_for_timestamp(1_017), 140);
        assert_eq!(index.scan_start_for_timestamp(1_019), 180);
    }

    #[test]
    fn files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = filled(20);
        index.finish();
        index.write_files(dir.path()).unwrap();
        assert_eq!(
            std::fs::metadata(offset_index_path(dir.path(), 100))
                .unwrap()
                .len(),
            4 * 8
        );
        let loaded = SegmentIndex::load(dir.path(), 100, 4096, 20_000)
            .unwrap()
            .unwrap();
        assert_eq!(loaded.offset_entries(), index.offset_entries());
        assert_eq!(loaded.time_entries(), index.time_entries());
        assert_eq!(loaded.timestamp_max(), Some((1_018, 180)));
        assert!(loaded.covers_at_most(200));
        assert!(!loaded.covers_at_most(180));
    }

    #[test]
    fn resuming_a_loaded_index_adds_no_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = filled(16);
        index.finish();
        index.write_files(dir.path()).unwrap();
        let mut loaded = SegmentIndex::load(dir.path(), 100, 4096, 16_000)
            .unwrap()
            .unwrap();
        // Recovery walks from the last offset entry (batch 15) to the end and on.
        for batch in 15..20u32 {
            loaded.on_batch(batch * 10, batch * 1000, 1000, 1_000 + i64::from(batch));
        }
        let expected = filled(20);
        assert_eq!(loaded.offset_entries(), expected.offset_entries());
        assert_eq!(loaded.timestamp_max(), Some((1_019, 190)));
    }

    #[test]
    fn invalid_or_missing_files_load_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            SegmentIndex::load(dir.path(), 100, 4096, 20_000).unwrap(),
            None
        );
        let mut index = filled(20);
        index.finish();
        index.write_files(dir.path()).unwrap();
        let offsets_path = offset_index_path(dir.path(), 100);
        let good = std::fs::read(&offsets_path).unwrap();

        // Size not a multiple of the entry size.
        std::fs::write(&offsets_path, &good[..good.len() - 3]).unwrap();
        assert_eq!(
            SegmentIndex::load(dir.path(), 100, 4096, 20_000).unwrap(),
            None
        );
        // Not monotonic: swap the last two entries.
        let mut swapped = good.clone();
        let length = swapped.len();
        swapped[length - 16..].rotate_left(8);
        std::fs::write(&offsets_path, &swapped).unwrap();
        assert_eq!(
            SegmentIndex::load(dir.path(), 100, 4096, 20_000).unwrap(),
            None
        );
        // A position past the end of the segment.
        std::fs::write(&offsets_path, &good).unwrap();
        assert_eq!(
            SegmentIndex::load(dir.path(), 100, 4096, 15_000).unwrap(),
            None
        );
        // Damaged time index.
        std::fs::write(time_index_path(dir.path(), 100), [1u8; 24]).unwrap();
        assert_eq!(
            SegmentIndex::load(dir.path(), 100, 4096, 20_000).unwrap(),
            None
        );
        // Missing time index.
        std::fs::remove_file(time_index_path(dir.path(), 100)).unwrap();
        assert_eq!(
            SegmentIndex::load(dir.path(), 100, 4096, 20_000).unwrap(),
            None
        );

        SegmentIndex::delete_files(dir.path(), 100).unwrap();
        assert!(!offsets_path.exists());
        SegmentIndex::delete_files(dir.path(), 100).unwrap();
    }
}
