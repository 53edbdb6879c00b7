//! Appending on the produce path, after validation: `Segment::append` (one `pwritev` of a batch's
//! header and records into the page cache of a fresh segment file) and `PartitionLog::append` (that,
//! plus framing checks, offset and leader-epoch stamping of a 61-byte header copy and the sparse index),
//! for 1 KiB and 64 KiB batches into a 64 MiB segment (the broker's default `--segment-bytes`).
//!
//! Back of the envelope (memory and CPU; no disk I/O: the kernel writes dirty pages back later).
//! The kernel copies the bytes into newly allocated page-cache folios: allocation, LRU and dirty
//! accounting run per folio, the copy at memcpy speed, and a folio the write covers completely is
//! never zeroed (the partly covered folio at each end of a write is zeroed once). Roughly 2-3 GB/s
//! once guest pages are warm, less in a VM whose host must fault the memory in first (PROFILE.md):
//! - 1 KiB: ~0.6-1 µs per batch, dominated by the system call (~0.3 µs) and per-folio work;
//! - 64 KiB: ~20-30 µs per batch.
//!
//! The log adds ~30-50 ns of bookkeeping per batch. The mmap path this replaced copied into pages that
//! `MADV_POPULATE_WRITE` had faulted in and zeroed first. Here every round deletes its files, so the
//! next round gets pages the kernel just freed (zeroed cheaply, already backed by the host): that
//! flatters the old path, which measured 0.4 µs and 30 µs here on the day it was replaced, against
//! 1.0 µs and 70 µs in PROFILE.md. In the broker, whose new pages come from reclaiming page cache,
//! the pre-fault was 60 % of the produce CPU; compare end to end (`fluxmq-bench produce`).
//!
//! At 1 GB/s of produce per core this is still a third of a core: the biggest storage cost, and the
//! same one Kafka pays in its `write()` into the page cache.

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shards::storage::batch::{validate_batches, BATCH_HEADER_BYTES};
use shards::storage::log::{LogConfig, PartitionLog};
use shards::storage::segment::Segment;
use shards::storage::syncer::Syncer;
use std::hint::black_box;
use std::rc::Rc;

/// FluxMQ's default `--segment-bytes`.
const SEGMENT_BYTES: usize = 64 * 1024 * 1024;

/// Appends `count` copies of `batch` to fresh segments (created outside the timed part), `per_segment`
/// at a time, and returns the time spent in `Segment::append` alone.
fn time_segment_appends(batch: &[u8], count: u64) -> Duration {
    let per_segment = (SEGMENT_BYTES / batch.len()) as u64;
    let mut elapsed = Duration::ZERO;
    let mut left = count;
    while left > 0 {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut segment = Segment::create(dir.path(), 0, SEGMENT_BYTES).expect("a new segment");
        let round = left.min(per_segment);
        let started = Instant::now();
        for _ in 0..round {
            let (header, records) = batch.split_at(BATCH_HEADER_BYTES);
            segment
                .append(black_box(header), black_box(records))
                .expect("an append that fits");
        }
        elapsed += started.elapsed();
        left -= round;
    }
    elapsed
}

/// As `time_segment_appends`, through `PartitionLog::append`, never rolling inside the timed part.
fn time_log_appends(batch: &[u8], count: u64) -> Duration {
    let config = LogConfig {
        segment_bytes: SEGMENT_BYTES as u64,
        ..LogConfig::default()
    };
    let per_segment = (SEGMENT_BYTES / batch.len()) as u64;
    let mut elapsed = Duration::ZERO;
    let mut left = count;
    while left > 0 {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let syncer = Rc::new(Syncer::start("bench-sync", u64::MAX).expect("a syncer thread"));
        let mut log = PartitionLog::open(dir.path(), config, 0, syncer).expect("a new log");
        let round = left.min(per_segment);
        let started = Instant::now();
        for _ in 0..round {
            black_box(log.append(batch, 0).expect("an append that fits"));
        }
        elapsed += started.elapsed();
        assert_eq!(log.segment_count(), 1);
        left -= round;
    }
    elapsed
}

fn segment_append(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("segment_append");
    for (label, batch_bytes) in [("1KiB", 1024usize), ("64KiB", 64 * 1024)] {
        let batch = common::record_batch_of_size(batch_bytes, 100);
        validate_batches(&batch, usize::MAX).expect("a valid batch");
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("segment", label),
            &batch,
            |bencher, batch| bencher.iter_custom(|count| time_segment_appends(batch, count)),
        );
        group.bench_with_input(BenchmarkId::new("log", label), &batch, |bencher, batch| {
            bencher.iter_custom(|count| time_log_appends(batch, count))
        });
    }
    group.finish();
}

criterion_group!(benches, segment_append);
criterion_main!(benches);
