//! Fetch (key 1), v4–18: whole batches from each partition's owner, with long polling.
//!
//! Each owning shard copies the batches into a buffer of its own pool and sends it back; the response
//! encoder copies them into the connection's write buffer. If fewer than min_bytes are available the
//! request parks: every owning shard is asked to answer as soon as one of its partitions grows past
//! what this fetch saw (an append wakes it at once), or at max_wait_ms. Nothing polls.
//!
//! Fetch sessions (KIP-227) are not kept: we answer session id 0, which tells the client to send full
//! fetch requests, as Kafka does when its session cache is full.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use shards::mesh::{
    FetchPart, FetchWork, FetchedData, PartitionError, ShardRequest, ShardResponse, WaitWork,
};
use shards::shard::Notify;
use shards::{ShardId, TopicPartition};

use super::{encode, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::limits::{FETCH_RESPONSE_BYTES_MAX, FETCH_WAIT_MS_MAX};
use crate::protocol::reader::Reader;
use crate::protocol::requests::fetch::FetchRequest;

/// Kafka's FETCH_SESSION_ID_NOT_FOUND: the client names a session we never created.
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

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
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = FetchRequest::decode(reader, version)?;
    if version >= 7 && request.session_id != 0 {
        let response = FetchResponse::default().with_error_code(FETCH_SESSION_ID_NOT_FOUND);
        return encode(&response, version, out);
    }
    let wanted = resolve(context, &request, version);
    let max_wait = Duration::from_millis(request.max_wait_ms.clamp(0, FETCH_WAIT_MS_MAX) as u64);
    let deadline = Instant::now() + max_wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = (request.max_bytes.max(1) as usize).min(FETCH_RESPONSE_BYTES_MAX);
    let reads = loop {
        let reads = read_all(context, &wanted, max_bytes).await;
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
    let response = build_response(&request, &wanted, reads, version);
    encode(&response, version, out)
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
) -> Vec<Option<Read>> {
    let mut by_shard: BTreeMap<ShardId, Vec<(usize, FetchPart)>> = BTreeMap::new();
    for (index, item) in wanted.iter().enumerate() {
        if let Ok((name, shard)) = &item.target {
            let part = FetchPart {
                partition: name.clone(),
                offset: item.offset,
                max_bytes: item.max_bytes,
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

fn build_response(
    request: &FetchRequest,
    wanted: &[Wanted],
    reads: Vec<Option<Read>>,
    version: i16,
) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = request
        .topics
        .iter()
        .map(|topic| {
            let response = FetchableTopicResponse::default();
            if version >= 13 {
                response.with_topic_id(uuid::Uuid::from_bytes(topic.topic_id))
            } else {
                response.with_topic(topic_name(&topic.topic))
            }
        })
        .collect();
    for (item, read) in wanted.iter().zip(reads) {
        let partition = PartitionData::default().with_partition_index(item.partition);
        let partition = match (&item.target, read) {
            (Err(code), _) => partition.with_error_code(*code).with_high_watermark(-1),
            (Ok(_), Some(Ok(data))) => partition
                .with_high_watermark(data.high_watermark)
                .with_last_stable_offset(data.high_watermark)
                .with_log_start_offset(if version >= 5 {
                    data.log_start_offset
                } else {
                    -1
                })
                .with_records(Some(data.records)),
            (Ok(_), Some(Err(error))) => partition
                .with_error_code(errors::partition_error_code(&error))
                .with_high_watermark(-1),
            (Ok(_), None) => partition
                .with_error_code(errors::UNKNOWN_SERVER_ERROR)
                .with_high_watermark(-1),
        };
        topics[item.topic].partitions.push(partition);
    }
    FetchResponse::default().with_responses(topics)
}
