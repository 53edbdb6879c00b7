//! Kafka record batch v2 (magic 2): header parsing, validation of produce input, in-place patching
//! when a batch is written to the log, and the record-precision timestamp search inside one batch.
//!
//! Owns: the byte layout of a batch header and of the record fields we read (timestamp and offset
//! deltas). Must not touch: files, log offsets policy, Kafka error codes. Nothing here panics on input
//! bytes; assertions only guard the patching functions, whose callers hand in batches they validated.
//!
//! Header layout (big-endian), byte position on the left:
//!
//! ```text
//!  0 baseOffset i64          27 baseTimestamp i64
//!  8 batchLength i32         35 maxTimestamp i64
//! 12 partitionLeaderEpoch i32 43 producerId i64
//! 16 magic i8                51 producerEpoch i16
//! 17 crc u32                 53 baseSequence i32
//! 21 attributes i16          57 recordsCount i32
//! 23 lastOffsetDelta i32     61 records...
//! ```
//!
//! `batchLength` counts the bytes after itself, so a batch occupies `12 + batchLength` bytes. The CRC is
//! CRC-32C over everything from `attributes` to the end, which is why base offset and leader epoch can be
//! rewritten without recomputing it.

use std::borrow::Cow;
use std::io::Read;

/// Bytes of a batch header, up to and including `recordsCount`.
pub const BATCH_HEADER_BYTES: usize = 61;
/// The only batch format version we accept (Kafka 0.11+; every client since speaks it).
pub const BATCH_MAGIC: i8 = 2;
/// Bytes before the part `batchLength` counts: baseOffset and batchLength themselves.
pub const BATCH_LENGTH_PREFIX_BYTES: usize = 12;
/// Smallest legal `batchLength`: a header with no records.
pub const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_BYTES - BATCH_LENGTH_PREFIX_BYTES) as i32;
/// A compressed batch may not inflate past this. Kafka batches are bounded by `max.message.bytes`
/// (1 MiB by default) and real compression ratios stay far below 64x, so 64 MiB leaves headroom for
/// legitimate data while a decompression bomb costs at most this much memory, once, on a cold path.
pub const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;
/// The smallest record: length, attributes, timestampDelta, offsetDelta, keyLength, valueLength and
/// headers count, one byte each. It lets us reject a batch claiming more records than its bytes can hold.
pub const RECORD_BYTES_MIN: usize = 7;
/// Kafka's "no timestamp" value, also the max timestamp of a summary with no batches.
pub const NO_TIMESTAMP: i64 = -1;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

const ATTRIBUTE_COMPRESSION_MASK: i16 = 0b111;
const ATTRIBUTE_LOG_APPEND_TIME: i16 = 1 << 3;
const ATTRIBUTE_TRANSACTIONAL: i16 = 1 << 4;
const ATTRIBUTE_CONTROL: i16 = 1 << 5;

/// Magic bytes that open a snappy stream written by Java clients (xerial `SnappyOutputStream`).
const XERIAL_SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Xerial header: the magic, then a version and a minimum compatible version (i32 each).
const XERIAL_SNAPPY_HEADER_BYTES: usize = 16;
/// Log2 of the largest zstd window we agree to allocate; matches `DECOMPRESSED_BYTES_MAX`.
const ZSTD_WINDOW_LOG_MAX: u32 = 26;

const _: () = assert!(BATCH_LENGTH_MIN == 49);
const _: () = assert!(RECORDS_COUNT_AT + 4 == BATCH_HEADER_BYTES);
const _: () = assert!(1 << ZSTD_WINDOW_LOG_MAX == DECOMPRESSED_BYTES_MAX);

/// Why a batch was rejected. The three variants map to three distinct Kafka errors in the broker:
/// `Corrupt` to CORRUPT_MESSAGE, `TooLarge` to MESSAGE_TOO_LARGE and `Invalid` to INVALID_RECORD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The bytes cannot be a batch as written: torn, truncated, bit-flipped or undecodable.
    #[error("corrupt record batch: {0}")]
    Corrupt(Corruption),
    /// A single batch is larger than the configured maximum.
    #[error("record batch of {size_bytes} bytes exceeds the {limit_bytes} byte limit")]
    TooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    /// A well-formed batch that breaks a Kafka rule (wrong magic, counts that disagree, bad codec).
    #[error("invalid record batch: {0}")]
    Invalid(&'static str),
}

/// The detail of a `BatchError::Corrupt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("{needed_bytes} bytes needed but only {available_bytes} present")]
    Truncated {
        needed_bytes: usize,
        available_bytes: usize,
    },
    #[error("batch length {0} is shorter than a batch header")]
    LengthTooSmall(i32),
    #[error("stored CRC {stored:#010x} differs from computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("{0}")]
    Records(&'static str),
}

/// Compression codec from attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Attribute bit 3: who chose the timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The fixed 61-byte header of a v2 record batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the header at the start of `bytes`. Checks that the header is complete, that the magic
    /// is 2 (other versions have a different layout) and that `batchLength` covers a header. It does not
    /// check that the whole batch is present; `frame_batch` does.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        let Some(header) = bytes.first_chunk::<BATCH_HEADER_BYTES>() else {
            return Err(BatchError::Corrupt(Corruption::Truncated {
                needed_bytes: BATCH_HEADER_BYTES,
                available_bytes: bytes.len(),
            }));
        };
        let magic = i8::from_be_bytes([header[MAGIC_AT]]);
        if magic != BATCH_MAGIC {
            return Err(BatchError::Invalid("record batch magic is not 2"));
        }
        let batch_length = be_i32(header, BATCH_LENGTH_AT);
        if batch_length < BATCH_LENGTH_MIN {
            return Err(BatchError::Corrupt(Corruption::LengthTooSmall(
                batch_length,
            )));
        }
        Ok(BatchHeader {
            base_offset: be_i64(header, BASE_OFFSET_AT),
            batch_length,
            partition_leader_epoch: be_i32(header, PARTITION_LEADER_EPOCH_AT),
            magic,
            crc: be_i32(header, CRC_AT) as u32,
            attributes: be_i16(header, ATTRIBUTES_AT),
            last_offset_delta: be_i32(header, LAST_OFFSET_DELTA_AT),
            base_timestamp: be_i64(header, BASE_TIMESTAMP_AT),
            max_timestamp: be_i64(header, MAX_TIMESTAMP_AT),
            producer_id: be_i64(header, PRODUCER_ID_AT),
            producer_epoch: be_i16(header, PRODUCER_EPOCH_AT),
            base_sequence: be_i32(header, BASE_SEQUENCE_AT),
            records_count: be_i32(header, RECORDS_COUNT_AT),
        })
    }

    /// Bytes the whole batch occupies, header included.
    pub fn total_bytes(&self) -> usize {
        // `parse` guarantees this; a hand-built header that breaks it is a bug.
        assert!(self.batch_length >= BATCH_LENGTH_MIN);
        BATCH_LENGTH_PREFIX_BYTES + self.batch_length as usize
    }

    /// Offset of the last record. Saturates instead of overflowing on a hostile base offset.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    pub fn compression(&self) -> Result<Compression, BatchError> {
        match self.attributes & ATTRIBUTE_COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            _ => Err(BatchError::Invalid("unknown compression codec")),
        }
    }

    pub fn timestamp_type(&self) -> TimestampType {
        match self.attributes & ATTRIBUTE_LOG_APPEND_TIME {
            0 => TimestampType::CreateTime,
            _ => TimestampType::LogAppendTime,
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTRIBUTE_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTRIBUTE_CONTROL != 0
    }
}

/// What `validate_batches` learned about a produce partition's `records` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchesSummary {
    pub batch_count: u32,
    /// Sum of `lastOffsetDelta + 1`: how many offsets the append will consume.
    pub records_count: i64,
    pub size_bytes: usize,
    /// Largest `maxTimestamp` over the batches, `NO_TIMESTAMP` if none is set.
    pub max_timestamp: i64,
}

/// Validates one or more concatenated batches as they arrive in a produce request, without decoding
/// records and without allocating. Every batch must be complete, magic 2, at most `max_batch_bytes`,
/// CRC-correct, and hold `recordsCount >= 1` records with `lastOffsetDelta == recordsCount - 1`.
pub fn validate_batches(
    bytes: &[u8],
    max_batch_bytes: usize,
) -> Result<BatchesSummary, BatchError> {
    if bytes.is_empty() {
        return Err(BatchError::Invalid("records hold no record batch"));
    }
    let mut summary = BatchesSummary {
        batch_count: 0,
        records_count: 0,
        size_bytes: 0,
        max_timestamp: NO_TIMESTAMP,
    };
    // Each iteration consumes at least one header, so the loop runs at most len / 61 times.
    for item in Batches::new(bytes) {
        let (position, header) = item?;
        let batch = &bytes[position..position + header.total_bytes()];
        validate_batch(batch, &header, max_batch_bytes)?;
        summary.batch_count += 1;
        summary.records_count += i64::from(header.last_offset_delta) + 1;
        summary.size_bytes += batch.len();
        summary.max_timestamp = summary.max_timestamp.max(header.max_timestamp);
    }
    assert!(summary.size_bytes == bytes.len());
    assert!(summary.batch_count >= 1);
    Ok(summary)
}

/// The checks `validate_batches` applies to one framed batch.
fn validate_batch(
    batch: &[u8],
    header: &BatchHeader,
    max_batch_bytes: usize,
) -> Result<(), BatchError> {
    assert!(batch.len() == header.total_bytes());
    if batch.len() > max_batch_bytes {
        return Err(BatchError::TooLarge {
            size_bytes: batch.len(),
            limit_bytes: max_batch_bytes,
        });
    }
    verify_crc(batch, header)?;
    let compression = header.compression()?;
    if header.records_count < 1 {
        return Err(BatchError::Invalid("record batch holds no records"));
    }
    if header.last_offset_delta != header.records_count - 1 {
        return Err(BatchError::Invalid(
            "lastOffsetDelta is not recordsCount - 1",
        ));
    }
    let records_bytes = batch.len() - BATCH_HEADER_BYTES;
    let records_bytes_min = (header.records_count as usize).saturating_mul(RECORD_BYTES_MIN);
    if compression == Compression::None && records_bytes < records_bytes_min {
        return Err(BatchError::Invalid(
            "recordsCount exceeds what the batch bytes can hold",
        ));
    }
    Ok(())
}

/// Parses the header at the start of `bytes` and checks that the whole batch is present. Returns the
/// header and exactly the batch's bytes.
pub fn frame_batch(bytes: &[u8]) -> Result<(BatchHeader, &[u8]), BatchError> {
    let header = BatchHeader::parse(bytes)?;
    let total = header.total_bytes();
    match bytes.get(..total) {
        Some(batch) => Ok((header, batch)),
        None => Err(BatchError::Corrupt(Corruption::Truncated {
            needed_bytes: total,
            available_bytes: bytes.len(),
        })),
    }
}

/// Checks the stored CRC-32C of a framed batch against its bytes.
pub fn verify_crc(batch: &[u8], header: &BatchHeader) -> Result<(), BatchError> {
    assert!(batch.len() == header.total_bytes());
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    if computed != header.crc {
        return Err(BatchError::Corrupt(Corruption::Crc {
            stored: header.crc,
            computed,
        }));
    }
    Ok(())
}

/// Walks concatenated batches, yielding each one's position and header after checking that it is
/// complete (no CRC check). It stops after the first error, so a caller sees at most one.
pub struct Batches<'a> {
    bytes: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> Batches<'a> {
    pub fn new(bytes: &'a [u8]) -> Batches<'a> {
        Batches::starting_at(bytes, 0)
    }

    /// Starts the walk at `position`, which must be the start of a batch (or the end).
    pub fn starting_at(bytes: &'a [u8], position: usize) -> Batches<'a> {
        assert!(position <= bytes.len());
        Batches {
            bytes,
            position,
            failed: false,
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<(usize, BatchHeader), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.bytes.len() {
            return None;
        }
        match frame_batch(&self.bytes[self.position..]) {
            Ok((header, batch)) => {
                let position = self.position;
                self.position += batch.len();
                Some(Ok((position, header)))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

/// Stamps the offset the log assigned. The base offset is outside the CRC, so the CRC stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    assert!(batch.len() >= BATCH_HEADER_BYTES);
    assert!(base_offset >= 0);
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Stamps the leader epoch. The epoch is outside the CRC, so the CRC stays valid.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    assert!(batch.len() >= BATCH_HEADER_BYTES);
    let field = PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4;
    batch[field].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch as LogAppendTime with `now_ms` as its max timestamp and recomputes the CRC, as Kafka
/// does for topics with `message.timestamp.type=LogAppendTime`. Readers then report `now_ms` as the
/// timestamp of every record in the batch; the per-record deltas are left alone. The batch comes in
/// two parts, its header (patched) and the records after it (read for the CRC only), so that the log
/// can stamp a copy of the header and append the records straight from the request.
pub fn set_log_append_time(header: &mut [u8], records: &[u8], now_ms: i64) {
    assert!(header.len() == BATCH_HEADER_BYTES);
    let parsed = BatchHeader::parse(header);
    assert!(
        parsed.is_ok(),
        "set_log_append_time on a batch that was not validated"
    );
    let total = parsed.map_or(0, |parsed| parsed.total_bytes());
    assert!(total == header.len() + records.len());
    let attributes_field = ATTRIBUTES_AT..ATTRIBUTES_AT + 2;
    let attributes = i16::from_be_bytes([header[ATTRIBUTES_AT], header[ATTRIBUTES_AT + 1]]);
    let attributes = attributes | ATTRIBUTE_LOG_APPEND_TIME;
    header[attributes_field].copy_from_slice(&attributes.to_be_bytes());
    header[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[ATTRIBUTES_AT..]), records);
    header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Kafka's "no producer id / epoch / sequence" values, carried by batches of plain producers.
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;
/// Bytes of a control batch as `build_control_batch` writes it: the header plus one 17-byte record
/// (a 4-byte key and a 6-byte value).
pub const CONTROL_BATCH_BYTES: usize = BATCH_HEADER_BYTES + 17;

/// What a control batch (a transaction marker) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
}

/// The sequence number of the last record of a batch that starts at `base_sequence`. Sequences wrap
/// from `i32::MAX` to 0, as Kafka's `DefaultRecordBatch.incrementSequence` does.
pub fn last_sequence(base_sequence: i32, last_offset_delta: i32) -> i32 {
    assert!(base_sequence >= 0);
    assert!(last_offset_delta >= 0);
    let sum = i64::from(base_sequence) + i64::from(last_offset_delta);
    (sum % (i64::from(i32::MAX) + 1)) as i32
}

/// A transaction marker as Kafka's coordinator writes it: a transactional control batch holding one
/// record whose key is (version 0, type) and whose value is (version 0, coordinator epoch). The base
/// offset is left 0 for the log to stamp; the base sequence is -1 as for every control batch.
pub fn build_control_batch(
    producer_id: i64,
    producer_epoch: i16,
    control: ControlType,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> [u8; CONTROL_BATCH_BYTES] {
    let control_type: i16 = match control {
        ControlType::Abort => 0,
        ControlType::Commit => 1,
    };
    let mut batch = [0u8; CONTROL_BATCH_BYTES];
    let length = (CONTROL_BATCH_BYTES - BATCH_LENGTH_PREFIX_BYTES) as i32;
    batch[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    batch[MAGIC_AT] = BATCH_MAGIC as u8;
    let attributes = ATTRIBUTE_TRANSACTIONAL | ATTRIBUTE_CONTROL;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&NO_SEQUENCE.to_be_bytes());
    batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&1i32.to_be_bytes());
    // The record: length 16 (zigzag 32), attributes, timestamp delta 0, offset delta 0, key length 4
    // (zigzag 8), key, value length 6 (zigzag 12), value, no headers.
    let mut record = [0u8; 17];
    record[0] = 32;
    record[4] = 8;
    record[7..9].copy_from_slice(&control_type.to_be_bytes());
    record[9] = 12;
    record[12..16].copy_from_slice(&coordinator_epoch.to_be_bytes());
    batch[BATCH_HEADER_BYTES..].copy_from_slice(&record);
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// Reads the type of a control batch from its first record's key. Kafka writes markers uncompressed;
/// a compressed or malformed one is reported as corrupt rather than guessed at.
pub fn control_type(batch: &[u8], header: &BatchHeader) -> Result<ControlType, BatchError> {
    if !header.is_control() || header.compression()? != Compression::None {
        return Err(BatchError::Invalid("not an uncompressed control batch"));
    }
    let records = batch
        .get(BATCH_HEADER_BYTES..header.total_bytes())
        .ok_or(malformed("control batch is truncated"))?;
    let mut cursor = Cursor::new(records);
    let length = cursor.varint()?;
    let length = usize::try_from(length).map_err(|_| malformed("negative record length"))?;
    let mut record = Cursor::new(cursor.take(length)?);
    record.take(1)?;
    record.varlong()?;
    record.varint()?;
    let key_length = record.varint()?;
    if key_length < 4 {
        return Err(malformed("control record key is too short"));
    }
    let key = record.take(4)?;
    match i16::from_be_bytes([key[2], key[3]]) {
        0 => Ok(ControlType::Abort),
        1 => Ok(ControlType::Commit),
        _ => Err(BatchError::Invalid("unknown control record type")),
    }
}

/// Finds the first record (in offset order) whose timestamp is at least `target_ms` and returns its
/// `(offset, timestamp)`, or `None` if the batch has no such record. Decompresses when needed, bounded
/// by `DECOMPRESSED_BYTES_MAX`. A LogAppendTime batch stamps every record with its max timestamp.
pub fn first_record_at_or_after(
    batch: &[u8],
    target_ms: i64,
) -> Result<Option<(i64, i64)>, BatchError> {
    let (header, batch) = frame_batch(batch)?;
    if header.max_timestamp < target_ms {
        return Ok(None);
    }
    if header.timestamp_type() == TimestampType::LogAppendTime {
        return Ok(Some((header.base_offset, header.max_timestamp)));
    }
    let payload = &batch[BATCH_HEADER_BYTES..];
    let records = decompress(header.compression()?, payload, DECOMPRESSED_BYTES_MAX)?;
    find_record(&records, &header, target_ms)
}

/// Walks the records, reading only `timestampDelta` and `offsetDelta` from each and skipping the rest
/// by its length prefix.
fn find_record(
    records: &[u8],
    header: &BatchHeader,
    target_ms: i64,
) -> Result<Option<(i64, i64)>, BatchError> {
    let mut cursor = Cursor::new(records);
    // Each iteration consumes at least one byte or fails, so the loop is bounded by the bytes too.
    for _ in 0..header.records_count.max(0) {
        let length = cursor.varint()?;
        let length = usize::try_from(length).map_err(|_| malformed("negative record length"))?;
        let mut record = Cursor::new(cursor.take(length)?);
        record.take(1)?; // Attributes are unused by every Kafka version so far.
        let timestamp_delta = record.varlong()?;
        let offset_delta = record.varint()?;
        let timestamp = header
            .base_timestamp
            .checked_add(timestamp_delta)
            .ok_or(malformed("record timestamp overflows"))?;
        if timestamp >= target_ms {
            let offset = header.base_offset.saturating_add(i64::from(offset_delta));
            return Ok(Some((offset, timestamp)));
        }
    }
    Ok(None)
}

fn malformed(reason: &'static str) -> BatchError {
    BatchError::Corrupt(Corruption::Records(reason))
}

/// Inflates a batch's records section; uncompressed records are borrowed as they are.
fn decompress(
    compression: Compression,
    payload: &[u8],
    limit_bytes: usize,
) -> Result<Cow<'_, [u8]>, BatchError> {
    let records = match compression {
        Compression::None => return Ok(Cow::Borrowed(payload)),
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(payload), limit_bytes)?,
        Compression::Snappy => decompress_snappy(payload, limit_bytes)?,
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(payload), limit_bytes)?,
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(payload)
                .map_err(|_| malformed("zstd decoder cannot start"))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|_| malformed("zstd decoder rejects the window limit"))?;
            read_bounded(decoder, limit_bytes)?
        }
    };
    Ok(Cow::Owned(records))
}

/// Reads a decoder to its end, failing once it produces more than `limit_bytes`.
fn read_bounded(decoder: impl Read, limit_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let mut records = Vec::new();
    let read = decoder
        .take(limit_bytes as u64 + 1)
        .read_to_end(&mut records);
    if let Err(error) = read {
        log::debug!("cannot decompress record batch: {error}");
        return Err(malformed("compressed records cannot be decoded"));
    }
    if records.len() > limit_bytes {
        return Err(malformed(
            "decompressed records exceed DECOMPRESSED_BYTES_MAX",
        ));
    }
    Ok(records)
}

/// Snappy as Kafka clients write it: Java clients use xerial framing (a 16-byte header, then blocks
/// each prefixed by a big-endian i32 length), librdkafka may write one raw snappy block.
fn decompress_snappy(payload: &[u8], limit_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let Some(mut blocks) = payload.strip_prefix(&XERIAL_SNAPPY_MAGIC[..]) else {
        let mut records = Vec::new();
        append_snappy_block(payload, &mut records, limit_bytes)?;
        return Ok(records);
    };
    let header_rest = XERIAL_SNAPPY_HEADER_BYTES - XERIAL_SNAPPY_MAGIC.len();
    blocks = blocks
        .get(header_rest..)
        .ok_or(malformed("xerial snappy header is truncated"))?;
    let mut records = Vec::new();
    // Each block consumes at least its 4-byte length prefix, so the loop ends with the payload.
    while let Some((length, rest)) = blocks.split_first_chunk::<4>() {
        let length = usize::try_from(i32::from_be_bytes(*length))
            .map_err(|_| malformed("negative xerial snappy block length"))?;
        let block = rest
            .get(..length)
            .ok_or(malformed("xerial snappy block is truncated"))?;
        append_snappy_block(block, &mut records, limit_bytes)?;
        blocks = &rest[length..];
    }
    if !blocks.is_empty() {
        return Err(malformed("xerial snappy stream ends inside a block length"));
    }
    Ok(records)
}

/// Decompresses one raw snappy block onto `records`, checking its declared size before allocating.
fn append_snappy_block(
    block: &[u8],
    records: &mut Vec<u8>,
    limit_bytes: usize,
) -> Result<(), BatchError> {
    let length = snap::raw::decompress_len(block)
        .map_err(|_| malformed("snappy block header is invalid"))?;
    if records.len().saturating_add(length) > limit_bytes {
        return Err(malformed(
            "decompressed records exceed DECOMPRESSED_BYTES_MAX",
        ));
    }
    let start = records.len();
    records.resize(start + length, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut records[start..])
        .map_err(|_| malformed("snappy block cannot be decoded"))?;
    records.truncate(start + written);
    Ok(())
}

/// A bounds-checked reader over record bytes; every read fails instead of running past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], BatchError> {
        if count > self.bytes.len() {
            return Err(malformed("record runs past the end of the batch"));
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    /// An unsigned LEB128 value of at most `bytes_max` bytes.
    fn unsigned(&mut self, bytes_max: u32) -> Result<u64, BatchError> {
        let mut value = 0u64;
        for index in 0..bytes_max {
            let Some((&byte, rest)) = self.bytes.split_first() else {
                return Err(malformed("varint runs past the end of the batch"));
            };
            self.bytes = rest;
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("varint is too long"))
    }

    /// A zigzag varint (Kafka's `varint`, at most 5 bytes).
    fn varint(&mut self) -> Result<i32, BatchError> {
        let raw =
            u32::try_from(self.unsigned(5)?).map_err(|_| malformed("varint overflows 32 bits"))?;
        Ok((raw >> 1) as i32 ^ -((raw & 1) as i32))
    }

    /// A zigzag varlong (Kafka's `varlong`, at most 10 bytes).
    fn varlong(&mut self) -> Result<i64, BatchError> {
        let raw = self.unsigned(10)?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }
}

fn be_i16(header: &[u8; BATCH_HEADER_BYTES], at: usize) -> i16 {
    i16::from_be_bytes([header[at], header[at + 1]])
}

fn be_i32(header: &[u8; BATCH_HEADER_BYTES], at: usize) -> i32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(&header[at..at + 4]);
    i32::from_be_bytes(field)
}

fn be_i64(header: &[u8; BATCH_HEADER_BYTES], at: usize) -> i64 {
    let mut field = [0u8; 8];
    field.copy_from_slice(&header[at..at + 8]);
    i64::from_be_bytes(field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::{build_batch, compress, fix_crc, simple_batch, Codec, Random};

    const LIMIT: usize = 1 << 20;

    #[test]
    fn parse_reads_every_field() {
        let batch = build_batch(1_000, &[0, 5, 3], 10, Codec::None);
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!(header.base_offset, 0);
        assert_eq!(header.total_bytes(), batch.len());
        assert_eq!(header.partition_leader_epoch, -1);
        assert_eq!(header.magic, 2);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.last_offset(), 2);
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(header.max_timestamp, 1_005);
        assert_eq!(header.producer_id, -1);
        assert_eq!(header.producer_epoch, -1);
        assert_eq!(header.base_sequence, -1);
        assert_eq!(header.records_count, 3);
        assert_eq!(header.compression(), Ok(Compression::None));
        assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
        assert!(!header.is_transactional());
        assert!(!header.is_control());
    }

    #[test]
    fn parse_never_panics_on_random_or_short_input() {
        let mut random = Random::new(7);
        let good = simple_batch(3, 5, 0);
        for length in 0..good.len() {
            let _ = BatchHeader::parse(&good[..length]);
            let _ = validate_batches(&good[..length], LIMIT);
            let _ = first_record_at_or_after(&good[..length], 0);
        }
        for _ in 0..2_000 {
            let mut bytes = vec![0u8; random.below(200) as usize];
            random.fill(&mut bytes);
            if bytes.len() > MAGIC_AT {
                bytes[MAGIC_AT] = 2; // Get past the magic check most of the time.
            }
            let _ = validate_batches(&bytes, LIMIT);
            let _ = first_record_at_or_after(&bytes, i64::MIN);
        }
    }

    #[test]
    fn validate_accepts_one_and_many_batches() {
        let one = simple_batch(4, 10, 50);
        let summary = validate_batches(&one, LIMIT).unwrap();
        assert_eq!(summary.batch_count, 1);
        assert_eq!(summary.records_count, 4);
        assert_eq!(summary.size_bytes, one.len());
        assert_eq!(summary.max_timestamp, 53);

        let mut many = one.clone();
        many.extend_from_slice(&build_batch(500, &[0, 1], 3, Codec::Zstd));
        many.extend_from_slice(&simple_batch(1, 0, 7));
        let summary = validate_batches(&many, LIMIT).unwrap();
        assert_eq!(summary.batch_count, 3);
        assert_eq!(summary.records_count, 7);
        assert_eq!(summary.size_bytes, many.len());
        assert_eq!(summary.max_timestamp, 501);
    }

    #[test]
    fn validate_rejects_bad_crc_as_corrupt() {
        let mut batch = simple_batch(2, 10, 0);
        let last = batch.len() - 1;
        batch[last] ^= 0x40;
        let error = validate_batches(&batch, LIMIT).unwrap_err();
        assert!(
            matches!(error, BatchError::Corrupt(Corruption::Crc { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn validate_rejects_truncated_and_trailing_partial_batches() {
        let batch = simple_batch(2, 10, 0);
        let error = validate_batches(&batch[..batch.len() - 1], LIMIT).unwrap_err();
        assert!(
            matches!(error, BatchError::Corrupt(Corruption::Truncated { .. })),
            "{error:?}"
        );
        let mut two = batch.clone();
        two.extend_from_slice(&batch[..30]);
        let error = validate_batches(&two, LIMIT).unwrap_err();
        assert!(
            matches!(error, BatchError::Corrupt(Corruption::Truncated { .. })),
            "{error:?}"
        );
        assert_eq!(
            validate_batches(&[], LIMIT),
            Err(BatchError::Invalid("records hold no record batch"))
        );
    }

    #[test]
    fn validate_rejects_wrong_magic_short_length_and_oversize() {
        let mut batch = simple_batch(2, 10, 0);
        batch[MAGIC_AT] = 1;
        assert!(matches!(
            validate_batches(&batch, LIMIT),
            Err(BatchError::Invalid(_))
        ));

        let mut batch = simple_batch(2, 10, 0);
        batch[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&48i32.to_be_bytes());
        let error = validate_batches(&batch, LIMIT).unwrap_err();
        assert_eq!(error, BatchError::Corrupt(Corruption::LengthTooSmall(48)));

        let batch = simple_batch(10, 100, 0);
        let error = validate_batches(&batch, 500).unwrap_err();
        let expected = BatchError::TooLarge {
            size_bytes: batch.len(),
            limit_bytes: 500,
        };
        assert_eq!(error, expected);
    }

    #[test]
    fn validate_rejects_count_mismatches_as_invalid() {
        let mut batch = simple_batch(3, 10, 0);
        batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&5i32.to_be_bytes());
        fix_crc(&mut batch);
        assert!(matches!(
            validate_batches(&batch, LIMIT),
            Err(BatchError::Invalid(_))
        ));

        let mut batch = simple_batch(1, 10, 0);
        batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&0i32.to_be_bytes());
        batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&(-1i32).to_be_bytes());
        fix_crc(&mut batch);
        assert!(matches!(
            validate_batches(&batch, LIMIT),
            Err(BatchError::Invalid(_))
        ));

        // More records than an uncompressed records section can hold.
        let mut batch = simple_batch(1, 0, 0);
        batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&1000i32.to_be_bytes());
        batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&999i32.to_be_bytes());
        fix_crc(&mut batch);
        assert!(matches!(
            validate_batches(&batch, LIMIT),
            Err(BatchError::Invalid(_))
        ));

        let mut batch = simple_batch(1, 0, 0);
        batch[ATTRIBUTES_AT + 1] = 6;
        fix_crc(&mut batch);
        let error = validate_batches(&batch, LIMIT).unwrap_err();
        assert_eq!(error, BatchError::Invalid("unknown compression codec"));
    }

    #[test]
    fn patching_offset_and_epoch_keeps_the_crc_valid() {
        let mut batch = simple_batch(3, 10, 0);
        set_base_offset(&mut batch, 1234);
        set_partition_leader_epoch(&mut batch, 0);
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!(header.base_offset, 1234);
        assert_eq!(header.last_offset(), 1236);
        assert_eq!(header.partition_leader_epoch, 0);
        assert!(validate_batches(&batch, LIMIT).is_ok());
    }

    #[test]
    fn log_append_time_sets_type_and_max_timestamp_and_crc() {
        let mut batch = build_batch(100, &[0, 1, 2], 4, Codec::Lz4);
        let (header, records) = batch.split_at_mut(BATCH_HEADER_BYTES);
        set_log_append_time(header, records, 9_999);
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(header.max_timestamp, 9_999);
        assert_eq!(header.compression(), Ok(Compression::Lz4));
        assert!(validate_batches(&batch, LIMIT).is_ok());
        // Every record now reports the append time.
        assert_eq!(first_record_at_or_after(&batch, 0), Ok(Some((0, 9_999))));
        assert_eq!(first_record_at_or_after(&batch, 10_000), Ok(None));
    }

    #[test]
    fn timestamp_search_is_record_precise_for_every_codec() {
        let codecs = [
            Codec::None,
            Codec::Gzip,
            Codec::SnappyXerial,
            Codec::SnappyRaw,
            Codec::Lz4,
            Codec::Zstd,
        ];
        for codec in codecs {
            // Timestamps are deliberately not monotonic: 1000, 1030, 1010, 1050, 1020.
            let mut batch = build_batch(1_000, &[0, 30, 10, 50, 20], 16, codec);
            set_base_offset(&mut batch, 40);
            assert!(validate_batches(&batch, LIMIT).is_ok(), "{codec:?}");
            let search = |target| first_record_at_or_after(&batch, target);
            assert_eq!(search(i64::MIN), Ok(Some((40, 1_000))), "{codec:?}");
            assert_eq!(search(1_000), Ok(Some((40, 1_000))), "{codec:?}");
            assert_eq!(search(1_001), Ok(Some((41, 1_030))), "{codec:?}");
            assert_eq!(search(1_031), Ok(Some((43, 1_050))), "{codec:?}");
            assert_eq!(search(1_050), Ok(Some((43, 1_050))), "{codec:?}");
            assert_eq!(search(1_051), Ok(None), "{codec:?}");
        }
    }

    #[test]
    fn timestamp_search_reports_corrupt_compressed_data() {
        for codec in [
            Codec::Gzip,
            Codec::SnappyXerial,
            Codec::SnappyRaw,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let mut batch = build_batch(0, &[0, 1, 2], 64, codec);
            let middle = BATCH_HEADER_BYTES + (batch.len() - BATCH_HEADER_BYTES) / 2;
            for byte in &mut batch[middle..middle + 4] {
                *byte ^= 0xa5;
            }
            // Without a checksum in the codec, damaged input may still decode; it must not panic.
            let result = first_record_at_or_after(&batch, 2);
            if codec == Codec::Gzip {
                assert!(result.is_err(), "gzip has a CRC-32 trailer: {result:?}");
            }
        }
        // Records that claim more bytes than the batch holds.
        let mut batch = simple_batch(2, 8, 0);
        batch[BATCH_HEADER_BYTES] = 0x7e; // First record length varint: 63 bytes, past the end.
        let error = first_record_at_or_after(&batch, 1).unwrap_err();
        assert!(
            matches!(error, BatchError::Corrupt(Corruption::Records(_))),
            "{error:?}"
        );
    }

    #[test]
    fn decompression_is_bounded() {
        let records = vec![0u8; 64 << 10];
        for codec in [
            Codec::Gzip,
            Codec::SnappyXerial,
            Codec::SnappyRaw,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let payload = compress(&records, codec);
            let compression = match codec {
                Codec::Gzip => Compression::Gzip,
                Codec::SnappyXerial | Codec::SnappyRaw => Compression::Snappy,
                Codec::Lz4 => Compression::Lz4,
                _ => Compression::Zstd,
            };
            let inflated = decompress(compression, &payload, records.len()).unwrap();
            assert_eq!(inflated.len(), records.len(), "{codec:?}");
            let error = decompress(compression, &payload, records.len() - 1).unwrap_err();
            assert!(
                matches!(error, BatchError::Corrupt(Corruption::Records(_))),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn batches_iterator_stops_after_the_first_error() {
        let mut bytes = simple_batch(1, 0, 0);
        let first_len = bytes.len();
        bytes.extend_from_slice(&[0u8; 70]);
        let items: Vec<_> = Batches::new(&bytes).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().map(|(position, _)| *position), Ok(0));
        assert!(items[1].is_err());
        assert_eq!(Batches::starting_at(&bytes, first_len).count(), 1);
    }

    #[test]
    fn control_batches_validate_and_say_their_type() {
        for control in [ControlType::Abort, ControlType::Commit] {
            let batch = build_control_batch(42, 7, control, 0, 1_000);
            let summary = validate_batches(&batch, LIMIT).unwrap();
            assert_eq!(summary.records_count, 1);
            let header = BatchHeader::parse(&batch).unwrap();
            assert!(header.is_control());
            assert!(header.is_transactional());
            assert_eq!(header.producer_id, 42);
            assert_eq!(header.producer_epoch, 7);
            assert_eq!(header.base_sequence, NO_SEQUENCE);
            assert_eq!(control_type(&batch, &header), Ok(control));
        }
        let data = simple_batch(1, 10, 5);
        let header = BatchHeader::parse(&data).unwrap();
        assert!(control_type(&data, &header).is_err());
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(last_sequence(0, 4), 4);
        assert_eq!(last_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 1), 0);
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
    }
}
