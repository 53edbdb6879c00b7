//! Heartbeat (key 12), v0–4: keeps a classic member's session alive; REBALANCE_IN_PROGRESS tells it to
//! rejoin.

use bytes::BytesMut;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use shards::mesh::{GroupRequest, GroupResponse, HeartbeatWork};

use super::groups::call;
use super::{encode, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::heartbeat::HeartbeatRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = HeartbeatRequest::decode(reader, version)?;
    let work = HeartbeatWork {
        group_id: request.group_id.clone(),
        generation_id: request.generation_id,
        member_id: request.member_id,
        group_instance_id: request.group_instance_id,
    };
    let result = match call(context, &request.group_id, GroupRequest::Heartbeat(work)).await {
        Ok(GroupResponse::Heartbeat(result)) => result,
        Ok(other) => unreachable!("heartbeat answered {other:?}"),
        Err(error) => Err(error),
    };
    let code = errors::group_result_code(result.err().as_ref());
    encode(
        &HeartbeatResponse::default().with_error_code(code),
        version,
        out,
    )
}
