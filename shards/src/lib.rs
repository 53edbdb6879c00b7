//! Everything one FluxMQ core owns: the shard runtime, the mesh between shards, partitions with their
//! storage, the per-shard buffer pool.
//!
//! This crate is the API boundary between the broker binary (`src/`, which knows the Kafka wire format)
//! and per-core state. It never depends on the binary; the binary depends on it.

pub mod storage;
