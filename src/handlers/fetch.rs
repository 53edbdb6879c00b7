//! Fetch (key 1), v4–18: whole batches from each partition's owner, with long polling.
//!
//! Each owning shard copies the batches into a buffer of its own pool and sends it back. The response is
//! encoded here by hand ([`FetchResponseWriter`]): its fields go into the connection's write buffer and
//! each record set of at least `RECORDS_SPLICED_BYTES_MIN` stays in the pool buffer, handed to the
//! connection as a [`Splices`] entry that it sends in the same vectored write, so the records are not
//! copied again in user space. If fewer than min_bytes are available the
//! request parks: every owning shard is asked to answer as soon as one of its partitions grows past
//! what this fetch saw (an append wakes it at once), or at max_wait_ms. Nothing polls.
//!
//! `read_committed` (isolation level 1) stops each partition at its last stable offset and lists the
//! aborted transactions the returned range overlaps, so the client can drop their records.
//!
//! Fetch sessions (KIP-227) are not kept: we answer session id 0, which tells the client to send full
//! fetch requests, as Kafka does when its session cache is full.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use shards::mesh::{
    FetchPart, FetchWork, FetchedData, PartitionError, ShardRequest, ShardResponse, WaitWork,
};
use shards::shard::Notify;
use shards::{ShardId, TopicPartition};

use super::{BrokerContext, HandlerError, Outcome, Splices};
use crate::errors;
use crate::limits::{FETCH_RESPONSE_BYTES_MAX, FETCH_WAIT_MS_MAX};
use crate::net::affinity::Affinity;
use crate::protocol::reader::Reader;
use crate::protocol::requests::fetch::FetchRequest;

/// Kafka's FETCH_SESSION_ID_NOT_FOUND: the client names a session we never created.
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

/// Record sets at least this large are spliced into the response from the pool buffer that holds
/// them; smaller ones are copied into the write buffer. A copy of 1 KiB costs about what one more
/// iovec does in the kernel, and keeping small sets inline keeps a fetch of many nearly idle
/// partitions to one system call.
pub const RECORDS_SPLICED_BYTES_MIN: usize = 1024;

/// One partition of the request, resolved against the catalog.
struct Wanted {
    topic: usize,
    partition: i32,
    target: Result<(TopicPartition, ShardId), i16>,
    offset: i64,
    max_bytes: usize,
}

type Read = Result<FetchedData, PartitionError>;

pub async fn handle(
    context: &BrokerContext,
    affinity: &Affinity,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
    splices: &mut Splices,
) -> Result<Outcome, HandlerError> {
    let request = FetchRequest::decode(reader, version)?;
    if version >= 7 && request.session_id != 0 {
        let writer = FetchResponseWriter::new(out, splices, version, FETCH_SESSION_ID_NOT_FOUND, 0);
        writer.finish();
        return Ok(Outcome::Respond);
    }
    let wanted = resolve(context, &request, version);
    affinity.note(
        wanted
            .iter()
            .filter_map(|item| Some(item.target.as_ref().ok()?.1)),
    );
    // Isolation level 1 is READ_COMMITTED: records stop at the last stable offset.
    let read_committed = request.isolation_level == 1;
    let max_wait = Duration::from_millis(request.max_wait_ms.clamp(0, FETCH_WAIT_MS_MAX) as u64);
    let deadline = Instant::now() + max_wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = (request.max_bytes.max(1) as usize).min(FETCH_RESPONSE_BYTES_MAX);
    let reads = loop {
        let reads = read_all(context, &wanted, max_bytes, read_committed).await;
        // A fetch naming no partitions (a consumer closing its fetch session) has nothing to wait for.
        if wanted.is_empty() {
            break reads;
        }
        let total: usize = reads
            .iter()
            .map(|read| {
                read.as_ref()
                    .map_or(0, |read| read.as_ref().map_or(0, |data| data.records.len()))
            })
            .sum();
        let any_error = reads.iter().any(|read| !matches!(read, Some(Ok(_))));
        if total >= min_bytes || any_error || Instant::now() >= deadline {
            break reads;
        }
        wait_for_growth(context, &wanted, &reads, deadline).await;
        if context.shard.is_stopped() {
            break reads;
        }
    };
    encode_response(&request, &wanted, &reads, version, out, splices);
    Ok(Outcome::Respond)
}

fn resolve(context: &BrokerContext, request: &FetchRequest, version: i16) -> Vec<Wanted> {
    let catalog = context.shard.catalog();
    let mut wanted = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let info = if version >= 13 {
            catalog.topic_by_id(&topic.topic_id)
        } else {
            catalog.topic(&topic.topic)
        };
        let unknown = if version >= 13 {
            errors::UNKNOWN_TOPIC_ID
        } else {
            errors::UNKNOWN_TOPIC_OR_PARTITION
        };
        for partition in &topic.partitions {
            let target = match info {
                Some(info) if (0..info.partitions).contains(&partition.partition) => {
                    let name = TopicPartition {
                        topic: info.name.clone(),
                        partition: partition.partition,
                    };
                    let shard = context.shard.owner(&name);
                    Ok((name, shard))
                }
                Some(_) => Err(errors::UNKNOWN_TOPIC_OR_PARTITION),
                None => Err(unknown),
            };
            wanted.push(Wanted {
                topic: topic_index,
                partition: partition.partition,
                target,
                offset: partition.fetch_offset,
                max_bytes: partition.partition_max_bytes.max(0) as usize,
            });
        }
    }
    wanted
}

/// Reads every resolvable partition from its owner, one message per owning shard, all at once.
/// `None` marks a partition that failed to resolve.
async fn read_all(
    context: &BrokerContext,
    wanted: &[Wanted],
    max_bytes: usize,
    read_committed: bool,
) -> Vec<Option<Read>> {
    let mut by_shard: BTreeMap<ShardId, Vec<(usize, FetchPart)>> = BTreeMap::new();
    for (index, item) in wanted.iter().enumerate() {
        if let Ok((name, shard)) = &item.target {
            let part = FetchPart {
                partition: name.clone(),
                offset: item.offset,
                max_bytes: item.max_bytes,
                read_committed,
            };
            by_shard.entry(*shard).or_default().push((index, part));
        }
    }
    let share = (max_bytes / by_shard.len().max(1)).max(1);
    let tasks: Vec<_> = by_shard
        .into_iter()
        .map(|(target, items)| {
            let shard = context.shard.clone();
            let (indexes, parts): (Vec<usize>, Vec<FetchPart>) = items.into_iter().unzip();
            let count = parts.len();
            let task = glommio::spawn_local(async move {
                match shard
                    .call(
                        target,
                        ShardRequest::Fetch(FetchWork {
                            parts,
                            max_bytes: share,
                        }),
                    )
                    .await
                {
                    Ok(ShardResponse::Fetch(reads)) => reads,
                    Ok(other) => unreachable!("fetch answered with {other:?}"),
                    Err(error) => (0..count)
                        .map(|_| Err(PartitionError::Storage(error.to_string())))
                        .collect(),
                }
            });
            (indexes, task)
        })
        .collect();
    let mut reads: Vec<Option<Read>> = wanted.iter().map(|_| None).collect();
    for (indexes, task) in tasks {
        for (index, read) in indexes.into_iter().zip(task.await) {
            reads[index] = Some(read);
        }
    }
    reads
}

/// Parks until any partition grows past the end this fetch saw, or the deadline.
async fn wait_for_growth(
    context: &BrokerContext,
    wanted: &[Wanted],
    reads: &[Option<Read>],
    deadline: Instant,
) {
    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
        return;
    };
    let mut by_shard: BTreeMap<ShardId, Vec<(TopicPartition, i64)>> = BTreeMap::new();
    for (item, read) in wanted.iter().zip(reads) {
        if let (Ok((name, shard)), Some(Ok(data))) = (&item.target, read) {
            by_shard
                .entry(*shard)
                .or_default()
                .push((name.clone(), data.high_watermark));
        }
    }
    let woken = Rc::new(Notify::default());
    let generation = woken.generation();
    for (target, parts) in by_shard {
        let shard = context.shard.clone();
        let woken = woken.clone();
        let work = WaitWork {
            parts,
            timeout_ms: left.as_millis() as u64,
        };
        glommio::spawn_local(async move {
            let _ = shard.call(target, ShardRequest::WaitForData(work)).await;
            woken.notify_all();
        })
        .detach();
    }
    futures_lite::future::or(woken.changed_since(generation), glommio::timer::sleep(left)).await;
}

/// Writes the response: every topic of the request in its order, each with its partitions in order
/// (`wanted` lists them topic by topic, as `resolve` built it).
fn encode_response(
    request: &FetchRequest,
    wanted: &[Wanted],
    reads: &[Option<Read>],
    version: i16,
    out: &mut BytesMut,
    splices: &mut Splices,
) {
    assert!(wanted.len() == reads.len());
    let mut writer = FetchResponseWriter::new(out, splices, version, 0, request.topics.len());
    let mut answers = wanted.iter().zip(reads);
    for (topic_index, topic) in request.topics.iter().enumerate() {
        writer.topic(&topic.topic, &topic.topic_id, topic.partitions.len());
        for (item, read) in answers.by_ref().take(topic.partitions.len()) {
            assert!(item.topic == topic_index);
            let answer = match (&item.target, read) {
                (Err(code), _) => Err(*code),
                (Ok(_), Some(Ok(data))) => Ok(data),
                (Ok(_), Some(Err(error))) => Err(errors::partition_error_code(error)),
                (Ok(_), None) => Err(errors::UNKNOWN_SERVER_ERROR),
            };
            writer.partition(item.partition, answer);
        }
        writer.end_topic();
    }
    assert!(answers.next().is_none());
    writer.finish();
}

/// Encodes a Fetch response body (v4–18) field by field, as Kafka's `FetchResponse.json` orders them,
/// into `out`, with record sets spliced from their pool buffers (see [`RECORDS_SPLICED_BYTES_MIN`]).
///
/// What it writes beyond the partitions: throttle_time_ms 0; from v7 the top-level error code and
/// session id 0 (we keep no fetch sessions); from v11 preferred_read_replica -1 (this broker is the
/// only replica). Tagged fields (diverging epoch, current leader, snapshot id, node endpoints) are
/// never written: they hold their defaults on a single node, and Kafka omits defaults (librdkafka
/// < 2.1 misparses non-empty tagged fields). The unit tests check every version against the
/// `kafka-protocol` crate's encoder.
///
/// Calls go: `new` → (`topic` → `partition`… → `end_topic`)… → `finish`, with exactly the counts
/// announced to `new` and `topic`.
pub struct FetchResponseWriter<'a> {
    out: &'a mut BytesMut,
    splices: &'a mut Splices,
    version: i16,
    flexible: bool,
}

impl<'a> FetchResponseWriter<'a> {
    pub fn new(
        out: &'a mut BytesMut,
        splices: &'a mut Splices,
        version: i16,
        error_code: i16,
        topic_count: usize,
    ) -> Self {
        assert!((FetchRequest::VERSION_MIN..=FetchRequest::VERSION_MAX).contains(&version));
        let flexible = version >= 12;
        out.put_i32(0); // throttle_time_ms
        if version >= 7 {
            out.put_i16(error_code);
            out.put_i32(0); // session_id
        } else {
            assert!(error_code == 0);
        }
        let mut writer = FetchResponseWriter {
            out,
            splices,
            version,
            flexible,
        };
        writer.array_length(Some(topic_count));
        writer
    }

    /// Starts a topic: by name up to v12, by id from v13.
    pub fn topic(&mut self, name: &str, id: &[u8; 16], partition_count: usize) {
        if self.version <= 12 {
            self.string(name);
        } else {
            self.out.put_slice(id);
        }
        self.array_length(Some(partition_count));
    }

    /// One partition: its data, or an error code (then offsets are -1 and the records empty).
    pub fn partition(&mut self, index: i32, answer: Result<&FetchedData, i16>) {
        self.out.put_i32(index);
        match answer {
            Ok(data) => {
                self.out.put_i16(0);
                self.out.put_i64(data.high_watermark);
                self.out.put_i64(data.last_stable_offset);
                if self.version >= 5 {
                    self.out.put_i64(data.log_start_offset);
                }
                self.aborted_transactions(data.aborted.as_deref());
                if self.version >= 11 {
                    self.out.put_i32(-1); // preferred_read_replica
                }
                self.records(&data.records);
            }
            Err(error_code) => {
                self.out.put_i16(error_code);
                self.out.put_i64(-1); // high_watermark
                self.out.put_i64(-1); // last_stable_offset
                if self.version >= 5 {
                    self.out.put_i64(-1); // log_start_offset
                }
                self.aborted_transactions(Some(&[]));
                if self.version >= 11 {
                    self.out.put_i32(-1); // preferred_read_replica
                }
                self.records(&bytes::Bytes::new());
            }
        }
        self.tagged_fields();
    }

    pub fn end_topic(&mut self) {
        self.tagged_fields();
    }

    pub fn finish(mut self) {
        self.tagged_fields();
    }

    /// A nullable array: `None` is null (for read_uncommitted, as Kafka answers).
    fn aborted_transactions(&mut self, aborted: Option<&[(i64, i64)]>) {
        self.array_length(aborted.map(<[_]>::len));
        for (producer_id, first_offset) in aborted.unwrap_or_default() {
            self.out.put_i64(*producer_id);
            self.out.put_i64(*first_offset);
            self.tagged_fields();
        }
    }

    fn records(&mut self, records: &bytes::Bytes) {
        match self.flexible {
            true => put_unsigned_varint(self.out, length_u32(records.len()) + 1),
            false => self.out.put_i32(length_i32(records.len())),
        }
        match records.len() >= RECORDS_SPLICED_BYTES_MIN {
            true => self.splices.push(self.out, records.clone()),
            false => self.out.put_slice(records),
        }
    }

    fn string(&mut self, text: &str) {
        match self.flexible {
            true => put_unsigned_varint(self.out, length_u32(text.len()) + 1),
            false => self
                .out
                .put_i16(i16::try_from(text.len()).expect("a topic name fits an int16")),
        }
        self.out.put_slice(text.as_bytes());
    }

    /// An array length; `None` is a null array.
    fn array_length(&mut self, count: Option<usize>) {
        match (self.flexible, count) {
            (true, Some(count)) => put_unsigned_varint(self.out, length_u32(count) + 1),
            (true, None) => put_unsigned_varint(self.out, 0),
            (false, Some(count)) => self.out.put_i32(length_i32(count)),
            (false, None) => self.out.put_i32(-1),
        }
    }

    /// No tagged fields (flexible versions only).
    fn tagged_fields(&mut self) {
        if self.flexible {
            self.out.put_u8(0);
        }
    }
}

/// Lengths in a response are bounded by `FETCH_RESPONSE_BYTES_MAX` and by request counts the decoder
/// bounded, far below `i32::MAX`.
fn length_i32(length: usize) -> i32 {
    i32::try_from(length).expect("a response length fits an int32")
}

fn length_u32(length: usize) -> u32 {
    assert!(length < i32::MAX as usize);
    length as u32
}

fn put_unsigned_varint(out: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::protocol::requests::fetch::{FetchPartition, FetchTopic};
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchResponse, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{ProducerId, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn data(records: Bytes, aborted: Option<Vec<(i64, i64)>>) -> FetchedData {
        FetchedData {
            high_watermark: 1_000_000_007,
            last_stable_offset: 999_999_000,
            log_start_offset: 42,
            records,
            aborted,
        }
    }

    fn pattern(length: usize) -> Bytes {
        (0..length).map(|index| (index * 7 % 251) as u8).collect()
    }

    fn topic(name: &str, id: u8, partitions: &[i32]) -> FetchTopic {
        FetchTopic {
            topic: name.to_string(),
            topic_id: [id; 16],
            partitions: partitions
                .iter()
                .map(|partition| FetchPartition {
                    partition: *partition,
                    current_leader_epoch: -1,
                    fetch_offset: 0,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                })
                .collect(),
        }
    }

    /// Two topics covering every shape a partition answer takes: records spliced (above the
    /// threshold), exactly at it, copied (below it), empty; aborted transactions null, empty and
    /// listed; errors from resolution, from the shard and a missing answer.
    fn case() -> (FetchRequest, Vec<Wanted>, Vec<Option<Read>>) {
        let request = FetchRequest {
            replica_id: -1,
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 50 << 20,
            isolation_level: 1,
            session_id: 0,
            session_epoch: -1,
            topics: vec![
                topic("orders", 1, &[0, 1, 2, 3]),
                topic("a-much-longer-topic.name_with-all.chars", 2, &[7, 5, 9, 11]),
            ],
            forgotten_topics_data: Vec::new(),
            rack_id: String::new(),
        };
        let found = |name: &str, partition| {
            Ok((
                TopicPartition {
                    topic: name.into(),
                    partition,
                },
                ShardId(0),
            ))
        };
        let mut wanted = Vec::new();
        let mut reads = Vec::new();
        let mut add = |topic, partition, target, read| {
            wanted.push(Wanted {
                topic,
                partition,
                target,
                offset: 0,
                max_bytes: 1 << 20,
            });
            reads.push(read);
        };
        add(
            0,
            0,
            found("orders", 0),
            Some(Ok(data(pattern(5000), None))),
        );
        let listed = Some(vec![(7, 10), (8, 20), (i64::MAX, -5)]);
        add(
            0,
            1,
            found("orders", 1),
            Some(Ok(data(pattern(100), listed))),
        );
        add(
            0,
            2,
            found("orders", 2),
            Some(Ok(data(Bytes::new(), Some(Vec::new())))),
        );
        add(0, 3, Err(errors::UNKNOWN_TOPIC_OR_PARTITION), None);
        let name = "a-much-longer-topic.name_with-all.chars";
        let size = RECORDS_SPLICED_BYTES_MIN;
        add(1, 7, found(name, 7), Some(Ok(data(pattern(size), None))));
        let out_of_range = PartitionError::OffsetOutOfRange;
        add(1, 5, found(name, 5), Some(Err(out_of_range)));
        add(1, 9, found(name, 9), None);
        add(
            1,
            11,
            found(name, 11),
            Some(Ok(data(pattern(size - 1), Some(Vec::new())))),
        );
        (request, wanted, reads)
    }

    /// What the handler produced before it encoded by hand: the same answers as kafka-protocol structs.
    fn oracle(
        request: &FetchRequest,
        wanted: &[Wanted],
        reads: &[Option<Read>],
        version: i16,
    ) -> Vec<u8> {
        let mut topics: Vec<FetchableTopicResponse> = request
            .topics
            .iter()
            .map(|topic| {
                let response = FetchableTopicResponse::default();
                match version >= 13 {
                    true => response.with_topic_id(uuid::Uuid::from_bytes(topic.topic_id)),
                    false => {
                        response.with_topic(TopicName(StrBytes::from_string(topic.topic.clone())))
                    }
                }
            })
            .collect();
        for (item, read) in wanted.iter().zip(reads) {
            let partition = PartitionData::default().with_partition_index(item.partition);
            let failed = |code| {
                partition
                    .clone()
                    .with_error_code(code)
                    .with_high_watermark(-1)
            };
            let partition = match (&item.target, read) {
                (Err(code), _) => failed(*code),
                (Ok(_), Some(Ok(data))) => partition
                    .clone()
                    .with_high_watermark(data.high_watermark)
                    .with_last_stable_offset(data.last_stable_offset)
                    .with_aborted_transactions(data.aborted.clone().map(|aborted| {
                        aborted
                            .into_iter()
                            .map(|(producer_id, first_offset)| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(producer_id))
                                    .with_first_offset(first_offset)
                            })
                            .collect()
                    }))
                    .with_log_start_offset(match version >= 5 {
                        true => data.log_start_offset,
                        false => -1,
                    })
                    .with_records(Some(data.records.clone())),
                (Ok(_), Some(Err(error))) => failed(errors::partition_error_code(error)),
                (Ok(_), None) => failed(errors::UNKNOWN_SERVER_ERROR),
            };
            topics[item.topic].partitions.push(partition);
        }
        let mut out = BytesMut::new();
        FetchResponse::default()
            .with_responses(topics)
            .encode(&mut out, version)
            .unwrap();
        out.to_vec()
    }

    /// The bytes the connection sends: `out` with the splices put back where they belong.
    fn flatten(out: &BytesMut, splices: &Splices) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut from = 0;
        for (position, bytes) in splices.parts() {
            wire.extend_from_slice(&out[from..*position]);
            wire.extend_from_slice(bytes);
            from = *position;
        }
        wire.extend_from_slice(&out[from..]);
        assert_eq!(wire.len(), out.len() + splices.bytes());
        wire
    }

    #[test]
    fn hand_encoding_matches_kafka_protocol_in_every_served_version() {
        let (request, wanted, reads) = case();
        for version in FetchRequest::VERSION_MIN..=FetchRequest::VERSION_MAX {
            let mut out = BytesMut::new();
            let mut splices = Splices::default();
            encode_response(&request, &wanted, &reads, version, &mut out, &mut splices);
            let wire = flatten(&out, &splices);
            assert_eq!(
                wire,
                oracle(&request, &wanted, &reads, version),
                "Fetch v{version}"
            );
            // The 5000-byte set and the one exactly at the threshold are spliced; the rest copied.
            assert_eq!(splices.parts().len(), 2, "Fetch v{version}");
            assert_eq!(splices.bytes(), 5000 + RECORDS_SPLICED_BYTES_MIN);
        }
    }

    #[test]
    fn spliced_records_are_the_fetched_buffer_not_a_copy() {
        let (request, wanted, reads) = case();
        let mut out = BytesMut::new();
        let mut splices = Splices::default();
        encode_response(&request, &wanted, &reads, 12, &mut out, &mut splices);
        let Some(Ok(first)) = &reads[0] else {
            panic!("the case starts with data");
        };
        assert_eq!(splices.parts()[0].1.as_ptr(), first.records.as_ptr());
        // Only the two small sets (100 and 1023 bytes) were copied, beside the fields.
        let fields_bytes = out.len() - 100 - (RECORDS_SPLICED_BYTES_MIN - 1);
        assert!(fields_bytes < 500, "{fields_bytes}");
    }

    #[test]
    fn session_error_matches_kafka_protocol() {
        for version in 7..=FetchRequest::VERSION_MAX {
            let mut out = BytesMut::new();
            let mut splices = Splices::default();
            FetchResponseWriter::new(
                &mut out,
                &mut splices,
                version,
                FETCH_SESSION_ID_NOT_FOUND,
                0,
            )
            .finish();
            let mut expected = BytesMut::new();
            FetchResponse::default()
                .with_error_code(FETCH_SESSION_ID_NOT_FOUND)
                .encode(&mut expected, version)
                .unwrap();
            assert_eq!(out, expected, "Fetch v{version}");
            assert!(splices.is_empty());
        }
    }

    #[test]
    fn varints_round_trip_through_the_request_reader() {
        let mut out = BytesMut::new();
        put_unsigned_varint(&mut out, 300);
        assert_eq!(&out[..], &[0xac, 0x02]);
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            1 << 21,
            (1 << 28) + 5,
            u32::MAX,
        ] {
            let mut out = BytesMut::new();
            put_unsigned_varint(&mut out, value);
            let mut reader = Reader::new(out.freeze());
            assert_eq!(reader.unsigned_varint().unwrap(), value);
            assert_eq!(reader.remaining(), 0);
        }
    }
}
