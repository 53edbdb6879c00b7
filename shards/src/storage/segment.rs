//! One segment data file, `<base offset as 20 digits>.log`: appended to with `pwritev` and read
//! through a shared read-only mapping of its capacity. The file is always exactly as long as the bytes
//! written to it; sealing ends its active life without touching the disk.
//!
//! Owns: the file, its mapping, the write position, page-cache hints and durability (fdatasync).
//! Must not touch: batch contents (it copies and returns bytes, the caller interprets them), indexing
//! policy, or when to roll. It never reads past the written position on behalf of a reader.
//!
//! Why appends go through the file descriptor and reads through the mapping:
//! - A `pwritev` that covers a page-cache folio completely skips zero-filling it; writing through a
//!   mapping first faults the folio in and zeroes it, and the zeroing was most of the produce path's
//!   CPU (docs/perf/PROFILE.md). Linux has one page cache per file, so the mapping sees every written
//!   byte as soon as `pwritev` returns, and so does recovery after `kill -9`.
//! - Nothing is ever written through the mapping, so a full disk cannot raise SIGBUS in the shard:
//!   ext4 and XFS reserve blocks for delayed allocation inside `write`, so ENOSPC comes back from the
//!   append as an error (no `posix_fallocate` needed), and readers never touch a page past the end of
//!   the file because they stop at the write position.
//! - Pages written with `pwritev` are not mapped into the process until a reader touches them, so
//!   produce-only traffic does not grow the broker's resident set.
//!
//! - Pages a reader touched stay mapped only near the reader: when a read moves into a new
//!   `RESIDENT_WINDOW_BYTES` window, the windows behind it are unmapped again (`MADV_DONTNEED`, which on a
//!   shared file mapping drops the page-table entries and keeps the page cache), and sealing or
//!   recovering a segment unmaps all of it. The broker's resident set then holds what it owns (pool,
//!   indexes, state) plus a few MiB per partition being read, not every byte consumers read; the page
//!   cache itself is the kernel's, reclaimable and shared, as it is for Kafka's `write`/`sendfile`.
//!
//! Page faults: a fault on the mapping blocks the whole executor, because this core runs every task.
//! Reads of recently written data are minor faults on pages already in the page cache (the kernel maps
//! 64 KiB around each fault); reads of cold segments are asked in ahead with `MADV_WILLNEED`.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memmap2::{Advice, Mmap, MmapOptions, UncheckedAdvice};

use super::{file_stem, io_error, StorageError};

/// A `pwritev` to a regular file returns short or `EINTR` only when a signal or an error interrupts
/// it; an append that is still incomplete after this many calls fails.
const WRITE_ATTEMPTS_MAX: u32 = 16;

/// How much of a segment a sequential reader keeps mapped behind its position: when a read enters
/// a new window, everything before the window the read starts in is unmapped. One `madvise` per
/// 512 KiB read, a few microseconds next to ~100 µs of copying; a reader therefore holds at most one
/// window behind its read, plus what the read itself covers, in the process's page tables.
pub const RESIDENT_WINDOW_BYTES: usize = 512 << 10;

/// Asks the kernel to drop the clean page-cache pages of `[position, position + len)` of `file`
/// (`POSIX_FADV_DONTNEED`; `len == 0` means to the end). Dirty pages and pages some process still maps
/// stay; nothing is lost either way, so a failure is only logged.
pub(crate) fn drop_from_page_cache(file: &File, position: usize, len: usize, path: &Path) {
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(position), libc::off_t::try_from(len))
    else {
        return;
    };
    // SAFETY: `posix_fadvise` only reads its integer arguments; the descriptor is open for as long as
    // `file` is borrowed.
    let result =
        unsafe { libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED) };
    if result != 0 {
        log::debug!("fadvise dontneed on {}: error {result}", path.display());
    }
}

/// Path of the data file for the segment starting at `base_offset`.
pub fn data_file_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.log", file_stem(base_offset)))
}

/// One data file of a partition log.
pub struct Segment {
    base_offset: i64,
    path: PathBuf,
    /// Shared with the shard's syncer while a seal job for this segment is queued.
    file: Arc<File>,
    /// Read-only and shared: the capacity of an active segment, the exact length of a sealed one opened
    /// at start-up.
    map: Mmap,
    /// Bytes holding batches. The file ends here, except after a failed append (see `file_bytes`) or,
    /// before recovery, after a crash.
    written_bytes: usize,
    /// An upper bound of the file's length: `written_bytes` unless an append failed part-way and the
    /// truncation back failed too. Sealing cuts the file back to `written_bytes`.
    file_bytes: usize,
    /// Prefix already made durable by `flush`.
    flushed_bytes: usize,
    /// Bytes that may hold batches written by an earlier run: the file length found by `open_*`.
    /// Recovery scans only this far.
    file_bytes_at_open: usize,
    sealed: bool,
    /// Set by the shard's syncer once this sealed segment is durable and older than the shard's page
    /// cache budget holds (`syncer.rs`); its pages were dropped from the page cache then, and a reader
    /// drops again what it read behind itself, so catching up does not fill the cache anew.
    evicted: Arc<AtomicBool>,
}

impl Segment {
    /// Creates a new, empty active segment that can take `capacity_bytes`. Fails if the file already
    /// exists: the log only creates segments past its end, so an existing file means a bug or a foreign
    /// file. Two system calls: no block is allocated until data arrives.
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
        let map = map_read_only(&file, capacity_bytes, &path)?;
        Ok(Segment::active(base_offset, path, file, map, 0))
    }

    /// Opens the newest segment of a log for appending, with room for at least `capacity_bytes`. The
    /// write position starts at zero: recovery scans `recoverable_bytes` and then calls
    /// `recover_written_bytes` with the end it found.
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
        let map = map_read_only(&file, capacity_bytes, &path)?;
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
            file: Arc::new(file),
            map,
            written_bytes: file_bytes,
            file_bytes,
            flushed_bytes: file_bytes,
            file_bytes_at_open: file_bytes,
            sealed: true,
            evicted: Arc::default(),
        })
    }

    fn active(
        base_offset: i64,
        path: PathBuf,
        file: File,
        map: Mmap,
        file_bytes: usize,
    ) -> Segment {
        if let Err(error) = map.advise(Advice::Sequential) {
            log::debug!("madvise sequential on {}: {error}", path.display());
        }
        Segment {
            base_offset,
            path,
            file: Arc::new(file),
            map,
            written_bytes: 0,
            file_bytes,
            flushed_bytes: 0,
            file_bytes_at_open: file_bytes,
            sealed: false,
            evicted: Arc::default(),
        }
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
        self.sealed
    }

    /// Bytes an append can still take; zero once sealed.
    pub fn remaining_bytes(&self) -> usize {
        match self.sealed {
            true => 0,
            false => self.map.len() - self.written_bytes,
        }
    }

    /// The written bytes, for walking batch headers. Use `read` for the bytes handed to a consumer.
    pub fn written(&self) -> &[u8] {
        &self.map[..self.written_bytes]
    }

    /// Bytes an earlier run may have written, for recovery to scan before it trusts any of them.
    pub fn recoverable_bytes(&self) -> &[u8] {
        &self.map[..self.file_bytes_at_open]
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
        let resident_start = position.next_multiple_of(RESIDENT_WINDOW_BYTES);
        if resident_start < end {
            // This read enters a new window; the reader is done with everything before the window it
            // starts in (a read may be longer than a window, so it may have skipped windows). Ranges
            // already unmapped cost the kernel a look at one page-table entry per 2 MiB.
            let behind = position / RESIDENT_WINDOW_BYTES * RESIDENT_WINDOW_BYTES;
            self.unmap_pages(0, behind);
        }
        let window_start = position.next_multiple_of(READ_AHEAD_WINDOW_BYTES);
        if window_start < end && !self.page_is_cached(window_start) {
            let window_end = end
                .next_multiple_of(READ_AHEAD_WINDOW_BYTES)
                .min(self.written_bytes);
            let advised =
                self.map
                    .advise_range(Advice::WillNeed, window_start, window_end - window_start);
            if let Err(error) = advised {
                log::debug!("madvise willneed on {}: {error}", self.path.display());
            }
        }
        &self.map[position..end]
    }

    /// Unmaps the pages under `bytes` if it is a slice of this segment's mapping (a read the caller
    /// has copied and no longer needs mapped); returns whether it was.
    pub fn unmap_read(&self, bytes: &[u8]) -> bool {
        let start = self.map.as_ptr() as usize;
        let Some(position) = (bytes.as_ptr() as usize).checked_sub(start) else {
            return false;
        };
        if bytes.is_empty() || position + bytes.len() > self.written_bytes {
            return false;
        }
        self.unmap_pages(position, bytes.len());
        true
    }

    /// Unmaps every page of the segment from the process (see the module comment); the next read maps
    /// what it touches again, from the page cache.
    pub fn unmap_all(&self) {
        self.unmap_pages(0, self.written_bytes);
    }

    /// Drops the page-table entries of `[position, position + len)` of the written bytes. The page
    /// cache keeps the pages, so a later read of the range sees the same bytes after a minor fault;
    /// of an evicted segment it drops them too (`evicted`), and a later read goes to the disk.
    fn unmap_pages(&self, position: usize, len: usize) {
        let len = len.min(self.written_bytes.saturating_sub(position));
        if len == 0 {
            return;
        }
        // SAFETY: `MADV_DONTNEED` on a shared, file-backed mapping discards no data: it removes the
        // mapping's page-table entries and later accesses fault the same page-cache pages back in.
        // Nothing is ever written through this mapping and the written range of the file never changes
        // (the file is only cut past `written_bytes`), so any slice a caller still holds reads the same
        // bytes afterwards. The range lies inside the mapping (`position + len <= written_bytes`).
        let advised = unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, position, len)
        };
        if let Err(error) = advised {
            log::debug!("madvise dontneed on {}: {error}", self.path.display());
        }
        if self.evicted.load(Ordering::Acquire) {
            drop_from_page_cache(&self.file, position, len, &self.path);
        }
    }

    /// Whether the page at `position` (page-aligned) of the mapping is in the page cache.
    fn page_is_cached(&self, position: usize) -> bool {
        let address = self.map[position..].as_ptr();
        let mut residency = [0u8; 1];
        // SAFETY: `address` is inside the mapping and page-aligned (the mapping starts on a page and
        // callers pass multiples of 4 MiB); a length of one byte asks about that single page, and
        // `residency` has room for its one status byte.
        let result =
            unsafe { libc::mincore(address as *mut libc::c_void, 1, residency.as_mut_ptr()) };
        result == 0 && residency[0] & 1 == 1
    }

    /// Writes `head` and then `body` at the write position with one `pwritev`: the log passes a batch's
    /// stamped header and the rest of the batch, so the batch is never copied in user space. When this
    /// returns `Ok` the bytes are in the page cache, visible through the mapping and to a restart after
    /// `kill -9`. On an error (ENOSPC, EIO) the write position does not move and the partial bytes are
    /// cut off again. The caller checks the space.
    pub fn append(&mut self, head: &[u8], body: &[u8]) -> Result<(), StorageError> {
        assert!(!self.sealed);
        let len = head.len() + body.len();
        assert!(len > 0);
        assert!(len <= self.remaining_bytes());
        let start = self.written_bytes;
        if let Err(error) = write_all_at(&self.file, [head, body], start) {
            self.file_bytes = self.file_bytes.max(start + len);
            if self.file.set_len(start as u64).is_ok() {
                self.file_bytes = start;
            }
            let context = format!("append to segment {}", self.path.display());
            return Err(StorageError::io(context, error));
        }
        self.written_bytes = start + len;
        self.file_bytes = self.file_bytes.max(self.written_bytes);
        assert!(self.written_bytes <= self.map.len());
        Ok(())
    }

    /// Grows the capacity of the active segment to `capacity_bytes` by mapping more of the file. The
    /// log uses it when a batch larger than `segment_bytes` arrives at an empty segment (Kafka allows
    /// `max.message.bytes` above `segment.bytes`).
    pub fn grow(&mut self, capacity_bytes: usize) -> Result<(), StorageError> {
        assert!(!self.sealed);
        if capacity_bytes <= self.map.len() {
            return Ok(());
        }
        self.map = map_read_only(&self.file, capacity_bytes, &self.path)?;
        if let Err(error) = self.map.advise(Advice::Sequential) {
            log::debug!("madvise sequential on {}: {error}", self.path.display());
        }
        assert!(self.remaining_bytes() == capacity_bytes - self.written_bytes);
        Ok(())
    }

    /// Makes every written byte durable: fdatasync of the file, which also writes back the metadata
    /// (file size, block allocation) needed to read the data back after a power loss.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        assert!(self.flushed_bytes <= self.written_bytes);
        if self.flushed_bytes == self.written_bytes {
            return Ok(());
        }
        self.file.sync_data().map_err(io_error(format!(
            "fdatasync segment {}",
            self.path.display()
        )))?;
        self.flushed_bytes = self.written_bytes;
        Ok(())
    }

    /// Ends the segment's active life: no more appends, and the file ends at the last batch. No system
    /// call unless an earlier append failed part-way; durability is `flush` or the syncer's job (see
    /// `sync_handle`), off the reactor.
    pub fn seal(&mut self) -> Result<(), StorageError> {
        assert!(!self.sealed);
        if self.file_bytes > self.written_bytes {
            let context = format!("seal segment {}", self.path.display());
            self.file
                .set_len(self.written_bytes as u64)
                .map_err(io_error(context))?;
            self.file_bytes = self.written_bytes;
        }
        self.sealed = true;
        self.file_bytes_at_open = self.written_bytes;
        // Readers following the tail mapped its last pages; behind the tail nobody needs them mapped.
        self.unmap_all();
        assert!(self.file_bytes == self.written_bytes);
        Ok(())
    }

    /// The file handle a seal job fdatasyncs while this segment keeps serving reads.
    pub(crate) fn sync_handle(&self) -> Arc<File> {
        assert!(self.sealed);
        self.file.clone()
    }

    /// The flag the syncer sets when it drops this sealed segment from the page cache.
    pub(crate) fn eviction_flag(&self) -> Arc<AtomicBool> {
        assert!(self.sealed);
        self.evicted.clone()
    }

    /// Sets the write position found by recovery and cuts everything after it. Bytes past the end may
    /// be a torn batch or garbage; they must never be mistaken for data after a later crash, so the cut
    /// is synced before the first append lands after it.
    pub fn recover_written_bytes(&mut self, written_bytes: usize) -> Result<(), StorageError> {
        assert!(!self.sealed);
        assert!(self.written_bytes == 0);
        assert!(written_bytes <= self.file_bytes_at_open);
        if written_bytes < self.file_bytes_at_open {
            let context = format!("cut the tail of segment {}", self.path.display());
            self.file
                .set_len(written_bytes as u64)
                .map_err(io_error(context.clone()))?;
            self.file.sync_data().map_err(io_error(context))?;
        }
        self.written_bytes = written_bytes;
        self.file_bytes = written_bytes;
        self.file_bytes_at_open = written_bytes;
        // Pages written before the crash may still be dirty in the page cache; the next flush covers them.
        self.flushed_bytes = 0;
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
}

fn file_length(file: &File, path: &Path) -> Result<usize, StorageError> {
    let metadata = file
        .metadata()
        .map_err(io_error(format!("stat segment {}", path.display())))?;
    usize::try_from(metadata.len()).map_err(|_| {
        StorageError::Corrupt(format!("segment {} is too large to map", path.display()))
    })
}

/// Writes `parts` back to back at `position`, continuing after short writes.
fn write_all_at(file: &File, parts: [&[u8]; 2], position: usize) -> std::io::Result<()> {
    let total = parts[0].len() + parts[1].len();
    let mut done = 0;
    for _ in 0..WRITE_ATTEMPTS_MAX {
        let first = parts[0].get(done..).unwrap_or_default();
        let second_done = done.saturating_sub(parts[0].len());
        let second = &parts[1][second_done..];
        let iovecs = [first, second].map(|part| libc::iovec {
            iov_base: part.as_ptr() as *mut libc::c_void,
            iov_len: part.len(),
        });
        let Ok(offset) = libc::off_t::try_from(position + done) else {
            return Err(std::io::ErrorKind::InvalidInput.into());
        };
        // SAFETY: both iovecs point into slices that outlive the call, and the kernel only reads them.
        let result = unsafe { libc::pwritev(file.as_raw_fd(), iovecs.as_ptr(), 2, offset) };
        match result {
            written if written > 0 => {
                done += written as usize;
                assert!(done <= total);
                if done == total {
                    return Ok(());
                }
            }
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            _ => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    Err(std::io::ErrorKind::Interrupted.into())
}

fn map_read_only(file: &File, len: usize, path: &Path) -> Result<Mmap, StorageError> {
    // SAFETY: the shard owning this partition is the only writer of the file, and it never truncates
    // the file below a slice it handed out: `recover_written_bytes` cuts only past the write position,
    // before any read, and a failed append cuts only its own partial bytes. Readers stop at the write
    // position, which never passes the end of the file, so no access can SIGBUS. Another process
    // modifying the file would break this, as it would for any mmap'd store.
    unsafe { MmapOptions::new().len(len).map(file) }
        .map_err(io_error(format!("mmap segment {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::mapped_pages;

    const CAPACITY: usize = 64 << 10;

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn create_names_the_file_and_allocates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let segment = Segment::create(dir.path(), 42, CAPACITY).unwrap();
        assert_eq!(segment.path(), dir.path().join("00000000000000000042.log"));
        assert_eq!(file_len(segment.path()), 0);
        assert_eq!(segment.remaining_bytes(), CAPACITY);
        assert!(segment.is_empty());
        assert!(Segment::create(dir.path(), 42, CAPACITY).is_err());
    }

    #[test]
    fn append_read_flush_seal_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 0, CAPACITY).unwrap();
        let first: Vec<u8> = (0..1000u32).map(|value| value as u8).collect();
        segment.append(&first[..10], &first[10..]).unwrap();
        segment.append(b"j", b"ello").unwrap();
        assert_eq!(segment.written_bytes(), 1005);
        assert_eq!(file_len(segment.path()), 1005);
        assert_eq!(segment.read(0, 1000), &first[..]);
        assert_eq!(segment.read(1000, 5), b"jello");
        assert_eq!(segment.read(1005, 0), b"");
        segment.flush().unwrap();
        segment.seal().unwrap();
        assert!(segment.is_sealed());
        assert_eq!(segment.remaining_bytes(), 0);
        assert_eq!(file_len(segment.path()), 1005);
        assert_eq!(segment.read(1000, 5), b"jello");
        segment.sync_handle().sync_data().unwrap();
        drop(segment);

        let reopened = Segment::open_sealed(dir.path(), 0).unwrap();
        assert_eq!(reopened.written_bytes(), 1005);
        assert_eq!(&reopened.written()[..1000], &first[..]);
        assert_eq!(reopened.read(1000, 5), b"jello");
    }

    #[test]
    fn appended_bytes_are_in_the_file_before_any_flush() {
        // What `kill -9` recovery relies on: the page cache is the file.
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 3, CAPACITY).unwrap();
        segment.append(&[1u8; 61], &[2u8; 5000]).unwrap();
        segment.append(&[3u8; 61], &[]).unwrap();
        let on_disk = std::fs::read(segment.path()).unwrap();
        assert_eq!(on_disk.len(), 5122);
        assert!(on_disk[..61].iter().all(|byte| *byte == 1));
        assert!(on_disk[61..5061].iter().all(|byte| *byte == 2));
        assert!(on_disk[5061..].iter().all(|byte| *byte == 3));
        assert_eq!(segment.written(), &on_disk[..]);
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
    fn open_active_and_recovery_cut_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 0, CAPACITY).unwrap();
        segment.append(&[7u8; 1000], &[7u8; 2000]).unwrap();
        drop(segment); // A crash: nothing sealed.

        let mut segment = Segment::open_active(dir.path(), 0, CAPACITY).unwrap();
        assert_eq!(segment.recoverable_bytes().len(), 3000);
        assert_eq!(segment.written_bytes(), 0);
        segment.recover_written_bytes(1000).unwrap();
        assert_eq!(segment.written(), &[7u8; 1000][..]);
        assert_eq!(file_len(segment.path()), 1000);
        assert_eq!(segment.remaining_bytes(), CAPACITY - 1000);
        segment.append(&[8u8; 10], &[]).unwrap();
        drop(segment);

        let bytes = std::fs::read(data_file_path(dir.path(), 0)).unwrap();
        assert_eq!(bytes.len(), 1010);
        assert!(bytes[..1000].iter().all(|byte| *byte == 7));
        assert!(bytes[1000..].iter().all(|byte| *byte == 8));
    }

    #[test]
    fn open_active_of_a_preallocated_file_cuts_the_zeros() {
        // Segments written before appends used `pwritev` were preallocated to their capacity.
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = vec![0u8; CAPACITY];
        bytes[..500].fill(5);
        std::fs::write(data_file_path(dir.path(), 0), &bytes).unwrap();
        let mut segment = Segment::open_active(dir.path(), 0, CAPACITY).unwrap();
        assert_eq!(segment.recoverable_bytes().len(), CAPACITY);
        segment.recover_written_bytes(500).unwrap();
        assert_eq!(file_len(segment.path()), 500);
        assert_eq!(segment.remaining_bytes(), CAPACITY - 500);
    }

    #[test]
    fn open_active_after_seal_keeps_bytes_and_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 0, CAPACITY).unwrap();
        segment.append(&[1u8; 100], &[1u8; 400]).unwrap();
        segment.seal().unwrap();
        drop(segment);

        let mut segment = Segment::open_active(dir.path(), 0, CAPACITY).unwrap();
        assert_eq!(segment.recoverable_bytes(), &[1u8; 500][..]);
        segment.recover_written_bytes(500).unwrap();
        assert_eq!(segment.remaining_bytes(), CAPACITY - 500);
        segment.append(&[2u8; 10], &[]).unwrap();
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
        segment.append(&[3u8; 100], &[]).unwrap();
        segment.grow(3 * CAPACITY).unwrap();
        assert_eq!(segment.remaining_bytes(), 3 * CAPACITY - 100);
        segment.append(&[4u8; 61], &[4u8; 9939]).unwrap();
        assert_eq!(&segment.written()[..100], &[3u8; 100][..]);
        assert!(segment.written()[100..].iter().all(|byte| *byte == 4));
        segment.seal().unwrap();
        assert_eq!(file_len(segment.path()), 10_100);
    }

    #[test]
    fn a_failed_append_moves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 0, CAPACITY).unwrap();
        segment.append(&[1u8; 100], &[]).unwrap();
        // A read-only descriptor makes `pwritev` fail with EBADF, as ENOSPC or EIO would.
        let read_only = Arc::new(File::open(segment.path()).unwrap());
        let writable = std::mem::replace(&mut segment.file, read_only);
        assert!(matches!(
            segment.append(&[2u8; 100], &[]),
            Err(StorageError::Io { .. })
        ));
        assert_eq!(segment.written_bytes(), 100);
        segment.file = writable;
        segment.append(&[3u8; 50], &[]).unwrap();
        segment.seal().unwrap();
        let bytes = std::fs::read(segment.path()).unwrap();
        assert_eq!(bytes.len(), 150);
        assert!(bytes[100..].iter().all(|byte| *byte == 3));
    }

    #[test]
    fn appends_fill_the_capacity_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let capacity = 3 * (1 << 20) + 100;
        let mut segment = Segment::create(dir.path(), 0, capacity).unwrap();
        let chunk = vec![9u8; 100_000];
        while segment.remaining_bytes() >= chunk.len() {
            segment.append(&chunk[..61], &chunk[61..]).unwrap();
        }
        let rest = segment.remaining_bytes();
        segment.append(&chunk[..rest], &[]).unwrap();
        assert_eq!(segment.remaining_bytes(), 0);
        assert_eq!(segment.written_bytes(), capacity);
        assert!(segment.written().iter().all(|byte| *byte == 9));
        segment.flush().unwrap();
    }

    #[test]
    fn a_sequential_reader_keeps_only_the_windows_near_it_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let capacity = 8 * RESIDENT_WINDOW_BYTES;
        let mut segment = Segment::create(dir.path(), 0, capacity).unwrap();
        let chunk: Vec<u8> = (0..64 << 10)
            .map(|value: u32| (value % 251) as u8)
            .collect();
        while segment.remaining_bytes() >= chunk.len() {
            segment.append(&chunk[..61], &chunk[61..]).unwrap();
        }
        // Appends go through the file, so nothing is mapped before a reader comes.
        assert_eq!(mapped_pages(segment.written()), 0);
        let window_pages = RESIDENT_WINDOW_BYTES / 4096;
        let mut position = 0;
        while position < segment.written_bytes() {
            let bytes = segment.read(position, chunk.len());
            assert_eq!(bytes, &chunk[..]);
            position += bytes.len();
            // The window being read and the one before it, at most.
            assert!(mapped_pages(segment.written()) <= 2 * window_pages);
        }
        // Bytes read before are still right after being unmapped: they fault back from the page cache.
        assert_eq!(segment.read(0, chunk.len()), &chunk[..]);
        assert!(mapped_pages(segment.written()) > 0);
        segment.seal().unwrap();
        assert_eq!(mapped_pages(segment.written()), 0);
        assert_eq!(
            segment.read(capacity - chunk.len(), chunk.len()),
            &chunk[..]
        );
    }

    #[test]
    fn reads_longer_than_a_window_leave_no_window_behind_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let capacity = 16 * RESIDENT_WINDOW_BYTES;
        let mut segment = Segment::create(dir.path(), 0, capacity).unwrap();
        let body = vec![7u8; RESIDENT_WINDOW_BYTES - 16];
        while segment.remaining_bytes() >= RESIDENT_WINDOW_BYTES {
            segment.append(&[7u8; 16], &body).unwrap();
        }
        // Reads of 2.5 windows (a 1 MiB fetch against 512 KiB windows) start in every other window.
        let read_bytes = 5 * RESIDENT_WINDOW_BYTES / 2;
        let window_pages = RESIDENT_WINDOW_BYTES / 4096;
        let mut position = 0;
        while position + read_bytes <= segment.written_bytes() {
            let bytes = segment.read(position, read_bytes);
            assert!(bytes.iter().all(|byte| *byte == 7));
            position += read_bytes;
            // The window the read started in and what the read covered; nothing further behind.
            let limit = window_pages + read_bytes / 4096;
            let mapped = mapped_pages(segment.written());
            assert!(mapped <= limit, "{mapped} pages mapped at {position}");
        }
    }
}
