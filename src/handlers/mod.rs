//! Request dispatch: one table of the APIs we serve, one file per API.
//!
//! Owns: the table {api key, advertised and served versions}, the decision for unknown keys and
//! unsupported versions (what a Kafka broker does: close the connection, except ApiVersions, which
//! answers UNSUPPORTED_VERSION with our ranges), the response header, and the broker-wide context
//! handlers share. Never: partition state (handlers split work by owning shard and ask it).
//!
//! Handler shape (as Redpanda's): decode → split by shard → await → merge in request order → encode.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod api_versions;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_producers;
mod describe_transactions;
mod end_txn;
pub mod fetch;
mod find_coordinator;
mod groups;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod produce;
mod sync_group;
mod txn_coordinator;
mod txn_offset_commit;

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::Encodable;
use log::{debug, error};
use shards::shard::Shard;

use crate::config::Config;
use crate::net::affinity::Affinity;
use crate::protocol::api_key::ApiKey;
use crate::protocol::header::{
    decode_request_header, encode_response_header, peek_api, RequestHeader,
};
use crate::protocol::reader::{DecodeError, Reader};

/// What the connection does after a request.
pub enum Outcome {
    /// Send the response in the buffer.
    Respond,
    /// Send nothing (produce with acks=0).
    NoResponse,
    /// Close the connection (malformed or unsupported request, as Kafka does).
    Close(String),
}

/// What every handler on a shard can see: the shard and how clients reach this broker.
pub struct BrokerContext {
    pub shard: Rc<Shard>,
    pub node_id: i32,
    pub advertised_host: String,
    pub port: i32,
    /// `--enable-consumer-groups`: whether the group APIs are advertised and served.
    pub groups_enabled: bool,
    /// `--move-connections`: whether connections move to the shard owning their partitions.
    pub move_connections: bool,
}

impl BrokerContext {
    pub fn new(shard: Rc<Shard>, config: &Config) -> BrokerContext {
        BrokerContext {
            shard,
            node_id: config.node_id,
            advertised_host: config.advertised_host(),
            port: i32::from(config.advertised_port.unwrap_or(config.port)),
            groups_enabled: config.enable_consumer_groups,
            move_connections: config.move_connections,
        }
    }

    /// Whether this broker serves `api` (group APIs only while groups are enabled).
    pub fn serves(&self, api: &ApiEntry) -> bool {
        self.groups_enabled || !api.needs_groups
    }
}

/// Who sent a request: what group descriptions show as a member's client host (Kafka's `/address`),
/// and where its connection's produce and fetch requests went (for moving it, `net/affinity.rs`).
pub struct Peer<'a> {
    pub address: &'a str,
    pub affinity: &'a Affinity,
}

impl Peer<'_> {
    pub fn client_host(&self) -> String {
        format!("/{}", self.address)
    }
}

/// One API we serve. `advertised_min` may be below `served_min`: Kafka 4 advertises Produce from v0
/// because librdkafka enables features only when the advertised ranges overlap the versions it knows
/// (KAFKA-18659), and rejects v0–2 when they arrive.
pub struct ApiEntry {
    pub key: ApiKey,
    pub advertised_min: i16,
    pub served_min: i16,
    pub max: i16,
    /// A consumer-group API: hidden and refused under `--enable-consumer-groups false`.
    pub needs_groups: bool,
}

const fn entry(key: ApiKey, advertised_min: i16, served_min: i16, max: i16) -> ApiEntry {
    ApiEntry {
        key,
        advertised_min,
        served_min,
        max,
        needs_groups: false,
    }
}

const fn group_entry(key: ApiKey, min: i16, max: i16) -> ApiEntry {
    ApiEntry {
        key,
        advertised_min: min,
        served_min: min,
        max,
        needs_groups: true,
    }
}

/// Every API FluxMQ serves, with the versions Kafka 4.x serves. OffsetCommit from v2 still overlaps
/// librdkafka's 1..2 requirement.
pub const APIS: &[ApiEntry] = &[
    entry(ApiKey::Produce, 0, 3, 13),
    entry(ApiKey::Fetch, 4, 4, 18),
    entry(ApiKey::ListOffsets, 1, 1, 10),
    entry(ApiKey::Metadata, 0, 0, 13),
    entry(ApiKey::ApiVersions, 0, 0, 4),
    entry(ApiKey::CreateTopics, 2, 2, 7),
    entry(ApiKey::DeleteTopics, 1, 1, 6),
    entry(ApiKey::DescribeConfigs, 1, 1, 4),
    entry(ApiKey::CreatePartitions, 0, 0, 3),
    entry(ApiKey::DescribeCluster, 0, 0, 2),
    entry(ApiKey::FindCoordinator, 0, 0, 6),
    entry(ApiKey::InitProducerId, 0, 0, 5),
    entry(ApiKey::AddPartitionsToTxn, 0, 0, 5),
    entry(ApiKey::AddOffsetsToTxn, 0, 0, 4),
    entry(ApiKey::EndTxn, 0, 0, 5),
    entry(ApiKey::DescribeProducers, 0, 0, 0),
    entry(ApiKey::DescribeTransactions, 0, 0, 0),
    entry(ApiKey::ListTransactions, 0, 0, 1),
    group_entry(ApiKey::TxnOffsetCommit, 0, 5),
    group_entry(ApiKey::OffsetCommit, 2, 10),
    group_entry(ApiKey::OffsetFetch, 1, 10),
    group_entry(ApiKey::JoinGroup, 0, 9),
    group_entry(ApiKey::Heartbeat, 0, 4),
    group_entry(ApiKey::LeaveGroup, 0, 5),
    group_entry(ApiKey::SyncGroup, 0, 5),
    group_entry(ApiKey::DescribeGroups, 0, 6),
    group_entry(ApiKey::ListGroups, 0, 5),
    group_entry(ApiKey::DeleteGroups, 0, 2),
    group_entry(ApiKey::OffsetDelete, 0, 0),
    group_entry(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    group_entry(ApiKey::ConsumerGroupDescribe, 0, 1),
];

fn api_entry(key: i16) -> Option<&'static ApiEntry> {
    APIS.iter().find(|entry| entry.key as i16 == key)
}

/// Byte strings a response sends from the buffers that already hold them instead of copying them into
/// `out`: the record sets of a Fetch response, still in the owning shard's pool buffer. The connection
/// sends `out` with these interleaved, each right after the first `position` bytes of `out`, in one
/// vectored write, and then clears them, which sends the pool buffers home.
#[derive(Default)]
pub struct Splices {
    parts: Vec<(usize, Bytes)>,
    bytes: usize,
}

impl Splices {
    /// Sends `bytes` right after everything written to `out` so far.
    pub fn push(&mut self, out: &BytesMut, bytes: Bytes) {
        let position = out.len();
        assert!(self.parts.last().is_none_or(|(last, _)| *last <= position));
        self.bytes += bytes.len();
        self.parts.push((position, bytes));
    }

    /// The spliced byte strings with their positions in `out`, in order.
    pub fn parts(&self) -> &[(usize, Bytes)] {
        &self.parts
    }

    /// Bytes of all spliced strings together.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Drops the spliced strings (their buffers go home) and keeps the capacity for the next response.
    pub fn clear(&mut self) {
        self.parts.clear();
        self.bytes = 0;
    }
}

/// Handles one request frame, writing the response header and body into `out` (after the 4-byte size
/// placeholder the connection already put there) and `splices`.
pub async fn handle(
    context: &BrokerContext,
    peer: &Peer<'_>,
    frame: Bytes,
    out: &mut BytesMut,
    splices: &mut Splices,
) -> Outcome {
    let (key, version, correlation_id) = match peek_api(&frame) {
        Ok(api) => api,
        Err(error) => return Outcome::Close(format!("unreadable request header: {error}")),
    };
    let Some(api) = api_entry(key).filter(|api| context.serves(api)) else {
        return Outcome::Close(format!("unknown or unsupported API key {key}"));
    };
    if api.key == ApiKey::ApiVersions && !(api.served_min..=api.max).contains(&version) {
        // KIP-511: answer in v0, the one version every client can read, with our ranges.
        encode_response_header(out, correlation_id, false);
        return api_versions::unsupported_version(context, out);
    }
    if !(api.served_min..=api.max).contains(&version) {
        return Outcome::Close(format!("{:?} v{version} is not supported", api.key));
    }
    let flexible = api.key.request_is_flexible(version);
    let (header, body) = match decode_request_header(&frame, flexible) {
        Ok(decoded) => decoded,
        Err(error) => return Outcome::Close(format!("bad {:?} request header: {error}", api.key)),
    };
    // ApiVersions responses always use header v0 (KIP-511); every other API's response header is
    // flexible exactly when its request is.
    let response_flexible = flexible && api.key != ApiKey::ApiVersions;
    encode_response_header(out, correlation_id, response_flexible);
    let mut reader = Reader::new(body);
    let result = dispatch(context, peer, api.key, &header, &mut reader, out, splices).await;
    match result {
        Ok(outcome) => outcome,
        Err(HandlerError::Decode(error)) => {
            debug!(
                "{}: closing on a malformed {:?} v{version}: {error}",
                context.shard.id, api.key
            );
            Outcome::Close(format!("malformed {:?} v{version}: {error}", api.key))
        }
        Err(HandlerError::Encode(error)) => {
            error!(
                "{}: cannot encode {:?} v{version} response: {error}",
                context.shard.id, api.key
            );
            Outcome::Close(format!("internal error encoding {:?} response", api.key))
        }
    }
}

async fn dispatch(
    context: &BrokerContext,
    peer: &Peer<'_>,
    key: ApiKey,
    header: &RequestHeader,
    reader: &mut Reader,
    out: &mut BytesMut,
    splices: &mut Splices,
) -> Result<Outcome, HandlerError> {
    let version = header.api_version;
    match key {
        ApiKey::ApiVersions => api_versions::handle(context, reader, version, out),
        ApiKey::Metadata => metadata::handle(context, reader, version, out).await,
        ApiKey::Produce => produce::handle(context, peer.affinity, reader, version, out).await,
        ApiKey::Fetch => fetch::handle(context, peer.affinity, reader, version, out, splices).await,
        ApiKey::ListOffsets => list_offsets::handle(context, reader, version, out).await,
        ApiKey::CreateTopics => create_topics::handle(context, reader, version, out).await,
        ApiKey::DeleteTopics => delete_topics::handle(context, reader, version, out).await,
        ApiKey::CreatePartitions => create_partitions::handle(context, reader, version, out).await,
        ApiKey::DescribeCluster => describe_cluster::handle(context, reader, version, out),
        ApiKey::DescribeConfigs => describe_configs::handle(context, reader, version, out),
        ApiKey::FindCoordinator => find_coordinator::handle(context, reader, version, out),
        ApiKey::InitProducerId => init_producer_id::handle(context, reader, version, out).await,
        ApiKey::AddPartitionsToTxn => {
            add_partitions_to_txn::handle(context, reader, version, out).await
        }
        ApiKey::AddOffsetsToTxn => add_offsets_to_txn::handle(context, reader, version, out).await,
        ApiKey::EndTxn => end_txn::handle(context, reader, version, out).await,
        ApiKey::DescribeProducers => {
            describe_producers::handle(context, reader, version, out).await
        }
        ApiKey::DescribeTransactions => {
            describe_transactions::handle(context, reader, version, out).await
        }
        ApiKey::ListTransactions => list_transactions::handle(context, reader, version, out).await,
        ApiKey::TxnOffsetCommit => txn_offset_commit::handle(context, reader, version, out).await,
        ApiKey::JoinGroup => join_group::handle(context, peer, header, reader, version, out).await,
        ApiKey::SyncGroup => sync_group::handle(context, reader, version, out).await,
        ApiKey::Heartbeat => heartbeat::handle(context, reader, version, out).await,
        ApiKey::LeaveGroup => leave_group::handle(context, reader, version, out).await,
        ApiKey::OffsetCommit => offset_commit::handle(context, reader, version, out).await,
        ApiKey::OffsetFetch => offset_fetch::handle(context, reader, version, out).await,
        ApiKey::OffsetDelete => offset_delete::handle(context, reader, version, out).await,
        ApiKey::DescribeGroups => describe_groups::handle(context, reader, version, out).await,
        ApiKey::ListGroups => list_groups::handle(context, reader, version, out).await,
        ApiKey::DeleteGroups => delete_groups::handle(context, reader, version, out).await,
        ApiKey::ConsumerGroupHeartbeat => {
            consumer_group_heartbeat::handle(context, peer, header, reader, version, out).await
        }
        ApiKey::ConsumerGroupDescribe => {
            consumer_group_describe::handle(context, reader, version, out).await
        }
        other => Ok(Outcome::Close(format!("{other:?} is not served"))),
    }
}

/// Why a handler could not produce a response.
#[derive(Debug)]
pub enum HandlerError {
    /// The request body is malformed: the connection is closed.
    Decode(DecodeError),
    /// We built a response the codec refuses for this version: a bug, logged loudly.
    Encode(String),
}

impl From<DecodeError> for HandlerError {
    fn from(error: DecodeError) -> Self {
        HandlerError::Decode(error)
    }
}

/// Encodes a response body for `version`.
pub fn encode<T: Encodable>(
    response: &T,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    response
        .encode(out, version)
        .map_err(|error| HandlerError::Encode(error.to_string()))?;
    Ok(Outcome::Respond)
}

/// A kafka-protocol string from ours.
pub fn str_bytes(text: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(text.to_string())
}

pub fn topic_name(text: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(str_bytes(text))
}
