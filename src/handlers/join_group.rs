//! JoinGroup (key 11), v0–9: the classic protocol's join, answered by the group's shard once the
//! rebalance's join phase completes (the request parks there, not on this connection's reactor).
//! v4+ makes a new member rejoin with the id it is given (MEMBER_ID_REQUIRED).

use bytes::BytesMut;
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use shards::mesh::{GroupRequest, GroupResponse, JoinAnswer, JoinWork};

use super::groups::{call, subscription_topics};
use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome, Peer};
use crate::errors;
use crate::protocol::header::RequestHeader;
use crate::protocol::reader::Reader;
use crate::protocol::requests::join_group::JoinGroupRequest;

pub async fn handle(
    context: &BrokerContext,
    peer: &Peer<'_>,
    header: &RequestHeader,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = JoinGroupRequest::decode(reader, version)?;
    let subscribed_topics = if request.protocol_type == "consumer" {
        request
            .protocols
            .first()
            .and_then(|(_, metadata)| subscription_topics(metadata))
    } else {
        None
    };
    let work = JoinWork {
        group_id: request.group_id.clone(),
        member_id: request.member_id.clone(),
        group_instance_id: request.group_instance_id,
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        protocol_type: request.protocol_type,
        protocols: request.protocols,
        member_id_required: version >= 4,
        reason: request.reason,
        client_id: header.client_id.clone().unwrap_or_default(),
        client_host: peer.client_host(),
        subscribed_topics,
    };
    let answer = match call(context, &request.group_id, GroupRequest::Join(work)).await {
        Ok(GroupResponse::Join(answer)) => answer,
        Ok(other) => unreachable!("join answered {other:?}"),
        Err(error) => JoinAnswer {
            error: Some(error),
            generation_id: -1,
            member_id: request.member_id,
            ..JoinAnswer::default()
        },
    };
    let members = answer
        .members
        .iter()
        .map(|member| {
            let response = JoinGroupResponseMember::default()
                .with_member_id(str_bytes(&member.member_id))
                .with_metadata(member.metadata.clone());
            if version >= 5 {
                response.with_group_instance_id(member.group_instance_id.as_deref().map(str_bytes))
            } else {
                response
            }
        })
        .collect();
    // Before v7 the protocol name is not nullable: an empty string stands for "none".
    let protocol_name = match (&answer.protocol_name, version >= 7) {
        (Some(name), _) => Some(str_bytes(name)),
        (None, true) => None,
        (None, false) => Some(str_bytes("")),
    };
    let mut response = JoinGroupResponse::default()
        .with_error_code(errors::group_result_code(answer.error.as_ref()))
        .with_generation_id(answer.generation_id)
        .with_protocol_name(protocol_name)
        .with_leader(str_bytes(&answer.leader))
        .with_member_id(str_bytes(&answer.member_id))
        .with_members(members);
    if version >= 7 {
        response = response.with_protocol_type(answer.protocol_type.as_deref().map(str_bytes));
    }
    encode(&response, version, out)
}
