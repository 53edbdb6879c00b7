//! The server-side assignors of KIP-848 groups: `uniform` (Kafka's default) and `range`.
//!
//! Owns: turning members' resolved subscriptions, the topics' partition counts and the previous
//! target into a new target assignment. Pure functions: no clock, no I/O, deterministic output for
//! the same input (members and topics are ordered maps). Never: reconciliation (who may take a
//! partition now), which is `consumer.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A topic id → its assigned partition indexes.
pub type Assignment = BTreeMap<[u8; 16], BTreeSet<i32>>;

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";
pub const ASSIGNORS: [&str; 2] = [UNIFORM, RANGE];

/// One member as an assignor sees it.
pub struct MemberSpec<'a> {
    pub member_id: &'a str,
    pub topics: &'a BTreeSet<[u8; 16]>,
    pub previous: Option<&'a Assignment>,
}

pub fn assign(
    assignor: &str,
    members: &[MemberSpec<'_>],
    partition_counts: &BTreeMap<[u8; 16], i32>,
) -> BTreeMap<String, Assignment> {
    match assignor {
        RANGE => range(members, partition_counts),
        _ => uniform(members, partition_counts),
    }
}

/// Range: per topic, its subscribers in member-id order each take a contiguous block; the first
/// `partitions % subscribers` take one more. Members with the same subscriptions get co-partitioned
/// blocks across topics, which is what users pick `range` for.
fn range(
    members: &[MemberSpec<'_>],
    partition_counts: &BTreeMap<[u8; 16], i32>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> = members
        .iter()
        .map(|member| (member.member_id.to_string(), Assignment::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let subscribers: Vec<&str> = members
            .iter()
            .filter(|member| member.topics.contains(topic))
            .map(|member| member.member_id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        let count = usize::try_from(count).unwrap_or(0);
        let base = count / subscribers.len();
        let extra = count % subscribers.len();
        let mut next = 0;
        for (index, member_id) in subscribers.iter().enumerate() {
            let take = base + usize::from(index < extra);
            let partitions: BTreeSet<i32> = (next..next + take).map(|p| p as i32).collect();
            next += take;
            if !partitions.is_empty() {
                if let Some(assignment) = target.get_mut(*member_id) {
                    assignment.insert(*topic, partitions);
                }
            }
        }
    }
    target
}

/// Uniform: balanced and sticky. Every partition of a subscribed topic goes to one subscriber;
/// members keep what they had as far as balance allows. With identical subscriptions the counts
/// differ by at most one (exact quotas, the larger ones given to the members that already held the
/// most); with mixed subscriptions each partition goes to its least-loaded subscriber.
fn uniform(
    members: &[MemberSpec<'_>],
    partition_counts: &BTreeMap<[u8; 16], i32>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> = members
        .iter()
        .map(|member| (member.member_id.to_string(), Assignment::new()))
        .collect();
    if members.is_empty() {
        return target;
    }
    let partitions: Vec<([u8; 16], i32)> = partition_counts
        .iter()
        .filter(|(topic, _)| members.iter().any(|member| member.topics.contains(*topic)))
        .flat_map(|(topic, &count)| (0..count).map(move |partition| (*topic, partition)))
        .collect();
    let homogeneous = members
        .windows(2)
        .all(|pair| pair.first().map(|m| m.topics) == pair.get(1).map(|m| m.topics));
    let quotas = quotas(members, partitions.len(), homogeneous, partition_counts);
    let mut owner: HashMap<([u8; 16], i32), usize> = HashMap::new();
    let mut counts = vec![0usize; members.len()];
    // Sticky pass: keep previous partitions up to each member's quota.
    for (index, member) in members.iter().enumerate() {
        let Some(previous) = member.previous else {
            continue;
        };
        for (topic, kept) in previous {
            let Some(&count) = partition_counts.get(topic) else {
                continue;
            };
            if !member.topics.contains(topic) {
                continue;
            }
            for &partition in kept {
                let quota = quotas.get(index).copied().unwrap_or(0);
                let slot = counts.get_mut(index);
                let Some(slot) = slot else { continue };
                if partition < count && *slot < quota && !owner.contains_key(&(*topic, partition)) {
                    owner.insert((*topic, partition), index);
                    *slot += 1;
                }
            }
        }
    }
    // Fill pass: each free partition to the least-loaded subscriber with room (ties: member order).
    for part in &partitions {
        if owner.contains_key(part) {
            continue;
        }
        let chosen = members
            .iter()
            .enumerate()
            .filter(|(_, member)| member.topics.contains(&part.0))
            .filter(|(index, _)| {
                !homogeneous
                    || counts.get(*index).copied().unwrap_or(0)
                        < quotas.get(*index).copied().unwrap_or(0)
            })
            .min_by_key(|(index, _)| counts.get(*index).copied().unwrap_or(usize::MAX))
            .map(|(index, _)| index);
        if let Some(index) = chosen {
            owner.insert(*part, index);
            if let Some(slot) = counts.get_mut(index) {
                *slot += 1;
            }
        }
    }
    for ((topic, partition), index) in owner {
        if let Some(member) = members.get(index) {
            if let Some(assignment) = target.get_mut(member.member_id) {
                assignment.entry(topic).or_default().insert(partition);
            }
        }
    }
    target
}

/// Per-member partition quotas. Identical subscriptions: `total / n` each, plus one for the
/// `total % n` members that held the most before (stickiness). Mixed: the ceiling for everyone, a cap
/// for the sticky pass only.
fn quotas(
    members: &[MemberSpec<'_>],
    total: usize,
    homogeneous: bool,
    partition_counts: &BTreeMap<[u8; 16], i32>,
) -> Vec<usize> {
    let count = members.len();
    if !homogeneous {
        return vec![total.div_ceil(count); count];
    }
    let base = total / count;
    let extra = total % count;
    let held = |member: &MemberSpec<'_>| -> usize {
        member.previous.map_or(0, |previous| {
            previous
                .iter()
                .filter(|(topic, _)| partition_counts.contains_key(*topic))
                .map(|(_, partitions)| partitions.len())
                .sum()
        })
    };
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by_key(|&index| (std::cmp::Reverse(members.get(index).map_or(0, held)), index));
    let mut quotas = vec![base; count];
    for &index in order.iter().take(extra) {
        if let Some(quota) = quotas.get_mut(index) {
            *quota += 1;
        }
    }
    quotas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(seed: u8) -> [u8; 16] {
        [seed; 16]
    }

    fn total(assignment: &Assignment) -> usize {
        assignment.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn uniform_balances_identical_subscriptions_and_covers_every_partition() {
        let topics: BTreeSet<_> = [topic(1)].into();
        let counts: BTreeMap<_, _> = [(topic(1), 6)].into();
        let names = ["a", "b", "c", "d"];
        let members: Vec<_> = names
            .iter()
            .map(|name| MemberSpec {
                member_id: name,
                topics: &topics,
                previous: None,
            })
            .collect();
        let target = uniform(&members, &counts);
        let sizes: Vec<usize> = target.values().map(total).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 6);
        assert!(sizes.iter().all(|&size| size == 1 || size == 2));
    }

    #[test]
    fn uniform_is_sticky_when_a_member_leaves() {
        let topics: BTreeSet<_> = [topic(1)].into();
        let counts: BTreeMap<_, _> = [(topic(1), 6)].into();
        let before: BTreeMap<String, Assignment> = [
            ("a".to_string(), [(topic(1), [0, 1].into())].into()),
            ("b".to_string(), [(topic(1), [2, 3].into())].into()),
        ]
        .into();
        let members: Vec<_> = ["a", "b"]
            .iter()
            .map(|name| MemberSpec {
                member_id: name,
                topics: &topics,
                previous: before.get(*name),
            })
            .collect();
        let after = uniform(&members, &counts);
        for name in ["a", "b"] {
            let kept = &before[name][&topic(1)];
            assert!(kept.is_subset(&after[name][&topic(1)]), "{name}");
            assert_eq!(total(&after[name]), 3);
        }
    }

    #[test]
    fn range_gives_contiguous_blocks_per_topic() {
        let topics: BTreeSet<_> = [topic(1), topic(2)].into();
        let counts: BTreeMap<_, _> = [(topic(1), 5), (topic(2), 2)].into();
        let members: Vec<_> = ["a", "b"]
            .iter()
            .map(|name| MemberSpec {
                member_id: name,
                topics: &topics,
                previous: None,
            })
            .collect();
        let target = range(&members, &counts);
        assert_eq!(target["a"][&topic(1)], [0, 1, 2].into());
        assert_eq!(target["b"][&topic(1)], [3, 4].into());
        assert_eq!(target["a"][&topic(2)], [0].into());
        assert_eq!(target["b"][&topic(2)], [1].into());
    }
}
