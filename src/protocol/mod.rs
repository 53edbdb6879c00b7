//! Kafka wire codec for requests: the bounded byte reader, the request header, the API key table and one decoder
//! per request type. Responses are encoded with the `kafka-protocol` crate; requests are decoded here because that
//! crate sizes allocations from wire counts (`Vec::with_capacity(n)` on an `i32` taken off the network).
//!
//! Owns: turning untrusted request bytes into typed requests, and the named limits that bound that work.
//! Never: I/O, shard or partition types, business logic, `assert!` on input, or a panic, an unbounded allocation or
//! an unbounded loop caused by bytes from the network. Every length and count read from the wire is checked against
//! the bytes remaining and against a `*_MAX` below before anything is allocated or looped over.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
// The decoders read every field a version carries (they must, to stay in step with the wire), but handlers read
// only the fields they act on, and the broker is a binary crate, where unread fields would warn.
#![allow(dead_code)]

pub mod api_key;
pub mod header;
pub mod reader;
pub mod requests;

#[cfg(test)]
pub(crate) mod test_support;

// Limits. They will move to `src/limits.rs` with the rest of the broker's limits. Each one bounds the memory a
// single request can make us allocate: a wire count is trusted only after it passes both its limit and the bytes
// remaining in the frame (every element takes at least one byte), so a lying count costs nothing.

/// Kafka encodes a classic string's length as an int16, and the Java client rejects longer compact strings too.
/// Topic names are far shorter (see `TOPIC_NAME_BYTES_MAX`), but client ids and config values may use the range.
pub const STRING_BYTES_MAX: usize = i16::MAX as usize;

/// Kafka's longest legal topic name (`Topic.MAX_NAME_LENGTH`). Not enforced by the decoder: Kafka answers
/// INVALID_TOPIC_EXCEPTION for that one topic instead of failing the request, so handlers check it.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Kafka's `socket.request.max.bytes` default (100 MiB, as `limits::FRAME_BYTES_MAX`): no bytes field (record
/// batches, tagged values) can be larger than the frame that carries it. Bytes fields are zero-copy slices, so this
/// bounds no allocation by itself.
pub const BYTES_FIELD_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Topics named by one request (Metadata, Produce, Fetch, ListOffsets, CreateTopics, DeleteTopics, ...).
/// Well above the topic count we plan to host per cluster; the worst case costs ~100k × 64 B ≈ 6 MiB per request.
pub const TOPICS_PER_REQUEST_MAX: usize = 100_000;

/// Partitions of one topic named by one request (Produce, Fetch, ListOffsets, replica assignments).
/// Kafka has no hard cap; the largest deployments run a few thousand partitions per topic.
pub const PARTITIONS_PER_TOPIC_MAX: usize = 100_000;

/// Broker ids in one replica assignment. The replication factor cannot exceed the broker count, and no single
/// cluster we target has more than a thousand brokers.
pub const REPLICAS_PER_PARTITION_MAX: usize = 1_024;

/// Config entries given for one topic in CreateTopics. Kafka defines about 40 topic configs; this leaves room for
/// repeats and unknown keys, which the handler rejects per topic.
pub const CONFIGS_PER_TOPIC_MAX: usize = 1_000;

/// Resources named by one DescribeConfigs request: topics plus brokers, so it follows the topic limit.
pub const CONFIG_RESOURCES_PER_REQUEST_MAX: usize = TOPICS_PER_REQUEST_MAX;

/// Config keys asked for one resource in DescribeConfigs; same reasoning as `CONFIGS_PER_TOPIC_MAX`.
pub const CONFIG_KEYS_PER_RESOURCE_MAX: usize = CONFIGS_PER_TOPIC_MAX;

/// Identifiers named by one request: transactional ids (DescribeTransactions, AddPartitionsToTxn v4+),
/// coordinator keys (FindCoordinator v4+), producer ids and state filters (ListTransactions). Each takes
/// at least a few bytes of the frame, so the worst case costs a few MiB like the topic limit.
pub const IDS_PER_REQUEST_MAX: usize = 100_000;
/// Consumer groups named by one request (DescribeGroups, DeleteGroups, OffsetFetch v8+,
/// ConsumerGroupDescribe). An admin listing every group of a large cluster asks for thousands.
pub const GROUPS_PER_REQUEST_MAX: usize = 100_000;

/// Keys in one batched FindCoordinator (v4+); the Java admin batches one per group it describes.
pub const COORDINATOR_KEYS_PER_REQUEST_MAX: usize = GROUPS_PER_REQUEST_MAX;

/// Members named by one SyncGroup (the leader's assignments) or LeaveGroup. Follows the coordinator's
/// own cap on group size, with room for a leader that knows more members than a shrunk group has.
pub const MEMBERS_PER_REQUEST_MAX: usize = 100_000;

/// Assignment protocols one member offers in JoinGroup. Clients offer one to three (range,
/// cooperative-sticky, ...).
pub const PROTOCOLS_PER_MEMBER_MAX: usize = 1_000;

/// State or type filters in ListGroups: Kafka knows about ten group states and three group types.
pub const GROUP_FILTERS_MAX: usize = 100;

/// Tagged fields in one struct. Kafka 4.1 defines at most a handful of tags per struct, and unknown tags are
/// skipped without allocating, so this only bounds the skip loop.
pub const TAGGED_FIELDS_MAX: usize = 64;

const _: () = assert!(STRING_BYTES_MAX <= i16::MAX as usize);
const _: () = assert!(TOPIC_NAME_BYTES_MAX <= STRING_BYTES_MAX);
const _: () = assert!(BYTES_FIELD_BYTES_MAX <= i32::MAX as usize);
const _: () = assert!(TOPICS_PER_REQUEST_MAX <= i32::MAX as usize);
const _: () = assert!(IDS_PER_REQUEST_MAX <= i32::MAX as usize);
const _: () = assert!(PARTITIONS_PER_TOPIC_MAX <= i32::MAX as usize);
const _: () = assert!(CONFIG_KEYS_PER_RESOURCE_MAX <= CONFIGS_PER_TOPIC_MAX);
