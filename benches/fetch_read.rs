//! The fetch path of one partition without the network: `PartitionLog::read` (index lookup, forward scan
//! of batch headers, `MADV_WILLNEED` only when the read enters a new 4 MiB window), the copy into a pool
//! buffer that the owning shard sends back (`Shard::fetch`), and the hand encoding of the Fetch response
//! (`handlers::fetch::FetchResponseWriter`), which writes the fields into the connection's buffer and
//! leaves the records in the pool buffer as a splice for the vectored send. `read_copy_encode_kafka_protocol`
//! is the path before that change (a zero-filled reply buffer, then kafka-protocol's encoder copying the
//! records into the response buffer), kept to compare the two on the same machine in the same run.
//! Fetches of 16 KiB (one batch) and 1 MiB (`max.partition.fetch.bytes`, the consumer default) from a
//! log of 16 KiB batches.
//!
//! Back of the envelope (memory and CPU). The read itself is a binary search over ~2k index entries
//! (~30 ns) and a scan of the batch headers it returns (one per 16 KiB: ~64 for 1 MiB, each a cache
//! miss of ~5-10 ns when cold); the `madvise` (~0.5 µs for 16 KiB of cached pages, ~5 µs for 1 MiB)
//! now runs once per 4 MiB read. Then every fetched byte is copied once in user space (mapping → pool
//! buffer) at ~5-10 GB/s, before the kernel copies it into the socket. Expect:
//! - read 16 KiB: ~0.1 µs; 1 MiB: ~1 µs (the per-read `madvise` made these 0.3-0.5 µs and ~5 µs).
//! - read_copy_encode 16 KiB: ~0.1 µs + ~2 µs copy + ~0.1 µs encode ≈ 2 µs.
//! - read_copy_encode 1 MiB: ~1 µs + 100-200 µs copy, about half the kafka-protocol path's two copies.
//!
//! Kafka sends these bytes with `sendfile` and copies none of them in user space; the one copy left is
//! where FluxMQ can still lose to Kafka on consume throughput.

mod common;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fluxmq::handlers::fetch::FetchResponseWriter;
use fluxmq::handlers::Splices;
use kafka_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::{Encodable, StrBytes};
use shards::mesh::FetchedData;
use shards::pool::PoolBuf;
use shards::storage::log::{LogConfig, PartitionLog};
use shards::storage::syncer::Syncer;
use shards::ShardId;
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
    let syncer = Syncer::start("bench-sync", u64::MAX).expect("a syncer thread");
    let mut log = PartitionLog::open(dir, config, 0, Rc::new(syncer)).expect("a new log");
    let batch = common::record_batch_of_size(BATCH_BYTES, 100);
    let mut base_offsets = Vec::new();
    for _ in 0..LOG_BYTES / batch.len() {
        base_offsets.push(log.append(&batch, 0).expect("an append").base_offset);
    }
    (log, base_offsets)
}

/// One partition's read, copy into a pool buffer and response encode, as `Shard::fetch` and
/// `handlers::fetch` do it; returns the length the response will have on the wire.
fn fetch_once(
    log: &PartitionLog,
    offset: i64,
    max_bytes: usize,
    out: &mut BytesMut,
    splices: &mut Splices,
) -> usize {
    let bytes = log
        .read(offset, max_bytes)
        .expect("an offset inside the log");
    let mut buffer = PoolBuf::try_acquire_empty(bytes.len()).expect("an idle pool lends");
    buffer.extend_from_slice(bytes);
    let data = FetchedData {
        high_watermark: log.log_end_offset(),
        last_stable_offset: log.log_end_offset(),
        log_start_offset: log.log_start_offset(),
        records: buffer.into_bytes(),
        aborted: None,
    };
    out.clear();
    splices.clear();
    let mut writer = FetchResponseWriter::new(out, splices, FETCH_VERSION, 0, 1);
    writer.topic("bench-topic", &[0; 16], 1);
    writer.partition(0, Ok(&data));
    writer.end_topic();
    writer.finish();
    out.len() + splices.bytes()
}

/// The same before these changes: a zero-filled pool buffer, then kafka-protocol's encoder copying
/// the records into the response buffer.
fn fetch_once_kafka_protocol(
    log: &PartitionLog,
    offset: i64,
    max_bytes: usize,
    out: &mut BytesMut,
) -> usize {
    let bytes = log
        .read(offset, max_bytes)
        .expect("an offset inside the log");
    // An idle pool lends at once, so this never reaches glommio's timer.
    let mut buffer = futures_lite::future::block_on(PoolBuf::acquire(bytes.len()));
    buffer.copy_from_slice(bytes);
    let records = buffer.into_bytes();
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
    // The bench thread plays one shard: its pool lends the reply buffers.
    let ends = shards::pool::return_queues(1)
        .pop()
        .expect("one shard's ends");
    shards::pool::install(ShardId(0), 64 << 20, ends);
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
        let mut splices = Splices::default();
        group.bench_function(BenchmarkId::new("read_copy_encode", label), |bencher| {
            bencher.iter(|| {
                next = (next + 1) % starts.len();
                let length = fetch_once(&log, starts[next], max_bytes, &mut out, &mut splices);
                black_box(length)
            })
        });
        let name = "read_copy_encode_kafka_protocol";
        group.bench_function(BenchmarkId::new(name, label), |bencher| {
            bencher.iter(|| {
                next = (next + 1) % starts.len();
                black_box(fetch_once_kafka_protocol(
                    &log,
                    starts[next],
                    max_bytes,
                    &mut out,
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fetch_read);
criterion_main!(benches);
