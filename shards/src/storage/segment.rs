//! One segment data file, `<base offset as 20 digits>.log`: preallocated to its capacity and mapped
//! read-write while it is the active segment, truncated to its written length and mapped read-only once
//! sealed.
//!
//! Owns: the file, its mapping, the write position, page-cache hints and durability (msync, fdatasync).
//! Must not touch: batch contents (it copies and returns bytes, the caller interprets them), indexing
//! policy, or when to roll. It never reads past the written position on behalf of a reader.
//!
//! Page faults: a fault on an mmap'd file blocks the whole executor, not one task, because this core runs
//! every task. Two choices keep faults off the hot path:
//! - The file is preallocated with `posix_fallocate`, so real blocks exist before the first append: a
//!   write fault never has to allocate blocks, and appends cannot fail with ENOSPC (a SIGBUS on mmap).
//! - A window of `PREFAULT_WINDOW_BYTES` ahead of the write position is pre-faulted writable with
//!   `MADV_POPULATE_WRITE` (Linux 5.14+, `MADV_WILLNEED` before that). Faults then happen in one batched
//!   system call every half window instead of one fault per 4 KiB page in the middle of a produce. The
//!   cost is that populated pages are dirty zeros: if writeback runs before we fill them they are
//!   written twice. At any real produce rate the window fills long before the 30 s dirty expiry.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use memmap2::{Advice, Mmap, MmapMut, MmapOptions};

use super::{file_stem, io_error, StorageError};

/// How far ahead of the write position pages are pre-faulted. 1 MiB is 256 pages: large enough that the
/// populate call is rare (once per 512 KiB appended), small enough that it takes tens of microseconds.
pub const PREFAULT_WINDOW_BYTES: usize = 1 << 20;
/// `posix_fallocate` may be interrupted by a signal; retrying more than this means something is wrong.
const FALLOCATE_ATTEMPTS_MAX: u32 = 8;

/// Path of the data file for the segment starting at `base_offset`.
pub fn data_file_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.log", file_stem(base_offset)))
}

enum Mapping {
    Writable(MmapMut),
    ReadOnly(Mmap),
}

impl Mapping {
    fn bytes(&self) -> &[u8] {
        match self {
            Mapping::Writable(map) => map,
            Mapping::ReadOnly(map) => map,
        }
    }

    fn advise_range(&self, advice: Advice, offset: usize, len: usize) -> std::io::Result<()> {
        match self {
            Mapping::Writable(map) => map.advise_range(advice, offset, len),
            Mapping::ReadOnly(map) => map.advise_range(advice, offset, len),
        }
    }
}

/// One data file of a partition log.
pub struct Segment {
    base_offset: i64,
    path: PathBuf,
    file: File,
    mapping: Mapping,
    /// Bytes holding batches. Everything after is zeros (preallocated) or past the end of the file.
    written_bytes: usize,
    /// Prefix already made durable by `flush`.
    flushed_bytes: usize,
    /// End of the range already pre-faulted.
    prefaulted_bytes: usize,
    /// Bytes that may hold batches written by an earlier run: the file length found by `open_*`, before
    /// preallocation grew it. Recovery scans only this far.
    file_bytes_at_open: usize,
    /// Cleared when the kernel rejects `MADV_POPULATE_WRITE`, so we ask only once.
    populate_supported: bool,
}

impl Segment {
    /// Creates a new, empty active segment of `capacity_bytes`. Fails if the file already exists:
    /// the log only creates segments past its end, so an existing file means a bug or a foreign file.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        capacity_bytes: usize,
    ) -> Result<Segment, StorageError> {
        assert!(base_offset >= 0);
        assert!(capacity_bytes > 0);
        let path = data_file_path(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error(format!("create segment {}", path.display())))?;
        preallocate(&file, capacity_bytes, &path)?;
        let map = map_writable(&file, capacity_bytes, &path)?;
        Ok(Segment::active(base_offset, path, file, map, 0))
    }

    /// Opens the newest segment of a log for appending. A clean shutdown truncated it, so it is grown
    /// back to at least `capacity_bytes`. The write position starts at zero: recovery scans
    /// `recoverable_bytes` and then calls `recover_written_bytes` with the end it found.
    pub fn open_active(
        dir: &Path,
        base_offset: i64,
        capacity_bytes: usize,
    ) -> Result<Segment, StorageError> {
        let path = data_file_path(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error(format!("open segment {}", path.display())))?;
        let file_bytes = file_length(&file, &path)?;
        let capacity_bytes = capacity_bytes.max(file_bytes);
        preallocate(&file, capacity_bytes, &path)?;
        let map = map_writable(&file, capacity_bytes, &path)?;
        Ok(Segment::active(base_offset, path, file, map, file_bytes))
    }

    /// Opens a sealed segment read-only, mapping exactly its length; every byte counts as written.
    pub fn open_sealed(dir: &Path, base_offset: i64) -> Result<Segment, StorageError> {
        let path = data_file_path(dir, base_offset);
        let file =
            File::open(&path).map_err(io_error(format!("open segment {}", path.display())))?;
        let file_bytes = file_length(&file, &path)?;
        let map = map_read_only(&file, file_bytes, &path)?;
        // Sealed segments are read by consumers catching up, front to back.
        if let Err(error) = map.advise(Advice::Sequential) {
            log::debug!("madvise sequential on {}: {error}", path.display());
        }
        Ok(Segment {
            base_offset,
            path,
            file,
            mapping: Mapping::ReadOnly(map),
            written_bytes: file_bytes,
            flushed_bytes: file_bytes,
            prefaulted_bytes: file_bytes,
            file_bytes_at_open: file_bytes,
            populate_supported: false,
        })
    }

    fn active(
        base_offset: i64,
        path: PathBuf,
        file: File,
        map: MmapMut,
        file_bytes: usize,
    ) -> Segment {
        if let Err(error) = map.advise(Advice::Sequential) {
            log::debug!("madvise sequential on {}: {error}", path.display());
        }
        let mut segment = Segment {
            base_offset,
            path,
            file,
            mapping: Mapping::Writable(map),
            written_bytes: 0,
            flushed_bytes: 0,
            prefaulted_bytes: 0,
            file_bytes_at_open: file_bytes,
            populate_supported: true,
        };
        segment.prefault_ahead(0);
        segment
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of batches in the segment; also its size for retention.
    pub fn written_bytes(&self) -> usize {
        self.written_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.written_bytes == 0
    }

    pub fn is_sealed(&self) -> bool {
        matches!(self.mapping, Mapping::ReadOnly(_))
    }

    /// Bytes an append can still take; zero once sealed.
    pub fn remaining_bytes(&self) -> usize {
        match &self.mapping {
            Mapping::Writable(map) => map.len() - self.written_bytes,
            Mapping::ReadOnly(_) => 0,
        }
    }

    /// The written bytes, for walking batch headers. Use `read` for the bytes handed to a consumer.
    pub fn written(&self) -> &[u8] {
        &self.mapping.bytes()[..self.written_bytes]
    }

    /// Bytes an earlier run may have written, for recovery to scan before it trusts any of them.
    pub fn recoverable_bytes(&self) -> &[u8] {
        &self.mapping.bytes()[..self.file_bytes_at_open]
    }

    /// Returns `len` written bytes at `position`. When the read enters a new `READ_AHEAD_WINDOW_BYTES`
    /// window of the file and the window's first page is not in the page cache, it asks the kernel to
    /// start reading the whole window in, so that copying a cold segment does not stall on one
    /// readahead after another. Not once per read: `MADV_WILLNEED` walks every page of its range even
    /// when all are cached (the usual case), which cost ~4 µs per MiB fetched; a one-page `mincore`
    /// per window costs ~0.3 µs per 4 MiB.
    pub fn read(&self, position: usize, len: usize) -> &[u8] {
        /// A consumer catching up with 1 MiB fetches checks once every four.
        const READ_AHEAD_WINDOW_BYTES: usize = 4 << 20;
        assert!(position <= self.written_bytes);
        assert!(len <= self.written_bytes - position);
        let end = position + len;
        let window_start = position.next_multiple_of(READ_AHEAD_WINDOW_BYTES);
        if window_start < end && !self.page_is_cached(window_start) {
            let window_end = end
                .next_multiple_of(READ_AHEAD_WINDOW_BYTES)
                .min(self.written_bytes);
            let advised = self.mapping.advise_range(
                Advice::WillNeed,
                window_start,
                window_end - window_start,
            );
            if let Err(error) = advised {
                log::debug!("madvise willneed on {}: {error}", self.path.display());
            }
        }
        &self.mapping.bytes()[position..end]
    }

    /// Whether the page at `position` (page-aligned) of the mapping is in the page cache.
    fn page_is_cached(&self, position: usize) -> bool {
        let address = self.mapping.bytes()[position..].as_ptr();
        let mut residency = [0u8; 1];
        // SAFETY: `address` is inside the mapping and page-aligned (the mapping starts on a page and
        // callers pass multiples of 4 MiB); a length of one byte asks about that single page, and
        // `residency` has room for its one status byte.
        let result =
            unsafe { libc::mincore(address as *mut libc::c_void, 1, residency.as_mut_ptr()) };
        result == 0 && residency[0] & 1 == 1
    }

    /// Copies `source` at the write position and returns the copied bytes, so that the log can stamp
    /// offsets into them before anything else can observe the segment. The caller checks the space.
    pub fn append(&mut self, source: &[u8]) -> &mut [u8] {
        assert!(!self.is_sealed());
        assert!(source.len() <= self.remaining_bytes());
        let start = self.written_bytes;
        let end = start + source.len();
        self.prefault_ahead(end);
        self.written_bytes = end;
        let Mapping::Writable(map) = &mut self.mapping else {
            unreachable!("an unsealed segment is mapped writable");
        };
        let target = &mut map[start..end];
        target.copy_from_slice(source);
        target
    }

    /// Grows the capacity of the active segment to `capacity_bytes` and maps the larger file. The log
    /// uses it when a batch larger than `segment_bytes` arrives at an empty segment (Kafka allows
    /// `max.message.bytes` above `segment.bytes`). Dirty pages live in the page cache, not the mapping,
    /// so replacing the mapping loses nothing.
    pub fn grow(&mut self, capacity_bytes: usize) -> Result<(), StorageError> {
        assert!(!self.is_sealed());
        if capacity_bytes <= self.mapping.bytes().len() {
            return Ok(());
        }
        preallocate(&self.file, capacity_bytes, &self.path)?;
        let map = map_writable(&self.file, capacity_bytes, &self.path)?;
        self.mapping = Mapping::Writable(map);
        self.prefaulted_bytes = self.written_bytes;
        self.prefault_ahead(self.written_bytes);
        assert!(self.remaining_bytes() == capacity_bytes - self.written_bytes);
        Ok(())
    }

    /// Makes every written byte durable (msync of the not-yet-flushed range, which Linux implements as a
    /// ranged fdatasync, including the extent conversion of preallocated blocks).
    pub fn flush(&mut self) -> Result<(), StorageError> {
        assert!(self.flushed_bytes <= self.written_bytes);
        let Mapping::Writable(map) = &self.mapping else {
            return Ok(()); // Sealing flushed everything.
        };
        if self.flushed_bytes == self.written_bytes {
            return Ok(());
        }
        let len = self.written_bytes - self.flushed_bytes;
        map.flush_range(self.flushed_bytes, len)
            .map_err(io_error(format!("msync segment {}", self.path.display())))?;
        self.flushed_bytes = self.written_bytes;
        Ok(())
    }

    /// Ends the segment's active life: flush, truncate the file to the written length (a sealed segment
    /// reopens at exactly its size) and swap the writable mapping for a read-only one of that length.
    pub fn seal(&mut self) -> Result<(), StorageError> {
        assert!(!self.is_sealed());
        self.flush()?;
        let context = format!("seal segment {}", self.path.display());
        self.file
            .set_len(self.written_bytes as u64)
            .map_err(io_error(context.clone()))?;
        self.file.sync_data().map_err(io_error(context))?;
        let map = map_read_only(&self.file, self.written_bytes, &self.path)?;
        self.mapping = Mapping::ReadOnly(map);
        self.file_bytes_at_open = self.written_bytes;
        assert!(self.flushed_bytes == self.written_bytes);
        Ok(())
    }

    /// Sets the write position found by recovery and zeroes everything after it. Bytes past the end may
    /// be a torn batch or garbage; they must never be mistaken for data after a later crash. Truncating
    /// and preallocating again zeroes them through file metadata instead of writing the whole tail.
    pub fn recover_written_bytes(&mut self, written_bytes: usize) -> Result<(), StorageError> {
        assert!(!self.is_sealed());
        assert!(self.written_bytes == 0);
        assert!(written_bytes <= self.file_bytes_at_open);
        if written_bytes < self.file_bytes_at_open {
            let context = format!("zero the tail of segment {}", self.path.display());
            self.file
                .set_len(written_bytes as u64)
                .map_err(io_error(context.clone()))?;
            preallocate(&self.file, self.mapping.bytes().len(), &self.path)?;
            self.file.sync_data().map_err(io_error(context))?;
        }
        self.written_bytes = written_bytes;
        self.file_bytes_at_open = written_bytes;
        // Pages written before the crash may still be dirty in the page cache; the next flush covers them.
        self.flushed_bytes = 0;
        self.prefaulted_bytes = written_bytes;
        self.prefault_ahead(written_bytes);
        Ok(())
    }

    /// Closes the mapping and removes the file.
    pub fn delete(self) -> Result<(), StorageError> {
        let path = self.path.clone();
        drop(self);
        std::fs::remove_file(&path).map_err(io_error(format!("delete segment {}", path.display())))
    }

    /// The file's modification time in milliseconds since the epoch, for retention of segments whose
    /// batches carry no timestamps (Kafka does the same).
    pub fn modified_ms(&self) -> Result<i64, StorageError> {
        let context = format!("stat segment {}", self.path.display());
        let modified = self
            .file
            .metadata()
            .and_then(|metadata| metadata.modified())
            .map_err(io_error(context))?;
        let since_epoch = modified
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    /// Keeps at least half a window of pre-faulted pages ahead of `end` (see the file comment).
    fn prefault_ahead(&mut self, end: usize) {
        let Mapping::Writable(map) = &self.mapping else {
            return;
        };
        if self.prefaulted_bytes >= end.saturating_add(PREFAULT_WINDOW_BYTES / 2) {
            return;
        }
        let start = self.prefaulted_bytes.max(self.written_bytes);
        let stop = end.saturating_add(PREFAULT_WINDOW_BYTES).min(map.len());
        if start >= stop {
            return;
        }
        let advice = match self.populate_supported {
            true => Advice::PopulateWrite,
            false => Advice::WillNeed,
        };
        match map.advise_range(advice, start, stop - start) {
            Ok(()) => {}
            Err(error)
                if advice == Advice::PopulateWrite
                    && error.raw_os_error() == Some(libc::EINVAL) =>
            {
                log::info!(
                    "MADV_POPULATE_WRITE unsupported, falling back to MADV_WILLNEED: {error}"
                );
                self.populate_supported = false;
            }
            Err(error) => log::debug!("prefault of {}: {error}", self.path.display()),
        }
        self.prefaulted_bytes = stop;
    }
}

fn file_length(file: &File, path: &Path) -> Result<usize, StorageError> {
    let metadata = file
        .metadata()
        .map_err(io_error(format!("stat segment {}", path.display())))?;
    usize::try_from(metadata.len()).map_err(|_| {
        StorageError::Corrupt(format!("segment {} is too large to map", path.display()))
    })
}

/// Allocates real blocks for the first `len` bytes (zeros where the file had none). glibc emulates
/// `posix_fallocate` by writing where the filesystem lacks `fallocate`, so the blocks are real either way.
fn preallocate(file: &File, len: usize, path: &Path) -> Result<(), StorageError> {
    let context = format!("preallocate segment {}", path.display());
    let Ok(len) = libc::off_t::try_from(len) else {
        return Err(StorageError::io(
            context,
            std::io::ErrorKind::InvalidInput.into(),
        ));
    };
    for _ in 0..FALLOCATE_ATTEMPTS_MAX {
        // SAFETY: the descriptor is open for the lifetime of `file`; the call touches no memory of ours.
        let result = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        match result {
            0 => return Ok(()),
            libc::EINTR => continue,
            errno => {
                return Err(StorageError::io(
                    context,
                    std::io::Error::from_raw_os_error(errno),
                ))
            }
        }
    }
    Err(StorageError::io(
        context,
        std::io::ErrorKind::Interrupted.into(),
    ))
}

fn map_writable(file: &File, len: usize, path: &Path) -> Result<MmapMut, StorageError> {
    // SAFETY: the shard owning this partition is the only writer of the file and never truncates it
    // below a live slice: `seal` and `recover_written_bytes` keep every byte up to the write position.
    // Another process modifying the file would break this, as it would for any mmap'd store.
    unsafe { MmapOptions::new().len(len).map_mut(file) }
        .map_err(io_error(format!("mmap segment {}", path.display())))
}

fn map_read_only(file: &File, len: usize, path: &Path) -> Result<Mmap, StorageError> {
    // SAFETY: as in `map_writable`; a sealed segment is never written again.
    unsafe { MmapOptions::new().len(len).map(file) }
        .map_err(io_error(format!("mmap segment {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPACITY: usize = 64 << 10;

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn create_preallocates_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let segment = Segment::create(dir.path(), 42, CAPACITY).unwrap();
        assert_eq!(segment.path(), dir.path().join("00000000000000000042.log"));
        assert_eq!(file_len(segment.path()), CAPACITY as u64);
        assert_eq!(segment.remaining_bytes(), CAPACITY);
        assert!(segment.is_empty());
        assert!(Segment::create(dir.path(), 42, CAPACITY).is_err());
    }

    #[test]
    fn append_read_flush_seal_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 0, CAPACITY).unwrap();
        let first: Vec<u8> = (0..1000u32).map(|value| value as u8).collect();
        segment.append(&first);
        let second = segment.append(b"hello");
        second[0] = b'j';
        assert_eq!(segment.written_bytes(), 1005);
        assert_eq!(segment.read(0, 1000), &first[..]);
        assert_eq!(segment.read(1000, 5), b"jello");
        assert_eq!(segment.read(1005, 0), b"");
        segment.flush().unwrap();
        segment.seal().unwrap();
        assert!(segment.is_sealed());
        assert_eq!(segment.remaining_bytes(), 0);
        assert_eq!(file_len(segment.path()), 1005);
        assert_eq!(segment.read(1000, 5), b"jello");
        drop(segment);

        let reopened = Segment::open_sealed(dir.path(), 0).unwrap();
        assert_eq!(reopened.written_bytes(), 1005);
        assert_eq!(&reopened.written()[..1000], &first[..]);
        assert_eq!(reopened.read(1000, 5), b"jello");
    }

    #[test]
    fn empty_segment_seals_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 7, CAPACITY).unwrap();
        segment.seal().unwrap();
        assert_eq!(file_len(segment.path()), 0);
        drop(segment);
        let reopened = Segment::open_sealed(dir.path(), 7).unwrap();
        assert!(reopened.is_empty());
        assert_eq!(reopened.written(), b"");
    }

    #[test]
    fn open_active_regrows_and_recovery_zeroes_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 0, CAPACITY).unwrap();
        segment.append(&[7u8; 3000]);
        drop(segment); // A crash: nothing sealed, the file keeps its full capacity.

        let mut segment = Segment::open_active(dir.path(), 0, CAPACITY).unwrap();
        assert_eq!(segment.recoverable_bytes().len(), CAPACITY);
        assert_eq!(segment.written_bytes(), 0);
        segment.recover_written_bytes(1000).unwrap();
        assert_eq!(segment.written(), &[7u8; 1000][..]);
        assert_eq!(file_len(segment.path()), CAPACITY as u64);
        drop(segment);

        let bytes = std::fs::read(data_file_path(dir.path(), 0)).unwrap();
        assert!(bytes[..1000].iter().all(|byte| *byte == 7));
        assert!(bytes[1000..].iter().all(|byte| *byte == 0));
    }

    #[test]
    fn open_active_after_seal_keeps_bytes_and_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 0, CAPACITY).unwrap();
        segment.append(&[1u8; 500]);
        segment.seal().unwrap();
        drop(segment);

        let mut segment = Segment::open_active(dir.path(), 0, CAPACITY).unwrap();
        assert_eq!(segment.recoverable_bytes(), &[1u8; 500][..]);
        segment.recover_written_bytes(500).unwrap();
        assert_eq!(segment.remaining_bytes(), CAPACITY - 500);
        segment.append(&[2u8; 10]);
        segment.flush().unwrap();
        assert_eq!(
            &segment.written()[495..],
            &[1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
        );
        segment.delete().unwrap();
        assert!(!data_file_path(dir.path(), 0).exists());
    }

    #[test]
    fn grow_keeps_written_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 0, 4096).unwrap();
        segment.append(&[3u8; 100]);
        segment.grow(3 * CAPACITY).unwrap();
        assert_eq!(segment.remaining_bytes(), 3 * CAPACITY - 100);
        assert_eq!(file_len(segment.path()), 3 * CAPACITY as u64);
        segment.append(&[4u8; 10_000]);
        assert_eq!(&segment.written()[..100], &[3u8; 100][..]);
        segment.seal().unwrap();
        assert_eq!(file_len(segment.path()), 10_100);
    }

    #[test]
    fn appends_past_several_prefault_windows() {
        let dir = tempfile::tempdir().unwrap();
        let capacity = 3 * PREFAULT_WINDOW_BYTES + 100;
        let mut segment = Segment::create(dir.path(), 0, capacity).unwrap();
        let chunk = vec![9u8; 100_000];
        while segment.remaining_bytes() >= chunk.len() {
            segment.append(&chunk);
        }
        assert!(segment.prefaulted_bytes <= capacity);
        assert!(segment.written().iter().all(|byte| *byte == 9));
        segment.flush().unwrap();
    }
}
