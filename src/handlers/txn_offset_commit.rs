//! TxnOffsetCommit (key 28), v0–5: offsets a transactional producer commits for a consumer group
//! (`sendOffsetsToTransaction`). The group's coordinator checks the member's generation or epoch
//! (v3+, KIP-447, so a fenced consumer cannot commit); the transaction coordinator then keeps the
//! offsets with the open transaction, and they reach the group only if it commits.

use bytes::BytesMut;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use shards::mesh::{
    CommitOffset, CommitWork, GroupRequest, GroupResponse, TxnRequest, TxnResponse,
};

use super::{encode, groups, topic_name, txn_coordinator, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::txn_offset_commit::TxnOffsetCommitRequest;

/// The first version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 3;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = TxnOffsetCommitRequest::decode(reader, version)?;
    let catalog = context.shard.catalog();
    // One code per partition, in request order; NONE until something fails.
    let mut codes = Vec::new();
    let mut offsets = Vec::new();
    let mut slots = Vec::new();
    for topic in &request.topics {
        let info = catalog.topic(&topic.name);
        for partition in &topic.partitions {
            let known =
                info.filter(|info| (0..info.partitions).contains(&partition.partition_index));
            let Some(info) = known else {
                codes.push(errors::UNKNOWN_TOPIC_OR_PARTITION);
                continue;
            };
            slots.push(codes.len());
            codes.push(errors::NONE);
            offsets.push(CommitOffset {
                topic: info.name.clone(),
                partition: partition.partition_index,
                offset: partition.committed_offset,
                leader_epoch: partition.committed_leader_epoch,
                metadata: partition.committed_metadata.clone(),
            });
        }
    }
    if !offsets.is_empty() {
        let results = commit(context, &request, offsets, version).await;
        for (slot, code) in slots.into_iter().zip(results) {
            codes[slot] = code;
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
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(codes.next().unwrap_or(errors::UNKNOWN_SERVER_ERROR))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic_name(&topic.name))
                .with_partitions(partitions)
        })
        .collect();
    encode(
        &TxnOffsetCommitResponse::default().with_topics(topics),
        version,
        out,
    )
}

/// Checks the member with the group (v3+), then hands the offsets to the transaction coordinator.
/// One code per offset.
async fn commit(
    context: &BrokerContext,
    request: &TxnOffsetCommitRequest,
    offsets: Vec<CommitOffset>,
    version: i16,
) -> Vec<i16> {
    let count = offsets.len();
    if request.generation_id >= 0 || !request.member_id.is_empty() {
        let work = CommitWork {
            group_id: request.group_id.clone(),
            generation_or_member_epoch: request.generation_id,
            member_id: request.member_id.clone(),
            group_instance_id: request.group_instance_id.clone(),
            offsets: offsets.to_vec(),
        };
        let checked = groups::call(
            context,
            &request.group_id,
            GroupRequest::ValidateTxnOffsets(work),
        )
        .await;
        let checked = match checked {
            Ok(GroupResponse::OffsetCommit(result)) => result,
            Ok(other) => unreachable!("ValidateTxnOffsets answered with {other:?}"),
            Err(error) => Err(error),
        };
        match checked {
            Ok(results) if results.iter().all(Result::is_ok) => {}
            Ok(results) => {
                return results
                    .iter()
                    .map(|result| match result {
                        Ok(()) => errors::OPERATION_NOT_ATTEMPTED,
                        Err(error) => errors::group_error_code(error),
                    })
                    .collect()
            }
            Err(error) => return vec![errors::group_error_code(&error); count],
        }
    }
    let work = TxnRequest::OffsetCommit {
        transactional_id: request.transactional_id.clone(),
        producer_id: request.producer_id,
        producer_epoch: request.producer_epoch,
        group_id: request.group_id.clone(),
        offsets,
    };
    let results = match txn_coordinator::call(context, &request.transactional_id, work).await {
        Ok(TxnResponse::OffsetCommit(results)) => results,
        Ok(other) => unreachable!("OffsetCommit answered with {other:?}"),
        Err(error) => vec![Err(error); count],
    };
    results
        .iter()
        .map(|result| match result {
            Ok(()) => errors::NONE,
            Err(error) => errors::txn_error_code(error, version, PRODUCER_FENCED_SINCE),
        })
        .collect()
}
