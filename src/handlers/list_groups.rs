//! ListGroups (key 16), v0–5: every group of every shard, optionally filtered by state (v4+) and by
//! type (v5+: "classic" or "consumer"); filters compare case-insensitively, as Kafka's do.

use bytes::BytesMut;
use kafka_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use kafka_protocol::messages::GroupId;
use shards::mesh::{GroupRequest, GroupResponse};
use shards::ShardId;

use super::groups::call_shard;
use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::list_groups::ListGroupsRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = ListGroupsRequest::decode(reader, version)?;
    let matches = |filter: &[String], value: &str| {
        filter.is_empty()
            || filter
                .iter()
                .any(|wanted| wanted.eq_ignore_ascii_case(value))
    };
    let mut groups = Vec::new();
    let mut error_code = errors::NONE;
    for shard in 0..context.shard.shard_count() {
        match call_shard(context, ShardId(shard as u16), GroupRequest::List).await {
            Ok(GroupResponse::List(listed)) => groups.extend(listed),
            Ok(other) => unreachable!("list groups answered {other:?}"),
            Err(error) => error_code = errors::group_error_code(&error),
        }
    }
    groups.sort_by(|left, right| left.group_id.cmp(&right.group_id));
    let listed = groups
        .into_iter()
        .filter(|group| matches(&request.states_filter, &group.state))
        .filter(|group| matches(&request.types_filter, &group.group_type))
        .map(|group| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&group.group_id)))
                .with_protocol_type(str_bytes(&group.protocol_type));
            if version >= 4 {
                listed = listed.with_group_state(str_bytes(&group.state));
            }
            if version >= 5 {
                listed = listed.with_group_type(str_bytes(&group.group_type));
            }
            listed
        })
        .collect();
    let response = ListGroupsResponse::default()
        .with_error_code(error_code)
        .with_groups(listed);
    encode(&response, version, out)
}
