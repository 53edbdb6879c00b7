//! DescribeProducers (key 61), v0: the producers each partition remembers (id, epoch, last sequence,
//! last timestamp, open transaction start), asked of each partition's owning shard, so operators can
//! find the producer holding back a partition's last stable offset.

use std::collections::BTreeMap;

use bytes::BytesMut;
use kafka_protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::ProducerId;
use shards::mesh::{PartitionError, ProducerInfo, ShardRequest, ShardResponse};
use shards::{ShardId, TopicPartition};

use super::{encode, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::describe_producers::DescribeProducersRequest;

type Answer = Result<Vec<ProducerInfo>, PartitionError>;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = DescribeProducersRequest::decode(reader, version)?;
    let catalog = context.shard.catalog();
    let mut answers: Vec<Answer> = Vec::new();
    let mut by_shard: BTreeMap<ShardId, Vec<(usize, TopicPartition)>> = BTreeMap::new();
    for topic in &request.topics {
        let info = catalog.topic(&topic.name);
        for &index in &topic.partition_indexes {
            let slot = answers.len();
            answers.push(Err(PartitionError::UnknownTopicOrPartition));
            let Some(info) = info.filter(|info| (0..info.partitions).contains(&index)) else {
                continue;
            };
            let name = TopicPartition {
                topic: info.name.clone(),
                partition: index,
            };
            by_shard
                .entry(context.shard.owner(&name))
                .or_default()
                .push((slot, name));
        }
    }
    for (target, items) in by_shard {
        let (slots, names): (Vec<usize>, Vec<TopicPartition>) = items.into_iter().unzip();
        let count = names.len();
        let results = match context
            .shard
            .call(target, ShardRequest::DescribeProducers(names))
            .await
        {
            Ok(ShardResponse::Producers(results)) => results,
            Ok(other) => unreachable!("DescribeProducers answered with {other:?}"),
            Err(error) => vec![Err(PartitionError::Storage(error.to_string())); count],
        };
        for (slot, result) in slots.into_iter().zip(results) {
            answers[slot] = result;
        }
    }
    let mut answers = answers.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| partition_response(index, answers.next()))
                .collect();
            TopicResponse::default()
                .with_name(topic_name(&topic.name))
                .with_partitions(partitions)
        })
        .collect();
    encode(
        &DescribeProducersResponse::default().with_topics(topics),
        version,
        out,
    )
}

fn partition_response(index: i32, answer: Option<Answer>) -> PartitionResponse {
    let response = PartitionResponse::default().with_partition_index(index);
    match answer {
        Some(Ok(producers)) => response.with_active_producers(
            producers
                .into_iter()
                .map(|producer| {
                    ProducerState::default()
                        .with_producer_id(ProducerId(producer.producer_id))
                        .with_producer_epoch(i32::from(producer.producer_epoch))
                        .with_last_sequence(producer.last_sequence)
                        .with_last_timestamp(producer.last_timestamp)
                        .with_coordinator_epoch(0)
                        .with_current_txn_start_offset(producer.current_txn_start_offset)
                })
                .collect(),
        ),
        Some(Err(error)) => response.with_error_code(errors::partition_error_code(&error)),
        None => response.with_error_code(errors::UNKNOWN_SERVER_ERROR),
    }
}
