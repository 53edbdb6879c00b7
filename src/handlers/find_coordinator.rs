//! FindCoordinator (key 10), v0–6: this node coordinates every group (and transaction) it serves;
//! the group's owning shard is found per request over the mesh, so any shard may take the connection.
//! Batched keys from v4.

use bytes::BytesMut;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::BrokerId;

use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::find_coordinator::FindCoordinatorRequest;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = FindCoordinatorRequest::decode(reader, version)?;
    let error = match request.key_type {
        KEY_TYPE_GROUP if !context.groups_enabled => Some((
            errors::COORDINATOR_NOT_AVAILABLE,
            "consumer groups are disabled (--enable-consumer-groups false)",
        )),
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => None,
        _ => Some((errors::INVALID_REQUEST, "unknown coordinator key type")),
    };
    let (code, message) = error.map_or((errors::NONE, None), |(code, message)| {
        (code, Some(message))
    });
    let (node_id, host, port) = if code == errors::NONE {
        (
            context.node_id,
            context.advertised_host.as_str(),
            context.port,
        )
    } else {
        (-1, "", -1)
    };
    let response = if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(str_bytes(key))
                    .with_node_id(BrokerId(node_id))
                    .with_host(str_bytes(host))
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message.map(str_bytes))
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        let response = FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_node_id(BrokerId(node_id))
            .with_host(str_bytes(host))
            .with_port(port);
        if version >= 1 {
            response.with_error_message(message.map(str_bytes))
        } else {
            response
        }
    };
    encode(&response, version, out)
}
