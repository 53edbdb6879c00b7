//! The fetch path of one partition without the network: `PartitionLog::read` (index lookup, forward scan
//! of batch headers, `MADV_WILLNEED`), the copy into a reply buffer that the owning shard sends back
//! (`Shard::fetch` copies into a pool buffer), and encoding the Fetch response with the records, as
//! `handlers::fetch` does with kafka-protocol's encoder. Fetches of 16 KiB (one batch) and 1 MiB
//! (`max.partition.fetch.bytes`, the consumer default) from a log of 16 KiB batches.
//!
//! Back of the envelope (memory and CPU). The read itself is a binary search over ~2k index entries
//! (~30 ns), a scan of at most 4 KiB of headers to the batch (~1 header here), and one `madvise` system
//! call (~0.5-1 µs). Then every fetched byte is copied twice in user space (mapping → reply buffer →
//! response buffer), each at ~5-10 GB/s, before the kernel copies it a third time into the socket. Expect:
//! - 16 KiB: ~1 µs read + 2 × ~2-3 µs copies + ~0.5 µs encode overhead ≈ 5-8 µs, 2-3 GB/s.
//! - 1 MiB: ~1 µs read + 2 × ~100-200 µs ≈ 200-400 µs, i.e. 2.5-5 GB/s per core.
//!
//! Kafka sends these bytes with `sendfile` and copies none of them in user space, so the two copies are
//! where FluxMQ can lose to Kafka on consume throughput.

mod common;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::{Encodable, StrBytes};
use shards::storage::log::{LogConfig, PartitionLog};
use shards::storage::syncer::Syncer;
use std::hint::black_box;
use std::rc::Rc;

/// The Fetch version our load generator and older Java clients use (flexible, topics by name).
const FETCH_VERSION: i16 = 12;
/// Bytes of batches in the log: 2048 batches of 16 KiB, half the default 64 MiB segment.
const LOG_BYTES: usize = 32 * 1024 * 1024;
const BATCH_BYTES: usize = 16 * 1024;

fn filled_log(dir: &std::path::Path) -> (PartitionLog, Vec<i64>) {
    let config = LogConfig {
        segment_bytes: 64 * 1024 * 1024,
        ..LogConfig::default()
    };
    let syncer = Syncer::start("bench-sync").expect("a syncer thread");
    let mut log = PartitionLog::open(dir, config, 0, Rc::new(syncer)).expect("a new log");
    let batch = common::record_batch_of_size(BATCH_BYTES, 100);
    let mut base_offsets = Vec::new();
    for _ in 0..LOG_BYTES / batch.len() {
        base_offsets.push(log.append(&batch, 0).expect("an append").base_offset);
    }
    (log, base_offsets)
}

/// One partition's read, copy and response encode; returns the encoded length.
fn fetch_once(log: &PartitionLog, offset: i64, max_bytes: usize, out: &mut BytesMut) -> usize {
    let bytes = log
        .read(offset, max_bytes)
        .expect("an offset inside the log");
    let records = Bytes::copy_from_slice(bytes);
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_high_watermark(log.log_end_offset())
        .with_last_stable_offset(log.log_end_offset())
        .with_log_start_offset(log.log_start_offset())
        .with_records(Some(records));
    let topic = FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("bench-topic")))
        .with_partitions(vec![partition]);
    let response = FetchResponse::default().with_responses(vec![topic]);
    out.clear();
    response
        .encode(out, FETCH_VERSION)
        .expect("an encodable response");
    out.len()
}

fn fetch_read(criterion: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (log, base_offsets) = filled_log(dir.path());
    let mut group = criterion.benchmark_group("fetch_read");
    for (label, max_bytes) in [("16KiB", BATCH_BYTES), ("1MiB", 1024 * 1024)] {
        let sample = log.read(base_offsets[0], max_bytes).expect("a read").len();
        assert!(sample > 0);
        group.throughput(Throughput::Bytes(sample as u64));
        // Walk the log front to back, as a consumer does, wrapping before the end so that every read
        // returns `max_bytes` worth of batches.
        let starts: Vec<i64> = base_offsets
            .iter()
            .step_by((max_bytes / BATCH_BYTES).max(1))
            .take_while(|offset| log.read(**offset, max_bytes).expect("a read").len() == sample)
            .copied()
            .collect();
        let mut next = 0usize;
        group.bench_function(BenchmarkId::new("read", label), |bencher| {
            bencher.iter(|| {
                next = (next + 1) % starts.len();
                black_box(log.read(starts[next], max_bytes).expect("a read").len())
            })
        });
        let mut out = BytesMut::with_capacity(max_bytes + 4096);
        group.bench_function(BenchmarkId::new("read_copy_encode", label), |bencher| {
            bencher.iter(|| {
                next = (next + 1) % starts.len();
                black_box(fetch_once(&log, starts[next], max_bytes, &mut out))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fetch_read);
criterion_main!(benches);
