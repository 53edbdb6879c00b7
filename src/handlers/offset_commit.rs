//! OffsetCommit (key 8), v2–9: commits land in the group's file on its shard before the answer. The
//! generation field is the classic generation, or from v9 the KIP-848 member epoch. Partitions of
//! unknown topics answer UNKNOWN_TOPIC_OR_PARTITION without reaching the coordinator, as in Kafka.

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use shards::mesh::{CommitOffset, CommitWork, GroupRequest, GroupResponse};

use super::groups::call;
use super::{encode, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::offset_commit::OffsetCommitRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = OffsetCommitRequest::decode(reader, version)?;
    let catalog = context.shard.catalog();
    // One code per partition in request order; the known ones are filled in by the coordinator.
    let mut codes: Vec<i16> = Vec::new();
    let mut offsets = Vec::new();
    let mut slots = Vec::new();
    for topic in &request.topics {
        let info = catalog.topic(&topic.name);
        for partition in &topic.partitions {
            let known =
                info.is_some_and(|info| (0..info.partitions).contains(&partition.partition_index));
            codes.push(errors::UNKNOWN_TOPIC_OR_PARTITION);
            if let (true, Some(info)) = (known, info) {
                slots.push(codes.len() - 1);
                offsets.push(CommitOffset {
                    topic: Arc::clone(&info.name),
                    partition: partition.partition_index,
                    offset: partition.committed_offset,
                    leader_epoch: partition.committed_leader_epoch,
                    metadata: partition.committed_metadata.clone(),
                });
            }
        }
    }
    if !offsets.is_empty() {
        let work = CommitWork {
            group_id: request.group_id.clone(),
            generation_or_member_epoch: request.generation_id_or_member_epoch,
            member_id: request.member_id.clone(),
            group_instance_id: request.group_instance_id.clone(),
            offsets,
        };
        let result = match call(context, &request.group_id, GroupRequest::OffsetCommit(work)).await
        {
            Ok(GroupResponse::OffsetCommit(result)) => result,
            Ok(other) => unreachable!("offset commit answered {other:?}"),
            Err(error) => Err(error),
        };
        match result {
            Ok(results) => {
                for (slot, result) in slots.iter().zip(results) {
                    if let Some(code) = codes.get_mut(*slot) {
                        *code = errors::group_result_code(result.err().as_ref());
                    }
                }
            }
            Err(error) => {
                let code = errors::group_error_code(&error);
                for slot in &slots {
                    if let Some(slot_code) = codes.get_mut(*slot) {
                        *slot_code = code;
                    }
                }
            }
        }
    }
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(codes.next().unwrap_or(errors::UNKNOWN_SERVER_ERROR))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic_name(&topic.name))
                .with_partitions(partitions)
        })
        .collect();
    encode(
        &OffsetCommitResponse::default().with_topics(topics),
        version,
        out,
    )
}
