//! Kafka error codes and the one place each family of internal errors maps to them.
//!
//! Owns: the numeric codes we send and the mapping functions. Never: error code 0 (NONE) for work that
//! did not happen.

use shards::mesh::{ControllerError, PartitionError};

pub const NONE: i16 = 0;
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const INVALID_REQUIRED_ACKS: i16 = 21;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const INVALID_CONFIG: i16 = 40;
pub const INVALID_REQUEST: i16 = 42;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const INVALID_RECORD: i16 = 87;
pub const UNKNOWN_TOPIC_ID: i16 = 100;

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
