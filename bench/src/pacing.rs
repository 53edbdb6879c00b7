//! Open-loop pacing: when each request was meant to leave, and how a target rate splits into
//! requests and batches.
//!
//! Owns: the arithmetic of `--rate` and `--linger-ms`. Never: sleeping or I/O (callers do that).
//!
//! Why open loop: a closed-loop sender that waits for the broker sends less when the broker is slow,
//! so its latency numbers hide the stall (coordinated omission). Here request k of a connection is
//! due at `start + k * interval` whatever happened before, and latency is measured from that due
//! time, so a stall shows up in the latency of every request that should have gone out during it.

use std::time::{Duration, Instant};

/// The due times of one connection's requests.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    interval_ns: f64,
    index_next: u64,
}

impl Schedule {
    /// A schedule of requests carrying `records_per_request` records each, at `records_per_second`.
    /// `phase` in [0, 1) shifts the start by that fraction of an interval, so that connections
    /// sharing a rate interleave instead of bursting together.
    pub fn new(
        start: Instant,
        records_per_request: usize,
        records_per_second: f64,
        phase: f64,
    ) -> Schedule {
        assert!(records_per_request > 0);
        assert!(records_per_second > 0.0);
        assert!((0.0..1.0).contains(&phase));
        let interval_ns = records_per_request as f64 * 1e9 / records_per_second;
        Schedule {
            start: start + Duration::from_nanos((interval_ns * phase) as u64),
            interval_ns,
            index_next: 0,
        }
    }

    /// When the next request is due.
    pub fn due_next(&self) -> Instant {
        // Computed from the start each time, so rounding never accumulates into drift.
        self.start + Duration::from_nanos((self.interval_ns * self.index_next as f64) as u64)
    }

    /// Marks the next request as sent and returns the time it was due.
    pub fn take_next(&mut self) -> Instant {
        let due = self.due_next();
        self.index_next += 1;
        due
    }

    #[cfg(test)]
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns as u64)
    }
}

/// The share of `total_rate` for a connection serving `connection_partitions` of
/// `total_partitions`: every partition receives the same rate.
pub fn connection_rate(
    total_rate: f64,
    connection_partitions: usize,
    total_partitions: usize,
) -> f64 {
    assert!(connection_partitions <= total_partitions);
    assert!(total_partitions > 0);
    total_rate * connection_partitions as f64 / total_partitions as f64
}

/// Records per batch under `--linger-ms`. A producer whose records arrive at `partition_rate` per
/// second closes a batch when it is full or when its first record has waited `linger_ms`, so under a
/// steady rate its batches hold `partition_rate * linger` records, at most `records_per_batch` and at
/// least one. A linger of zero means batches are always full (as when flat out).
pub fn records_per_batch_with_linger(
    records_per_batch: usize,
    partition_rate: f64,
    linger_ms: u64,
) -> usize {
    assert!(records_per_batch > 0);
    if linger_ms == 0 {
        return records_per_batch;
    }
    let arriving = (partition_rate * linger_ms as f64 / 1000.0).floor();
    (arriving as usize).clamp(1, records_per_batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_follow_the_rate_without_drift() {
        let start = Instant::now();
        // 100 records per request at 1,000 records/s: one request every 100 ms.
        let mut schedule = Schedule::new(start, 100, 1_000.0, 0.0);
        assert_eq!(schedule.interval(), Duration::from_millis(100));
        assert_eq!(schedule.take_next(), start);
        assert_eq!(schedule.take_next(), start + Duration::from_millis(100));
        // A third of a request per nanosecond must not drift over a million requests.
        let mut fine = Schedule::new(start, 1, 3e9, 0.0);
        for _ in 0..1_000_000 {
            fine.take_next();
        }
        let expected = Duration::from_nanos(1_000_000 / 3);
        let due = fine.due_next() - start;
        assert!(due.abs_diff(expected) <= Duration::from_nanos(1), "{due:?}");
    }

    #[test]
    fn phases_interleave_connections() {
        let start = Instant::now();
        let first = Schedule::new(start, 10, 100.0, 0.0);
        let second = Schedule::new(start, 10, 100.0, 0.5);
        assert_eq!(
            second.due_next() - first.due_next(),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn a_late_sender_keeps_the_original_due_times() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 1, 10.0, 0.0);
        // Whenever the sender gets to them, requests keep the times they were due at, so the
        // latency measured from them includes the time the sender was held up.
        let dues: Vec<Instant> = (0..5).map(|_| schedule.take_next()).collect();
        for (index, due) in dues.into_iter().enumerate() {
            assert_eq!(due, start + Duration::from_millis(100 * index as u64));
        }
    }

    #[test]
    fn rate_splits_by_partitions() {
        assert_eq!(connection_rate(1_000.0, 3, 4), 750.0);
        assert_eq!(connection_rate(1_000.0, 4, 4), 1_000.0);
    }

    #[test]
    fn linger_caps_batches_at_what_arrives_in_time() {
        // 10,000 records/s per partition for 5 ms: 50 records.
        assert_eq!(records_per_batch_with_linger(100, 10_000.0, 5), 50);
        assert_eq!(records_per_batch_with_linger(100, 1_000_000.0, 5), 100);
        assert_eq!(records_per_batch_with_linger(100, 10.0, 5), 1);
        assert_eq!(records_per_batch_with_linger(100, 10.0, 0), 100);
    }
}
