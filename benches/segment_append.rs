//! Appending on the produce path, after validation: `Segment::append` (copy into the shared mapping of a
//! preallocated file, pre-faulting 1 MiB ahead) and `PartitionLog::append` (that, plus framing checks,
//! offset and leader-epoch stamping and the sparse index), for 1 KiB and 64 KiB batches into a 64 MiB
//! segment (the broker's default `--segment-bytes`).
//!
//! Back of the envelope (memory and CPU; no disk I/O: the kernel writes dirty pages back later).
//! The copy runs at memcpy speed into pages that are already mapped, ~5-10 GB/s. Every page is first
//! touched by `MADV_POPULATE_WRITE` (shmem/page-cache allocation plus zeroing, ~0.5-1 µs per 4 KiB page,
//! i.e. ~4-8 GB/s), which runs on the same thread once per 512 KiB of appends. Together: ~2-4 GB/s, so
//! - 1 KiB: ~0.3-0.5 µs per batch, of which the log's per-batch bookkeeping is ~30-50 ns;
//! - 64 KiB: ~15-30 µs per batch.
//!
//! At 1 GB/s of produce per core this is a quarter to a half of a core: the biggest storage cost, and the
//! reason Kafka's `write()` into the page cache costs it the same (it pays the copy in the kernel).

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shards::storage::batch::validate_batches;
use shards::storage::log::{LogConfig, PartitionLog};
use shards::storage::segment::Segment;
use std::hint::black_box;

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
            black_box(segment.append(batch));
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
        let mut log = PartitionLog::open(dir.path(), config, 0).expect("a new log");
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
