//! LeaveGroup (key 13), v0–5: one member (v0–2) or a batch (v3+, by member id or, for static members,
//! by group instance id, as the admin's removeMembersFromConsumerGroup does).

use bytes::BytesMut;
use kafka_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use shards::mesh::{GroupRequest, GroupResponse, LeaveWork};

use super::groups::call;
use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::leave_group::LeaveGroupRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = LeaveGroupRequest::decode(reader, version)?;
    let members: Vec<(String, Option<String>, Option<String>)> = if version <= 2 {
        vec![(request.member_id.clone(), None, None)]
    } else {
        request
            .members
            .iter()
            .map(|member| {
                (
                    member.member_id.clone(),
                    member.group_instance_id.clone(),
                    member.reason.clone(),
                )
            })
            .collect()
    };
    let work = LeaveWork {
        group_id: request.group_id.clone(),
        members: members.clone(),
    };
    let result = match call(context, &request.group_id, GroupRequest::Leave(work)).await {
        Ok(GroupResponse::Leave(result)) => result,
        Ok(other) => unreachable!("leave answered {other:?}"),
        Err(error) => Err(error),
    };
    let response = match result {
        Err(error) => {
            LeaveGroupResponse::default().with_error_code(errors::group_error_code(&error))
        }
        Ok(results) if version <= 2 => {
            let error = results.into_iter().next().and_then(Result::err);
            LeaveGroupResponse::default().with_error_code(errors::group_result_code(error.as_ref()))
        }
        Ok(results) => {
            let responses = members
                .iter()
                .zip(results)
                .map(|((member_id, instance_id, _), result)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(member_id))
                        .with_group_instance_id(instance_id.as_deref().map(str_bytes))
                        .with_error_code(errors::group_result_code(result.err().as_ref()))
                })
                .collect();
            LeaveGroupResponse::default().with_members(responses)
        }
    };
    encode(&response, version, out)
}
