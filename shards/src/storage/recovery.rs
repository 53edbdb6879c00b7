//! Boot-time recovery of one partition directory, used by `PartitionLog::open`.
//!
//! Owns: deciding which files form the log, the clean-shutdown marker, walking and CRC-checking batches,
//! cutting a torn tail and zeroing what follows it, and rebuilding indexes.
//! Must not touch: serving reads or appends; it hands `PartitionLog` a list of consistent segments.
//!
//! Sealed segments are complete before the next segment is created: appends finish (into the page
//! cache) before the roll, and the file ends at the last batch. So after `kill -9` a sealed segment
//! holds exactly its batches, whether or not the syncer had made it durable yet. Index files are
//! written by the syncer only after the segment's data is synced, so a sealed segment whose job did not
//! run has no index files (or, if it was the active segment at an earlier clean shutdown, the files of
//! that shutdown, which describe a prefix of it). A loaded index is checked cheaply (walk the batch
//! headers after its last entry to the exact end of the file); a missing or inconsistent one is rebuilt
//! with a CRC check of every batch, and written after the data is synced.
//!
//! The active segment is where a crash lands. After a clean shutdown its indexes are loaded and only the
//! batches after the last index entry are walked, with CRC checks. After a crash every batch is walked
//! from the start, checking framing, magic, CRC and that base offsets continue exactly from the previous
//! batch. The first batch that fails is the cut: the segment is truncated there and everything after
//! it zeroed, so a torn write (kill -9 during the copy into the mapping) is never served.

use std::path::Path;

use super::batch::{verify_crc, BatchHeader, Batches};
use super::index::SegmentIndex;
use super::log::{
    Indexes, LogConfig, LogSegment, CLEAN_SHUTDOWN_FILE, SEGMENT_BYTES_MAX,
    SEGMENT_RELATIVE_OFFSET_MAX,
};
use super::segment::Segment;
use super::{io_error, sync_directory, StorageError};

/// Digits of the base offset in segment file names (`i64::MAX` has 19; Kafka pads to 20).
const FILE_STEM_DIGITS: usize = 20;

/// Recovers the segments in `dir`, oldest first; creates an empty segment at offset 0 for a new log.
pub(crate) fn recover(
    dir: &Path,
    config: &LogConfig,
    now_ms: i64,
) -> Result<Vec<LogSegment>, StorageError> {
    let bases = list_segments(dir)?;
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    let clean = marker.exists();
    let mut segments: Vec<LogSegment> = Vec::with_capacity(bases.len().max(1));
    match bases.split_last() {
        None => {
            let data = Segment::create(dir, 0, config.segment_bytes as usize)?;
            let index = SegmentIndex::new(0, config.index_interval_bytes);
            segments.push(LogSegment {
                data,
                index: Indexes::loaded(index),
                end_offset: 0,
                created_ms: now_ms,
                seal_ticket: None,
            });
        }
        Some((&active_base, sealed_bases)) => {
            for &base_offset in sealed_bases {
                check_contiguous(segments.last(), base_offset)?;
                segments.push(recover_sealed(dir, base_offset, config)?);
            }
            check_contiguous(segments.last(), active_base)?;
            segments.push(recover_active(dir, active_base, config, clean, now_ms)?);
        }
    }
    // The marker vouches for one shutdown only: remove it (durably) before the first append.
    match std::fs::remove_file(&marker) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(StorageError::io(
                format!("remove {}", marker.display()),
                error,
            ))
        }
    }
    sync_directory(dir)?;
    Ok(segments)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Data,
    Index,
    /// An index write interrupted before its rename.
    Temporary,
}

/// Parses `<20 digits>.<extension>`; anything else is not ours.
fn parse_file_name(name: &str) -> Option<(i64, FileKind)> {
    let (stem, extension) = name.split_once('.')?;
    if stem.len() != FILE_STEM_DIGITS || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let base_offset: i64 = stem.parse().ok()?;
    let kind = match extension {
        "log" => FileKind::Data,
        "index" | "timeindex" => FileKind::Index,
        "index.tmp" | "timeindex.tmp" => FileKind::Temporary,
        _ => return None,
    };
    Some((base_offset, kind))
}

/// Base offsets of the data files in `dir`, sorted. Deletes interrupted index writes and index files
/// whose data file is gone (retention deletes data first); leaves unknown files alone.
fn list_segments(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let context = format!("list {}", dir.display());
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(context.clone()))? {
        let entry = entry.map_err(io_error(context.clone()))?;
        let name = entry.file_name();
        let parsed = name.to_str().and_then(parse_file_name);
        match parsed {
            Some((base_offset, FileKind::Data)) => bases.push(base_offset),
            Some((base_offset, FileKind::Index)) => indexes.push((base_offset, entry.path())),
            Some((_, FileKind::Temporary)) => remove(&entry.path())?,
            None => log::debug!("ignoring {} in a log directory", entry.path().display()),
        }
    }
    bases.sort_unstable();
    for (base_offset, path) in indexes {
        if bases.binary_search(&base_offset).is_err() {
            log::info!("deleting {}: its segment is gone", path.display());
            remove(&path)?;
        }
    }
    Ok(bases)
}

fn remove(path: &Path) -> Result<(), StorageError> {
    std::fs::remove_file(path).map_err(io_error(format!("remove {}", path.display())))
}

fn check_contiguous(previous: Option<&LogSegment>, base_offset: i64) -> Result<(), StorageError> {
    match previous {
        Some(previous) if previous.end_offset != base_offset => {
            Err(StorageError::Corrupt(format!(
                "segment {base_offset} does not start where {} ends ({})",
                previous.data.path().display(),
                previous.end_offset,
            )))
        }
        _ => Ok(()),
    }
}

fn check_size(data: &Segment, bytes: usize) -> Result<(), StorageError> {
    if bytes as u64 > SEGMENT_BYTES_MAX {
        let path = data.path().display();
        return Err(StorageError::Corrupt(format!(
            "{path} is larger than a segment can be"
        )));
    }
    Ok(())
}

fn recover_sealed(
    dir: &Path,
    base_offset: i64,
    config: &LogConfig,
) -> Result<LogSegment, StorageError> {
    let data = Segment::open_sealed(dir, base_offset)?;
    check_size(&data, data.written().len())?;
    let (index, scan) = sealed_index(dir, &data, config.index_interval_bytes)?;
    // The walk mapped every byte it checked; readers map again what they read.
    data.unmap_all();
    Ok(LogSegment {
        data,
        index: Indexes::loaded(index),
        end_offset: scan.next_offset,
        created_ms: 0,
        seal_ticket: None,
    })
}

/// The indexes of a durable sealed segment, loaded from its files or, when they are missing or do not
/// match the data, rebuilt from the data and written back. At open, and when a lookup needs indexes the
/// log had dropped from memory (`Indexes`).
fn sealed_index(
    dir: &Path,
    data: &Segment,
    interval_bytes: u32,
) -> Result<(SegmentIndex, Scan), StorageError> {
    let bytes = data.written();
    let base_offset = data.base_offset();
    let loaded = SegmentIndex::load(dir, base_offset, interval_bytes, bytes.len())?;
    let resumed = loaded.and_then(|index| resume(bytes, base_offset, index, Check::Framing));
    match resumed {
        Some((index, scan)) if scan.end_position == bytes.len() => Ok((index, scan)),
        _ => {
            log::warn!("rebuilding the indexes of {}", data.path().display());
            let (index, scan) = rebuild(bytes, base_offset, interval_bytes);
            if scan.end_position != bytes.len() {
                let path = data.path().display();
                let position = scan.end_position;
                return Err(StorageError::Corrupt(format!(
                    "sealed segment {path} has an invalid batch at {position}"
                )));
            }
            // As the syncer does: an index file only ever describes data that is durable.
            data.sync_handle()
                .sync_data()
                .map_err(io_error(format!("fdatasync {}", data.path().display())))?;
            index.write_files(dir)?;
            Ok((index, scan))
        }
    }
}

/// Loads again the indexes of a durable sealed segment whose entries the log dropped from memory.
pub(super) fn reload_sealed_index(
    data: &Segment,
    interval_bytes: u32,
) -> Result<SegmentIndex, StorageError> {
    let dir = data.path().parent().unwrap_or(Path::new("."));
    let (index, _) = sealed_index(dir, data, interval_bytes)?;
    // Checking the files against the data mapped the segment's last batches; the caller maps what it
    // reads.
    data.unmap_all();
    Ok(index)
}

fn recover_active(
    dir: &Path,
    base_offset: i64,
    config: &LogConfig,
    clean: bool,
    now_ms: i64,
) -> Result<LogSegment, StorageError> {
    let mut data = Segment::open_active(dir, base_offset, config.segment_bytes as usize)?;
    let bytes = data.recoverable_bytes();
    check_size(&data, bytes.len())?;
    let interval_bytes = config.index_interval_bytes;
    let loaded = match clean {
        true => SegmentIndex::load(dir, base_offset, interval_bytes, bytes.len())?,
        false => None,
    };
    // A clean shutdown truncated the file to its batches, so the walk must end exactly at its end.
    let resumed = loaded
        .and_then(|index| resume(bytes, base_offset, index, Check::Crc))
        .filter(|(_, scan)| scan.end_position == bytes.len());
    let (index, scan) = match resumed {
        Some(resumed) => resumed,
        None => rebuild(bytes, base_offset, interval_bytes),
    };
    if scan.end_position < bytes.len() {
        let path = data.path().display();
        let (position, length) = (scan.end_position, bytes.len());
        match bytes[position..].iter().all(|byte| *byte == 0) {
            true => log::debug!("{path}: batches end at {position}, zeros after"),
            false => {
                log::warn!("{path}: cutting a torn or invalid tail at {position} of {length} bytes")
            }
        }
    }
    data.recover_written_bytes(scan.end_position)?;
    let created_ms = roll_base_ms(&data, now_ms);
    data.unmap_all();
    Ok(LogSegment {
        data,
        index: Indexes::loaded(index),
        end_offset: scan.next_offset,
        created_ms,
        seal_ticket: None,
    })
}

/// What the `segment_ms` roll of a recovered active segment counts from: Kafka's choice, the first
/// batch's max timestamp, so that restarts do not postpone rolling forever; the clock if that is unset
/// or in the future.
fn roll_base_ms(data: &Segment, now_ms: i64) -> i64 {
    match Batches::new(data.written()).next() {
        Some(Ok((_, header))) if header.max_timestamp >= 0 => header.max_timestamp.min(now_ms),
        _ => now_ms,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Header framing and offset continuity only: for trusted, fsynced data.
    Framing,
    /// Framing, continuity and CRC: for data a crash may have torn.
    Crc,
}

/// Where a walk over batches got to: the end of the last good batch and the offset after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scan {
    end_position: usize,
    next_offset: i64,
}

/// Rebuilds both indexes of a segment from its first byte, checking every batch's CRC.
fn rebuild(bytes: &[u8], base_offset: i64, interval_bytes: u32) -> (SegmentIndex, Scan) {
    let mut index = SegmentIndex::new(base_offset, interval_bytes);
    let start = Scan {
        end_position: 0,
        next_offset: base_offset,
    };
    let scan = walk(bytes, base_offset, start, Check::Crc, &mut index);
    (index, scan)
}

/// Continues a loaded index from the batch of its last offset entry to the end of the good batches.
/// `None` when that batch is not the one the entry names, or an entry points past the data.
fn resume(
    bytes: &[u8],
    base_offset: i64,
    mut index: SegmentIndex,
    check: Check,
) -> Option<(SegmentIndex, Scan)> {
    let last = index.lookup_offset(u32::MAX);
    let start = Scan {
        end_position: last.position as usize,
        next_offset: base_offset + i64::from(last.relative_offset),
    };
    let scan = walk(bytes, base_offset, start, check, &mut index);
    let indexed_batch_found =
        index.offset_entries().is_empty() || scan.end_position > start.end_position;
    let relative_offset_end = (scan.next_offset - base_offset) as u64;
    match indexed_batch_found && index.covers_at_most(relative_offset_end) {
        true => Some((index, scan)),
        false => None,
    }
}

/// Walks batches from `start` while they are valid and continue the offsets, feeding each to the index.
/// Stops at the first batch that fails; zeros (preallocated space in segments written before appends
/// used `pwritev`) fail the magic check.
fn walk(
    bytes: &[u8],
    base_offset: i64,
    start: Scan,
    check: Check,
    index: &mut SegmentIndex,
) -> Scan {
    let mut scan = start;
    // Bounded by the data: each batch is at least a header long.
    for item in Batches::starting_at(bytes, start.end_position) {
        let Ok((position, header)) = item else {
            break;
        };
        assert!(position == scan.end_position);
        if !continues(&header, scan.next_offset, base_offset) {
            break;
        }
        let batch = &bytes[position..position + header.total_bytes()];
        if check == Check::Crc && verify_crc(batch, &header).is_err() {
            break;
        }
        let relative_offset = (header.base_offset - base_offset) as u32;
        index.on_batch(
            relative_offset,
            position as u32,
            batch.len() as u32,
            header.max_timestamp,
        );
        scan = Scan {
            end_position: position + batch.len(),
            next_offset: header.last_offset() + 1,
        };
    }
    scan
}

/// Whether `header` is the batch the log would have written next: its base offset continues the
/// previous batch and its offsets fit the segment.
fn continues(header: &BatchHeader, next_offset: i64, base_offset: i64) -> bool {
    header.base_offset == next_offset
        && header.last_offset_delta >= 0
        && header.last_offset() < i64::MAX
        && header.last_offset() - base_offset <= SEGMENT_RELATIVE_OFFSET_MAX
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    use super::*;
    use crate::storage::batch::set_base_offset;
    use crate::storage::index::{offset_index_path, time_index_path};
    use crate::storage::log::PartitionLog;
    use crate::storage::segment::data_file_path;
    use crate::storage::testing::{
        fix_crc, simple_batch, small_config, stored_copy, syncer, BlockedSyncer, Random,
    };

    const SEGMENT_BYTES: u64 = 16 << 10;

    struct Appended {
        base_offset: i64,
        stored: Vec<u8>,
    }

    fn open(dir: &Path) -> PartitionLog {
        PartitionLog::open(dir, small_config(SEGMENT_BYTES), 0, syncer()).unwrap()
    }

    fn append(log: &mut PartitionLog, appended: &mut Vec<Appended>, random: &mut Random) {
        let batch = simple_batch(
            1 + random.below(4) as usize,
            random.below(200) as usize,
            1_000,
        );
        let info = log.append(&batch, 0).unwrap();
        appended.push(Appended {
            base_offset: info.base_offset,
            stored: stored_copy(&batch, info.base_offset),
        });
    }

    fn check_intact(log: &PartitionLog, appended: &[Appended]) {
        for batch in appended {
            assert_eq!(log.read(batch.base_offset, 1).unwrap(), &batch.stored[..]);
        }
    }

    /// The newest data file and where each appended batch in it starts.
    fn active_file(dir: &Path, appended: &[Appended]) -> (PathBuf, Vec<(usize, usize)>) {
        let bases = list_segments(dir).unwrap();
        let active_base = *bases.last().unwrap();
        let mut position = 0;
        let mut batches = Vec::new();
        for batch in appended
            .iter()
            .filter(|batch| batch.base_offset >= active_base)
        {
            batches.push((position, batch.stored.len()));
            position += batch.stored.len();
        }
        (data_file_path(dir, active_base), batches)
    }

    fn write_at(path: &Path, position: usize, bytes: &[u8]) {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.write_all_at(bytes, position as u64).unwrap();
    }

    #[test]
    fn a_torn_tail_is_cut_zeroed_and_appends_continue_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut random = Random::new(11);
        let mut appended = Vec::new();
        let mut log = open(dir.path());
        for _ in 0..120 {
            append(&mut log, &mut appended, &mut random);
        }
        assert!(log.segment_count() >= 3);
        drop(log); // kill -9: no seal, no indexes, no marker.

        // The last batch was being copied when the process died: its second half is garbage, and so
        // are the bytes after it.
        let torn = appended.pop().unwrap();
        let (path, batches) = active_file(dir.path(), &appended);
        let torn_position = batches
            .last()
            .map_or(0, |(position, length)| position + length);
        let mut garbage = vec![0u8; torn.stored.len() / 2 + 3000];
        random.fill(&mut garbage);
        write_at(&path, torn_position + torn.stored.len() / 2, &garbage);

        let mut log = open(dir.path());
        assert_eq!(log.log_end_offset(), torn.base_offset);
        check_intact(&log, &appended);
        assert_eq!(log.read(torn.base_offset, 100).unwrap(), b"");
        let on_disk = std::fs::read(&path).unwrap();
        assert!(on_disk[torn_position..].iter().all(|byte| *byte == 0));

        append(&mut log, &mut appended, &mut random);
        assert_eq!(appended.last().unwrap().base_offset, torn.base_offset);
        drop(log); // Crash again.
        let log = open(dir.path());
        check_intact(&log, &appended);
        log.close().unwrap();
        let log = open(dir.path());
        check_intact(&log, &appended);
        let last = appended.last().unwrap();
        let header = BatchHeader::parse(&last.stored).unwrap();
        assert_eq!(log.log_end_offset(), header.last_offset() + 1);
    }

    #[test]
    fn a_crash_with_seal_jobs_queued_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut random = Random::new(12);
        let mut appended = Vec::new();
        // A clean shutdown first, so that the active segment leaves index files of its own that go
        // stale once it takes more batches and rolls.
        let mut log = open(dir.path());
        for _ in 0..20 {
            append(&mut log, &mut appended, &mut random);
        }
        log.close().unwrap();
        let stale_base = *list_segments(dir.path()).unwrap().last().unwrap();
        assert!(offset_index_path(dir.path(), stale_base).exists());

        let held = syncer();
        let blocked = BlockedSyncer::new(&held);
        let mut log =
            PartitionLog::open(dir.path(), small_config(SEGMENT_BYTES), 0, held.clone()).unwrap();
        let segments_before = log.segment_count();
        for _ in 0..150 {
            append(&mut log, &mut appended, &mut random);
        }
        assert!(log.segment_count() >= segments_before + 3);
        // kill -9: the rolls returned, none of their seal jobs ran, nothing was closed.
        std::mem::forget(log);
        let bases = list_segments(dir.path()).unwrap();
        let sealed_since = bases.iter().filter(|base| **base > stale_base).count();
        assert!(sealed_since >= 3);
        for base in &bases[..bases.len() - 1] {
            if *base > stale_base {
                assert!(!offset_index_path(dir.path(), *base).exists());
            }
        }

        let log = open(dir.path());
        check_intact(&log, &appended);
        let last = BatchHeader::parse(&appended.last().unwrap().stored).unwrap();
        assert_eq!(log.log_end_offset(), last.last_offset() + 1);
        // Rebuilt at open, after syncing the data.
        for base in &bases[..bases.len() - 1] {
            assert!(offset_index_path(dir.path(), *base).exists());
        }
        log.close().unwrap();
        let log = open(dir.path());
        check_intact(&log, &appended);
        drop(log);
        drop(blocked);
    }

    #[test]
    fn random_torn_tails_never_survive() {
        let mut random = Random::new(5);
        for round in 0..25 {
            let dir = tempfile::tempdir().unwrap();
            let mut appended = Vec::new();
            let mut log = open(dir.path());
            for _ in 0..(10 + random.below(60)) {
                append(&mut log, &mut appended, &mut random);
            }
            drop(log);
            let (path, batches) = active_file(dir.path(), &appended);
            let Some(&(last_position, last_length)) = batches.last() else {
                continue;
            };
            // Tear anywhere in the active segment's batches, then garbage to past the end.
            let tear = random.below((last_position + last_length) as u64) as usize;
            let mut garbage =
                vec![0u8; last_position + last_length - tear + random.below(500) as usize];
            random.fill(&mut garbage);
            write_at(&path, tear, &garbage);

            let log = open(dir.path());
            let first_torn = batches
                .iter()
                .position(|(position, length)| position + length > tear);
            let surviving = appended.len() - batches.len() + first_torn.unwrap_or(batches.len());
            check_intact(&log, &appended[..surviving]);
            let expected_end = appended
                .get(surviving)
                .map_or(log.log_end_offset(), |batch| batch.base_offset);
            assert_eq!(log.log_end_offset(), expected_end, "round {round}");
        }
    }

    #[test]
    fn a_valid_batch_with_the_wrong_offset_after_the_end_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut random = Random::new(2);
        let mut appended = Vec::new();
        let mut log = open(dir.path());
        for _ in 0..5 {
            append(&mut log, &mut appended, &mut random);
        }
        drop(log);
        // A stale but CRC-valid batch (offsets that do not continue) right after the last batch.
        let (path, batches) = active_file(dir.path(), &appended);
        let end = batches
            .last()
            .map_or(0, |(position, length)| position + length);
        let mut stale = simple_batch(2, 10, 0);
        set_base_offset(&mut stale, 1);
        fix_crc(&mut stale);
        write_at(&path, end, &stale);
        let log = open(dir.path());
        check_intact(&log, &appended);
        let last = BatchHeader::parse(&appended.last().unwrap().stored).unwrap();
        assert_eq!(log.log_end_offset(), last.last_offset() + 1);
    }

    #[test]
    fn missing_or_damaged_indexes_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let mut random = Random::new(3);
        let mut appended = Vec::new();
        let mut log = open(dir.path());
        for _ in 0..150 {
            append(&mut log, &mut appended, &mut random);
        }
        log.close().unwrap();
        let bases = list_segments(dir.path()).unwrap();
        assert!(bases.len() >= 3);
        std::fs::remove_file(offset_index_path(dir.path(), bases[0])).unwrap();
        std::fs::remove_file(time_index_path(dir.path(), bases[1])).unwrap();
        std::fs::write(offset_index_path(dir.path(), bases[2]), [0xffu8; 13]).unwrap();
        let last = *bases.last().unwrap();
        std::fs::write(offset_index_path(dir.path(), last), [0x01u8; 16]).unwrap();

        let log = open(dir.path());
        check_intact(&log, &appended);
        // Sealed segments get their rebuilt files at once; the active one at close.
        assert!(offset_index_path(dir.path(), bases[0]).exists());
        assert!(time_index_path(dir.path(), bases[1]).exists());
        assert_eq!(
            std::fs::metadata(offset_index_path(dir.path(), bases[2]))
                .unwrap()
                .len()
                % 8,
            0
        );
        log.close().unwrap();
        assert_eq!(
            std::fs::metadata(offset_index_path(dir.path(), last))
                .unwrap()
                .len()
                % 8,
            0
        );
        let log = open(dir.path());
        check_intact(&log, &appended);
    }

    #[test]
    fn a_damaged_tail_after_a_clean_shutdown_falls_back_to_a_full_scan() {
        let dir = tempfile::tempdir().unwrap();
        let mut random = Random::new(4);
        let mut appended = Vec::new();
        let mut log = open(dir.path());
        for _ in 0..40 {
            append(&mut log, &mut appended, &mut random);
        }
        log.close().unwrap();
        let damaged = appended.pop().unwrap();
        let (path, batches) = active_file(dir.path(), &appended);
        let position = batches
            .last()
            .map_or(0, |(position, length)| position + length);
        write_at(&path, position + damaged.stored.len() - 1, &[0x5a]);
        let log = open(dir.path());
        check_intact(&log, &appended);
        assert_eq!(log.log_end_offset(), damaged.base_offset);
    }

    #[test]
    fn a_clean_reopen_trusts_sealed_indexes_and_a_bad_middle_entry_is_an_error() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mut random = Random::new(9);
        let mut appended = Vec::new();
        let mut log = open(dir.path());
        for _ in 0..100 {
            append(&mut log, &mut appended, &mut random);
        }
        log.close().unwrap();
        let first = list_segments(dir.path()).unwrap()[0];
        let index_path = offset_index_path(dir.path(), first);
        let inode = std::fs::metadata(&index_path).unwrap().ino();
        let log = open(dir.path());
        check_intact(&log, &appended);
        drop(log);
        // Loaded, not rebuilt: a rebuild would have renamed a new file into place.
        assert_eq!(std::fs::metadata(&index_path).unwrap().ino(), inode);

        // Shift the second entry's offset by one: still monotonic, but it no longer names its batch.
        let mut entries = std::fs::read(&index_path).unwrap();
        assert!(entries.len() >= 24);
        entries[8] = entries[8].wrapping_add(1);
        std::fs::write(&index_path, &entries).unwrap();
        let log = open(dir.path());
        let mut relative = [0u8; 4];
        relative.copy_from_slice(&entries[8..12]);
        let offset = first + i64::from(u32::from_le_bytes(relative));
        assert!(matches!(log.read(offset, 1), Err(StorageError::Corrupt(_))));
        assert_eq!(log.read(first, 1).unwrap(), &appended[0].stored[..]);
    }

    #[test]
    fn a_corrupt_sealed_segment_without_index_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut random = Random::new(6);
        let mut appended = Vec::new();
        let mut log = open(dir.path());
        for _ in 0..100 {
            append(&mut log, &mut appended, &mut random);
        }
        log.close().unwrap();
        let first = list_segments(dir.path()).unwrap()[0];
        std::fs::remove_file(offset_index_path(dir.path(), first)).unwrap();
        write_at(&data_file_path(dir.path(), first), 100, &[0xee; 8]);
        let result = PartitionLog::open(dir.path(), small_config(SEGMENT_BYTES), 0, syncer());
        assert!(matches!(result, Err(StorageError::Corrupt(_))));
    }

    #[test]
    fn stray_files_are_cleaned_or_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        log.append(&simple_batch(1, 1, 0), 0).unwrap();
        log.close().unwrap();
        let orphan = offset_index_path(dir.path(), 99_999);
        let orphan_time = time_index_path(dir.path(), 99_999);
        let temporary = dir.path().join("00000000000000000000.index.tmp");
        let unknown = dir.path().join("notes.txt");
        for path in [&orphan, &orphan_time, &temporary, &unknown] {
            std::fs::write(path, b"x").unwrap();
        }
        let log = open(dir.path());
        assert_eq!(log.log_end_offset(), 1);
        assert!(!orphan.exists());
        assert!(!orphan_time.exists());
        assert!(!temporary.exists());
        assert!(unknown.exists());
        assert_eq!(parse_file_name("0000000000000000001.log"), None);
        assert_eq!(parse_file_name("00000000000000000001.logs"), None);
        assert_eq!(parse_file_name("99999999999999999999.log"), None);
        assert_eq!(
            parse_file_name("00000000000000000012.log"),
            Some((12, FileKind::Data))
        );
    }

    #[test]
    fn short_zero_or_garbage_files_are_empty_segments() {
        let mut random = Random::new(8);
        let mut short_garbage = vec![0u8; 30];
        random.fill(&mut short_garbage);
        let mut long_garbage = vec![0u8; 5000];
        random.fill(&mut long_garbage);
        for contents in [vec![], vec![0u8; 100], short_garbage, long_garbage] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(data_file_path(dir.path(), 0), &contents).unwrap();
            let mut log = open(dir.path());
            assert_eq!(log.log_end_offset(), 0);
            assert_eq!(log.size_bytes(), 0);
            log.append(&simple_batch(2, 5, 0), 0).unwrap();
            drop(log);
            let log = open(dir.path());
            assert_eq!(log.log_end_offset(), 2);
        }
    }

    #[test]
    fn a_gap_between_segments_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        log.append(&simple_batch(3, 5, 0), 0).unwrap();
        log.close().unwrap();
        // A segment that claims to start at 10 while the previous one ends at 3.
        let mut stray = simple_batch(1, 5, 0);
        set_base_offset(&mut stray, 10);
        std::fs::write(data_file_path(dir.path(), 10), &stray).unwrap();
        let result = PartitionLog::open(dir.path(), small_config(SEGMENT_BYTES), 0, syncer());
        assert!(matches!(result, Err(StorageError::Corrupt(_))));
    }
}
