//! The shard's syncer: one helper thread per shard that makes sealed segments durable, so that a
//! segment roll never waits for the disk on the reactor.
//!
//! Owns: a bounded FIFO queue of seal jobs, the thread that runs them one at a time in submission
//! order, and the count of jobs finished. A job fdatasyncs a sealed segment's data file, then writes
//! its index files (temporary file, fsync, rename), then fsyncs the partition directory.
//! Must not touch: anything the reactor reads or writes. A job carries its own handle to the data file,
//! a copy of the index and the directory path; the reactor keeps serving reads from the same segment
//! through its mapping meanwhile.
//!
//! Why this is safe: a produce is acknowledged once its bytes are in the page cache (ARCHITECTURE.md,
//! Durability), and a sealed segment is complete in the page cache before the roll that seals it
//! returns, so `kill -9` with jobs still queued loses nothing. Recovery then finds the sealed segments
//! whose job did not finish without index files and rebuilds them with a CRC check of every batch
//! (`recovery.rs`). A job writes index files only after the data is synced, so an index file on disk
//! never describes data that is only in the page cache.
//!
//! The page-cache budget: once a sealed segment is durable, the thread counts it as cached, newest
//! last, and drops the oldest ones from the page cache (`POSIX_FADV_DONTNEED`) while the shard's
//! sealed segments cached exceed `page_cache_bytes`. Left alone, the page cache grows with every byte
//! produced until the kernel has to reclaim, and pages it takes fresh cost far more than pages it
//! reuses (docs/perf/PROFILE.md, "Produce rate over a long run"); dropped pages are reused by the next
//! appends. Consumers within the budget of the tail read from memory, older ones from the disk (the
//! segment is marked evicted and readers drop what they read behind them, `segment.rs`).
//!
//! Why a thread of our own and not glommio's `spawn_blocking`: glommio gives each executor one blocking
//! thread, and shard 0's spends its whole life in `sigwait` (`src/boot.rs`), so a job queued there
//! would never run. The thread is spawned by the shard's executor thread and so inherits its CPU
//! affinity and NUMA memory policy: it spends its time waiting for the disk, and the little CPU it uses
//! is charged to its own core.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;

use super::index::SegmentIndex;
use super::segment::drop_from_page_cache;
use super::{sync_directory, StorageError};

/// Seal jobs a shard may have queued. A roll that finds the queue full waits on the reactor for the
/// oldest job to finish: that is the backpressure when the disk cannot keep up. 16 lets every partition
/// of a small shard roll at once without waiting; with 64 MiB segments it is up to 1 GiB of dirty data
/// queued, well past where the kernel's own dirty-page throttling slows the appends down anyway. A job
/// holds a copy of its segment's index, about 2.5 KiB per MiB of segment at the default 4 KiB index
/// interval, so a full queue of 64 MiB segments holds about 2.5 MiB.
pub const SEAL_JOBS_QUEUED_MAX: usize = 16;

/// The position of a job in its syncer's queue. Jobs finish in ticket order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// Making one sealed segment durable.
pub(crate) struct SealJob {
    /// The sealed segment's data file, shared with the `Segment` that still serves reads from it.
    pub(crate) data: Arc<File>,
    pub(crate) data_path: PathBuf,
    /// The partition directory, holding the index files and the data file's directory entry.
    pub(crate) dir: PathBuf,
    /// The segment's final index, written only after the data is synced.
    pub(crate) index: SegmentIndex,
    /// Set when any step fails, so that the log refuses to vouch for the segment at `close`.
    pub(crate) failed: Arc<AtomicBool>,
    /// The segment's flag, set when the budget drops it from the page cache.
    pub(crate) evicted: Arc<AtomicBool>,
}

/// One per shard; every log of the shard holds an `Rc` to it.
pub struct Syncer {
    sender: Option<SyncSender<Work>>,
    progress: Arc<Progress>,
    /// The ticket the next job gets; `Ticket(0)` is never handed out.
    next_ticket: Cell<u64>,
    thread: Option<JoinHandle<()>>,
}

/// The last ticket the thread finished, and a condition variable to wait for the next one.
struct Progress {
    finished: Mutex<u64>,
    changed: Condvar,
}

impl Syncer {
    /// Starts the syncer thread of the calling shard. `name` names the thread (`ps -L`, `top -H`);
    /// `page_cache_bytes` is the shard's page-cache budget for sealed segments (module comment).
    pub fn start(name: &str, page_cache_bytes: u64) -> Result<Syncer, StorageError> {
        let (sender, receiver) = sync_channel::<Work>(SEAL_JOBS_QUEUED_MAX);
        let progress = Arc::new(Progress {
            finished: Mutex::new(0),
            changed: Condvar::new(),
        });
        let thread_progress = progress.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let mut cached = CachedSegments::new(page_cache_bytes);
                // Ends when the `Syncer` drops its sender, after the queued jobs.
                for work in receiver {
                    let (ticket, job) = match work {
                        Work::Seal(ticket, job) => (ticket, job),
                        Work::Cached(segments) => {
                            segments
                                .into_iter()
                                .for_each(|segment| cached.admit(segment));
                            continue;
                        }
                    };
                    if let Some(segment) = job.run() {
                        cached.admit(segment);
                    }
                    let mut finished = lock(&thread_progress.finished);
                    assert!(ticket.0 == *finished + 1);
                    *finished = ticket.0;
                    thread_progress.changed.notify_all();
                }
            })
            .map_err(|error| StorageError::io(format!("start thread {name}"), error))?;
        Ok(Syncer {
            sender: Some(sender),
            progress,
            next_ticket: Cell::new(1),
            thread: Some(thread),
        })
    }

    /// Queues `job`; waits only when `SEAL_JOBS_QUEUED_MAX` jobs are already queued.
    pub(crate) fn submit(&self, job: SealJob) -> Ticket {
        let ticket = Ticket(self.next_ticket.get());
        self.next_ticket.set(ticket.0 + 1);
        let sender = self.sender.as_ref().expect("the sender lives until drop");
        // The thread only ends once the sender is dropped, so the receiver is alive here.
        sender
            .send(Work::Seal(ticket, job))
            .expect("the syncer thread outlives its sender");
        ticket
    }

    /// Counts durable sealed segments found at start-up as cached, oldest first, after whatever the
    /// budget already holds: the oldest of them leave the page cache if they do not fit.
    pub(crate) fn admit_cached(&self, segments: Vec<CachedSegment>) {
        if segments.is_empty() {
            return;
        }
        let sender = self.sender.as_ref().expect("the sender lives until drop");
        sender
            .send(Work::Cached(segments))
            .expect("the syncer thread outlives its sender");
    }

    pub(crate) fn is_finished(&self, ticket: Ticket) -> bool {
        assert!(ticket.0 < self.next_ticket.get());
        *lock(&self.progress.finished) >= ticket.0
    }

    /// Blocks the calling thread until the job of `ticket` (and every job before it) has finished.
    /// For `close` and `delete`, which must not return while a job still uses the partition's files.
    pub(crate) fn wait(&self, ticket: Ticket) {
        assert!(ticket.0 < self.next_ticket.get());
        let mut finished = lock(&self.progress.finished);
        // Bounded by the queue: every wake-up follows a finished job, and the ticket is at most
        // `SEAL_JOBS_QUEUED_MAX` jobs away.
        while *finished < ticket.0 {
            finished = match self.progress.changed.wait(finished) {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }
}

impl Drop for Syncer {
    /// Lets the thread finish the queued jobs, then joins it.
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the syncer thread panicked");
            }
        }
    }
}

impl SealJob {
    /// Data, then index files, then the directory: an index file must never vouch for data that is
    /// not durable, and the renames must reach the disk after the files they name. A failed step skips
    /// the rest; recovery rebuilds a missing index from the data. Returns the durable segment, for the
    /// page-cache budget; a segment that failed stays cached (its pages may still be dirty).
    fn run(self) -> Option<CachedSegment> {
        let result = self
            .data
            .sync_data()
            .map_err(|error| {
                StorageError::io(format!("fdatasync {}", self.data_path.display()), error)
            })
            .and_then(|()| self.index.write_files(&self.dir))
            .and_then(|()| sync_directory(&self.dir));
        if let Err(error) = result {
            log::error!(
                "could not make sealed segment {} durable: {error}",
                self.data_path.display()
            );
            self.failed.store(true, Ordering::Release);
            return None;
        }
        let bytes = match self.data.metadata() {
            Ok(metadata) => metadata.len(),
            Err(_) => return None,
        };
        Some(CachedSegment {
            file: Arc::downgrade(&self.data),
            path: self.data_path,
            bytes,
            evicted: self.evicted,
        })
    }
}

/// What the syncer thread is asked to do.
enum Work {
    Seal(Ticket, SealJob),
    Cached(Vec<CachedSegment>),
}

/// A durable sealed segment the budget counts as cached.
pub(crate) struct CachedSegment {
    /// Weak, so that the budget never keeps a segment deleted by retention open.
    file: Weak<File>,
    path: PathBuf,
    bytes: u64,
    evicted: Arc<AtomicBool>,
}

impl CachedSegment {
    /// `data` is a sealed segment that is durable: one opened sealed at start-up.
    pub(crate) fn of(data: &super::segment::Segment) -> CachedSegment {
        CachedSegment {
            file: Arc::downgrade(&data.sync_handle()),
            path: data.path().to_path_buf(),
            bytes: data.written_bytes() as u64,
            evicted: data.eviction_flag(),
        }
    }
}

/// The shard's durable sealed segments in the page cache, oldest first, and their bytes.
struct CachedSegments {
    budget_bytes: u64,
    total_bytes: u64,
    segments: VecDeque<CachedSegment>,
}

impl CachedSegments {
    fn new(budget_bytes: u64) -> CachedSegments {
        CachedSegments {
            budget_bytes,
            total_bytes: 0,
            segments: VecDeque::new(),
        }
    }

    /// Counts `segment` as cached, then drops the oldest segments until the rest fit the budget.
    fn admit(&mut self, segment: CachedSegment) {
        self.total_bytes += segment.bytes;
        self.segments.push_back(segment);
        while self.total_bytes > self.budget_bytes {
            let oldest = self
                .segments
                .pop_front()
                .expect("a positive total has a segment behind it");
            self.total_bytes -= oldest.bytes;
            // A segment retention has deleted meanwhile has left the page cache with its file.
            if let Some(file) = oldest.file.upgrade() {
                oldest.evicted.store(true, Ordering::Release);
                drop_from_page_cache(&file, 0, 0, &oldest.path);
            }
        }
    }
}

/// The mutex guards a plain integer, so a panic elsewhere cannot leave it inconsistent.
fn lock(mutex: &Mutex<u64>) -> std::sync::MutexGuard<'_, u64> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::index::{offset_index_path, time_index_path};

    fn job(dir: &std::path::Path, base_offset: i64, failed: &Arc<AtomicBool>) -> SealJob {
        let data_path = dir.join(format!("{base_offset}.data"));
        std::fs::write(&data_path, b"batches").unwrap();
        let mut index = SegmentIndex::new(base_offset, 4096);
        index.on_batch(0, 0, 100, 5);
        SealJob {
            data: Arc::new(File::open(&data_path).unwrap()),
            data_path,
            dir: dir.to_path_buf(),
            index,
            failed: failed.clone(),
            evicted: Arc::default(),
        }
    }

    #[test]
    fn jobs_finish_in_order_and_write_the_index_files() {
        let dir = tempfile::tempdir().unwrap();
        let syncer = Syncer::start("syncer-test", u64::MAX).unwrap();
        let failed = Arc::new(AtomicBool::new(false));
        let tickets: Vec<Ticket> = (0..3 * SEAL_JOBS_QUEUED_MAX as i64)
            .map(|base_offset| syncer.submit(job(dir.path(), base_offset * 10, &failed)))
            .collect();
        let last = *tickets.last().unwrap();
        syncer.wait(last);
        assert!(tickets.iter().all(|ticket| syncer.is_finished(*ticket)));
        assert!(!failed.load(Ordering::Acquire));
        for base_offset in 0..3 * SEAL_JOBS_QUEUED_MAX as i64 {
            assert!(offset_index_path(dir.path(), base_offset * 10).exists());
            assert!(time_index_path(dir.path(), base_offset * 10).exists());
        }
    }

    #[test]
    fn a_failed_job_is_reported_and_writes_no_index() {
        let dir = tempfile::tempdir().unwrap();
        let syncer = Syncer::start("syncer-test", u64::MAX).unwrap();
        let failed = Arc::new(AtomicBool::new(false));
        let mut doomed = job(dir.path(), 7, &failed);
        doomed.dir = dir.path().join("gone");
        let ticket = syncer.submit(doomed);
        syncer.wait(ticket);
        assert!(failed.load(Ordering::Acquire));
        assert!(!offset_index_path(&dir.path().join("gone"), 7).exists());
        // The thread keeps going after a failure.
        let ok = Arc::new(AtomicBool::new(false));
        let ticket = syncer.submit(job(dir.path(), 8, &ok));
        drop(syncer); // Drop finishes the queue.
        assert!(!ok.load(Ordering::Acquire));
        assert!(offset_index_path(dir.path(), 8).exists());
        let _ = ticket;
    }
}
