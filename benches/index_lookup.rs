//! Sparse offset index lookup: `SegmentIndex::lookup_offset` on the index of a full 64 MiB segment of
//! 1 KiB batches (one entry per 4 KiB, Kafka's `index.interval.bytes`: 16,384 entries, 128 KiB), at
//! pseudo-random offsets, which is what a fetch from a lagging consumer does before it scans forward.
//!
//! Back of the envelope (CPU and cache). A binary search over 16,384 eight-byte entries takes 14 steps;
//! the first ~10 hit lines that stay hot in L1/L2 across lookups, the last few may miss to L2 (~4 ns
//! each). Expect ~20-40 ns per lookup, and the same order for the time index. Compared with the
//! microseconds a fetch spends copying data, lookups should never show up in a profile; if this reads in
//! the hundreds of nanoseconds, the index is not the flat sorted array the file comment promises.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shards::storage::index::{SegmentIndex, INDEX_INTERVAL_BYTES_DEFAULT};
use std::hint::black_box;

const SEGMENT_BYTES: u32 = 64 * 1024 * 1024;
const BATCH_BYTES: u32 = 1024;
const RECORDS_PER_BATCH: u32 = 10;

fn full_index() -> (SegmentIndex, u32) {
    let mut index = SegmentIndex::new(0, INDEX_INTERVAL_BYTES_DEFAULT);
    let batches = SEGMENT_BYTES / BATCH_BYTES;
    for batch in 0..batches {
        let relative_offset = batch * RECORDS_PER_BATCH;
        index.on_batch(
            relative_offset,
            batch * BATCH_BYTES,
            BATCH_BYTES,
            1_700_000_000_000 + i64::from(batch),
        );
    }
    (index, batches * RECORDS_PER_BATCH)
}

fn index_lookup(criterion: &mut Criterion) {
    let (index, offsets) = full_index();
    assert_eq!(
        index.offset_entries().len() as u32,
        SEGMENT_BYTES / INDEX_INTERVAL_BYTES_DEFAULT
    );
    let mut group = criterion.benchmark_group("index_lookup");
    group.throughput(Throughput::Elements(1));
    // A multiplicative sequence visits offsets in a scattered order without a random-number crate.
    let mut state: u32 = 1;
    group.bench_function("offset", |bencher| {
        bencher.iter(|| {
            state = state.wrapping_mul(2_654_435_761).wrapping_add(1);
            black_box(index.lookup_offset(black_box(state % offsets)))
        })
    });
    group.bench_function("time", |bencher| {
        bencher.iter(|| {
            state = state.wrapping_mul(2_654_435_761).wrapping_add(1);
            let timestamp = 1_700_000_000_000 + i64::from(state % (offsets / RECORDS_PER_BATCH));
            black_box(index.scan_start_for_timestamp(black_box(timestamp)))
        })
    });
    group.finish();
}

criterion_group!(benches, index_lookup);
criterion_main!(benches);
