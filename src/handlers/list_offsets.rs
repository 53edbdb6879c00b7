//! ListOffsets (key 2), v1–10: earliest (-2), latest (-1), max timestamp (-3) or the first record at or
//! after a timestamp, answered by each partition's owner.

use std::collections::BTreeMap;

use bytes::BytesMut;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use shards::mesh::{OffsetAnswer, OffsetQuery, PartitionError, ShardRequest, ShardResponse};
use shards::{ShardId, TopicPartition};

use super::{encode, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::list_offsets::ListOffsetsRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = ListOffsetsRequest::decode(reader, version)?;
    let catalog = context.shard.catalog();
    let mut by_shard: BTreeMap<ShardId, Vec<(usize, OffsetQuery)>> = BTreeMap::new();
    let mut answers: Vec<Result<OffsetAnswer, i16>> = Vec::new();
    for topic in &request.topics {
        let info = catalog.topic(&topic.name);
        for partition in &topic.partitions {
            let slot = answers.len();
            answers.push(Err(errors::UNKNOWN_TOPIC_OR_PARTITION));
            let Some(info) =
                info.filter(|info| (0..info.partitions).contains(&partition.partition_index))
            else {
                continue;
            };
            let name = TopicPartition {
                topic: info.name.clone(),
                partition: partition.partition_index,
            };
            let query = OffsetQuery {
                partition: name.clone(),
                timestamp: partition.timestamp,
                read_committed: request.isolation_level == 1,
            };
            by_shard
                .entry(context.shard.owner(&name))
                .or_default()
                .push((slot, query));
        }
    }
    let tasks: Vec<_> = by_shard
        .into_iter()
        .map(|(target, items)| {
            let shard = context.shard.clone();
            let (slots, queries): (Vec<usize>, Vec<OffsetQuery>) = items.into_iter().unzip();
            let count = queries.len();
            let task = glommio::spawn_local(async move {
                match shard.call(target, ShardRequest::ListOffsets(queries)).await {
                    Ok(ShardResponse::ListOffsets(answers)) => answers,
                    Ok(other) => unreachable!("list offsets answered with {other:?}"),
                    Err(error) => vec![Err(PartitionError::Storage(error.to_string())); count],
                }
            });
            (slots, task)
        })
        .collect();
    for (slots, task) in tasks {
        for (slot, answer) in slots.into_iter().zip(task.await) {
            answers[slot] = answer.map_err(|error| errors::partition_error_code(&error));
        }
    }
    let mut answers = answers.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(partition.partition_index);
                    match answers.next() {
                        Some(Ok(answer)) => {
                            let response = response
                                .with_offset(answer.offset)
                                .with_timestamp(answer.timestamp);
                            if version >= 4 {
                                response.with_leader_epoch(0)
                            } else {
                                response
                            }
                        }
                        Some(Err(code)) => response
                            .with_error_code(code)
                            .with_offset(-1)
                            .with_timestamp(-1),
                        None => response.with_error_code(errors::UNKNOWN_SERVER_ERROR),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic_name(&topic.name))
                .with_partitions(partitions)
        })
        .collect();
    encode(
        &ListOffsetsResponse::default().with_topics(topics),
        version,
        out,
    )
}
