//! The Produce request of one connection, encoded once and re-stamped per send.
//!
//! Owns: the Produce wire encoding for versions 3–12 (topic by name) and the offsets of what
//! changes per send: the correlation id and each batch's timestamps and CRC. Never: sockets, pacing.
//!
//! Why by hand: kafka-protocol would copy every batch into a fresh buffer per request; encoding the
//! frame once and patching ~20 bytes per batch keeps the sender's CPU cost per request near one
//! CRC-32C of one batch. The tests check our bytes against kafka-protocol's decoder.

use bytes::BufMut;

use crate::batch::BatchTemplate;
use crate::error::{Error, Result};
use crate::limits::{CLIENT_ID, PRODUCE_TIMEOUT_MS, REQUEST_BYTES_MAX};

/// Produce versions we encode. v3 is the oldest that carries record batches v2; v13 names topics by
/// id instead of by name.
pub const PRODUCE_VERSION_MIN: i16 = 3;
pub const PRODUCE_VERSION_MAX: i16 = 12;
/// From v9 Produce uses the compact ("flexible") encoding and request header v2.
const PRODUCE_FIRST_FLEXIBLE_VERSION: i16 = 9;
const PRODUCE_API_KEY: i16 = 0;
/// Size prefix, api key and api version come before the correlation id.
const CORRELATION_ID_OFFSET: usize = 8;

/// A complete Produce frame with one batch (the same template) per partition.
pub struct ProduceTemplate {
    frame: Vec<u8>,
    batch_offsets: Vec<usize>,
    batch_bytes: usize,
    /// The timestamp the batches carry now; while it holds, a send patches only the correlation id.
    timestamp_ms_stamped: Option<i64>,
}

impl ProduceTemplate {
    pub fn build(
        version: i16,
        acks: i16,
        topic: &str,
        partitions: &[i32],
        batch: &BatchTemplate,
    ) -> Result<ProduceTemplate> {
        assert!((PRODUCE_VERSION_MIN..=PRODUCE_VERSION_MAX).contains(&version));
        assert!(!partitions.is_empty());
        let batch_bytes = batch.bytes().len();
        let estimate = 64 + topic.len() + partitions.len() * (batch_bytes + 16);
        if estimate > REQUEST_BYTES_MAX {
            return Err(Error::new(format!(
                "a Produce request for {} partitions would take about {estimate} bytes, more than \
                 {REQUEST_BYTES_MAX}; use more connections or smaller batches",
                partitions.len()
            )));
        }
        let flexible = version >= PRODUCE_FIRST_FLEXIBLE_VERSION;
        let mut frame = Vec::with_capacity(estimate);
        frame.put_i32(0);
        write_header(&mut frame, version, flexible);
        let batch_offsets = write_body(&mut frame, flexible, acks, topic, partitions, batch);
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        Ok(ProduceTemplate {
            frame,
            batch_offsets,
            batch_bytes,
            timestamp_ms_stamped: None,
        })
    }

    /// Readies the frame for sending: correlation id, then timestamps and CRCs when they change.
    /// All batches are identical, so one batch is stamped and its changed bytes copied to the rest.
    pub fn prepare(
        &mut self,
        batch: &BatchTemplate,
        correlation_id: i32,
        timestamp_ms: i64,
        value_stamp: Option<u64>,
    ) -> &[u8] {
        assert_eq!(batch.bytes().len(), self.batch_bytes);
        self.frame[CORRELATION_ID_OFFSET..CORRELATION_ID_OFFSET + 4]
            .copy_from_slice(&correlation_id.to_be_bytes());
        if value_stamp.is_none() && self.timestamp_ms_stamped == Some(timestamp_ms) {
            return &self.frame;
        }
        let first = self.batch_offsets[0];
        batch.stamp(
            &mut self.frame[first..first + self.batch_bytes],
            timestamp_ms,
            value_stamp,
        );
        for &offset in &self.batch_offsets[1..] {
            match value_stamp {
                Some(_) => self
                    .frame
                    .copy_within(first..first + self.batch_bytes, offset),
                None => {
                    for range in BatchTemplate::stamped_ranges() {
                        let target = offset + range.start;
                        self.frame
                            .copy_within(first + range.start..first + range.end, target);
                    }
                }
            }
        }
        self.timestamp_ms_stamped = Some(timestamp_ms);
        &self.frame
    }
}

impl ProduceTemplate {
    /// Writes the producer id, epoch and base sequence into the batch of the `index`th partition
    /// (after `prepare`), for an idempotent producer.
    pub fn set_producer(
        &mut self,
        index: usize,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) {
        let start = self.batch_offsets[index];
        let batch = &mut self.frame[start..start + self.batch_bytes];
        crate::batch::set_producer(batch, producer_id, producer_epoch, base_sequence);
    }

    /// The frame as `prepare` (and `set_producer`) left it.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }
}

fn write_header(frame: &mut Vec<u8>, version: i16, flexible: bool) {
    frame.put_i16(PRODUCE_API_KEY);
    frame.put_i16(version);
    frame.put_i32(0); // Correlation id, patched per send.
    frame.put_i16(CLIENT_ID.len() as i16); // The client id stays a classic string in every header.
    frame.put_slice(CLIENT_ID.as_bytes());
    if flexible {
        frame.put_u8(0); // No tagged fields.
    }
}

/// Writes the body and returns where each batch starts in the frame.
fn write_body(
    frame: &mut Vec<u8>,
    flexible: bool,
    acks: i16,
    topic: &str,
    partitions: &[i32],
    batch: &BatchTemplate,
) -> Vec<usize> {
    let mut batch_offsets = Vec::with_capacity(partitions.len());
    match flexible {
        true => frame.put_u8(0), // Null transactional id: compact length 0.
        false => frame.put_i16(-1),
    }
    frame.put_i16(acks);
    frame.put_i32(PRODUCE_TIMEOUT_MS);
    put_array_length(frame, flexible, 1);
    put_string(frame, flexible, topic);
    put_array_length(frame, flexible, partitions.len());
    for &partition in partitions {
        frame.put_i32(partition);
        put_array_length(frame, flexible, batch.bytes().len()); // Bytes share the array encoding.
        batch_offsets.push(frame.len());
        frame.put_slice(batch.bytes());
        if flexible {
            frame.put_u8(0); // Partition tagged fields.
        }
    }
    if flexible {
        frame.put_u8(0); // Topic tagged fields.
        frame.put_u8(0); // Request tagged fields.
    }
    batch_offsets
}

/// Array and bytes lengths: i32, or unsigned varint of length + 1 when compact.
fn put_array_length(frame: &mut Vec<u8>, flexible: bool, length: usize) {
    match flexible {
        true => put_unsigned_varint(frame, length as u64 + 1),
        false => frame.put_i32(length as i32),
    }
}

fn put_string(frame: &mut Vec<u8>, flexible: bool, value: &str) {
    match flexible {
        true => put_unsigned_varint(frame, value.len() as u64 + 1),
        false => frame.put_i16(value.len() as i16),
    }
    frame.put_slice(value.as_bytes());
}

fn put_unsigned_varint(frame: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        frame.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    frame.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use bytes::{Buf, Bytes};
    use kafka_protocol::messages::{ProduceRequest, RequestHeader};
    use kafka_protocol::protocol::{Decodable, HeaderVersion};
    use kafka_protocol::records::RecordBatchDecoder;

    use super::*;
    use crate::batch::Compression;

    fn decode(frame: &[u8], version: i16) -> (RequestHeader, ProduceRequest) {
        let mut bytes = Bytes::copy_from_slice(frame);
        let size = bytes.get_i32();
        assert_eq!(size as usize, bytes.len());
        let header = RequestHeader::decode(&mut bytes, ProduceRequest::header_version(version))
            .expect("header decodes");
        let request = ProduceRequest::decode(&mut bytes, version).expect("body decodes");
        assert_eq!(bytes.len(), 0, "v{version}: no trailing bytes");
        (header, request)
    }

    #[test]
    fn produce_frames_decode_with_kafka_protocol_in_every_version() {
        let batch = BatchTemplate::build(10, 30, Compression::None, false).expect("buildable");
        for version in PRODUCE_VERSION_MIN..=PRODUCE_VERSION_MAX {
            let partitions = [0, 3, 7];
            let mut template =
                ProduceTemplate::build(version, -1, "bench-topic", &partitions, &batch)
                    .expect("buildable");
            let frame = template
                .prepare(&batch, 77, 1_700_000_000_000, None)
                .to_vec();
            let (header, request) = decode(&frame, version);
            assert_eq!(header.request_api_key, PRODUCE_API_KEY);
            assert_eq!(header.request_api_version, version);
            assert_eq!(header.correlation_id, 77);
            assert_eq!(header.client_id.as_deref(), Some(CLIENT_ID));
            assert_eq!(request.acks, -1);
            assert_eq!(request.timeout_ms, PRODUCE_TIMEOUT_MS);
            assert_eq!(request.transactional_id, None);
            assert_eq!(request.topic_data.len(), 1);
            let topic = &request.topic_data[0];
            assert_eq!(topic.name.0.as_str(), "bench-topic");
            let indexes: Vec<i32> = topic.partition_data.iter().map(|p| p.index).collect();
            assert_eq!(indexes, partitions);
            for partition in &topic.partition_data {
                let mut records = partition.records.clone().expect("records present");
                let set = RecordBatchDecoder::decode(&mut records).expect("batch verifies");
                assert_eq!(set.records.len(), 10);
                assert_eq!(set.records[0].timestamp, 1_700_000_000_000);
            }
        }
    }

    #[test]
    fn restamping_updates_every_batch_and_the_correlation_id() {
        let batch = BatchTemplate::build(3, 16, Compression::None, true).expect("buildable");
        let mut template = ProduceTemplate::build(12, 1, "t", &[0, 1], &batch).expect("buildable");
        template.prepare(&batch, 1, 1_000, Some(5));
        template.prepare(&batch, 2, 1_000, None);
        let frame = template.prepare(&batch, 3, 2_000, Some(9)).to_vec();
        let (header, request) = decode(&frame, 12);
        assert_eq!(header.correlation_id, 3);
        for partition in &request.topic_data[0].partition_data {
            let mut records = partition.records.clone().expect("records present");
            let set = RecordBatchDecoder::decode(&mut records).expect("batch verifies");
            for record in &set.records {
                assert_eq!(record.timestamp, 2_000);
                let value = record.value.as_ref().expect("value");
                assert_eq!(value[..8], 9u64.to_be_bytes());
            }
        }
    }

    #[test]
    fn oversized_requests_are_refused() {
        let batch = BatchTemplate::build(500, 1000, Compression::None, false).expect("buildable");
        let partitions: Vec<i32> = (0..200).collect();
        assert!(ProduceTemplate::build(9, 1, "t", &partitions, &batch).is_err());
    }
}
