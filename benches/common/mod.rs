//! Inputs shared by the micro-benchmarks: Kafka record batches (v2, uncompressed, CRC-32C correct) and
//! Produce request frames, built the way a Java producer lays them out.
//!
//! Owns: making realistic bytes for the benches. Never: measuring anything (each bench file does).

#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};

/// Position of the `attributes` field: the CRC covers everything from here to the batch's end.
const ATTRIBUTES_AT: usize = 21;
/// Position of the CRC-32C field.
const CRC_AT: usize = 17;

/// One uncompressed record batch of `records` records with `value_bytes`-byte values and null keys,
/// base offset 0, no producer id, timestamps starting at `first_timestamp_ms`.
pub fn record_batch(records: usize, value_bytes: usize, first_timestamp_ms: i64) -> Vec<u8> {
    assert!(records >= 1);
    let value: Vec<u8> = (0..value_bytes)
        .map(|index| (index * 31 % 251) as u8)
        .collect();
    let mut body = Vec::with_capacity(records * (value_bytes + 16));
    for index in 0..records {
        let mut record = Vec::with_capacity(value_bytes + 16);
        record.push(0); // Attributes.
        put_varint(&mut record, index as i64); // Timestamp delta: one millisecond per record.
        put_varint(&mut record, index as i64); // Offset delta.
        put_varint(&mut record, -1); // Null key.
        put_varint(&mut record, value_bytes as i64);
        record.extend_from_slice(&value);
        put_varint(&mut record, 0); // No headers.
        put_varint(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let mut batch = Vec::with_capacity(61 + body.len());
    batch.put_i64(0); // Base offset.
    batch.put_i32((49 + body.len()) as i32); // Batch length: everything after this field.
    batch.put_i32(-1); // Partition leader epoch.
    batch.put_i8(2); // Magic.
    batch.put_u32(0); // CRC, patched below.
    batch.put_i16(0); // Attributes: no compression, CreateTime.
    batch.put_i32(records as i32 - 1); // Last offset delta.
    batch.put_i64(first_timestamp_ms);
    batch.put_i64(first_timestamp_ms + records as i64 - 1);
    batch.put_i64(-1); // Producer id.
    batch.put_i16(-1); // Producer epoch.
    batch.put_i32(-1); // Base sequence.
    batch.put_i32(records as i32);
    batch.extend_from_slice(&body);
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// A batch of about `target_bytes` bytes made of `value_bytes`-byte records.
pub fn record_batch_of_size(target_bytes: usize, value_bytes: usize) -> Vec<u8> {
    // A record of v value bytes costs v + 7 or 8 bytes of framing (varints for small deltas).
    let records = ((target_bytes.saturating_sub(61)) / (value_bytes + 8)).max(1);
    record_batch(records, value_bytes, 1_700_000_000_000)
}

/// A Produce request frame (header and body, without the 4-byte size prefix), as the broker's
/// connection hands it to the dispatcher: one topic, `partitions` partitions, each carrying `batch`.
pub fn produce_frame(version: i16, partitions: usize, batch: &[u8]) -> Bytes {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};

    let records = Bytes::copy_from_slice(batch);
    let partition_data = (0..partitions)
        .map(|index| {
            PartitionProduceData::default()
                .with_index(index as i32)
                .with_records(Some(records.clone()))
        })
        .collect();
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("bench-topic")))
        .with_partition_data(partition_data);
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic]);
    let header = RequestHeader::default()
        .with_request_api_key(0)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("producer-1")));
    let mut frame = BytesMut::new();
    header
        .encode(&mut frame, ProduceRequest::header_version(version))
        .expect("a valid request header");
    request
        .encode(&mut frame, version)
        .expect("a valid produce request");
    frame.freeze()
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}
