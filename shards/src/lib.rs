//! Everything one FluxMQ core owns: the shard runtime, the mesh between shards, partitions with their
//! storage, the per-shard buffer pool, the consumer groups it coordinates, and the topic catalog
//! snapshot every shard reads.
//!
//! API Boundary: the broker binary (`src/`, the only code that knows the Kafka wire format) talks to
//! this crate through [`shard::Shard`] and the closed request/response enums in [`mesh`]. This crate
//! never depends on the binary.

pub mod catalog;
pub mod group;
pub mod mesh;
pub mod partition;
pub mod pool;
pub mod router;
pub mod shard;
pub mod storage;
pub mod time;

use std::fmt;
use std::sync::Arc;

/// The index of a shard: one pinned executor on one core. Shards are numbered 0..count in the order
/// of the cores they run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u16);

impl fmt::Display for ShardId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "shard-{}", self.0)
    }
}

/// A topic name and partition index: the unit of ownership.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}-{}", self.topic, self.partition)
    }
}
