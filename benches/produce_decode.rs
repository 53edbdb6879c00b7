//! Produce request decode: the frame a connection hands to the dispatcher, through `peek_api`, the
//! request header and `ProduceRequest::decode`, as `handlers::handle` runs them.
//!
//! Back of the envelope (CPU only; the frame is already in memory, nothing touches disk or network).
//! The decoder never looks inside record batches: each partition is an index (4 bytes), a length varint
//! and a zero-copy `Bytes` slice (one atomic reference-count increment, ~5-20 ns), plus a `Vec` push.
//! The fixed part is the header (one `String` for the client id), the topic name `String` and two
//! `Vec` allocations: ~50-100 ns each at most. Expect:
//! - 1 partition (one 16 KiB batch): ~0.2-0.5 µs per request, independent of the batch size, so
//!   "bytes per second" reads as tens of GB/s: the bytes are skipped, not read.
//! - 100 partitions (1 KiB each): ~2-4 µs, i.e. 20-40 ns per partition. At 100 B records and 10 records
//!   per partition batch, that is ~3 ns per record, noise next to the CRC and the copy into the segment.
//!
//! If either is off by 10x, look for a per-partition allocation or a copy of the records.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fluxmq::protocol::header::{decode_request_header, peek_api};
use fluxmq::protocol::reader::Reader;
use fluxmq::protocol::requests::produce::ProduceRequest;
use std::hint::black_box;

/// Java kafka-clients 4.x send Produce v12 to brokers that do not advertise topic ids for produce.
const PRODUCE_VERSION: i16 = 12;

fn decode(frame: &bytes::Bytes) -> ProduceRequest {
    let (_key, version, _correlation_id) = peek_api(frame).expect("a produce frame");
    let (_header, body) = decode_request_header(frame, true).expect("a flexible header");
    let mut reader = Reader::new(body);
    ProduceRequest::decode(&mut reader, version).expect("a valid produce request")
}

fn produce_decode(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("produce_decode");
    for (partitions, batch_bytes) in [(1usize, 16 * 1024usize), (100, 1024)] {
        let batch = common::record_batch_of_size(batch_bytes, 100);
        let frame = common::produce_frame(PRODUCE_VERSION, partitions, &batch);
        let decoded = decode(&frame);
        assert_eq!(decoded.topic_data.len(), 1);
        assert_eq!(decoded.topic_data[0].partition_data.len(), partitions);
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("partitions", partitions),
            &frame,
            |bencher, frame| bencher.iter(|| decode(black_box(frame))),
        );
    }
    group.finish();
}

criterion_group!(benches, produce_decode);
criterion_main!(benches);
