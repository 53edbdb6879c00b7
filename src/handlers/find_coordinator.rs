//! FindCoordinator (key 10), v0–6: on a single node every group and every transactional id is
//! coordinated by this broker, so each key is answered with the advertised address. Inside the broker
//! a transactional id's coordinator is one shard (`router::shard_for_transactional_id`), which
//! clients never see: any connection reaches it over the mesh.

use bytes::BytesMut;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::BrokerId;

use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::find_coordinator::FindCoordinatorRequest;

/// Key types: 0 is a consumer group, 1 a transactional id; Kafka refuses others.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = FindCoordinatorRequest::decode(reader, version)?;
    let key_type_known = matches!(request.key_type, KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION);
    let code = match key_type_known {
        true => errors::NONE,
        false => errors::INVALID_REQUEST,
    };
    let host = str_bytes(&context.advertised_host);
    let mut response = FindCoordinatorResponse::default().with_error_code(code);
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(str_bytes(key))
                    .with_node_id(BrokerId(if key_type_known { context.node_id } else { -1 }))
                    .with_host(if key_type_known {
                        host.clone()
                    } else {
                        str_bytes("")
                    })
                    .with_port(if key_type_known { context.port } else { -1 })
                    .with_error_code(code)
            })
            .collect();
        response.error_code = errors::NONE;
    } else if key_type_known {
        response = response
            .with_node_id(BrokerId(context.node_id))
            .with_host(host)
            .with_port(context.port);
    } else {
        response = response.with_node_id(BrokerId(-1)).with_port(-1);
    }
    encode(&response, version, out)
}
