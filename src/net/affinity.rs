//! Connection affinity: when a client connection should move to the shard that owns what it asks for.
//!
//! Owns: the per-connection record of which shards its produce and fetch requests went to, and the
//! decision to move. Never: the move itself (`net::hand_over`), or any other request kind (metadata,
//! group and admin requests neither count nor reset the streak).
//!
//! Why: the kernel spreads connections over the shards by a hash of their addresses (SO_REUSEPORT),
//! blind to which partitions a client will use. A connection on the wrong shard pays for every request
//! a mesh message to the owner and one back, and each wakes an executor that may have parked. Two
//! shards with both load-generator connections on the wrong shard did a third of the messages per
//! CPU-second of one shard (docs/perf/PROFILE.md, "Moving connections to their partitions"). A Kafka
//! client reads or writes a fixed set of partitions over one connection per broker, so when all of
//! them live on one other shard, serving the connection there once saves every later round trip. A
//! connection whose requests span shards (a Java producer writing every partition of a topic) or
//! include this shard's own partitions stays where it is.

use std::cell::Cell;

use shards::ShardId;

use crate::limits::CONNECTION_MOVE_STREAK;

/// One connection's recent produce and fetch targets.
#[derive(Debug)]
pub struct Affinity {
    /// The shard serving the connection.
    home: ShardId,
    /// `false`: never move (`--move-connections false`, or a single shard).
    enabled: bool,
    /// The one other shard the latest requests all went to, and how many in a row.
    candidate: Cell<Option<(ShardId, u32)>>,
}

impl Affinity {
    pub fn new(home: ShardId, enabled: bool) -> Affinity {
        Affinity {
            home,
            enabled,
            candidate: Cell::new(None),
        }
    }

    /// Records the shards one produce or fetch request touched (each once or more, in any order). A
    /// request whose partitions all failed to resolve touches none and changes nothing.
    pub fn note(&self, targets: impl IntoIterator<Item = ShardId>) {
        let mut targets = targets.into_iter();
        let Some(first) = targets.next() else {
            return;
        };
        let single = targets.all(|target| target == first);
        let candidate = match self.candidate.get() {
            _ if !single || first == self.home => None,
            Some((shard, streak)) if shard == first => Some((shard, streak.saturating_add(1))),
            _ => Some((first, 1)),
        };
        self.candidate.set(candidate);
    }

    /// The shard this connection should move to now, if any.
    pub fn move_to(&self) -> Option<ShardId> {
        match self.candidate.get() {
            Some((shard, streak)) if self.enabled && streak >= CONNECTION_MOVE_STREAK => {
                Some(shard)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: ShardId = ShardId(0);
    const OTHER: ShardId = ShardId(1);
    const THIRD: ShardId = ShardId(2);

    fn noted(affinity: &Affinity, requests: u32, targets: &[ShardId]) {
        for _ in 0..requests {
            affinity.note(targets.iter().copied());
        }
    }

    #[test]
    fn moves_after_a_streak_of_requests_all_for_one_other_shard() {
        let affinity = Affinity::new(HOME, true);
        noted(&affinity, CONNECTION_MOVE_STREAK - 1, &[OTHER, OTHER]);
        assert_eq!(affinity.move_to(), None);
        noted(&affinity, 1, &[OTHER]);
        assert_eq!(affinity.move_to(), Some(OTHER));
    }

    #[test]
    fn a_request_for_home_or_for_several_shards_restarts_the_streak() {
        let affinity = Affinity::new(HOME, true);
        for interruption in [&[HOME][..], &[OTHER, HOME], &[OTHER, THIRD], &[THIRD]] {
            noted(&affinity, CONNECTION_MOVE_STREAK - 1, &[OTHER]);
            noted(&affinity, 1, interruption);
            noted(&affinity, 1, &[OTHER]);
            assert_eq!(affinity.move_to(), None, "after {interruption:?}");
        }
        noted(&affinity, CONNECTION_MOVE_STREAK, &[OTHER]);
        assert_eq!(affinity.move_to(), Some(OTHER));
    }

    #[test]
    fn requests_that_resolved_no_partition_change_nothing() {
        let affinity = Affinity::new(HOME, true);
        noted(&affinity, CONNECTION_MOVE_STREAK - 1, &[OTHER]);
        noted(&affinity, 5, &[]);
        noted(&affinity, 1, &[OTHER]);
        assert_eq!(affinity.move_to(), Some(OTHER));
    }

    #[test]
    fn never_moves_when_disabled() {
        let affinity = Affinity::new(HOME, false);
        noted(&affinity, CONNECTION_MOVE_STREAK * 2, &[OTHER]);
        assert_eq!(affinity.move_to(), None);
    }
}
