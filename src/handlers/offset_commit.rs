//! OffsetCommit (key 8), v2–10: commits land in the group's file on its shard before the answer. The
//! generation field is the classic generation, or from v9 the KIP-848 member epoch. v10 names topics
//! by topic id; offsets are stored by topic name either way, so a commit by id is fetched by name and
//! the other way round. Partitions of unknown topics answer UNKNOWN_TOPIC_OR_PARTITION (by name) or
//! UNKNOWN_TOPIC_ID (by id, v10) without reaching the coordinator, as in Kafka.

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
use crate::protocol::requests::offset_commit::{OffsetCommitRequest, OffsetCommitTopic};

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
        let (info, unknown) = if version >= 10 {
            match catalog.topic_by_id(&topic.topic_id) {
                Some(info) => (Some(info), errors::UNKNOWN_TOPIC_OR_PARTITION),
                None => (None, errors::UNKNOWN_TOPIC_ID),
            }
        } else {
            (
                catalog.topic(&topic.name),
                errors::UNKNOWN_TOPIC_OR_PARTITION,
            )
        };
        for partition in &topic.partitions {
            let known =
                info.is_some_and(|info| (0..info.partitions).contains(&partition.partition_index));
            codes.push(unknown);
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
    encode(&response(&request.topics, codes), version, out)
}

/// One code per partition, in request order. The version picks how topics are named: the name up to
/// v9, the id from v10 (the name is empty there).
fn response(topics: &[OffsetCommitTopic], codes: Vec<i16>) -> OffsetCommitResponse {
    let mut codes = codes.into_iter();
    let topics = topics
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
                .with_topic_id(uuid::Uuid::from_bytes(topic.topic_id))
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::requests::offset_commit::OffsetCommitPartition;
    use crate::protocol::test_support::{from_hex, uuid_bytes};

    /// kafka-clients 4.4.0's `OffsetCommitResponseData` at v10 (`MessageUtil.toByteBufferAccessor`): topic id
    /// `uuid_bytes(7)`, partition 0 NONE and partition 5 UNKNOWN_TOPIC_ID.
    const V10: &str =
        "0000000002d9dadbdcdddedfe0e1e2e3e4e5e6e7e80300000000000000000000050064000000";

    #[test]
    fn v10_response_is_encoded_like_kafka_clients() {
        let partition = |partition_index| OffsetCommitPartition {
            partition_index,
            committed_offset: 1,
            committed_leader_epoch: -1,
            committed_metadata: None,
        };
        let topics = [OffsetCommitTopic {
            name: String::new(),
            topic_id: uuid_bytes(7),
            partitions: vec![partition(0), partition(5)],
        }];
        let mut out = BytesMut::new();
        let response = response(&topics, vec![errors::NONE, errors::UNKNOWN_TOPIC_ID]);
        assert!(encode(&response, 10, &mut out).is_ok());
        assert_eq!(out.freeze(), from_hex(V10));
    }
}
