//! DescribeCluster (key 60), v0–2: this single node and the cluster id.

use bytes::BytesMut;
use kafka_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};
use kafka_protocol::messages::BrokerId;

use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::describe_cluster::DescribeClusterRequest;

/// Kafka's value for "authorized operations were not requested".
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// Endpoint type 1 = brokers; 2 = controllers, which a combined single node also is.
const ENDPOINT_TYPE_BROKERS: i8 = 1;

pub fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = DescribeClusterRequest::decode(reader, version)?;
    let catalog = context.shard.catalog();
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(context.node_id))
        .with_host(str_bytes(&context.advertised_host))
        .with_port(context.port);
    let mut response = DescribeClusterResponse::default()
        .with_error_code(errors::NONE)
        .with_cluster_id(str_bytes(&catalog.cluster_id))
        .with_controller_id(BrokerId(context.node_id))
        .with_brokers(vec![broker])
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
    if version >= 1 {
        response = response.with_endpoint_type(request.endpoint_type.max(ENDPOINT_TYPE_BROKERS));
    }
    encode(&response, version, out)
}
