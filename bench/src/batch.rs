//! Record batches in Kafka's v2 format (magic 2): templates we build once and re-stamp per send, and
//! the header parsing and record decoding the consumers need.
//!
//! Owns: the batch layout, payload generation, compression, the CRC-32C. Never: I/O or requests.
//!
//! Layout of a batch (big-endian), byte offsets from its start:
//!
//! ```text
//!  0 base offset i64        12 partition leader epoch i32   16 magic i8 = 2    17 crc u32
//!  8 batch length i32       (the CRC covers bytes 21.. to the end of the batch)
//! 21 attributes i16         23 last offset delta i32        27 first timestamp i64
//! 35 max timestamp i64      43 producer id i64              51 producer epoch i16
//! 53 base sequence i32      57 records count i32            61 records (possibly compressed)
//! ```
//!
//! A record is: length varint, attributes i8, timestamp delta varlong, offset delta varint,
//! key length varint (-1 for none), key, value length varint, value, header count varint.
//!
//! Why templates: the sender must saturate a broker with at most one core of its own, so payloads
//! are generated and compressed once. Every record shares the batch timestamp (all timestamp deltas
//! are zero), so a send only rewrites the two batch timestamps and the CRC; compressed record data
//! never changes.

use std::io::Write;

use crate::error::{Error, Result};
use crate::limits::BATCH_BYTES_MAX;

/// Bytes before the first record.
pub const BATCH_HEADER_BYTES: usize = 61;
const LENGTH_OFFSET: usize = 8;
const LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const FIRST_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;
/// The bytes before the batch length field and the field itself, not counted by it.
const LOG_OVERHEAD_BYTES: usize = 12;
const MAGIC_V2: i8 = 2;
/// The low three attribute bits name the codec.
const COMPRESSION_MASK: i16 = 0x7;
/// Bytes at the start of a value that an end-to-end run overwrites with its send time.
pub const VALUE_STAMP_BYTES: usize = 8;

/// The codecs the generator can produce (the attribute bit values are Kafka's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    None,
    Lz4,
    Zstd,
}

impl Compression {
    fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// A ready-to-send batch, correct except for its timestamps and CRC, which `stamp` writes.
#[derive(Debug, Clone)]
pub struct BatchTemplate {
    bytes: Vec<u8>,
    records: usize,
    record_bytes: usize,
    /// Where each record's value starts, when values are stamped (end-to-end runs, uncompressed).
    value_offsets: Vec<usize>,
}

impl BatchTemplate {
    /// Builds a batch of `records` records with null keys and `record_bytes`-byte values. With
    /// `stampable`, the first `VALUE_STAMP_BYTES` of every value can be rewritten by `stamp`, which
    /// needs uncompressed records.
    pub fn build(
        records: usize,
        record_bytes: usize,
        compression: Compression,
        stampable: bool,
    ) -> Result<BatchTemplate> {
        if records == 0 || i32::try_from(records).is_err() {
            return Err(Error::new(format!(
                "a batch needs 1..2^31 records, not {records}"
            )));
        }
        if stampable && (compression != Compression::None || record_bytes < VALUE_STAMP_BYTES) {
            return Err(Error::new(format!(
                "stamped values need no compression and at least {VALUE_STAMP_BYTES} bytes"
            )));
        }
        let (plain, value_offsets) = encode_records(records, record_bytes);
        let section = compress(&plain, compression)?;
        let total = BATCH_HEADER_BYTES + section.len();
        if total > BATCH_BYTES_MAX {
            return Err(Error::new(format!(
                "a batch of {records} records of {record_bytes} bytes takes {total} bytes, \
                 more than the {BATCH_BYTES_MAX} a default broker accepts"
            )));
        }
        let mut bytes = vec![0u8; BATCH_HEADER_BYTES];
        write_header(&mut bytes, records, section.len(), compression);
        bytes.extend_from_slice(&section);
        let value_offsets = match stampable {
            true => value_offsets
                .iter()
                .map(|offset| offset + BATCH_HEADER_BYTES)
                .collect(),
            false => Vec::new(),
        };
        Ok(BatchTemplate {
            bytes,
            records,
            record_bytes,
            value_offsets,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn records(&self) -> usize {
        self.records
    }

    /// Value bytes in the batch: what throughput in MB/s counts.
    pub fn payload_bytes(&self) -> usize {
        self.records * self.record_bytes
    }

    pub fn is_stampable(&self) -> bool {
        !self.value_offsets.is_empty()
    }

    /// Writes the batch timestamps (and, if given, the value stamp into every value) into `batch`,
    /// a copy of this template, then its CRC.
    pub fn stamp(&self, batch: &mut [u8], timestamp_ms: i64, value_stamp: Option<u64>) {
        assert_eq!(batch.len(), self.bytes.len());
        assert!(value_stamp.is_none() || self.is_stampable());
        let timestamp = timestamp_ms.to_be_bytes();
        batch[FIRST_TIMESTAMP_OFFSET..FIRST_TIMESTAMP_OFFSET + 8].copy_from_slice(&timestamp);
        batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&timestamp);
        if let Some(stamp) = value_stamp {
            for &offset in &self.value_offsets {
                batch[offset..offset + VALUE_STAMP_BYTES].copy_from_slice(&stamp.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }

    /// The byte ranges `stamp` changes without a value stamp, so a stamped batch can be copied
    /// onto identical batches cheaply.
    pub fn stamped_ranges() -> [std::ops::Range<usize>; 2] {
        [
            CRC_OFFSET..CRC_OFFSET + 4,
            FIRST_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8,
        ]
    }
}

/// Makes `batch` (a stamped copy of a template) idempotent: writes the producer id, epoch and base
/// sequence, then the CRC, which covers them.
pub fn set_producer(batch: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    assert!(batch.len() >= BATCH_HEADER_BYTES);
    batch[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2]
        .copy_from_slice(&producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4]
        .copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Fills in a batch header for a freshly built batch: no producer id (not idempotent), no
/// partition leader epoch, create-time timestamps, and a zero CRC until `stamp`.
fn write_header(header: &mut [u8], records: usize, section_bytes: usize, compression: Compression) {
    let length = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + section_bytes) as i32;
    let last_offset_delta = (records - 1) as i32;
    header[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
    header[LEADER_EPOCH_OFFSET..LEADER_EPOCH_OFFSET + 4].copy_from_slice(&(-1i32).to_be_bytes());
    header[MAGIC_OFFSET] = MAGIC_V2 as u8;
    header[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
        .copy_from_slice(&compression.attribute_bits().to_be_bytes());
    header[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
        .copy_from_slice(&last_offset_delta.to_be_bytes());
    header[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&(-1i64).to_be_bytes());
    header[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2]
        .copy_from_slice(&(-1i16).to_be_bytes());
    header[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4].copy_from_slice(&(-1i32).to_be_bytes());
    header[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
        .copy_from_slice(&(records as i32).to_be_bytes());
}

/// Encodes the uncompressed records section; returns it with the offset of every value in it.
fn encode_records(records: usize, record_bytes: usize) -> (Vec<u8>, Vec<usize>) {
    let mut section = Vec::with_capacity(records * (record_bytes + 16));
    let mut value_offsets = Vec::with_capacity(records);
    let mut letters = Letters::new();
    let mut body = Vec::with_capacity(record_bytes + 16);
    for index in 0..records {
        body.clear();
        body.push(0); // Record attributes, unused by Kafka.
        put_varlong(&mut body, 0); // Timestamp delta: every record has the batch timestamp.
        put_varlong(&mut body, index as i64); // Offset delta.
        put_varlong(&mut body, -1); // Null key.
        put_varlong(&mut body, record_bytes as i64);
        let value_in_body = body.len();
        body.extend((0..record_bytes).map(|_| letters.next_letter()));
        put_varlong(&mut body, 0); // No headers.
        put_varlong(&mut section, body.len() as i64);
        value_offsets.push(section.len() + value_in_body);
        section.extend_from_slice(&body);
    }
    (section, value_offsets)
}

fn compress(plain: &[u8], compression: Compression) -> Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(plain.to_vec()),
        Compression::Lz4 => {
            // Kafka's own producer writes 64 KiB independent blocks; its reader takes nothing else.
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            encoder.write_all(plain)?;
            encoder
                .finish()
                .map_err(|error| Error::context("lz4 compression", error))
        }
        Compression::Zstd => zstd::bulk::compress(plain, zstd::DEFAULT_COMPRESSION_LEVEL)
            .map_err(|error| Error::context("zstd compression", error)),
    }
}

/// Uppercase letters from a fixed xorshift sequence, like Kafka's perf tool: realistic (partly
/// compressible) text, identical on every run.
struct Letters {
    state: u64,
}

impl Letters {
    fn new() -> Letters {
        Letters {
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next_letter(&mut self) -> u8 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        b'A' + (self.state % 26) as u8
    }
}

/// Appends a zigzag varint (Kafka's varint and varlong share the encoding).
pub fn put_varlong(target: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        target.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    target.push(zigzag as u8);
}

/// Reads a zigzag varint of at most 10 bytes at `*position`, advancing it.
pub fn read_varlong(source: &[u8], position: &mut usize) -> Result<i64> {
    let mut zigzag: u64 = 0;
    for shift in (0..70).step_by(7) {
        let Some(&byte) = source.get(*position) else {
            return Err(Error::new("record ends inside a varint"));
        };
        *position += 1;
        zigzag |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64));
        }
    }
    Err(Error::new("varint longer than 10 bytes"))
}

/// The header fields a consumer needs to move its offset without decoding records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// The whole batch, including the base offset and length fields.
    pub total_bytes: usize,
    pub last_offset_delta: i32,
    pub records_count: i32,
    pub attributes: i16,
}

impl BatchHeader {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn is_compressed(&self) -> bool {
        self.attributes & COMPRESSION_MASK != 0
    }
}

fn be_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn be_i32(bytes: &[u8], at: usize) -> i32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(&bytes[at..at + 4]);
    i32::from_be_bytes(field)
}

fn be_i64(bytes: &[u8], at: usize) -> i64 {
    let mut field = [0u8; 8];
    field.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(field)
}

/// Parses the batch header at the start of `bytes`. `None` when `bytes` holds only part of a batch,
/// which is normal at the end of a fetch answer (the broker cuts at the byte limit).
pub fn parse_header(bytes: &[u8]) -> Result<Option<BatchHeader>> {
    if bytes.len() < BATCH_HEADER_BYTES {
        return Ok(None);
    }
    let length = be_i32(bytes, LENGTH_OFFSET);
    let total_bytes = match usize::try_from(length) {
        Ok(length) if length >= BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES => {
            length + LOG_OVERHEAD_BYTES
        }
        _ => {
            return Err(Error::new(format!(
                "record batch length {length} is invalid"
            )))
        }
    };
    let magic = bytes[MAGIC_OFFSET] as i8;
    if magic != MAGIC_V2 {
        return Err(Error::new(format!("record batch magic {magic} is not 2")));
    }
    if bytes.len() < total_bytes {
        return Ok(None);
    }
    let header = BatchHeader {
        base_offset: be_i64(bytes, 0),
        total_bytes,
        last_offset_delta: be_i32(bytes, LAST_OFFSET_DELTA_OFFSET),
        records_count: be_i32(bytes, RECORDS_COUNT_OFFSET),
        attributes: be_i16(bytes, ATTRIBUTES_OFFSET),
    };
    if header.records_count < 0 || header.last_offset_delta < 0 {
        return Err(Error::new(
            "record batch with a negative count or offset delta",
        ));
    }
    Ok(Some(header))
}

/// Calls `visit` with every whole batch in a fetched records field, in order.
pub fn for_each_batch(
    mut records: &[u8],
    mut visit: impl FnMut(&BatchHeader, &[u8]) -> Result<()>,
) -> Result<()> {
    while let Some(header) = parse_header(records)? {
        let (batch, rest) = records.split_at(header.total_bytes);
        visit(&header, batch)?;
        records = rest;
    }
    Ok(())
}

/// Calls `visit(offset, value)` for every record of an uncompressed batch, after checking its CRC.
/// Values that are null are passed as empty.
pub fn for_each_value(
    batch: &[u8],
    header: &BatchHeader,
    mut visit: impl FnMut(i64, &[u8]),
) -> Result<()> {
    let crc_expected = u32::from_be_bytes([
        batch[CRC_OFFSET],
        batch[CRC_OFFSET + 1],
        batch[CRC_OFFSET + 2],
        batch[CRC_OFFSET + 3],
    ]);
    if crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]) != crc_expected {
        return Err(Error::new(format!(
            "record batch at offset {} fails its CRC",
            header.base_offset
        )));
    }
    if header.is_compressed() {
        return Err(Error::new(
            "end-to-end mode reads only uncompressed batches",
        ));
    }
    let mut position = BATCH_HEADER_BYTES;
    for _ in 0..header.records_count {
        let length = read_varlong(batch, &mut position)?;
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| position.checked_add(length))
            .filter(|&end| end <= batch.len())
            .ok_or_else(|| Error::new("record length runs past its batch"))?;
        let record = &batch[position..end];
        let (offset_delta, value) = record_value(record)?;
        visit(header.base_offset + offset_delta, value);
        position = end;
    }
    Ok(())
}

/// Splits one record body into its offset delta and value.
fn record_value(record: &[u8]) -> Result<(i64, &[u8])> {
    let mut position = 1; // Record attributes.
    read_varlong(record, &mut position)?; // Timestamp delta.
    let offset_delta = read_varlong(record, &mut position)?;
    let key_length = read_varlong(record, &mut position)?;
    position += usize::try_from(key_length.max(0)).unwrap_or(usize::MAX / 2);
    let value_length = read_varlong(record, &mut position)?;
    let value_length = usize::try_from(value_length.max(0)).unwrap_or(usize::MAX / 2);
    match position.checked_add(value_length) {
        Some(end) if end <= record.len() => Ok((offset_delta, &record[position..end])),
        _ => Err(Error::new("record value runs past its record")),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::records::{self, RecordBatchDecoder};

    use super::*;

    /// Kafka-protocol is built without its codecs, so the oracle decoder gets ours (the reference
    /// lz4 frame and zstd decoders), independent of how we compressed.
    fn decompress(section: &mut Bytes, codec: records::Compression) -> anyhow::Result<Bytes> {
        let plain = match codec {
            records::Compression::None => section.to_vec(),
            records::Compression::Lz4 => {
                let mut plain = Vec::new();
                let mut decoder = lz4_flex::frame::FrameDecoder::new(&section[..]);
                std::io::Read::read_to_end(&mut decoder, &mut plain)?;
                plain
            }
            records::Compression::Zstd => zstd::stream::decode_all(&section[..])?,
            other => anyhow::bail!("unexpected codec {other:?}"),
        };
        Ok(Bytes::from(plain))
    }

    fn stamped(template: &BatchTemplate, timestamp_ms: i64, value_stamp: Option<u64>) -> Vec<u8> {
        let mut batch = template.bytes().to_vec();
        template.stamp(&mut batch, timestamp_ms, value_stamp);
        batch
    }

    #[test]
    fn batches_decode_with_kafka_protocol_for_every_codec() {
        for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
            for (records, record_bytes) in [(1, 0), (1, 100), (100, 100), (7, 1000)] {
                let template = BatchTemplate::build(records, record_bytes, compression, false)
                    .expect("buildable");
                let batch = stamped(&template, 1_700_000_000_123, None);
                let mut buffer = Bytes::from(batch.clone());
                let decoded = RecordBatchDecoder::decode_with_custom_compression(
                    &mut buffer,
                    Some(decompress),
                )
                .expect("oracle decodes our batch, CRC included");
                assert_eq!(
                    buffer.len(),
                    0,
                    "{compression:?}: batch length covers it all"
                );
                assert_eq!(decoded.records.len(), records, "{compression:?}");
                for (index, record) in decoded.records.iter().enumerate() {
                    assert_eq!(record.offset, index as i64);
                    assert_eq!(record.timestamp, 1_700_000_000_123);
                    assert_eq!(record.key, None);
                    let value = record.value.as_ref().expect("value present");
                    assert_eq!(value.len(), record_bytes);
                    assert!(value.iter().all(u8::is_ascii_uppercase));
                }
                let header = parse_header(&batch).expect("valid").expect("whole");
                assert_eq!(header.total_bytes, batch.len());
                assert_eq!(header.records_count, records as i32);
                assert_eq!(header.last_offset(), records as i64 - 1);
                assert_eq!(header.is_compressed(), compression != Compression::None);
            }
        }
    }

    #[test]
    fn restamping_changes_only_timestamps_and_crc() {
        let template = BatchTemplate::build(10, 50, Compression::Lz4, false).expect("buildable");
        let first = stamped(&template, 1_000, None);
        let second = stamped(&template, 2_000, None);
        let changed: Vec<usize> = (0..first.len())
            .filter(|&i| first[i] != second[i])
            .collect();
        let ranges = BatchTemplate::stamped_ranges();
        assert!(!changed.is_empty());
        assert!(changed
            .iter()
            .all(|i| ranges.iter().any(|range| range.contains(i))));
        // Copying only those ranges onto an old stamp must give a batch that still verifies.
        let mut copy = first.clone();
        for range in ranges {
            copy[range.clone()].copy_from_slice(&second[range]);
        }
        assert_eq!(copy, second);
        let mut buffer = Bytes::from(copy);
        RecordBatchDecoder::decode_with_custom_compression(&mut buffer, Some(decompress))
            .expect("re-stamped batch verifies");
    }

    #[test]
    fn value_stamps_round_trip_through_the_record_decoder() {
        let template = BatchTemplate::build(5, 20, Compression::None, true).expect("buildable");
        let batch = stamped(&template, 42, Some(0x0102_0304_0506_0708));
        let header = parse_header(&batch).expect("valid").expect("whole");
        let mut seen = Vec::new();
        for_each_value(&batch, &header, |offset, value| {
            seen.push((offset, value[..VALUE_STAMP_BYTES].to_vec(), value.len()))
        })
        .expect("decodes");
        assert_eq!(seen.len(), 5);
        for (index, (offset, stamp, length)) in seen.into_iter().enumerate() {
            assert_eq!(offset, index as i64);
            assert_eq!(stamp, 0x0102_0304_0506_0708u64.to_be_bytes());
            assert_eq!(length, 20);
        }
        let mut buffer = Bytes::from(batch);
        let decoded = RecordBatchDecoder::decode(&mut buffer).expect("oracle decodes");
        let value = decoded.records[4].value.as_ref().expect("value");
        assert_eq!(value[..8], 0x0102_0304_0506_0708u64.to_be_bytes());
    }

    #[test]
    fn a_corrupted_batch_fails_its_crc() {
        let template = BatchTemplate::build(3, 10, Compression::None, true).expect("buildable");
        let mut batch = stamped(&template, 42, Some(7));
        let header = parse_header(&batch).expect("valid").expect("whole");
        let last = batch.len() - 2;
        batch[last] ^= 0xff;
        assert!(for_each_value(&batch, &header, |_, _| {}).is_err());
    }

    #[test]
    fn header_parsing_stops_at_a_partial_batch_and_rejects_garbage() {
        let template = BatchTemplate::build(4, 10, Compression::None, false).expect("buildable");
        let one = stamped(&template, 1, None);
        let mut two = one.clone();
        two.extend_from_slice(&one);
        two.extend_from_slice(&one[..one.len() - 1]);
        let mut headers = Vec::new();
        for_each_batch(&two, |header, batch| {
            assert_eq!(batch.len(), header.total_bytes);
            headers.push(*header);
            Ok(())
        })
        .expect("valid");
        assert_eq!(headers.len(), 2);
        assert_eq!(parse_header(&one[..30]).expect("short is fine"), None);
        let mut bad_magic = one.clone();
        bad_magic[MAGIC_OFFSET] = 1;
        assert!(parse_header(&bad_magic).is_err());
        let mut bad_length = one.clone();
        bad_length[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(parse_header(&bad_length).is_err());
    }

    #[test]
    fn oversized_or_empty_batches_are_refused() {
        assert!(BatchTemplate::build(0, 10, Compression::None, false).is_err());
        assert!(BatchTemplate::build(2, BATCH_BYTES_MAX, Compression::None, false).is_err());
        assert!(BatchTemplate::build(2, 4, Compression::None, true).is_err());
        assert!(BatchTemplate::build(2, 40, Compression::Zstd, true).is_err());
    }

    #[test]
    fn varlongs_round_trip() {
        for value in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut encoded = Vec::new();
            put_varlong(&mut encoded, value);
            let mut position = 0;
            assert_eq!(read_varlong(&encoded, &mut position).expect("valid"), value);
            assert_eq!(position, encoded.len());
        }
        let mut position = 0;
        assert!(read_varlong(&[0x80; 11], &mut position).is_err());
        position = 0;
        assert!(read_varlong(&[0x80], &mut position).is_err());
    }
}
