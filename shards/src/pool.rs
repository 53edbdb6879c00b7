//! The per-shard buffer pool: bounded, size-classed, and every buffer goes home.
//!
//! Owns: the buffers one shard hands out for request frames and fetch replies, the byte budget that
//! bounds them, and the lock-free return queues through which other shards give buffers back.
//! Never: frees a pooled buffer on a core other than its home (a foreign core queues it back), and never
//! lends more than the budget (an acquire waits instead, which is the backpressure).
//!
//! Buffers come in power-of-two classes from `CLASS_BYTES_MIN` to `CLASS_BYTES_MAX`; larger requests get
//! an exact-size allocation that counts against the budget but is not cached. A buffer can cross to
//! another shard inside a `bytes::Bytes` (see [`PoolBuf::into_bytes`]); when the last reference drops
//! there, [`PoolBuf`]'s `Drop` pushes it onto the single-producer single-consumer queue from that shard
//! to the home shard, which drains it on its next acquire. Each queue holds more slots than the home
//! pool can ever lend, so a push can never fail.

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use heapless::spsc::{Consumer, Producer, Queue};

use crate::ShardId;

/// The smallest class: most control requests and produce requests of a few records fit.
pub const CLASS_BYTES_MIN: usize = 4 * 1024;
/// The largest cached class: one default-sized batch (max.message.bytes ≈ 1 MiB) plus framing.
pub const CLASS_BYTES_MAX: usize = 2 * 1024 * 1024;
const CLASS_COUNT: usize = (CLASS_BYTES_MAX / CLASS_BYTES_MIN).trailing_zeros() as usize + 1;
/// How many buffers one shard may have lent at once. With the smallest class this bounds the budget
/// from the other side: every queue that returns buffers must hold them all.
pub const BUFFERS_LENT_MAX: usize = 4095;
/// Capacity of each return queue: heapless queues hold `N - 1` items, so this holds every lendable buffer.
const RETURN_QUEUE_SLOTS: usize = BUFFERS_LENT_MAX + 1;
/// How long an acquire that is over budget sleeps before draining the return queues again. Buffers
/// returned by other cores do not wake this core, so an over-budget acquire polls at this period; it
/// happens only under overload, never when idle.
const OVER_BUDGET_POLL: Duration = Duration::from_micros(200);

const _: () = assert!(CLASS_BYTES_MIN.is_power_of_two());
const _: () = assert!(CLASS_BYTES_MAX.is_power_of_two());
const _: () = assert!(CLASS_COUNT == 10);

type ReturnQueue = Queue<Vec<u8>, RETURN_QUEUE_SLOTS>;

/// The producer ends a shard uses to send buffers home, one per other shard.
pub struct ReturnSenders {
    producers: Vec<Option<Producer<'static, Vec<u8>>>>,
}

/// The consumer ends a shard drains to take its buffers back, one per other shard.
pub struct ReturnReceivers {
    consumers: Vec<Option<Consumer<'static, Vec<u8>>>>,
}

/// Builds the full mesh of return queues at boot, before executors start, and hands each shard its
/// ends. The queues live for the life of the process (they are leaked on purpose: shards never stop
/// before the process does, and a `'static` queue needs no reference counting across cores).
pub fn return_queues(shard_count: usize) -> Vec<(ReturnSenders, ReturnReceivers)> {
    let mut senders: Vec<ReturnSenders> = (0..shard_count)
        .map(|_| ReturnSenders {
            producers: (0..shard_count).map(|_| None).collect(),
        })
        .collect();
    let mut receivers: Vec<ReturnReceivers> = (0..shard_count)
        .map(|_| ReturnReceivers {
            consumers: (0..shard_count).map(|_| None).collect(),
        })
        .collect();
    for (home, home_receivers) in receivers.iter_mut().enumerate() {
        for (foreign, foreign_senders) in senders.iter_mut().enumerate() {
            if home == foreign {
                continue;
            }
            let queue: &'static mut ReturnQueue = Box::leak(Box::new(ReturnQueue::new()));
            let (producer, consumer) = queue.split();
            foreign_senders.producers[home] = Some(producer);
            home_receivers.consumers[foreign] = Some(consumer);
        }
    }
    senders.into_iter().zip(receivers).collect()
}

struct PoolState {
    home: ShardId,
    budget_bytes: usize,
    lent_bytes: usize,
    lent_count: usize,
    cached_bytes: usize,
    free: [Vec<Vec<u8>>; CLASS_COUNT],
    senders: ReturnSenders,
    receivers: ReturnReceivers,
}

thread_local! {
    /// The pool of the shard running on this thread. A thread-local rather than a field of `Shard`
    /// because `PoolBuf::drop` must find it without a handle, on whichever core the buffer dies.
    static POOL: RefCell<Option<PoolState>> = const { RefCell::new(None) };
    static OVER_BUDGET_WAITS: Cell<u64> = const { Cell::new(0) };
}

/// Installs this thread's pool. Called once by each shard as it starts.
pub fn install(home: ShardId, budget_bytes: usize, ends: (ReturnSenders, ReturnReceivers)) {
    assert!(budget_bytes >= CLASS_BYTES_MAX);
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        assert!(pool.is_none(), "a shard's pool is installed once");
        *pool = Some(PoolState {
            home,
            budget_bytes,
            lent_bytes: 0,
            lent_count: 0,
            cached_bytes: 0,
            free: Default::default(),
            senders: ends.0,
            receivers: ends.1,
        });
    });
}

/// A buffer lent by a shard's pool. Dereferences to its first `len` bytes.
pub struct PoolBuf {
    data: Vec<u8>,
    home: ShardId,
}

impl PoolBuf {
    /// Takes a buffer of exactly `len` zero-filled bytes (a frame is read into it) from this shard's
    /// pool, waiting while the pool is over budget.
    pub async fn acquire(len: usize) -> PoolBuf {
        loop {
            if let Some(buf) = try_acquire(len) {
                return buf;
            }
            OVER_BUDGET_WAITS.with(|waits| waits.set(waits.get() + 1));
            glommio::timer::sleep(OVER_BUDGET_POLL).await;
        }
    }

    /// Takes an empty buffer with room for at least `capacity` bytes from this shard's pool, waiting
    /// while the pool is over budget. Nothing is zero-filled: the caller fills it with
    /// [`PoolBuf::extend_from_slice`], which is what a fetch reply needs (its bytes are all copies).
    pub async fn acquire_empty(capacity: usize) -> PoolBuf {
        loop {
            if let Some(buf) = PoolBuf::try_acquire_empty(capacity) {
                return buf;
            }
            OVER_BUDGET_WAITS.with(|waits| waits.set(waits.get() + 1));
            glommio::timer::sleep(OVER_BUDGET_POLL).await;
        }
    }

    /// Like [`PoolBuf::acquire_empty`], but answers `None` at once when the pool is over budget, so a
    /// caller holding borrows it must not keep across an await can fall back to waiting without them.
    pub fn try_acquire_empty(capacity: usize) -> Option<PoolBuf> {
        with_pool(|state| state.take(capacity, Fill::Empty))
    }

    /// Appends `source`. The buffer never grows past the capacity it was lent with: its capacity is
    /// what the budget counts and what class it goes back to.
    pub fn extend_from_slice(&mut self, source: &[u8]) {
        assert!(source.len() <= self.spare_capacity());
        let capacity = self.data.capacity();
        self.data.extend_from_slice(source);
        assert!(self.data.capacity() == capacity);
    }

    /// Bytes that can still be appended.
    pub fn spare_capacity(&self) -> usize {
        self.data.capacity() - self.data.len()
    }

    /// Makes the buffer shareable and sendable; it still goes home when the last `Bytes` drops.
    pub fn into_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from_owner(self)
    }

    pub fn home(&self) -> ShardId {
        self.home
    }

    /// Shortens the buffer to `len` bytes (the capacity stays, so it returns to the same class).
    pub fn truncate(&mut self, len: usize) {
        self.data.truncate(len);
    }
}

impl Deref for PoolBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl DerefMut for PoolBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl AsRef<[u8]> for PoolBuf {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        let home = self.home;
        // `try_with` because a buffer may die during thread teardown, after the pool is gone; the
        // memory is then simply freed.
        let _ = POOL.try_with(|pool| match pool.borrow_mut().as_mut() {
            Some(state) if state.home == home => state.release(data),
            Some(state) => state.send_home(home, data),
            // A thread that is not a shard (the main thread at shutdown) frees it.
            None => drop(data),
        });
    }
}

/// Counters for observability and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub lent_bytes: usize,
    pub lent_count: usize,
    pub cached_bytes: usize,
    pub over_budget_waits: u64,
}

/// This thread's pool counters; `None` on a thread without a pool.
pub fn stats() -> Option<PoolStats> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let state = pool.as_mut()?;
        state.drain_returns();
        Some(PoolStats {
            lent_bytes: state.lent_bytes,
            lent_count: state.lent_count,
            cached_bytes: state.cached_bytes,
            over_budget_waits: OVER_BUDGET_WAITS.with(Cell::get),
        })
    })
}

fn try_acquire(len: usize) -> Option<PoolBuf> {
    with_pool(|state| state.take(len, Fill::Zeroed))
}

fn with_pool<T>(take: impl FnOnce(&mut PoolState) -> Option<T>) -> Option<T> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let state = pool
            .as_mut()
            .expect("PoolBuf::acquire runs on a shard thread");
        state.drain_returns();
        take(state)
    })
}

/// What a newly lent buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// `len` bytes, zero-filled where the buffer is new (a frame read into it needs initialised bytes).
    Zeroed,
    /// Nothing: room for `len` bytes that the borrower appends.
    Empty,
}

fn class_of(capacity: usize) -> Option<usize> {
    if capacity > CLASS_BYTES_MAX {
        return None;
    }
    let rounded = capacity.max(CLASS_BYTES_MIN).next_power_of_two();
    Some((rounded / CLASS_BYTES_MIN).trailing_zeros() as usize)
}

fn class_bytes(class: usize) -> usize {
    CLASS_BYTES_MIN << class
}

impl PoolState {
    fn take(&mut self, len: usize, fill: Fill) -> Option<PoolBuf> {
        let capacity = match class_of(len) {
            Some(class) => class_bytes(class),
            None => len,
        };
        // A single request larger than the whole budget is still served when nothing else is lent, so
        // the largest legal frame can always make progress.
        let over_budget = self.lent_bytes + capacity > self.budget_bytes && self.lent_count > 0;
        if over_budget || self.lent_count >= BUFFERS_LENT_MAX {
            return None;
        }
        let mut data = match class_of(len) {
            Some(class) => match self.free[class].pop() {
                Some(data) => {
                    self.cached_bytes -= data.capacity();
                    data
                }
                None => Vec::with_capacity(capacity),
            },
            None => Vec::with_capacity(capacity),
        };
        assert!(data.capacity() >= len);
        assert!(data.is_empty());
        match fill {
            Fill::Zeroed => data.resize(len, 0),
            Fill::Empty => {}
        }
        self.lent_bytes += data.capacity();
        self.lent_count += 1;
        Some(PoolBuf {
            data,
            home: self.home,
        })
    }

    fn release(&mut self, mut data: Vec<u8>) {
        assert!(self.lent_count > 0);
        assert!(self.lent_bytes >= data.capacity());
        self.lent_count -= 1;
        self.lent_bytes -= data.capacity();
        let cacheable = self.cached_bytes + data.capacity() <= self.budget_bytes;
        match class_of(data.capacity()) {
            Some(class) if cacheable && class_bytes(class) == data.capacity() => {
                data.clear();
                self.cached_bytes += data.capacity();
                self.free[class].push(data);
            }
            _ => drop(data),
        }
    }

    fn send_home(&mut self, home: ShardId, data: Vec<u8>) {
        let producer = self.senders.producers[usize::from(home.0)]
            .as_mut()
            .expect("every shard has a return queue to every other shard");
        // The queue has a slot for every buffer the home shard can lend, so it cannot be full.
        let pushed = producer.enqueue(data);
        assert!(pushed.is_ok(), "return queue overflow");
    }

    fn drain_returns(&mut self) {
        for index in 0..self.receivers.consumers.len() {
            // Bounded by the queue's capacity: the producer cannot outrun a drain by more than that.
            while let Some(data) = self.receivers.consumers[index]
                .as_mut()
                .and_then(Consumer::dequeue)
            {
                self.release(data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_powers_of_two() {
        assert_eq!(class_of(1), Some(0));
        assert_eq!(class_of(CLASS_BYTES_MIN), Some(0));
        assert_eq!(class_of(CLASS_BYTES_MIN + 1), Some(1));
        assert_eq!(class_of(CLASS_BYTES_MAX), Some(CLASS_COUNT - 1));
        assert_eq!(class_of(CLASS_BYTES_MAX + 1), None);
    }

    #[test]
    fn buffers_return_to_their_home_shard_from_another_core() {
        let ends = return_queues(2);
        let mut ends = ends.into_iter();
        let home_ends = ends.next().unwrap();
        let foreign_ends = ends.next().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel::<bytes::Bytes>();
        let foreign = std::thread::spawn(move || {
            install(ShardId(1), 8 * CLASS_BYTES_MAX, foreign_ends);
            let bytes: bytes::Bytes = receiver.recv().unwrap();
            assert_eq!(&bytes[..3], b"abc");
            drop(bytes);
            // The foreign shard lent nothing itself.
            assert_eq!(stats().unwrap().lent_count, 0);
        });
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async move {
            install(ShardId(0), 8 * CLASS_BYTES_MAX, home_ends);
            let mut buf = PoolBuf::acquire(100).await;
            buf[..3].copy_from_slice(b"abc");
            assert_eq!(stats().unwrap().lent_count, 1);
            sender.send(buf.into_bytes()).unwrap();
            foreign.join().unwrap();
            let stats = stats().unwrap();
            assert_eq!(stats.lent_count, 0);
            assert_eq!(stats.lent_bytes, 0);
            assert_eq!(stats.cached_bytes, CLASS_BYTES_MIN);
        });
    }

    #[test]
    fn empty_buffers_are_filled_by_appends_within_their_class() {
        let mut ends = return_queues(1).into_iter();
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async move {
            install(ShardId(0), 4 * CLASS_BYTES_MAX, ends.next().unwrap());
            let mut buf = PoolBuf::acquire_empty(5000).await;
            assert!(buf.is_empty());
            assert_eq!(buf.spare_capacity(), 2 * CLASS_BYTES_MIN);
            buf.extend_from_slice(b"abc");
            buf.extend_from_slice(&[7u8; 4997]);
            assert_eq!(buf.len(), 5000);
            assert_eq!(&buf[..4], b"abc\x07");
            assert_eq!(stats().unwrap().lent_bytes, 2 * CLASS_BYTES_MIN);
            drop(buf);
            let stats = stats().unwrap();
            assert_eq!(stats.lent_count, 0);
            assert_eq!(stats.cached_bytes, 2 * CLASS_BYTES_MIN);
            // The cached buffer comes back empty, not holding the previous borrower's bytes.
            let again = PoolBuf::try_acquire_empty(6000).unwrap();
            assert!(again.is_empty());
            assert_eq!(again.spare_capacity(), 2 * CLASS_BYTES_MIN);
            // Over budget, the non-waiting form declines instead of waiting.
            let whole = PoolBuf::try_acquire_empty(3 * CLASS_BYTES_MAX).unwrap();
            assert!(PoolBuf::try_acquire_empty(CLASS_BYTES_MAX).is_none());
            drop(whole);
            assert!(PoolBuf::try_acquire_empty(CLASS_BYTES_MAX).is_some());
        });
    }

    #[test]
    fn acquire_waits_while_over_budget() {
        let mut ends = return_queues(1).into_iter();
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async move {
            install(ShardId(0), CLASS_BYTES_MAX, ends.next().unwrap());
            let first = PoolBuf::acquire(CLASS_BYTES_MAX).await;
            assert!(try_acquire(CLASS_BYTES_MIN).is_none());
            drop(first);
            let second = PoolBuf::acquire(CLASS_BYTES_MIN).await;
            assert_eq!(second.len(), CLASS_BYTES_MIN);
            // A buffer larger than the whole budget is lent when nothing else is out.
            drop(second);
            let huge = PoolBuf::acquire(4 * CLASS_BYTES_MAX).await;
            assert_eq!(huge.len(), 4 * CLASS_BYTES_MAX);
        });
    }
}
