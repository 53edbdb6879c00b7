//! Request body decoders, one file per Kafka API, each for the versions Kafka 4.x serves.
//!
//! Every decoder takes a `Reader` positioned at the body (after the request header) and the header's api_version,
//! rejects versions outside its range, reads exactly the fields that version carries, and fills fields the version
//! lacks with Kafka's defaults. Field names follow the `kafka-protocol` crate (Kafka's JSON specs in snake_case).
//! Unknown tagged fields are skipped. Trailing bytes after the body are left in the reader, not rejected.
//!
//! Owns: request bodies. Never: I/O, handler logic (topic-name validation, authorization), shard types, panics.

pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sync_group;

use bytes::Bytes;

use super::api_key::ApiKey;
use super::reader::{DecodeError, Reader};

/// Any request this module decodes, for callers (the fuzz target, dispatch) that hold a key and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    ApiVersions(api_versions::ApiVersionsRequest),
    Metadata(metadata::MetadataRequest),
    Produce(produce::ProduceRequest),
    Fetch(fetch::FetchRequest),
    ListOffsets(list_offsets::ListOffsetsRequest),
    CreateTopics(create_topics::CreateTopicsRequest),
    DeleteTopics(delete_topics::DeleteTopicsRequest),
    CreatePartitions(create_partitions::CreatePartitionsRequest),
    DescribeCluster(describe_cluster::DescribeClusterRequest),
    DescribeConfigs(describe_configs::DescribeConfigsRequest),
    FindCoordinator(find_coordinator::FindCoordinatorRequest),
    JoinGroup(join_group::JoinGroupRequest),
    SyncGroup(sync_group::SyncGroupRequest),
    Heartbeat(heartbeat::HeartbeatRequest),
    LeaveGroup(leave_group::LeaveGroupRequest),
    OffsetCommit(offset_commit::OffsetCommitRequest),
    OffsetFetch(offset_fetch::OffsetFetchRequest),
    OffsetDelete(offset_delete::OffsetDeleteRequest),
    DescribeGroups(describe_groups::DescribeGroupsRequest),
    ListGroups(list_groups::ListGroupsRequest),
    DeleteGroups(delete_groups::DeleteGroupsRequest),
    ConsumerGroupHeartbeat(consumer_group_heartbeat::ConsumerGroupHeartbeatRequest),
    ConsumerGroupDescribe(consumer_group_describe::ConsumerGroupDescribeRequest),
}

/// Decodes the body of a request whose header said `api_key` and `version`. Keys without a decoder here answer
/// `UnsupportedVersion`, like versions outside a decoder's range.
pub fn decode_request(api_key: i16, version: i16, body: Bytes) -> Result<Request, DecodeError> {
    let reader = &mut Reader::new(body);
    let request = match ApiKey::from_i16(api_key) {
        Some(ApiKey::ApiVersions) => {
            Request::ApiVersions(api_versions::ApiVersionsRequest::decode(reader, version)?)
        }
        Some(ApiKey::Metadata) => {
            Request::Metadata(metadata::MetadataRequest::decode(reader, version)?)
        }
        Some(ApiKey::Produce) => {
            Request::Produce(produce::ProduceRequest::decode(reader, version)?)
        }
        Some(ApiKey::Fetch) => Request::Fetch(fetch::FetchRequest::decode(reader, version)?),
        Some(ApiKey::ListOffsets) => {
            Request::ListOffsets(list_offsets::ListOffsetsRequest::decode(reader, version)?)
        }
        Some(ApiKey::CreateTopics) => {
            Request::CreateTopics(create_topics::CreateTopicsRequest::decode(reader, version)?)
        }
        Some(ApiKey::DeleteTopics) => {
            Request::DeleteTopics(delete_topics::DeleteTopicsRequest::decode(reader, version)?)
        }
        Some(ApiKey::CreatePartitions) => Request::CreatePartitions(
            create_partitions::CreatePartitionsRequest::decode(reader, version)?,
        ),
        Some(ApiKey::DescribeCluster) => Request::DescribeCluster(
            describe_cluster::DescribeClusterRequest::decode(reader, version)?,
        ),
        Some(ApiKey::DescribeConfigs) => Request::DescribeConfigs(
            describe_configs::DescribeConfigsRequest::decode(reader, version)?,
        ),
        Some(ApiKey::FindCoordinator) => Request::FindCoordinator(
            find_coordinator::FindCoordinatorRequest::decode(reader, version)?,
        ),
        Some(ApiKey::JoinGroup) => {
            Request::JoinGroup(join_group::JoinGroupRequest::decode(reader, version)?)
        }
        Some(ApiKey::SyncGroup) => {
            Request::SyncGroup(sync_group::SyncGroupRequest::decode(reader, version)?)
        }
        Some(ApiKey::Heartbeat) => {
            Request::Heartbeat(heartbeat::HeartbeatRequest::decode(reader, version)?)
        }
        Some(ApiKey::LeaveGroup) => {
            Request::LeaveGroup(leave_group::LeaveGroupRequest::decode(reader, version)?)
        }
        Some(ApiKey::OffsetCommit) => {
            Request::OffsetCommit(offset_commit::OffsetCommitRequest::decode(reader, version)?)
        }
        Some(ApiKey::OffsetFetch) => {
            Request::OffsetFetch(offset_fetch::OffsetFetchRequest::decode(reader, version)?)
        }
        Some(ApiKey::OffsetDelete) => {
            Request::OffsetDelete(offset_delete::OffsetDeleteRequest::decode(reader, version)?)
        }
        Some(ApiKey::DescribeGroups) => Request::DescribeGroups(
            describe_groups::DescribeGroupsRequest::decode(reader, version)?,
        ),
        Some(ApiKey::ListGroups) => {
            Request::ListGroups(list_groups::ListGroupsRequest::decode(reader, version)?)
        }
        Some(ApiKey::DeleteGroups) => {
            Request::DeleteGroups(delete_groups::DeleteGroupsRequest::decode(reader, version)?)
        }
        Some(ApiKey::ConsumerGroupHeartbeat) => Request::ConsumerGroupHeartbeat(
            consumer_group_heartbeat::ConsumerGroupHeartbeatRequest::decode(reader, version)?,
        ),
        Some(ApiKey::ConsumerGroupDescribe) => Request::ConsumerGroupDescribe(
            consumer_group_describe::ConsumerGroupDescribeRequest::decode(reader, version)?,
        ),
        _ => return Err(DecodeError::UnsupportedVersion { api_key, version }),
    };
    Ok(request)
}

/// Rejects a version outside `version_min..=version_max` and answers whether it is flexible.
fn check_version(
    api_key: ApiKey,
    version: i16,
    version_min: i16,
    version_max: i16,
) -> Result<bool, DecodeError> {
    if version < version_min || version > version_max {
        return Err(DecodeError::UnsupportedVersion {
            api_key: api_key as i16,
            version,
        });
    }
    Ok(api_key.request_is_flexible(version))
}

/// A field that is nullable in some versions only: null there is malformed.
fn string_nullable_from(
    reader: &mut Reader,
    flexible: bool,
    nullable: bool,
) -> Result<Option<String>, DecodeError> {
    if nullable {
        reader.nullable_string(flexible)
    } else {
        reader.string(flexible).map(Some)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::protocol::test_support::XorShift;

    #[test]
    fn unknown_keys_and_versions_are_unsupported() {
        let body = Bytes::from_static(&[0, 0, 0, 0]);
        assert_eq!(
            decode_request(27, 0, body.clone()),
            Err(DecodeError::UnsupportedVersion {
                api_key: 27,
                version: 0
            })
        );
        assert_eq!(
            decode_request(0, 2, body.clone()),
            Err(DecodeError::UnsupportedVersion {
                api_key: 0,
                version: 2
            })
        );
        assert_eq!(
            decode_request(1, 19, body),
            Err(DecodeError::UnsupportedVersion {
                api_key: 1,
                version: 19
            })
        );
    }

    /// Random bodies, for every key and version in range: decoding must return, whatever it returns.
    #[test]
    fn random_bodies_never_panic() {
        let mut random = XorShift::new(42);
        for _ in 0..6_000 {
            let keys = [
                0i16, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 32, 37, 42, 47, 60,
                68, 69,
            ];
            let api_key = keys[random.below(keys.len())];
            let version = random.below(20) as i16;
            let length = random.below(64);
            let body: Vec<u8> = (0..length).map(|_| random.next_u64() as u8).collect();
            let _ = decode_request(api_key, version, Bytes::from(body));
        }
    }
}
