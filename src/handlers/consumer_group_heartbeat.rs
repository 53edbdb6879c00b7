//! ConsumerGroupHeartbeat (key 68), v0–1: the KIP-848 consumer protocol. Joins, leaves, and reports
//! owned partitions; the group's shard answers with the member epoch and, when it changed, the
//! member's assignment (computed server-side by the `uniform` or `range` assignor).

use bytes::BytesMut;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use shards::mesh::{ConsumerHeartbeatWork, GroupRequest, GroupResponse};

use super::groups::call;
use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome, Peer};
use crate::errors;
use crate::protocol::header::RequestHeader;
use crate::protocol::reader::Reader;
use crate::protocol::requests::consumer_group_heartbeat::ConsumerGroupHeartbeatRequest;

pub async fn handle(
    context: &BrokerContext,
    peer: &Peer<'_>,
    header: &RequestHeader,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = ConsumerGroupHeartbeatRequest::decode(reader, version)?;
    let work = ConsumerHeartbeatWork {
        group_id: request.group_id.clone(),
        member_id: request.member_id,
        member_epoch: request.member_epoch,
        instance_id: request.instance_id,
        rack_id: request.rack_id,
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request.subscribed_topic_names,
        subscribed_topic_regex: request.subscribed_topic_regex,
        server_assignor: request.server_assignor,
        owned: request.topic_partitions,
        client_id: header.client_id.clone().unwrap_or_default(),
        client_host: peer.client_host(),
    };
    let result = match call(
        context,
        &request.group_id,
        GroupRequest::ConsumerHeartbeat(work),
    )
    .await
    {
        Ok(GroupResponse::ConsumerHeartbeat(result)) => result,
        Ok(other) => unreachable!("consumer heartbeat answered {other:?}"),
        Err(error) => Err(error),
    };
    let response = match result {
        Ok(answer) => {
            let assignment = answer.assignment.map(|partitions| {
                Assignment::default().with_topic_partitions(
                    partitions
                        .into_iter()
                        .map(|(topic_id, partitions)| {
                            TopicPartitions::default()
                                .with_topic_id(uuid::Uuid::from_bytes(topic_id))
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
            });
            ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(str_bytes(&answer.member_id)))
                .with_member_epoch(answer.member_epoch)
                .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
                .with_assignment(assignment)
        }
        Err(error) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(errors::group_error_code(&error))
            .with_error_message(Some(str_bytes(&error.to_string()))),
    };
    encode(&response, version, out)
}
