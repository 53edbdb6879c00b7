//! Produce (key 0), served v3–13 (advertised from v0, as Kafka 4 does).
//!
//! Record batches travel as slices of the request frame (`Bytes`, no copy) to the shard that owns each
//! partition, which validates them (framing, magic, CRC-32C, size) and appends them. One message per
//! owning shard; results are merged back in request order.

use std::collections::BTreeMap;

use bytes::BytesMut;
use kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use shards::mesh::{AppendResult, PartitionError, ProducePart, ShardRequest, ShardResponse};
use shards::{ShardId, TopicPartition};

use super::{create_topics, encode, str_bytes, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::produce::ProduceRequest;

/// Where one partition of the request stands before its result is known.
enum Slot {
    Failed(i16, Option<String>),
    Sent { shard: ShardId, index: usize },
}

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = ProduceRequest::decode(reader, version)?;
    let acks = request.acks;
    let valid_acks = matches!(acks, -1..=1);
    if version < 13 && valid_acks {
        let catalog = context.shard.catalog();
        let missing: Vec<String> = request
            .topic_data
            .iter()
            .filter(|topic| {
                catalog.topic(&topic.name).is_none()
                    && shards::catalog::valid_topic_name(&topic.name)
            })
            .map(|topic| topic.name.clone())
            .collect();
        create_topics::auto_create(context, missing).await;
    }
    let catalog = context.shard.catalog();
    let mut by_shard: BTreeMap<ShardId, Vec<ProducePart>> = BTreeMap::new();
    let mut slots: Vec<Vec<Slot>> = Vec::with_capacity(request.topic_data.len());
    let mut names: Vec<(String, [u8; 16])> = Vec::with_capacity(request.topic_data.len());
    for topic in &request.topic_data {
        let info = if version >= 13 {
            catalog.topic_by_id(&topic.topic_id)
        } else {
            catalog.topic(&topic.name)
        };
        names.push((
            info.map_or_else(|| topic.name.clone(), |info| info.name.to_string()),
            topic.topic_id,
        ));
        let unknown_code = if version >= 13 {
            errors::UNKNOWN_TOPIC_ID
        } else {
            errors::UNKNOWN_TOPIC_OR_PARTITION
        };
        let topic_slots = topic
            .partition_data
            .iter()
            .map(|partition| {
                if !valid_acks {
                    return Slot::Failed(errors::INVALID_REQUIRED_ACKS, None);
                }
                let Some(info) =
                    info.filter(|info| (0..info.partitions).contains(&partition.index))
                else {
                    return Slot::Failed(unknown_code, None);
                };
                let records = match &partition.records {
                    Some(records) if !records.is_empty() => records.clone(),
                    _ => {
                        return Slot::Failed(
                            errors::CORRUPT_MESSAGE,
                            Some("no record batches".into()),
                        )
                    }
                };
                let name = TopicPartition {
                    topic: info.name.clone(),
                    partition: partition.index,
                };
                let shard = context.shard.owner(&name);
                let parts = by_shard.entry(shard).or_default();
                parts.push(ProducePart {
                    partition: name,
                    records,
                });
                Slot::Sent {
                    shard,
                    index: parts.len() - 1,
                }
            })
            .collect();
        slots.push(topic_slots);
    }
    let results = fan_out(context, by_shard).await;
    if acks == 0 {
        return Ok(Outcome::NoResponse);
    }
    let responses = slots
        .into_iter()
        .zip(&request.topic_data)
        .zip(names)
        .map(|((topic_slots, topic), (name, topic_id))| {
            let partitions = topic_slots
                .into_iter()
                .zip(&topic.partition_data)
                .map(|(slot, partition)| {
                    partition_response(partition.index, slot, &results, version)
                })
                .collect();
            let mut response = TopicProduceResponse::default().with_partition_responses(partitions);
            response = if version >= 13 {
                response.with_topic_id(uuid::Uuid::from_bytes(topic_id))
            } else {
                response.with_name(topic_name(&name))
            };
            response
        })
        .collect();
    encode(
        &ProduceResponse::default().with_responses(responses),
        version,
        out,
    )
}

type ShardResults = BTreeMap<ShardId, Vec<Result<AppendResult, PartitionError>>>;

/// Sends each shard its parts, all at once, and collects the answers.
async fn fan_out(
    context: &BrokerContext,
    by_shard: BTreeMap<ShardId, Vec<ProducePart>>,
) -> ShardResults {
    let tasks: Vec<_> = by_shard
        .into_iter()
        .map(|(target, parts)| {
            let shard = context.shard.clone();
            let count = parts.len();
            let task = glommio::spawn_local(async move {
                match shard.call(target, ShardRequest::Produce(parts)).await {
                    Ok(ShardResponse::Produce(results)) => results,
                    Ok(other) => unreachable!("produce answered with {other:?}"),
                    Err(error) => vec![Err(PartitionError::Storage(error.to_string())); count],
                }
            });
            (target, task)
        })
        .collect();
    let mut results = BTreeMap::new();
    for (target, task) in tasks {
        results.insert(target, task.await);
    }
    results
}

fn partition_response(
    index: i32,
    slot: Slot,
    results: &ShardResults,
    version: i16,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index);
    let outcome = match slot {
        Slot::Failed(code, message) => Err((code, message)),
        Slot::Sent { shard, index } => match results
            .get(&shard)
            .and_then(|results| results.get(index))
        {
            Some(Ok(append)) => Ok(*append),
            Some(Err(error)) => Err((errors::partition_error_code(error), Some(error.to_string()))),
            None => Err((errors::UNKNOWN_SERVER_ERROR, None)),
        },
    };
    match outcome {
        Ok(append) => response
            .with_base_offset(append.base_offset)
            .with_log_append_time_ms(append.log_append_time_ms)
            .with_log_start_offset(if version >= 5 {
                append.log_start_offset
            } else {
                -1
            }),
        Err((code, message)) => {
            let response = response.with_error_code(code).with_base_offset(-1);
            if version >= 8 {
                response.with_error_message(message.as_deref().map(str_bytes))
            } else {
                response
            }
        }
    }
}
