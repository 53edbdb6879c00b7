//! The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup): one group's membership
//! state machine, following Kafka's `ClassicGroup` and `GroupMetadataManager`.
//!
//! Owns: states (Empty → PreparingRebalance → CompletingRebalance → Stable), members and their
//! session deadlines, generations, protocol selection, static membership, the parked JoinGroup and
//! SyncGroup answers (local channels the shard's request tasks wait on). Never: I/O, timers (it only
//! asks for them through `Scheduled`), offsets, or awaiting: every method is synchronous, so no
//! `RefCell` borrow of the group can be held across an `.await`.
//!
//! Assignment is the clients' business: the leader computes it (eager or cooperative-sticky alike)
//! and the coordinator only forwards bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use super::{new_member_id, GroupConfig, Scheduled, TimerKind};
use crate::mesh::{
    GroupError, HeartbeatWork, JoinAnswer, JoinWork, JoinedMember, MemberDescription, SyncAnswer,
    SyncWork,
};

/// Most members in one group; Kafka's group.max.size default is effectively unbounded
/// (Integer.MAX_VALUE), but every member costs memory and a share of each rebalance's work, so we cap
/// it well above any consumer group we know of.
pub const MEMBERS_PER_GROUP_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl ClassicState {
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
        }
    }
}

pub struct ClassicMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub subscribed_topics: Option<Vec<String>>,
    pub assignment: Bytes,
    join_waiter: Option<LocalSender<JoinAnswer>>,
    sync_waiter: Option<LocalSender<Result<SyncAnswer, GroupError>>>,
    /// Joined in this generation and has not sent SyncGroup yet.
    awaiting_sync: bool,
    pub session_deadline: Instant,
    /// Whether a session timer entry exists for this member (at most one at a time).
    pub session_timer_armed: bool,
}

/// What a JoinGroup or SyncGroup gets: an answer now, or a channel the answer will arrive on.
pub enum Parked<T> {
    Now(T),
    Later(LocalReceiver<T>),
}

pub struct ClassicGroup {
    pub state: ClassicState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, ClassicMember>,
    /// Member ids handed out with MEMBER_ID_REQUIRED and not yet used, with their expiry.
    pending_members: BTreeMap<String, Instant>,
    /// group.instance.id → member id.
    static_members: HashMap<String, String>,
    join_deadline: Option<Instant>,
    join_deadline_max: Option<Instant>,
    /// The current rebalance started from Empty: it waits group.initial.rebalance.delay.ms for more
    /// members, extended per new member up to the rebalance timeout.
    initial_delay: bool,
}

impl Default for ClassicGroup {
    fn default() -> Self {
        ClassicGroup {
            state: ClassicState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            static_members: HashMap::new(),
            join_deadline: None,
            join_deadline_max: None,
            initial_delay: false,
        }
    }
}

fn error_answer(error: GroupError, member_id: &str) -> JoinAnswer {
    JoinAnswer {
        error: Some(error),
        generation_id: -1,
        member_id: member_id.to_string(),
        ..JoinAnswer::default()
    }
}

fn millis(value: i32) -> Duration {
    Duration::from_millis(u64::try_from(value).unwrap_or(0))
}

impl ClassicGroup {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    /// Topics any member subscribes to, when every member's subscription is known.
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(member.subscribed_topics.as_ref()?.iter().cloned());
        }
        Some(topics)
    }

    pub fn join(
        &mut self,
        work: JoinWork,
        now: Instant,
        config: &GroupConfig,
        timers: &mut Scheduled,
    ) -> Parked<JoinAnswer> {
        if !self.supports(&work.protocol_type, &work.protocols) {
            return Parked::Now(error_answer(
                GroupError::InconsistentGroupProtocol,
                &work.member_id,
            ));
        }
        if work.member_id.is_empty() {
            return self.join_new_member(work, now, config, timers);
        }
        if self.pending_members.remove(&work.member_id).is_some() {
            return self.add_member(work.member_id.clone(), work, now, config, timers);
        }
        if let Err(error) = self.validate_member(&work.member_id, work.group_instance_id.as_deref())
        {
            return Parked::Now(error_answer(error, &work.member_id));
        }
        self.join_existing_member(work, now, config, timers)
    }

    fn join_new_member(
        &mut self,
        work: JoinWork,
        now: Instant,
        config: &GroupConfig,
        timers: &mut Scheduled,
    ) -> Parked<JoinAnswer> {
        let member_id = new_member_id(&work.client_id);
        if let Some(instance_id) = &work.group_instance_id {
            if let Some(old_id) = self.static_members.get(instance_id).cloned() {
                return self.replace_static_member(old_id, member_id, work, now, config, timers);
            }
            return self.add_member(member_id, work, now, config, timers);
        }
        if self.members.len() + self.pending_members.len() >= MEMBERS_PER_GROUP_MAX {
            return Parked::Now(error_answer(GroupError::GroupMaxSizeReached, ""));
        }
        if work.member_id_required {
            let deadline = now + millis(work.session_timeout_ms);
            self.pending_members.insert(member_id.clone(), deadline);
            timers.push((deadline, TimerKind::ClassicPending(member_id.clone())));
            return Parked::Now(error_answer(GroupError::MemberIdRequired, &member_id));
        }
        self.add_member(member_id, work, now, config, timers)
    }

    fn add_member(
        &mut self,
        member_id: String,
        work: JoinWork,
        now: Instant,
        config: &GroupConfig,
        timers: &mut Scheduled,
    ) -> Parked<JoinAnswer> {
        if self.members.len() >= MEMBERS_PER_GROUP_MAX {
            return Parked::Now(error_answer(GroupError::GroupMaxSizeReached, &member_id));
        }
        let (sender, receiver) = local_channel::new_bounded(1);
        let member = ClassicMember {
            member_id: member_id.clone(),
            group_instance_id: work.group_instance_id.clone(),
            client_id: work.client_id,
            client_host: work.client_host,
            session_timeout_ms: work.session_timeout_ms,
            rebalance_timeout_ms: work.rebalance_timeout_ms,
            protocol_type: work.protocol_type,
            protocols: work.protocols,
            subscribed_topics: work.subscribed_topics,
            assignment: Bytes::new(),
            join_waiter: Some(sender),
            sync_waiter: None,
            awaiting_sync: false,
            // A new member's session starts when its join completes; until then the rebalance
            // timeout bounds how long it can hold the group.
            session_deadline: now + millis(work.rebalance_timeout_ms.max(work.session_timeout_ms)),
            session_timer_armed: false,
        };
        if let Some(instance_id) = &member.group_instance_id {
            self.static_members
                .insert(instance_id.clone(), member_id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        self.members.insert(member_id, member);
        if self.state == ClassicState::PreparingRebalance && self.initial_delay {
            self.extend_initial_delay(now, config, timers);
        }
        self.maybe_prepare_rebalance(now, config, timers);
        self.check_join_complete(now, timers);
        Parked::Later(receiver)
    }

    fn replace_static_member(
        &mut self,
        old_id: String,
        new_id: String,
        work: JoinWork,
        now: Instant,
        config: &GroupConfig,
        timers: &mut Scheduled,
    ) -> Parked<JoinAnswer> {
        let Some(mut member) = self.members.remove(&old_id) else {
            // The mapping always names a member; recover rather than trust it.
            self.static_members
                .remove(work.group_instance_id.as_deref().unwrap_or(""));
            return self.add_member(new_id, work, now, config, timers);
        };
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.try_send(error_answer(GroupError::FencedInstanceId, &old_id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.try_send(Err(GroupError::FencedInstanceId));
        }
        let old_leader = self.leader.clone();
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        let protocols_unchanged = member.protocols == work.protocols;
        member.member_id = new_id.clone();
        member.protocols = work.protocols;
        member.subscribed_topics = work.subscribed_topics;
        member.session_timeout_ms = work.session_timeout_ms;
        member.rebalance_timeout_ms = work.rebalance_timeout_ms;
        member.client_id = work.client_id;
        member.client_host = work.client_host;
        member.session_deadline = now + millis(member.session_timeout_ms);
        // The old id's timer entry finds no member and lapses; the new id needs its own.
        member.session_timer_armed = false;
        if let Some(instance_id) = &member.group_instance_id {
            self.static_members
                .insert(instance_id.clone(), new_id.clone());
        }
        let still_selected = self.protocol_name.as_ref().is_some_and(|name| {
            member
                .protocols
                .iter()
                .any(|(protocol, _)| protocol == name)
        });
        if self.state == ClassicState::Stable && (protocols_unchanged || still_selected) {
            // Kafka's static-member fast path: no rebalance. The old leader id is returned so a
            // rejoining leader does not recompute an assignment a stable group would not send.
            let answer = JoinAnswer {
                error: None,
                generation_id: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol_name.clone(),
                leader: old_leader.unwrap_or_default(),
                member_id: new_id.clone(),
                members: Vec::new(),
            };
            self.members.insert(new_id.clone(), member);
            self.arm_session(&new_id, timers);
            return Parked::Now(answer);
        }
        let (sender, receiver) = local_channel::new_bounded(1);
        member.join_waiter = Some(sender);
        self.members.insert(new_id, member);
        self.maybe_prepare_rebalance(now, config, timers);
        self.check_join_complete(now, timers);
        Parked::Later(receiver)
    }

    fn join_existing_member(
        &mut self,
        work: JoinWork,
        now: Instant,
        config: &GroupConfig,
        timers: &mut Scheduled,
    ) -> Parked<JoinAnswer> {
        let member_id = work.member_id.clone();
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        let Some(member) = self.members.get_mut(&member_id) else {
            return Parked::Now(error_answer(GroupError::UnknownMemberId, &member_id));
        };
        let unchanged = member.protocols == work.protocols;
        member.session_deadline = now + millis(work.session_timeout_ms);
        let answer_now = match self.state {
            ClassicState::CompletingRebalance => unchanged,
            ClassicState::Stable => unchanged && !is_leader,
            ClassicState::PreparingRebalance | ClassicState::Empty => false,
        };
        if answer_now {
            return Parked::Now(self.join_answer(&member_id));
        }
        member.protocols = work.protocols;
        member.subscribed_topics = work.subscribed_topics;
        member.session_timeout_ms = work.session_timeout_ms;
        member.rebalance_timeout_ms = work.rebalance_timeout_ms;
        let (sender, receiver) = local_channel::new_bounded(1);
        // A second join from the same member replaces the first; the first's task sees its channel
        // close and answers REBALANCE_IN_PROGRESS, after which the client rejoins.
        member.join_waiter = Some(sender);
        self.maybe_prepare_rebalance(now, config, timers);
        self.check_join_complete(now, timers);
        Parked::Later(receiver)
    }

    pub fn sync(&mut self, work: SyncWork, now: Instant) -> Parked<Result<SyncAnswer, GroupError>> {
        if let Err(error) = self.validate_member(&work.member_id, work.group_instance_id.as_deref())
        {
            return Parked::Now(Err(error));
        }
        if work.generation_id != self.generation {
            return Parked::Now(Err(GroupError::IllegalGeneration));
        }
        let type_mismatch = work
            .protocol_type
            .as_ref()
            .is_some_and(|protocol_type| Some(protocol_type) != self.protocol_type.as_ref());
        let name_mismatch = work
            .protocol_name
            .as_ref()
            .is_some_and(|name| Some(name) != self.protocol_name.as_ref());
        if type_mismatch || name_mismatch {
            return Parked::Now(Err(GroupError::InconsistentGroupProtocol));
        }
        match self.state {
            ClassicState::Empty => Parked::Now(Err(GroupError::UnknownMemberId)),
            ClassicState::PreparingRebalance => Parked::Now(Err(GroupError::RebalanceInProgress)),
            ClassicState::Stable => {
                let member = self.members.get_mut(&work.member_id);
                let assignment = member.map(|member| {
                    member.session_deadline = now + millis(member.session_timeout_ms);
                    member.assignment.clone()
                });
                Parked::Now(Ok(self.sync_answer(assignment.unwrap_or_default())))
            }
            ClassicState::CompletingRebalance => {
                let (sender, receiver) = local_channel::new_bounded(1);
                if let Some(member) = self.members.get_mut(&work.member_id) {
                    member.sync_waiter = Some(sender);
                    member.awaiting_sync = false;
                    member.session_deadline = now + millis(member.session_timeout_ms);
                }
                if self.leader.as_deref() == Some(work.member_id.as_str()) {
                    self.complete_sync(work.assignments);
                }
                Parked::Later(receiver)
            }
        }
    }

    /// The leader's assignment arrived: store it, answer every parked SyncGroup, become Stable.
    fn complete_sync(&mut self, assignments: Vec<(String, Bytes)>) {
        let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
        for member in self.members.values_mut() {
            member.assignment = by_member.remove(&member.member_id).unwrap_or_default();
        }
        self.state = ClassicState::Stable;
        let protocol_type = self.protocol_type.clone();
        let protocol_name = self.protocol_name.clone();
        for member in self.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.try_send(Ok(SyncAnswer {
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment: member.assignment.clone(),
                }));
            }
        }
    }

    pub fn heartbeat(&mut self, work: &HeartbeatWork, now: Instant) -> Result<(), GroupError> {
        self.validate_member(&work.member_id, work.group_instance_id.as_deref())?;
        if work.generation_id != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        let member = self
            .members
            .get_mut(&work.member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        member.session_deadline = now + millis(member.session_timeout_ms);
        match self.state {
            ClassicState::Empty => Err(GroupError::UnknownMemberId),
            ClassicState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            ClassicState::CompletingRebalance | ClassicState::Stable => Ok(()),
        }
    }

    /// Removes each leaving member (by member id, or by instance id for static members).
    pub fn leave(
        &mut self,
        members: &[(String, Option<String>, Option<String>)],
        now: Instant,
        config: &GroupConfig,
        timers: &mut Scheduled,
    ) -> Vec<Result<(), GroupError>> {
        let mut removed_any = false;
        let results = members
            .iter()
            .map(|(member_id, instance_id, _reason)| {
                let target = match instance_id {
                    Some(instance_id) => match self.static_members.get(instance_id) {
                        None => return Err(GroupError::UnknownMemberId),
                        Some(known) if !member_id.is_empty() && known != member_id => {
                            return Err(GroupError::FencedInstanceId)
                        }
                        Some(known) => known.clone(),
                    },
                    None => member_id.clone(),
                };
                if self.pending_members.remove(&target).is_some() {
                    removed_any = true;
                    return Ok(());
                }
                if !self.members.contains_key(&target) {
                    return Err(GroupError::UnknownMemberId);
                }
                self.remove_member(&target);
                removed_any = true;
                Ok(())
            })
            .collect();
        if removed_any {
            self.maybe_prepare_rebalance(now, config, timers);
            self.check_join_complete(now, timers);
        }
        results
    }

    /// A timer fired for this group; stale timers (the deadline moved) re-arm or do nothing.
    pub fn on_timer(
        &mut self,
        kind: &TimerKind,
        now: Instant,
        config: &GroupConfig,
        timers: &mut Scheduled,
    ) {
        match kind {
            TimerKind::ClassicSession(member_id) => {
                let Some(member) = self.members.get_mut(member_id) else {
                    return;
                };
                // A member parked in JoinGroup or SyncGroup cannot heartbeat; the rebalance and
                // sync timeouts bound it instead.
                if member.join_waiter.is_some() || member.sync_waiter.is_some() {
                    member.session_deadline = now + millis(member.session_timeout_ms);
                }
                if member.session_deadline > now {
                    timers.push((
                        member.session_deadline,
                        TimerKind::ClassicSession(member_id.clone()),
                    ));
                    return;
                }
                log::info!("classic member {member_id} session expired");
                self.remove_member(member_id);
                self.maybe_prepare_rebalance(now, config, timers);
                self.check_join_complete(now, timers);
            }
            TimerKind::ClassicPending(member_id) => {
                let expired = self
                    .pending_members
                    .get(member_id)
                    .is_some_and(|deadline| *deadline <= now);
                if expired {
                    self.pending_members.remove(member_id);
                    self.check_join_complete(now, timers);
                }
            }
            TimerKind::ClassicJoin => {
                let due = self.join_deadline.is_some_and(|deadline| deadline <= now);
                if self.state == ClassicState::PreparingRebalance && due {
                    self.complete_join(now, timers);
                }
            }
            TimerKind::ClassicSync(generation) => {
                if self.state != ClassicState::CompletingRebalance || *generation != self.generation
                {
                    return;
                }
                // Members that never sent SyncGroup within the rebalance timeout are gone.
                let missing: Vec<String> = self
                    .members
                    .values()
                    .filter(|member| member.awaiting_sync)
                    .map(|member| member.member_id.clone())
                    .collect();
                for member_id in &missing {
                    self.remove_member(member_id);
                }
                self.prepare_rebalance(now, config, timers);
                self.check_join_complete(now, timers);
            }
            _ => {}
        }
    }

    pub fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        if let Some(instance_id) = instance_id {
            return match self.static_members.get(instance_id) {
                None => Err(GroupError::UnknownMemberId),
                Some(known) if known != member_id => Err(GroupError::FencedInstanceId),
                Some(_) => Ok(()),
            };
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        }
    }

    /// Whether a member with these protocols may join: the type must match the group's and at least
    /// one protocol must be supported by every current member.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        // Members that joined in this rebalance set the type before the group records it.
        let group_type = self
            .members
            .values()
            .next()
            .map(|member| member.protocol_type.as_str());
        if group_type != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols
            .iter()
            .any(|(name, _)| candidates.contains(name.as_str()))
    }

    /// Protocol names every member supports.
    fn candidate_protocols(&self) -> BTreeSet<&str> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return BTreeSet::new();
        };
        let mut candidates: BTreeSet<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        for member in members {
            let supported: BTreeSet<&str> = member
                .protocols
                .iter()
                .map(|(name, _)| name.as_str())
                .collect();
            candidates.retain(|name| supported.contains(name));
        }
        candidates
    }

    /// Kafka's vote: each member votes for its most preferred candidate; most votes wins (ties go
    /// to the name that sorts first, so the choice is deterministic).
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(name.as_str()))
            {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        votes
            .into_iter()
            .find(|(_, count)| *count == best)
            .map(|(name, _)| name.to_string())
    }

    fn remove_member(&mut self, member_id: &str) {
        let Some(mut member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(instance_id) = &member.group_instance_id {
            if self.static_members.get(instance_id).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance_id);
            }
        }
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.try_send(error_answer(GroupError::UnknownMemberId, member_id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.try_send(Err(GroupError::UnknownMemberId));
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    fn maybe_prepare_rebalance(
        &mut self,
        now: Instant,
        config: &GroupConfig,
        timers: &mut Scheduled,
    ) {
        if matches!(
            self.state,
            ClassicState::Stable | ClassicState::CompletingRebalance | ClassicState::Empty
        ) {
            self.prepare_rebalance(now, config, timers);
        }
    }

    fn prepare_rebalance(&mut self, now: Instant, config: &GroupConfig, timers: &mut Scheduled) {
        if self.state == ClassicState::CompletingRebalance {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.try_send(Err(GroupError::RebalanceInProgress));
                }
            }
        }
        let rebalance_timeout = millis(
            self.members
                .values()
                .map(|member| member.rebalance_timeout_ms)
                .max()
                .unwrap_or(0),
        );
        self.initial_delay = self.state == ClassicState::Empty;
        self.state = ClassicState::PreparingRebalance;
        let deadline_max = now + rebalance_timeout;
        let deadline = if self.initial_delay {
            (now + Duration::from_millis(config.initial_rebalance_delay_ms)).min(deadline_max)
        } else {
            deadline_max
        };
        self.join_deadline = Some(deadline);
        self.join_deadline_max = Some(deadline_max);
        timers.push((deadline, TimerKind::ClassicJoin));
    }

    fn extend_initial_delay(&mut self, now: Instant, config: &GroupConfig, timers: &mut Scheduled) {
        let (Some(deadline), Some(deadline_max)) = (self.join_deadline, self.join_deadline_max)
        else {
            return;
        };
        let extended = (now + Duration::from_millis(config.initial_rebalance_delay_ms))
            .min(deadline_max)
            .max(deadline);
        if extended > deadline {
            self.join_deadline = Some(extended);
            timers.push((extended, TimerKind::ClassicJoin));
        }
    }

    /// Completes the join phase as soon as every member has rejoined (outside the initial delay).
    fn check_join_complete(&mut self, now: Instant, timers: &mut Scheduled) {
        if self.state != ClassicState::PreparingRebalance || self.initial_delay {
            return;
        }
        let all_joined = self.pending_members.is_empty()
            && self
                .members
                .values()
                .all(|member| member.join_waiter.is_some());
        if all_joined {
            self.complete_join(now, timers);
        }
    }

    fn complete_join(&mut self, now: Instant, timers: &mut Scheduled) {
        // Dynamic members that did not rejoin in time leave the group; static ones keep their place.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|member| member.join_waiter.is_none() && member.group_instance_id.is_none())
            .map(|member| member.member_id.clone())
            .collect();
        for member_id in &gone {
            self.remove_member(member_id);
        }
        // Pending members (given an id, not yet back) stay pending: they join the next rebalance, or
        // their own timer drops them.
        self.join_deadline = None;
        self.join_deadline_max = None;
        self.initial_delay = false;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = ClassicState::Empty;
            self.protocol_name = None;
            self.leader = None;
            return;
        }
        self.protocol_type = self
            .members
            .values()
            .next()
            .map(|member| member.protocol_type.clone());
        self.protocol_name = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|leader| self.members.contains_key(leader))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = ClassicState::CompletingRebalance;
        let sync_timeout = self
            .members
            .values()
            .map(|member| member.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        timers.push((
            now + millis(sync_timeout),
            TimerKind::ClassicSync(self.generation),
        ));
        let member_ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in member_ids {
            let answer = self.join_answer(&member_id);
            let Some(member) = self.members.get_mut(&member_id) else {
                continue;
            };
            member.awaiting_sync = true;
            member.session_deadline = now + millis(member.session_timeout_ms);
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.try_send(answer);
            }
            self.arm_session(&member_id, timers);
        }
    }

    fn arm_session(&mut self, member_id: &str, timers: &mut Scheduled) {
        if let Some(member) = self.members.get_mut(member_id) {
            if !member.session_timer_armed {
                member.session_timer_armed = true;
                timers.push((
                    member.session_deadline,
                    TimerKind::ClassicSession(member_id.to_string()),
                ));
            }
        }
    }

    /// The JoinGroup answer for the current generation: the leader sees every member's metadata.
    fn join_answer(&self, member_id: &str) -> JoinAnswer {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|member| JoinedMember {
                    member_id: member.member_id.clone(),
                    group_instance_id: member.group_instance_id.clone(),
                    metadata: self.metadata_for(member),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinAnswer {
            error: None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    fn metadata_for(&self, member: &ClassicMember) -> Bytes {
        let Some(name) = &self.protocol_name else {
            return Bytes::new();
        };
        member
            .protocols
            .iter()
            .find(|(protocol, _)| protocol == name)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    fn sync_answer(&self, assignment: Bytes) -> SyncAnswer {
        SyncAnswer {
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// Members as DescribeGroups shows them: metadata and assignment only when Stable, as Kafka does.
    pub fn describe_members(&self) -> Vec<MemberDescription> {
        let stable = self.state == ClassicState::Stable;
        self.members
            .values()
            .map(|member| MemberDescription {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                metadata: if stable {
                    self.metadata_for(member)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    member.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect()
    }
}
