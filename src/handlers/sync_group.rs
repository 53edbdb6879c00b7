//! SyncGroup (key 14), v0–5: followers wait on the group's shard for the leader's assignment; the
//! leader's request carries it.

use bytes::BytesMut;
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use shards::mesh::{GroupRequest, GroupResponse, SyncWork};

use super::groups::call;
use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::sync_group::SyncGroupRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = SyncGroupRequest::decode(reader, version)?;
    let work = SyncWork {
        group_id: request.group_id.clone(),
        generation_id: request.generation_id,
        member_id: request.member_id,
        group_instance_id: request.group_instance_id,
        protocol_type: request.protocol_type,
        protocol_name: request.protocol_name,
        assignments: request.assignments,
    };
    let answer = match call(context, &request.group_id, GroupRequest::Sync(work)).await {
        Ok(GroupResponse::Sync(answer)) => answer,
        Ok(other) => unreachable!("sync answered {other:?}"),
        Err(error) => Err(error),
    };
    let response = match answer {
        Ok(answer) => {
            let response = SyncGroupResponse::default().with_assignment(answer.assignment);
            if version >= 5 {
                response
                    .with_protocol_type(answer.protocol_type.as_deref().map(str_bytes))
                    .with_protocol_name(answer.protocol_name.as_deref().map(str_bytes))
            } else {
                response
            }
        }
        Err(error) => {
            SyncGroupResponse::default().with_error_code(errors::group_error_code(&error))
        }
    };
    encode(&response, version, out)
}
