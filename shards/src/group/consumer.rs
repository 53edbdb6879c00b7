//! The KIP-848 consumer group protocol (ConsumerGroupHeartbeat): member epochs, server-side target
//! assignment, and reconciliation that revokes before it reassigns.
//!
//! Owns: one group's members, their subscriptions (topic names or a regular expression), the group
//! epoch (bumped on any membership or subscription change), the target assignment and its epoch,
//! each member's current assignment and the partitions it still has to give back. Never: I/O, timers
//! (asked for through `Scheduled`), offsets, awaiting.
//!
//! Reconciliation (Kafka's `CurrentAssignmentBuilder`, simplified): when the target moves past a
//! member's epoch, the member first keeps only `current ∩ target` and is told to revoke the rest
//! (state *unrevoked*, epoch unchanged). Once a heartbeat reports it no longer owns them, it moves to
//! the target epoch and receives the partitions of its target that no other member still holds
//! (*unreleased* until they are freed). A partition is therefore never owned by two members.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::assignor::{self, Assignment, MemberSpec};
use super::{new_member_id, GroupConfig, Scheduled, TimerKind};
use crate::catalog::Catalog;
use crate::mesh::{
    ConsumerGroupDescription, ConsumerHeartbeatAnswer, ConsumerHeartbeatWork,
    ConsumerMemberDescription, GroupError, TopicIdPartitions,
};

/// The epoch a member sends to leave the group.
const LEAVE_EPOCH: i32 = -1;
/// The epoch a static member sends to leave temporarily, keeping its assignment for a rejoin.
const LEAVE_STATIC_EPOCH: i32 = -2;
/// Longest subscription regular expression we compile; a regex is compiled per member on every
/// subscription change, so its size bounds that work. Kafka's own limit is the request size.
const REGEX_BYTES_MAX: usize = 4096;
/// Compiled-size cap given to the regex engine, so a pathological pattern fails instead of eating
/// memory.
const REGEX_COMPILED_BYTES_MAX: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberState {
    Stable,
    /// Told to revoke partitions; waits for the member to report it no longer owns them.
    Unrevoked,
    /// At the target epoch, but some target partitions are still held by other members.
    Unreleased,
}

pub struct ConsumerMember {
    member_id: String,
    instance_id: Option<String>,
    rack_id: Option<String>,
    client_id: String,
    client_host: String,
    member_epoch: i32,
    previous_member_epoch: i32,
    state: MemberState,
    rebalance_timeout_ms: i32,
    subscribed_names: Vec<String>,
    subscribed_regex: Option<(String, regex::Regex)>,
    server_assignor: Option<String>,
    assigned: Assignment,
    pending_revocation: Assignment,
    pub session_deadline: Instant,
    revocation_deadline: Option<Instant>,
}

#[derive(Default)]
pub struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    static_members: HashMap<String, String>,
    target: BTreeMap<String, Assignment>,
    /// Subscribed topics (by id) with their partition counts when the group epoch was last set, to
    /// notice new partitions or topics (a metadata change is a reason to reassign).
    subscribed_metadata: BTreeMap<[u8; 16], i32>,
    assignor: Option<String>,
}

fn to_assignment(partitions: &TopicIdPartitions) -> Assignment {
    partitions
        .iter()
        .map(|(topic, indexes)| (*topic, indexes.iter().copied().collect()))
        .filter(|(_, indexes): &([u8; 16], BTreeSet<i32>)| !indexes.is_empty())
        .collect()
}

fn to_wire(assignment: &Assignment) -> TopicIdPartitions {
    assignment
        .iter()
        .filter(|(_, partitions)| !partitions.is_empty())
        .map(|(topic, partitions)| (*topic, partitions.iter().copied().collect()))
        .collect()
}

fn intersects(left: &Assignment, right: &Assignment) -> bool {
    left.iter().any(|(topic, partitions)| {
        right
            .get(topic)
            .is_some_and(|other| !partitions.is_disjoint(other))
    })
}

fn minus(left: &Assignment, right: &Assignment) -> Assignment {
    left.iter()
        .map(|(topic, partitions)| {
            let rest: BTreeSet<i32> = match right.get(topic) {
                Some(other) => partitions.difference(other).copied().collect(),
                None => partitions.clone(),
            };
            (*topic, rest)
        })
        .filter(|(_, rest)| !rest.is_empty())
        .collect()
}

fn intersection(left: &Assignment, right: &Assignment) -> Assignment {
    left.iter()
        .filter_map(|(topic, partitions)| {
            let other = right.get(topic)?;
            let both: BTreeSet<i32> = partitions.intersection(other).copied().collect();
            (!both.is_empty()).then_some((*topic, both))
        })
        .collect()
}

fn compile_regex(pattern: &str) -> Result<regex::Regex, GroupError> {
    if pattern.len() > REGEX_BYTES_MAX {
        return Err(GroupError::InvalidRegularExpression(
            "longer than the limit".into(),
        ));
    }
    // Kafka matches the whole topic name (Java's Matcher.matches), so anchor both ends.
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_COMPILED_BYTES_MAX)
        .build()
        .map_err(|error| GroupError::InvalidRegularExpression(error.to_string()))
}

impl ConsumerMember {
    /// The topic ids this member subscribes to that exist now.
    fn resolved_topics(&self, catalog: &Catalog) -> BTreeSet<[u8; 16]> {
        let mut topics: BTreeSet<[u8; 16]> = self
            .subscribed_names
            .iter()
            .filter_map(|name| catalog.topic(name).map(|topic| topic.id))
            .collect();
        if let Some((_, regex)) = &self.subscribed_regex {
            topics.extend(
                catalog
                    .topics()
                    .values()
                    .filter(|topic| regex.is_match(&topic.name))
                    .map(|topic| topic.id),
            );
        }
        topics
    }

    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscribed_names.iter().any(|name| name == topic)
            || self
                .subscribed_regex
                .as_ref()
                .is_some_and(|(_, regex)| regex.is_match(topic))
    }
}

impl ConsumerGroup {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.members
            .values()
            .any(|member| member.subscribes_to(topic))
    }

    /// Kafka's state names for KIP-848 groups.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|member| {
            member.member_epoch != self.assignment_epoch || member.state != MemberState::Stable
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Validates the member's identity and epoch (OffsetCommit, OffsetFetch).
    pub fn validate_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), GroupError> {
        let member = self
            .members
            .get(member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        if epoch != member.member_epoch {
            return Err(GroupError::StaleMemberEpoch);
        }
        Ok(())
    }

    pub fn heartbeat(
        &mut self,
        work: ConsumerHeartbeatWork,
        catalog: &Catalog,
        now: Instant,
        config: &GroupConfig,
        timers: &mut Scheduled,
    ) -> Result<ConsumerHeartbeatAnswer, GroupError> {
        let regex = validate(&work)?;
        if work.member_epoch == LEAVE_EPOCH || work.member_epoch == LEAVE_STATIC_EPOCH {
            return self.leave(&work);
        }
        let joining = work.member_epoch == 0;
        let member_id = if joining {
            self.join(&work, now)?
        } else {
            self.check_epoch(&work)?;
            work.member_id.clone()
        };
        let Some(member) = self.members.get_mut(&member_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        let before = (member.member_epoch, member.assigned.clone());
        member.session_deadline = now + Duration::from_millis(config.consumer_session_timeout_ms);
        // One entry per heartbeat: stale ones find a later deadline and lapse, so a member has at
        // most session timeout / heartbeat interval entries (9 with Kafka's defaults).
        timers.push((
            member.session_deadline,
            TimerKind::ConsumerSession(member_id.clone()),
        ));
        let mut subscription_changed = false;
        if let Some(names) = work.subscribed_topic_names {
            subscription_changed |= member.subscribed_names != names;
            member.subscribed_names = names;
        }
        if let Some(pattern) = work.subscribed_topic_regex {
            let changed = member
                .subscribed_regex
                .as_ref()
                .is_none_or(|(old, _)| *old != pattern);
            if changed {
                member.subscribed_regex = regex.map(|regex| (pattern, regex));
                subscription_changed = true;
            }
        }
        if work.server_assignor.is_some() {
            member.server_assignor = work.server_assignor;
        }
        if work.rebalance_timeout_ms > 0 {
            member.rebalance_timeout_ms = work.rebalance_timeout_ms;
        }
        if work.rack_id.is_some() {
            member.rack_id = work.rack_id;
        }
        let owned = work.owned.as_ref().map(to_assignment);
        if subscription_changed {
            self.group_epoch += 1;
        }
        self.refresh_metadata(catalog);
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(catalog);
        }
        self.reconcile(&member_id, owned.as_ref(), now, timers);
        let member = self
            .members
            .get(&member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        let changed = before != (member.member_epoch, member.assigned.clone());
        let stale_owner = owned
            .as_ref()
            .is_some_and(|owned| member.state == MemberState::Stable && *owned != member.assigned);
        Ok(ConsumerHeartbeatAnswer {
            member_id,
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: config.consumer_heartbeat_interval_ms as i32,
            assignment: (joining || changed || stale_owner).then(|| to_wire(&member.assigned)),
        })
    }

    fn leave(
        &mut self,
        work: &ConsumerHeartbeatWork,
    ) -> Result<ConsumerHeartbeatAnswer, GroupError> {
        let member_id = match (
            &work.instance_id,
            self.members.contains_key(&work.member_id),
        ) {
            (_, true) => work.member_id.clone(),
            (Some(instance_id), false) => self
                .static_members
                .get(instance_id)
                .cloned()
                .ok_or(GroupError::UnknownMemberId)?,
            (None, false) => return Err(GroupError::UnknownMemberId),
        };
        if work.member_epoch == LEAVE_STATIC_EPOCH && work.instance_id.is_some() {
            // A static member stepping away keeps its partitions until its session expires or it
            // comes back under the same instance id.
            if let Some(member) = self.members.get_mut(&member_id) {
                // Remembered so the returning member resumes at the same epoch.
                member.previous_member_epoch = member.member_epoch;
                member.member_epoch = LEAVE_STATIC_EPOCH;
            }
        } else {
            self.remove_member(&member_id);
        }
        Ok(ConsumerHeartbeatAnswer {
            member_id,
            member_epoch: work.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        })
    }

    /// A member joining (epoch 0): new, rejoining after being fenced, or a static member returning
    /// under a new member id. Returns the member's id.
    fn join(&mut self, work: &ConsumerHeartbeatWork, now: Instant) -> Result<String, GroupError> {
        let member_id = if work.member_id.is_empty() {
            new_member_id(&work.client_id)
        } else {
            work.member_id.clone()
        };
        if let Some(instance_id) = &work.instance_id {
            if let Some(old_id) = self.static_members.get(instance_id).cloned() {
                if old_id != member_id {
                    let active = self
                        .members
                        .get(&old_id)
                        .is_some_and(|old| old.member_epoch != LEAVE_STATIC_EPOCH);
                    if active {
                        return Err(GroupError::UnreleasedInstanceId);
                    }
                    // The returning static member inherits the old one's epoch and partitions: no
                    // rebalance.
                    if let Some(mut member) = self.members.remove(&old_id) {
                        member.member_id = member_id.clone();
                        member.member_epoch = member.previous_member_epoch.max(0);
                        if let Some(target) = self.target.remove(&old_id) {
                            self.target.insert(member_id.clone(), target);
                        }
                        self.members.insert(member_id.clone(), member);
                    }
                    self.static_members
                        .insert(instance_id.clone(), member_id.clone());
                }
                if let Some(member) = self.members.get_mut(&member_id) {
                    if member.member_epoch == LEAVE_STATIC_EPOCH {
                        member.member_epoch = member.previous_member_epoch.max(0);
                    }
                }
            }
        }
        if !self.members.contains_key(&member_id) {
            let member = ConsumerMember {
                member_id: member_id.clone(),
                instance_id: work.instance_id.clone(),
                rack_id: work.rack_id.clone(),
                client_id: work.client_id.clone(),
                client_host: work.client_host.clone(),
                member_epoch: 0,
                previous_member_epoch: 0,
                state: MemberState::Stable,
                rebalance_timeout_ms: work.rebalance_timeout_ms,
                subscribed_names: Vec::new(),
                subscribed_regex: None,
                server_assignor: None,
                assigned: Assignment::new(),
                pending_revocation: Assignment::new(),
                session_deadline: now,
                revocation_deadline: None,
            };
            self.members.insert(member_id.clone(), member);
            if let Some(instance_id) = &work.instance_id {
                self.static_members
                    .insert(instance_id.clone(), member_id.clone());
            }
            self.group_epoch += 1;
        }
        Ok(member_id)
    }

    fn check_epoch(&self, work: &ConsumerHeartbeatWork) -> Result<(), GroupError> {
        let member = self
            .members
            .get(&work.member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        if work.member_epoch == member.member_epoch {
            return Ok(());
        }
        // A member that missed our last answer still sends its previous epoch; Kafka accepts it when
        // what it owns is a subset of what it was given.
        let owned_within = work
            .owned
            .as_ref()
            .is_some_and(|owned| minus(&to_assignment(owned), &member.assigned).is_empty());
        if work.member_epoch == member.previous_member_epoch && owned_within {
            return Ok(());
        }
        Err(GroupError::FencedMemberEpoch)
    }

    /// Bumps the group epoch when the subscribed topics or their partition counts changed.
    fn refresh_metadata(&mut self, catalog: &Catalog) {
        let mut metadata = BTreeMap::new();
        for member in self.members.values() {
            for topic in member.resolved_topics(catalog) {
                if let Some(info) = catalog.topic_by_id(&topic) {
                    metadata.insert(topic, info.partitions);
                }
            }
        }
        if metadata != self.subscribed_metadata {
            self.subscribed_metadata = metadata;
            self.group_epoch += 1;
        }
    }

    fn compute_target(&mut self, catalog: &Catalog) {
        let assignor = self
            .members
            .values()
            .find_map(|member| member.server_assignor.clone())
            .unwrap_or_else(|| assignor::UNIFORM.to_string());
        let resolved: Vec<(String, BTreeSet<[u8; 16]>)> = self
            .members
            .values()
            .map(|member| (member.member_id.clone(), member.resolved_topics(catalog)))
            .collect();
        let specs: Vec<MemberSpec<'_>> = resolved
            .iter()
            .map(|(member_id, topics)| MemberSpec {
                member_id,
                topics,
                previous: self.target.get(member_id),
            })
            .collect();
        let target = assignor::assign(&assignor, &specs, &self.subscribed_metadata);
        self.target = target;
        self.assignor = Some(assignor);
        self.assignment_epoch = self.group_epoch;
    }

    /// Moves one member towards the target (see the module comment).
    fn reconcile(
        &mut self,
        member_id: &str,
        owned: Option<&Assignment>,
        now: Instant,
        timers: &mut Scheduled,
    ) {
        let held_by_others: Assignment = {
            let mut held = Assignment::new();
            for other in self.members.values().filter(|m| m.member_id != member_id) {
                for source in [&other.assigned, &other.pending_revocation] {
                    for (topic, partitions) in source {
                        held.entry(*topic).or_default().extend(partitions);
                    }
                }
            }
            held
        };
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        let Some(member) = self.members.get_mut(member_id) else {
            return;
        };
        if member.state == MemberState::Unrevoked {
            let released =
                owned.is_some_and(|owned| !intersects(owned, &member.pending_revocation));
            if !released {
                return;
            }
            member.pending_revocation.clear();
            member.revocation_deadline = None;
            member.state = MemberState::Stable;
        }
        if member.member_epoch == assignment_epoch && member.state == MemberState::Stable {
            return;
        }
        let revoke = minus(&member.assigned, &target);
        if !revoke.is_empty() {
            member.assigned = intersection(&member.assigned, &target);
            member.pending_revocation = revoke;
            member.state = MemberState::Unrevoked;
            let deadline = now
                + Duration::from_millis(u64::try_from(member.rebalance_timeout_ms).unwrap_or(0));
            member.revocation_deadline = Some(deadline);
            timers.push((
                deadline,
                TimerKind::ConsumerRevocation(member_id.to_string()),
            ));
            return;
        }
        let wanted = minus(&target, &member.assigned);
        let free = minus(&wanted, &held_by_others);
        for (topic, partitions) in &free {
            member
                .assigned
                .entry(*topic)
                .or_default()
                .extend(partitions);
        }
        if member.member_epoch != assignment_epoch {
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = assignment_epoch;
        }
        member.state = if minus(&wanted, &free).is_empty() {
            MemberState::Stable
        } else {
            MemberState::Unreleased
        };
    }

    fn remove_member(&mut self, member_id: &str) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(instance_id) = &member.instance_id {
            if self.static_members.get(instance_id).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance_id);
            }
        }
        self.target.remove(member_id);
        self.group_epoch += 1;
    }

    pub fn on_timer(&mut self, kind: &TimerKind, now: Instant) {
        match kind {
            TimerKind::ConsumerSession(member_id) => {
                let expired = self
                    .members
                    .get(member_id)
                    .is_some_and(|member| member.session_deadline <= now);
                if expired {
                    log::info!("consumer member {member_id} session expired");
                    self.remove_member(member_id);
                }
            }
            TimerKind::ConsumerRevocation(member_id) => {
                let expired = self.members.get(member_id).is_some_and(|member| {
                    member.state == MemberState::Unrevoked
                        && member
                            .revocation_deadline
                            .is_some_and(|deadline| deadline <= now)
                });
                if expired {
                    log::info!("consumer member {member_id} did not revoke in time; fencing it");
                    self.remove_member(member_id);
                }
            }
            _ => {}
        }
    }

    pub fn describe(&self, group_id: &str) -> ConsumerGroupDescription {
        let members = self
            .members
            .values()
            .map(|member| ConsumerMemberDescription {
                member_id: member.member_id.clone(),
                instance_id: member.instance_id.clone(),
                rack_id: member.rack_id.clone(),
                member_epoch: member.member_epoch,
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                subscribed_topic_names: member.subscribed_names.clone(),
                subscribed_topic_regex: member
                    .subscribed_regex
                    .as_ref()
                    .map(|(pattern, _)| pattern.clone()),
                assignment: to_wire(&member.assigned),
                target_assignment: self
                    .target
                    .get(&member.member_id)
                    .map(to_wire)
                    .unwrap_or_default(),
            })
            .collect();
        ConsumerGroupDescription {
            group_id: group_id.to_string(),
            state: self.state_name().to_string(),
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self
                .assignor
                .clone()
                .unwrap_or_else(|| assignor::UNIFORM.to_string()),
            members,
        }
    }
}

/// Checks the request's shape (Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`) and compiles
/// a subscription regex.
fn validate(work: &ConsumerHeartbeatWork) -> Result<Option<regex::Regex>, GroupError> {
    if work.member_epoch < LEAVE_STATIC_EPOCH {
        return Err(GroupError::InvalidRequest(
            "member epoch must be >= -2".into(),
        ));
    }
    if work.member_epoch > 0 && work.member_id.is_empty() {
        return Err(GroupError::InvalidRequest("member id is required".into()));
    }
    if work.member_epoch == LEAVE_STATIC_EPOCH && work.instance_id.is_none() {
        return Err(GroupError::InvalidRequest(
            "member epoch -2 needs an instance id".into(),
        ));
    }
    if work.member_epoch == 0 {
        if work.rebalance_timeout_ms <= 0 {
            return Err(GroupError::InvalidRequest(
                "rebalance timeout is required when joining".into(),
            ));
        }
        if work.subscribed_topic_names.is_none() && work.subscribed_topic_regex.is_none() {
            return Err(GroupError::InvalidRequest(
                "a subscription is required when joining".into(),
            ));
        }
    }
    if let Some(assignor) = &work.server_assignor {
        if !assignor::ASSIGNORS.contains(&assignor.as_str()) {
            return Err(GroupError::UnsupportedAssignor(assignor.clone()));
        }
    }
    work.subscribed_topic_regex
        .as_deref()
        .map(compile_regex)
        .transpose()
}
