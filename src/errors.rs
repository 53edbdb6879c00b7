//! Kafka error codes and the one place each family of internal errors maps to them.
//!
//! Owns: the numeric codes we send and the mapping functions. Never: error code 0 (NONE) for work that
//! did not happen.

use shards::mesh::{ControllerError, GroupError, PartitionError};

pub const NONE: i16 = 0;
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const INVALID_REQUIRED_ACKS: i16 = 21;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub const INVALID_GROUP_ID: i16 = 24;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const INVALID_CONFIG: i16 = 40;
pub const INVALID_REQUEST: i16 = 42;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const NON_EMPTY_GROUP: i16 = 68;
pub const GROUP_ID_NOT_FOUND: i16 = 69;
pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
pub const FENCED_INSTANCE_ID: i16 = 82;
pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
pub const INVALID_RECORD: i16 = 87;
pub const UNKNOWN_TOPIC_ID: i16 = 100;
pub const FENCED_MEMBER_EPOCH: i16 = 110;
pub const UNRELEASED_INSTANCE_ID: i16 = 111;
pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
pub const STALE_MEMBER_EPOCH: i16 = 113;
pub const INVALID_REGULAR_EXPRESSION: i16 = 128;

/// Errors from a partition's shard (produce, fetch, list offsets).
pub fn partition_error_code(error: &PartitionError) -> i16 {
    match error {
        PartitionError::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
        PartitionError::OffsetOutOfRange => OFFSET_OUT_OF_RANGE,
        PartitionError::CorruptMessage(_) => CORRUPT_MESSAGE,
        PartitionError::MessageTooLarge => MESSAGE_TOO_LARGE,
        PartitionError::InvalidRecord(_) => INVALID_RECORD,
        PartitionError::Storage(_) => KAFKA_STORAGE_ERROR,
    }
}

/// Errors from the catalog controller (create/delete topics, create partitions).
pub fn controller_error_code(error: &ControllerError) -> i16 {
    match error {
        ControllerError::TopicAlreadyExists => TOPIC_ALREADY_EXISTS,
        ControllerError::InvalidTopic => INVALID_TOPIC_EXCEPTION,
        ControllerError::InvalidPartitions(_) => INVALID_PARTITIONS,
        ControllerError::InvalidReplicationFactor => INVALID_REPLICATION_FACTOR,
        ControllerError::UnknownTopic => UNKNOWN_TOPIC_OR_PARTITION,
        ControllerError::Storage(_) => KAFKA_STORAGE_ERROR,
    }
}

/// Errors from a group's coordinator (every group API).
pub fn group_error_code(error: &GroupError) -> i16 {
    match error {
        GroupError::InvalidGroupId => INVALID_GROUP_ID,
        GroupError::UnknownMemberId => UNKNOWN_MEMBER_ID,
        GroupError::IllegalGeneration => ILLEGAL_GENERATION,
        GroupError::RebalanceInProgress => REBALANCE_IN_PROGRESS,
        GroupError::InconsistentGroupProtocol => INCONSISTENT_GROUP_PROTOCOL,
        GroupError::InvalidSessionTimeout => INVALID_SESSION_TIMEOUT,
        GroupError::MemberIdRequired => MEMBER_ID_REQUIRED,
        GroupError::FencedInstanceId => FENCED_INSTANCE_ID,
        GroupError::GroupMaxSizeReached => GROUP_MAX_SIZE_REACHED,
        GroupError::NonEmptyGroup => NON_EMPTY_GROUP,
        GroupError::GroupIdNotFound(_) => GROUP_ID_NOT_FOUND,
        GroupError::GroupSubscribedToTopic => GROUP_SUBSCRIBED_TO_TOPIC,
        GroupError::StaleMemberEpoch => STALE_MEMBER_EPOCH,
        GroupError::FencedMemberEpoch => FENCED_MEMBER_EPOCH,
        GroupError::UnreleasedInstanceId => UNRELEASED_INSTANCE_ID,
        GroupError::UnsupportedAssignor(_) => UNSUPPORTED_ASSIGNOR,
        GroupError::InvalidRegularExpression(_) => INVALID_REGULAR_EXPRESSION,
        GroupError::InvalidRequest(_) => INVALID_REQUEST,
        GroupError::OffsetMetadataTooLarge => OFFSET_METADATA_TOO_LARGE,
        // The client retries (and re-discovers the coordinator), which is right for a shard that is
        // stopping or a storage write that failed.
        GroupError::CoordinatorNotAvailable(_) => COORDINATOR_NOT_AVAILABLE,
    }
}

/// The code and message of an optional group error.
pub fn group_result_code(error: Option<&GroupError>) -> i16 {
    error.map_or(NONE, group_error_code)
}
