//! DeleteGroups (key 42), v0–2: removes empty groups and their committed offsets (NON_EMPTY_GROUP
//! while members remain, GROUP_ID_NOT_FOUND for unknown groups).

use bytes::BytesMut;
use kafka_protocol::messages::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};
use kafka_protocol::messages::GroupId;
use shards::mesh::{GroupRequest, GroupResponse};

use super::groups::per_group;
use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::delete_groups::DeleteGroupsRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = DeleteGroupsRequest::decode(reader, version)?;
    let answers = per_group(
        context,
        &request.groups_names,
        GroupRequest::Delete,
        |response| match response {
            GroupResponse::Delete(results) => Some(
                results
                    .into_iter()
                    .map(|result| errors::group_result_code(result.err().as_ref()))
                    .collect(),
            ),
            _ => None,
        },
        errors::group_error_code,
    )
    .await;
    let results = request
        .groups_names
        .iter()
        .zip(answers)
        .map(|(group_id, code)| {
            DeletableGroupResult::default()
                .with_group_id(GroupId(str_bytes(group_id)))
                .with_error_code(code.unwrap_or(errors::UNKNOWN_SERVER_ERROR))
        })
        .collect();
    encode(
        &DeleteGroupsResponse::default().with_results(results),
        version,
        out,
    )
}
