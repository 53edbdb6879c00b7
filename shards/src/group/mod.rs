//! The group coordinator of one shard: every consumer group `router::shard_for_group` gives this
//! shard, its members (classic or KIP-848 protocol), its timers and its committed offsets.
//!
//! Owns: the groups map (a plain `HashMap` behind a `RefCell`, touched only from `Shard::serve` and the
//! shard's timer task), the timer queue (one sorted map of deadlines, drained by one task that sleeps
//! until the earliest deadline or until a new one is added: no polling, an idle shard sleeps), offset
//! validation and persistence (`store.rs`), offset retention for empty groups, and parking JoinGroup
//! and SyncGroup until their rebalance step completes. Never: the Kafka wire format (handlers decode
//! and encode), another shard's groups, or holding a `RefCell` borrow across an `.await` (the state
//! machines are synchronous; only `serve` awaits, on a channel, with no borrow held).

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod store;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{error, info, warn};

use self::classic::{ClassicGroup, Parked};
use self::consumer::ConsumerGroup;
use self::store::{GroupFile, OffsetEntry, Offsets, StoredType};
use crate::catalog::Catalog;
use crate::mesh::*;
use crate::router::shard_for_group;
use crate::shard::{Notify, Shard};
use crate::time::now_ms;
use crate::ShardId;

/// How often a shard expires the offsets of groups that have been empty longer than the retention;
/// Kafka's offsets.retention.check.interval.ms default.
pub const OFFSETS_RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(600);
/// Timers handled before the timer task yields, so a burst of expiries cannot hog the reactor.
const TIMERS_PER_TICK_MAX: usize = 1024;

/// The group settings every shard shares (Kafka's broker configs of the same names).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// group.initial.rebalance.delay.ms: how long the first rebalance of an empty classic group
    /// waits for more members.
    pub initial_rebalance_delay_ms: u64,
    /// group.min.session.timeout.ms and group.max.session.timeout.ms (classic protocol).
    pub session_timeout_ms_min: i32,
    pub session_timeout_ms_max: i32,
    /// group.consumer.heartbeat.interval.ms and group.consumer.session.timeout.ms (KIP-848).
    pub consumer_heartbeat_interval_ms: u64,
    pub consumer_session_timeout_ms: u64,
    /// offsets.retention.minutes, in ms: how long an empty group's offsets are kept.
    pub offsets_retention_ms: i64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3_000,
            session_timeout_ms_min: 6_000,
            session_timeout_ms_max: 1_800_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_session_timeout_ms: 45_000,
            offsets_retention_ms: 7 * 24 * 3_600_000,
        }
    }
}

/// A deadline some group asked for; the group decides what it means when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerKind {
    ClassicSession(String),
    ClassicPending(String),
    ClassicJoin,
    ClassicSync(i32),
    ConsumerSession(String),
    ConsumerRevocation(String),
}

/// Deadlines a state machine asks for while it runs; the coordinator files them afterwards.
pub type Scheduled = Vec<(Instant, TimerKind)>;

/// A new member id: the client id (as Kafka does, to make ids readable) and a random UUID.
pub fn new_member_id(client_id: &str) -> String {
    let id = crate::catalog::random_id();
    let hex: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
    let prefix = if client_id.is_empty() {
        "member"
    } else {
        client_id
    };
    format!(
        "{prefix}-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

enum Protocol {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

struct Group {
    id: String,
    protocol: Protocol,
    offsets: Offsets,
    file: GroupFile,
    /// What the file's last header says, so a protocol change writes a new header.
    stored_type: Option<StoredType>,
    /// When the group last became empty (ms); `None` while it has members.
    empty_since_ms: Option<i64>,
}

impl Group {
    fn new(id: &str, protocol: Protocol, data_dir: &std::path::Path) -> Group {
        Group {
            id: id.to_string(),
            protocol,
            offsets: Offsets::new(),
            file: GroupFile::new(data_dir, id),
            stored_type: None,
            empty_since_ms: Some(now_ms()),
        }
    }

    fn is_empty(&self) -> bool {
        match &self.protocol {
            Protocol::Classic(group) => group.is_empty(),
            Protocol::Consumer(group) => group.is_empty(),
        }
    }

    fn group_type(&self) -> StoredType {
        match self.protocol {
            Protocol::Classic(_) => StoredType::Classic,
            Protocol::Consumer(_) => StoredType::Consumer,
        }
    }

    fn protocol_type(&self) -> String {
        match &self.protocol {
            Protocol::Classic(group) => group.protocol_type.clone().unwrap_or_default(),
            Protocol::Consumer(_) => "consumer".to_string(),
        }
    }

    fn state_name(&self) -> &'static str {
        match &self.protocol {
            Protocol::Classic(group) => group.state.name(),
            Protocol::Consumer(group) => group.state_name(),
        }
    }

    /// Records when the group became empty, for offset retention.
    fn note_emptiness(&mut self) {
        match (self.is_empty(), self.empty_since_ms) {
            (true, None) => self.empty_since_ms = Some(now_ms()),
            (false, Some(_)) => self.empty_since_ms = None,
            _ => {}
        }
    }

    fn on_timer(
        &mut self,
        kind: &TimerKind,
        now: Instant,
        config: &GroupConfig,
        timers: &mut Scheduled,
    ) {
        match &mut self.protocol {
            Protocol::Classic(group) => group.on_timer(kind, now, config, timers),
            Protocol::Consumer(group) => group.on_timer(kind, now),
        }
        self.note_emptiness();
    }

    /// Appends records to the group's file, with a header first when needed.
    fn persist(&mut self, mut records: Vec<Vec<u8>>) -> std::io::Result<()> {
        let group_type = self.group_type();
        if self.file.is_new() || self.stored_type != Some(group_type) {
            records.insert(
                0,
                store::header_record(&self.id, group_type, &self.protocol_type()),
            );
        }
        self.file.append(&records)?;
        self.stored_type = Some(group_type);
        let header = store::header_record(&self.id, group_type, &self.protocol_type());
        if let Err(error) = self.file.maybe_compact(&header, &self.offsets) {
            warn!("group {}: compaction failed: {error}", self.id);
        }
        Ok(())
    }
}

pub struct Coordinator {
    data_dir: PathBuf,
    config: GroupConfig,
    groups: RefCell<HashMap<String, Group>>,
    timers: RefCell<BTreeMap<(Instant, u64), (String, TimerKind)>>,
    next_timer_id: Cell<u64>,
    timers_changed: Notify,
}

impl Coordinator {
    /// Loads the groups this shard owns from their files. Every shard scans all names, so groups
    /// follow the hash when the shard count changes between runs.
    pub fn load(
        shard: ShardId,
        shard_count: usize,
        data_dir: PathBuf,
        config: GroupConfig,
    ) -> Coordinator {
        let coordinator = Coordinator {
            data_dir,
            config,
            groups: RefCell::new(HashMap::new()),
            timers: RefCell::new(BTreeMap::new()),
            next_timer_id: Cell::new(0),
            timers_changed: Notify::default(),
        };
        let started = Instant::now();
        let mut groups = coordinator.groups.borrow_mut();
        for (group_id, path) in store::scan(&coordinator.data_dir) {
            if shard_for_group(&group_id, shard_count) != shard {
                continue;
            }
            match store::load(&path) {
                Ok((loaded, file)) => {
                    let protocol = match loaded.group_type {
                        StoredType::Classic => {
                            let mut group = ClassicGroup::default();
                            if !loaded.protocol_type.is_empty() {
                                group.protocol_type = Some(loaded.protocol_type.clone());
                            }
                            Protocol::Classic(group)
                        }
                        StoredType::Consumer => Protocol::Consumer(ConsumerGroup::default()),
                    };
                    groups.insert(
                        group_id.clone(),
                        Group {
                            id: group_id,
                            protocol,
                            offsets: loaded.offsets,
                            file,
                            stored_type: Some(loaded.group_type),
                            // Not stored: a restart restarts the empty group's retention clock, which
                            // keeps offsets longer, never shorter.
                            empty_since_ms: Some(now_ms()),
                        },
                    );
                }
                Err(error) => error!(
                    "{shard}: cannot load group file {}: {error}",
                    path.display()
                ),
            }
        }
        if !groups.is_empty() {
            info!(
                "{shard}: loaded {} consumer groups in {} ms",
                groups.len(),
                started.elapsed().as_millis()
            );
        }
        drop(groups);
        coordinator
    }

    fn schedule(&self, group_id: &str, scheduled: Scheduled) {
        if scheduled.is_empty() {
            return;
        }
        let mut timers = self.timers.borrow_mut();
        let earliest_before = timers.keys().next().map(|(deadline, _)| *deadline);
        let mut earlier = false;
        for (deadline, kind) in scheduled {
            let id = self.next_timer_id.get();
            self.next_timer_id.set(id.wrapping_add(1));
            earlier |= earliest_before.is_none_or(|earliest| deadline < earliest);
            timers.insert((deadline, id), (group_id.to_string(), kind));
        }
        drop(timers);
        if earlier {
            self.timers_changed.notify_all();
        }
    }

    /// Runs due timers; answers the next deadline (or `None` when no timer is pending).
    fn fire_due(&self, now: Instant) -> Option<Instant> {
        for _ in 0..TIMERS_PER_TICK_MAX {
            let entry = {
                let mut timers = self.timers.borrow_mut();
                match timers.first_key_value() {
                    Some(((deadline, _), _)) if *deadline <= now => timers.pop_first(),
                    _ => None,
                }
            };
            let Some((_, (group_id, kind))) = entry else {
                return self
                    .timers
                    .borrow()
                    .keys()
                    .next()
                    .map(|(deadline, _)| *deadline);
            };
            let mut scheduled = Scheduled::new();
            if let Some(group) = self.groups.borrow_mut().get_mut(&group_id) {
                group.on_timer(&kind, now, &self.config, &mut scheduled);
            }
            self.schedule(&group_id, scheduled);
        }
        Some(now)
    }

    /// Runs `action` on the group (creating it with `create` when absent and `create` allows),
    /// then files the timers it asked for. The borrow ends before this returns.
    fn with_group<T>(
        &self,
        group_id: &str,
        create: Option<fn() -> Protocol>,
        action: impl FnOnce(&mut Group, &mut Scheduled) -> T,
    ) -> Option<T> {
        let mut scheduled = Scheduled::new();
        let result = {
            let mut groups = self.groups.borrow_mut();
            if !groups.contains_key(group_id) {
                let make = create?;
                groups.insert(
                    group_id.to_string(),
                    Group::new(group_id, make(), &self.data_dir),
                );
            }
            let group = groups.get_mut(group_id)?;
            let result = action(group, &mut scheduled);
            group.note_emptiness();
            result
        };
        self.schedule(group_id, scheduled);
        Some(result)
    }

    fn join(&self, work: JoinWork) -> Parked<JoinAnswer> {
        let fail = |error: GroupError, member_id: &str| {
            Parked::Now(JoinAnswer {
                error: Some(error),
                generation_id: -1,
                member_id: member_id.to_string(),
                ..JoinAnswer::default()
            })
        };
        if work.group_id.is_empty() {
            return fail(GroupError::InvalidGroupId, &work.member_id);
        }
        let range = self.config.session_timeout_ms_min..=self.config.session_timeout_ms_max;
        if !range.contains(&work.session_timeout_ms) {
            return fail(GroupError::InvalidSessionTimeout, &work.member_id);
        }
        let create: Option<fn() -> Protocol> = if work.member_id.is_empty() {
            Some(|| Protocol::Classic(ClassicGroup::default()))
        } else {
            None
        };
        let now = Instant::now();
        let config = &self.config;
        let member_id = work.member_id.clone();
        let outcome = self.with_group(&work.group_id.clone(), create, |group, timers| {
            if let Protocol::Consumer(consumer) = &group.protocol {
                if !consumer.is_empty() {
                    return fail(GroupError::InconsistentGroupProtocol, &work.member_id);
                }
                group.protocol = Protocol::Classic(ClassicGroup::default());
            }
            match &mut group.protocol {
                Protocol::Classic(classic) => classic.join(work, now, config, timers),
                Protocol::Consumer(_) => fail(GroupError::InconsistentGroupProtocol, ""),
            }
        });
        outcome.unwrap_or_else(|| fail(GroupError::UnknownMemberId, &member_id))
    }

    fn sync(&self, work: SyncWork) -> Parked<Result<SyncAnswer, GroupError>> {
        let now = Instant::now();
        let group_id = work.group_id.clone();
        self.with_group(&group_id, None, |group, _| match &mut group.protocol {
            Protocol::Classic(classic) => classic.sync(work, now),
            Protocol::Consumer(_) => Parked::Now(Err(GroupError::UnknownMemberId)),
        })
        .unwrap_or(Parked::Now(Err(GroupError::UnknownMemberId)))
    }

    fn heartbeat(&self, work: HeartbeatWork) -> Result<(), GroupError> {
        let now = Instant::now();
        self.with_group(&work.group_id, None, |group, _| match &mut group.protocol {
            Protocol::Classic(classic) => classic.heartbeat(&work, now),
            Protocol::Consumer(_) => Err(GroupError::UnknownMemberId),
        })
        .unwrap_or(Err(GroupError::UnknownMemberId))
    }

    fn leave(&self, work: LeaveWork) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let now = Instant::now();
        let config = &self.config;
        self.with_group(&work.group_id, None, |group, timers| {
            match &mut group.protocol {
                Protocol::Classic(classic) => Ok(classic.leave(&work.members, now, config, timers)),
                Protocol::Consumer(_) => Err(GroupError::UnknownMemberId),
            }
        })
        .unwrap_or(Err(GroupError::UnknownMemberId))
    }

    fn consumer_heartbeat(
        &self,
        work: ConsumerHeartbeatWork,
        catalog: &Catalog,
    ) -> Result<ConsumerHeartbeatAnswer, GroupError> {
        if work.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let create: Option<fn() -> Protocol> = if work.member_epoch == 0 {
            Some(|| Protocol::Consumer(ConsumerGroup::default()))
        } else {
            None
        };
        let now = Instant::now();
        let config = &self.config;
        let group_id = work.group_id.clone();
        self.with_group(&group_id, create, |group, timers| {
            if let Protocol::Classic(classic) = &group.protocol {
                if !classic.is_empty() || work.member_epoch != 0 {
                    return Err(GroupError::GroupIdNotFound(format!(
                        "Group {} is not a consumer group",
                        group.id
                    )));
                }
                group.protocol = Protocol::Consumer(ConsumerGroup::default());
            }
            match &mut group.protocol {
                Protocol::Consumer(consumer) => {
                    consumer.heartbeat(work, catalog, now, config, timers)
                }
                Protocol::Classic(_) => Err(GroupError::UnknownMemberId),
            }
        })
        .unwrap_or(Err(GroupError::UnknownMemberId))
    }

    fn commit(&self, work: CommitWork) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        if work.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let simple = work.generation_or_member_epoch < 0
            && work.member_id.is_empty()
            && work.group_instance_id.is_none();
        // A commit from outside group management creates the group, as in Kafka.
        let create: Option<fn() -> Protocol> = if work.generation_or_member_epoch < 0 {
            Some(|| Protocol::Classic(ClassicGroup::default()))
        } else {
            None
        };
        let now = now_ms();
        self.with_group(&work.group_id.clone(), create, |group, _| {
            validate_commit(group, &work, simple)?;
            let mut records = Vec::with_capacity(work.offsets.len());
            let mut accepted = Vec::with_capacity(work.offsets.len());
            let results: Vec<Result<(), GroupError>> =
                work.offsets
                    .iter()
                    .map(|commit| {
                        let too_large = commit.metadata.as_ref().is_some_and(|metadata| {
                            metadata.len() > store::OFFSET_METADATA_BYTES_MAX
                        });
                        if too_large {
                            return Err(GroupError::OffsetMetadataTooLarge);
                        }
                        let entry = OffsetEntry {
                            offset: commit.offset,
                            leader_epoch: commit.leader_epoch,
                            metadata: commit.metadata.clone(),
                            commit_timestamp_ms: now,
                        };
                        records.push(store::commit_record(
                            &commit.topic,
                            commit.partition,
                            &entry,
                        ));
                        accepted.push(((commit.topic.clone(), commit.partition), entry));
                        Ok(())
                    })
                    .collect();
            if records.is_empty() {
                return Ok(results);
            }
            // Memory first (compaction rewrites from it), then the file; a failed write undoes
            // nothing already durable, and the client is told to retry.
            let previous: Vec<_> = accepted
                .iter()
                .map(|(key, _)| (key.clone(), group.offsets.get(key).cloned()))
                .collect();
            group.offsets.extend(accepted);
            if let Err(error) = group.persist(records) {
                error!("group {}: cannot store offsets: {error}", group.id);
                for (key, old) in previous {
                    match old {
                        Some(old) => group.offsets.insert(key, old),
                        None => group.offsets.remove(&key),
                    };
                }
                return Err(GroupError::CoordinatorNotAvailable(error.to_string()));
            }
            Ok(results)
        })
        .unwrap_or(Err(GroupError::IllegalGeneration))
    }

    fn fetch_offsets(&self, work: OffsetFetchWork) -> Result<Vec<FetchedOffset>, GroupError> {
        let groups = self.groups.borrow();
        let Some(group) = groups.get(&work.group_id) else {
            if work.member_epoch >= 0 && work.member_id.is_some() {
                return Err(GroupError::UnknownMemberId);
            }
            return Ok(work
                .partitions
                .unwrap_or_default()
                .into_iter()
                .map(|(topic, partition)| no_offset(topic, partition))
                .collect());
        };
        if let (Protocol::Consumer(consumer), Some(member_id)) = (&group.protocol, &work.member_id)
        {
            if work.member_epoch >= 0 {
                consumer.validate_member_epoch(member_id, work.member_epoch)?;
            }
        }
        let found = |(topic, partition): (Arc<str>, i32), entry: Option<&OffsetEntry>| match entry {
            Some(entry) => FetchedOffset {
                topic,
                partition,
                offset: entry.offset,
                leader_epoch: entry.leader_epoch,
                metadata: entry.metadata.clone(),
            },
            None => no_offset(topic, partition),
        };
        Ok(match work.partitions {
            Some(partitions) => partitions
                .into_iter()
                .map(|key| {
                    let entry = group.offsets.get(&key);
                    found(key, entry)
                })
                .collect(),
            None => group
                .offsets
                .iter()
                .map(|(key, entry)| found(key.clone(), Some(entry)))
                .collect(),
        })
    }

    fn delete_offsets(
        &self,
        work: OffsetDeleteWork,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let mut groups = self.groups.borrow_mut();
        let group = groups.get_mut(&work.group_id).ok_or_else(|| {
            GroupError::GroupIdNotFound(format!("Group {} not found", work.group_id))
        })?;
        let subscribed = |topic: &str| -> Result<bool, GroupError> {
            match &group.protocol {
                Protocol::Consumer(consumer) => Ok(consumer.subscribes_to(topic)),
                Protocol::Classic(classic) if classic.members.is_empty() => Ok(false),
                Protocol::Classic(classic) => match classic.subscribed_topics() {
                    Some(topics) => Ok(topics.contains(topic)),
                    None => Err(GroupError::NonEmptyGroup),
                },
            }
        };
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(work.partitions.len());
        for (topic, partition) in &work.partitions {
            if subscribed(topic)? {
                results.push(Err(GroupError::GroupSubscribedToTopic));
                continue;
            }
            if group.offsets.contains_key(&(topic.clone(), *partition)) {
                records.push(store::delete_record(topic, *partition));
            }
            results.push(Ok(()));
        }
        if !records.is_empty() {
            if let Err(error) = group.persist(records) {
                return Err(GroupError::CoordinatorNotAvailable(error.to_string()));
            }
            for ((topic, partition), result) in work.partitions.iter().zip(&results) {
                if result.is_ok() {
                    group.offsets.remove(&(topic.clone(), *partition));
                }
            }
        }
        Ok(results)
    }

    fn describe(&self, group_ids: Vec<String>) -> Vec<Option<GroupDescription>> {
        let groups = self.groups.borrow();
        group_ids
            .into_iter()
            .map(|group_id| {
                let group = groups.get(&group_id)?;
                Some(match &group.protocol {
                    Protocol::Classic(classic) => GroupDescription {
                        group_id,
                        state: classic.state.name().to_string(),
                        protocol_type: classic.protocol_type.clone().unwrap_or_default(),
                        protocol_data: if classic.state == classic::ClassicState::Stable {
                            classic.protocol_name.clone().unwrap_or_default()
                        } else {
                            String::new()
                        },
                        is_consumer_group: false,
                        members: classic.describe_members(),
                    },
                    Protocol::Consumer(consumer) => GroupDescription {
                        group_id,
                        state: consumer.state_name().to_string(),
                        protocol_type: "consumer".to_string(),
                        protocol_data: String::new(),
                        is_consumer_group: true,
                        members: Vec::new(),
                    },
                })
            })
            .collect()
    }

    fn consumer_describe(
        &self,
        group_ids: Vec<String>,
    ) -> Vec<Result<ConsumerGroupDescription, GroupError>> {
        let groups = self.groups.borrow();
        group_ids
            .into_iter()
            .map(
                |group_id| match groups.get(&group_id).map(|group| &group.protocol) {
                    Some(Protocol::Consumer(consumer)) => Ok(consumer.describe(&group_id)),
                    Some(Protocol::Classic(_)) => Err(GroupError::GroupIdNotFound(format!(
                        "Group {group_id} is not a consumer group."
                    ))),
                    None => Err(GroupError::GroupIdNotFound(format!(
                        "Group {group_id} not found."
                    ))),
                },
            )
            .collect()
    }

    fn list(&self) -> Vec<ListedGroup> {
        self.groups
            .borrow()
            .values()
            .map(|group| ListedGroup {
                group_id: group.id.clone(),
                protocol_type: group.protocol_type(),
                state: group.state_name().to_string(),
                group_type: match group.group_type() {
                    StoredType::Classic => "classic".to_string(),
                    StoredType::Consumer => "consumer".to_string(),
                },
            })
            .collect()
    }

    fn delete(&self, group_ids: Vec<String>) -> Vec<Result<(), GroupError>> {
        let mut groups = self.groups.borrow_mut();
        group_ids
            .into_iter()
            .map(|group_id| {
                let group = groups.get_mut(&group_id).ok_or_else(|| {
                    GroupError::GroupIdNotFound(format!("Group {group_id} not found"))
                })?;
                if !group.is_empty() {
                    return Err(GroupError::NonEmptyGroup);
                }
                group
                    .file
                    .delete()
                    .map_err(|error| GroupError::CoordinatorNotAvailable(error.to_string()))?;
                groups.remove(&group_id);
                Ok(())
            })
            .collect()
    }

    /// Expires the offsets of groups empty for longer than the retention, and forgets empty groups
    /// that have no offsets left.
    fn enforce_retention(&self) {
        let now = now_ms();
        let retention_ms = self.config.offsets_retention_ms;
        let mut groups = self.groups.borrow_mut();
        let mut forget = Vec::new();
        for group in groups.values_mut() {
            let Some(empty_since_ms) = group.empty_since_ms else {
                continue;
            };
            let expired: Vec<(Arc<str>, i32)> = group
                .offsets
                .iter()
                .filter(|(_, entry)| {
                    empty_since_ms
                        .max(entry.commit_timestamp_ms)
                        .saturating_add(retention_ms)
                        < now
                })
                .map(|(key, _)| key.clone())
                .collect();
            if !expired.is_empty() {
                let records = expired
                    .iter()
                    .map(|(topic, partition)| store::delete_record(topic, *partition))
                    .collect();
                match group.persist(records) {
                    Ok(()) => {
                        info!("group {}: expired {} offsets", group.id, expired.len());
                        for key in &expired {
                            group.offsets.remove(key);
                        }
                    }
                    Err(error) => warn!("group {}: cannot expire offsets: {error}", group.id),
                }
            }
            if group.offsets.is_empty() {
                forget.push(group.id.clone());
            }
        }
        for group_id in forget {
            if let Some(mut group) = groups.remove(&group_id) {
                if let Err(error) = group.file.delete() {
                    warn!("group {group_id}: cannot remove its file: {error}");
                }
            }
        }
    }
}

fn no_offset(topic: Arc<str>, partition: i32) -> FetchedOffset {
    FetchedOffset {
        topic,
        partition,
        offset: -1,
        leader_epoch: -1,
        metadata: None,
    }
}

/// Kafka's `validateOffsetCommit` for both protocols.
fn validate_commit(group: &Group, work: &CommitWork, simple: bool) -> Result<(), GroupError> {
    match &group.protocol {
        Protocol::Classic(classic) => {
            if work.generation_or_member_epoch < 0 && classic.members.is_empty() {
                return Ok(());
            }
            if simple {
                // Outside group management while the group has members.
                return Err(GroupError::UnknownMemberId);
            }
            classic.validate_member(&work.member_id, work.group_instance_id.as_deref())?;
            if work.generation_or_member_epoch != classic.generation {
                return Err(GroupError::IllegalGeneration);
            }
            if classic.state == classic::ClassicState::CompletingRebalance {
                return Err(GroupError::RebalanceInProgress);
            }
            Ok(())
        }
        Protocol::Consumer(consumer) => {
            if work.generation_or_member_epoch < 0 && consumer.is_empty() {
                return Ok(());
            }
            consumer.validate_member_epoch(&work.member_id, work.generation_or_member_epoch)
        }
    }
}

/// Serves one group request on the owning shard. JoinGroup and SyncGroup park here (no borrow held)
/// until their answer arrives or the shard stops.
pub async fn serve(shard: &Shard, request: GroupRequest) -> GroupResponse {
    let groups = shard.groups();
    match request {
        GroupRequest::Join(work) => {
            let member_id = work.member_id.clone();
            let answer = match groups.join(work) {
                Parked::Now(answer) => Some(answer),
                Parked::Later(receiver) => wait(shard, receiver.recv()).await,
            };
            GroupResponse::Join(answer.unwrap_or_else(|| JoinAnswer {
                error: Some(GroupError::RebalanceInProgress),
                generation_id: -1,
                member_id,
                ..JoinAnswer::default()
            }))
        }
        GroupRequest::Sync(work) => {
            let answer = match groups.sync(work) {
                Parked::Now(answer) => Some(answer),
                Parked::Later(receiver) => wait(shard, receiver.recv()).await,
            };
            GroupResponse::Sync(answer.unwrap_or(Err(GroupError::RebalanceInProgress)))
        }
        GroupRequest::Heartbeat(work) => GroupResponse::Heartbeat(groups.heartbeat(work)),
        GroupRequest::Leave(work) => GroupResponse::Leave(groups.leave(work)),
        GroupRequest::OffsetCommit(work) => GroupResponse::OffsetCommit(groups.commit(work)),
        GroupRequest::OffsetFetch(work) => GroupResponse::OffsetFetch(groups.fetch_offsets(work)),
        GroupRequest::OffsetDelete(work) => {
            GroupResponse::OffsetDelete(groups.delete_offsets(work))
        }
        GroupRequest::Describe(group_ids) => GroupResponse::Describe(groups.describe(group_ids)),
        GroupRequest::List => GroupResponse::List(groups.list()),
        GroupRequest::Delete(group_ids) => GroupResponse::Delete(groups.delete(group_ids)),
        GroupRequest::ConsumerHeartbeat(work) => {
            let catalog = shard.catalog();
            GroupResponse::ConsumerHeartbeat(groups.consumer_heartbeat(work, &catalog))
        }
        GroupRequest::ConsumerDescribe(group_ids) => {
            GroupResponse::ConsumerDescribe(groups.consumer_describe(group_ids))
        }
    }
}

/// Waits for a parked answer, or gives up when the shard stops.
async fn wait<T>(shard: &Shard, answer: impl std::future::Future<Output = Option<T>>) -> Option<T> {
    futures_lite::future::or(answer, async {
        shard.wait_stopped().await;
        None
    })
    .await
}

/// The shard's timer task: sleeps until the earliest group deadline (or a new earlier one), runs what
/// is due, and expires old offsets every `OFFSETS_RETENTION_CHECK_INTERVAL`. Ends when the shard stops.
pub async fn run_timers(shard: Rc<Shard>) {
    let mut next_retention = Instant::now() + OFFSETS_RETENTION_CHECK_INTERVAL;
    while !shard.is_stopped() {
        let groups = shard.groups();
        let generation = groups.timers_changed.generation();
        let now = Instant::now();
        if now >= next_retention {
            groups.enforce_retention();
            next_retention = now + OFFSETS_RETENTION_CHECK_INTERVAL;
        }
        let next = groups
            .fire_due(now)
            .map_or(next_retention, |deadline| deadline.min(next_retention));
        let sleep = next.saturating_duration_since(Instant::now());
        if sleep.is_zero() {
            glommio::executor().yield_task_queue_now().await;
            continue;
        }
        futures_lite::future::or(
            futures_lite::future::or(
                glommio::timer::sleep(sleep),
                groups.timers_changed.changed_since(generation),
            ),
            shard.wait_stopped(),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_work(group_id: &str, offset: i64) -> CommitWork {
        CommitWork {
            group_id: group_id.to_string(),
            generation_or_member_epoch: -1,
            member_id: String::new(),
            group_instance_id: None,
            offsets: vec![CommitOffset {
                topic: Arc::from("t"),
                partition: 0,
                offset,
                leader_epoch: -1,
                metadata: Some(format!("m{offset}")),
            }],
        }
    }

    #[test]
    fn groups_follow_the_hash_when_the_shard_count_changes() {
        let dir = tempfile::tempdir().unwrap();
        let config = GroupConfig::default();
        let single = Coordinator::load(ShardId(0), 1, dir.path().to_path_buf(), config.clone());
        for index in 0..20 {
            let result = single.commit(commit_work(&format!("group-{index}"), index));
            assert!(result.unwrap().iter().all(Result::is_ok));
        }
        let shards: Vec<Coordinator> = (0..3)
            .map(|shard| {
                Coordinator::load(ShardId(shard), 3, dir.path().to_path_buf(), config.clone())
            })
            .collect();
        for index in 0..20 {
            let group_id = format!("group-{index}");
            let owner = shard_for_group(&group_id, 3);
            for (shard, coordinator) in shards.iter().enumerate() {
                let present = coordinator.groups.borrow().contains_key(&group_id);
                assert_eq!(
                    present,
                    ShardId(shard as u16) == owner,
                    "{group_id} on shard {shard}"
                );
            }
            let work = OffsetFetchWork {
                group_id: group_id.clone(),
                member_id: None,
                member_epoch: -1,
                partitions: None,
            };
            let fetched = shards[usize::from(owner.0)].fetch_offsets(work).unwrap();
            assert_eq!(fetched.len(), 1);
            assert_eq!(fetched[0].offset, index);
            assert_eq!(
                fetched[0].metadata.as_deref(),
                Some(format!("m{index}").as_str())
            );
        }
    }

    #[test]
    fn deleted_groups_and_their_files_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let coordinator = Coordinator::load(
            ShardId(0),
            1,
            dir.path().to_path_buf(),
            GroupConfig::default(),
        );
        coordinator.commit(commit_work("doomed", 1)).unwrap();
        assert_eq!(coordinator.delete(vec!["doomed".into()]), vec![Ok(())]);
        assert!(matches!(
            coordinator.delete(vec!["doomed".into()])[0],
            Err(GroupError::GroupIdNotFound(_))
        ));
        let reloaded = Coordinator::load(
            ShardId(0),
            1,
            dir.path().to_path_buf(),
            GroupConfig::default(),
        );
        assert!(reloaded.groups.borrow().is_empty());
    }

    #[test]
    fn member_ids_are_unique_and_carry_the_client_id() {
        let first = new_member_id("consumer-1");
        let second = new_member_id("consumer-1");
        assert_ne!(first, second);
        assert!(first.starts_with("consumer-1-"));
        assert!(new_member_id("").starts_with("member-"));
    }
}
