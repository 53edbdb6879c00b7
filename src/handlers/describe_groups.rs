//! DescribeGroups (key 15), v0–6: state, protocol and members of classic groups, asked of each
//! group's shard. A group that does not exist is described as Dead (v0–5) or GROUP_ID_NOT_FOUND (v6+,
//! KIP-1043), as Kafka 4 does.

use bytes::BytesMut;
use kafka_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use kafka_protocol::messages::GroupId;
use shards::mesh::{GroupDescription, GroupRequest, GroupResponse};

use super::groups::per_group;
use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::describe_groups::DescribeGroupsRequest;

/// Kafka's value for "authorized operations were not requested".
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = DescribeGroupsRequest::decode(reader, version)?;
    let answers = per_group(
        context,
        &request.groups,
        GroupRequest::Describe,
        |response| match response {
            GroupResponse::Describe(descriptions) => {
                Some(descriptions.into_iter().map(Ok).collect())
            }
            _ => None,
        },
        |error| Err(errors::group_error_code(error)),
    )
    .await;
    let groups = request
        .groups
        .iter()
        .zip(answers)
        .map(|(group_id, answer)| {
            let answer: Result<Option<GroupDescription>, i16> =
                answer.unwrap_or(Err(errors::UNKNOWN_SERVER_ERROR));
            let described = DescribedGroup::default()
                .with_group_id(GroupId(str_bytes(group_id)))
                .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
            match answer {
                Ok(Some(description)) => describe(described, description, version),
                Ok(None) if version >= 6 => described
                    .with_error_code(errors::GROUP_ID_NOT_FOUND)
                    .with_error_message(Some(str_bytes(&format!("Group {group_id} not found."))))
                    .with_group_state(str_bytes("Dead")),
                Ok(None) => described.with_group_state(str_bytes("Dead")),
                Err(code) => described.with_error_code(code),
            }
        })
        .collect();
    encode(
        &DescribeGroupsResponse::default().with_groups(groups),
        version,
        out,
    )
}

fn describe(
    described: DescribedGroup,
    description: GroupDescription,
    version: i16,
) -> DescribedGroup {
    let members = description
        .members
        .into_iter()
        .map(|member| {
            let response = DescribedGroupMember::default()
                .with_member_id(str_bytes(&member.member_id))
                .with_client_id(str_bytes(&member.client_id))
                .with_client_host(str_bytes(&member.client_host))
                .with_member_metadata(member.metadata)
                .with_member_assignment(member.assignment);
            if version >= 4 {
                response.with_group_instance_id(member.group_instance_id.as_deref().map(str_bytes))
            } else {
                response
            }
        })
        .collect();
    described
        .with_group_state(str_bytes(&description.state))
        .with_protocol_type(str_bytes(&description.protocol_type))
        .with_protocol_data(str_bytes(&description.protocol_data))
        .with_members(members)
}
