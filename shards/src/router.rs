//! Which shard owns a partition or a consumer group: pure functions, the only place in the code that
//! answers either.
//!
//! Owns: the mappings (topic, partition) → ShardId and group id → ShardId. Never: I/O or mutable state. Both the broker's
//! handlers (to route a request) and the shards (to decide which logs to open) call it, so it lives in
//! this crate.
//!
//! The topic name is hashed once (FNV-1a, stable across builds and platforms, so the owner of a
//! partition does not change when the binary does), and consecutive partitions of a topic go to
//! consecutive shards: a topic with as many partitions as there are shards uses every core.

use crate::ShardId;

/// The shard that owns `partition` of `topic` when the broker runs `shard_count` shards.
pub fn shard_for(topic: &str, partition: i32, shard_count: usize) -> ShardId {
    assert!(shard_count > 0);
    assert!(shard_count <= usize::from(u16::MAX));
    let count = shard_count as u64;
    let topic_slot = topic_hash(topic) % count;
    let partition_slot = u64::from(partition.unsigned_abs()) % count;
    ShardId(((topic_slot + partition_slot) % count) as u16)
}

/// The shard that coordinates consumer group `group_id` (its members, timers and committed offsets)
/// when the broker runs `shard_count` shards. The same FNV-1a hash as topics: stable across builds,
/// so a restart with the same shard count finds every group where it was. A restart with another
/// count moves groups; their offset files are found by scanning (see `group::store`).
pub fn shard_for_group(group_id: &str, shard_count: usize) -> ShardId {
    assert!(shard_count > 0);
    assert!(shard_count <= usize::from(u16::MAX));
    ShardId((group_hash(group_id) % shard_count as u64) as u16)
}

/// The hash behind `shard_for_group`; group files with over-long ids are named by it.
pub fn group_hash(group_id: &str) -> u64 {
    topic_hash(group_id)
}

fn topic_hash(topic: &str) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = topic.bytes().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    // The upper bits of FNV are better mixed than the lower ones, which the modulo would pick.
    hash ^ (hash >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_partitions_spread_over_all_shards() {
        for shard_count in 1..=8 {
            let owners: std::collections::BTreeSet<_> = (0..shard_count as i32)
                .map(|partition| shard_for("orders", partition, shard_count))
                .collect();
            assert_eq!(owners.len(), shard_count);
        }
    }

    #[test]
    fn eight_partitions_on_two_shards_split_evenly() {
        let on_first = (0..8)
            .filter(|&partition| shard_for("events", partition, 2) == ShardId(0))
            .count();
        assert_eq!(on_first, 4);
    }

    #[test]
    fn groups_spread_over_shards_and_stay_put() {
        let owners: std::collections::BTreeSet<_> = (0..64)
            .map(|index| shard_for_group(&format!("group-{index}"), 4))
            .collect();
        assert_eq!(owners.len(), 4);
        assert_eq!(shard_for_group("g", 1), ShardId(0));
        assert_eq!(shard_for_group("orders", 4), shard_for_group("orders", 4));
    }

    #[test]
    fn mapping_is_stable() {
        // Pinned values: a change here moves partitions between cores for existing data directories.
        assert_eq!(shard_for("orders", 0, 4), shard_for("orders", 0, 4));
        assert_eq!(
            topic_hash(""),
            0xcbf2_9ce4_8422_2325 ^ (0xcbf2_9ce4_8422_2325 >> 32)
        );
        assert_eq!(shard_for("a", 0, 1), ShardId(0));
    }
}
