//! The transaction coordinator's behaviour: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
//! EndTxn, timeouts, and Describe/ListTransactions, for the transactional ids this shard owns.
//!
//! Owns: the sequence of each operation (check and change the id's state synchronously, persist it,
//! then write markers to the partitions' owners over the mesh and persist the outcome). Never: a
//! `RefCell` borrow across an `.await` (every borrow lives in a synchronous block), or partition state
//! (markers are `ShardRequest::WriteTxnMarkers` to each owner).
//!
//! Markers are written before EndTxn is answered (Kafka answers after PrepareCommit is durable and
//! writes markers afterwards, telling clients CONCURRENT_TRANSACTIONS meanwhile); on one node the
//! synchronous order is simpler and just as fast. A restart that finds PrepareCommit/PrepareAbort
//! writes the markers again: a second marker for a producer without an open transaction changes
//! nothing a reader sees.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use log::{info, warn};

use super::{
    ProducerIdAllocator, TxnMetadata, TxnState, TxnTable, TRANSACTIONAL_IDS_PER_SHARD_MAX,
    TRANSACTION_TIMEOUT_MS_MAX,
};
use crate::mesh::{
    CommitOffset, CommitWork, GroupRequest, GroupResponse, ShardRequest, ShardResponse,
    TxnDescription, TxnError, TxnListing, TxnMarker, TxnRequest, TxnResponse,
};
use crate::shard::{Notify, Shard};
use crate::time::now_ms;
use crate::{ShardId, TopicPartition};

/// What one shard keeps for transactions.
pub struct TxnShard {
    table: RefCell<TxnTable>,
    /// Only on shard 0.
    producer_ids: Option<RefCell<ProducerIdAllocator>>,
    /// Wakes the timeout task when a transaction opens with an earlier deadline than it sleeps to.
    deadline_changed: Notify,
    deadline_scheduled_ms: Cell<i64>,
}

impl TxnShard {
    pub fn load(
        data_dir: &std::path::Path,
        shard: ShardId,
        shard_count: usize,
    ) -> std::io::Result<TxnShard> {
        let table = TxnTable::load(data_dir, shard, shard_count)?;
        let producer_ids = match shard == ShardId(0) {
            true => Some(RefCell::new(ProducerIdAllocator::load(data_dir)?)),
            false => None,
        };
        Ok(TxnShard {
            table: RefCell::new(table),
            producer_ids,
            deadline_changed: Notify::default(),
            deadline_scheduled_ms: Cell::new(i64::MAX),
        })
    }

    /// Serves `ShardRequest::AllocateProducerId` (shard 0 only).
    pub fn allocate_producer_id(&self) -> Result<i64, TxnError> {
        let allocator = self
            .producer_ids
            .as_ref()
            .expect("producer ids are allocated on shard 0");
        allocator.borrow_mut().allocate()
    }

    fn opened(&self, deadline_ms: i64) {
        if deadline_ms < self.deadline_scheduled_ms.get() {
            self.deadline_scheduled_ms.set(deadline_ms);
            self.deadline_changed.notify_all();
        }
    }
}

/// Serves one `ShardRequest::Transaction`.
pub async fn serve(shard: &Rc<Shard>, request: TxnRequest) -> TxnResponse {
    match request {
        TxnRequest::InitProducerId {
            transactional_id,
            timeout_ms,
            producer_id,
            producer_epoch,
        } => TxnResponse::InitProducerId(
            init_producer_id(
                shard,
                &transactional_id,
                timeout_ms,
                producer_id,
                producer_epoch,
            )
            .await,
        ),
        TxnRequest::AddPartitions {
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
            verify_only,
        } => TxnResponse::AddPartitions(add_partitions(
            shard,
            &transactional_id,
            (producer_id, producer_epoch),
            &partitions,
            verify_only,
        )),
        TxnRequest::AddOffsets {
            transactional_id,
            producer_id,
            producer_epoch,
            group_id,
        } => TxnResponse::Done(add_offsets(
            shard,
            &transactional_id,
            (producer_id, producer_epoch),
            group_id,
        )),
        TxnRequest::OffsetCommit {
            transactional_id,
            producer_id,
            producer_epoch,
            group_id,
            offsets,
        } => TxnResponse::OffsetCommit(offset_commit(
            shard,
            &transactional_id,
            (producer_id, producer_epoch),
            &group_id,
            offsets,
        )),
        TxnRequest::EndTxn {
            transactional_id,
            producer_id,
            producer_epoch,
            commit,
        } => TxnResponse::Done(
            end_txn(
                shard,
                &transactional_id,
                (producer_id, producer_epoch),
                commit,
            )
            .await,
        ),
        TxnRequest::Describe(ids) => TxnResponse::Describe(describe(shard, ids)),
        TxnRequest::List {
            states,
            producer_ids,
            duration_ms,
        } => TxnResponse::List(list(shard, &states, &producer_ids, duration_ms)),
    }
}

/// What InitProducerId does after its synchronous check.
enum InitNext {
    Ready(i64, i16),
    NewProducerId,
    /// An open transaction must be aborted first (with the bumped epoch, which fences its producer).
    AbortOpen,
}

async fn init_producer_id(
    shard: &Rc<Shard>,
    id: &str,
    timeout_ms: i32,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<(i64, i16), TxnError> {
    if timeout_ms <= 0 || timeout_ms > TRANSACTION_TIMEOUT_MS_MAX {
        return Err(TxnError::InvalidTransactionTimeout);
    }
    let next = {
        let mut table = shard.txn().table.borrow_mut();
        match table.entries.get_mut(id) {
            None => InitNext::NewProducerId,
            Some(metadata) => {
                let next = plan_init(metadata, timeout_ms, producer_id, producer_epoch)?;
                if !matches!(next, InitNext::NewProducerId) {
                    table.persist(id)?;
                }
                next
            }
        }
    };
    match next {
        InitNext::Ready(producer_id, epoch) => Ok((producer_id, epoch)),
        InitNext::NewProducerId => {
            let producer_id = new_producer_id(shard).await?;
            let mut table = shard.txn().table.borrow_mut();
            let previous = table.entries.get(id).map(|old| old.version);
            if previous.is_none() && table.entries.len() >= TRANSACTIONAL_IDS_PER_SHARD_MAX {
                return Err(TxnError::Storage(
                    "too many transactional ids on this shard".into(),
                ));
            }
            let metadata = TxnMetadata {
                producer_id,
                producer_epoch: 0,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                groups: BTreeMap::new(),
                start_ms: -1,
                version: previous.unwrap_or(0),
                busy: false,
            };
            table.entries.insert(id.to_string(), metadata);
            table.persist(id)?;
            Ok((producer_id, 0))
        }
        InitNext::AbortOpen => {
            complete(shard, id, false).await?;
            let table = shard.txn().table.borrow();
            let metadata = table
                .entries
                .get(id)
                .ok_or(TxnError::ConcurrentTransactions)?;
            Ok((metadata.producer_id, metadata.producer_epoch))
        }
    }
}

/// The synchronous half of InitProducerId on a known id: checks, then bumps the epoch.
fn plan_init(
    metadata: &mut TxnMetadata,
    timeout_ms: i32,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<InitNext, TxnError> {
    if metadata.busy
        || matches!(
            metadata.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort
        )
    {
        return Err(TxnError::ConcurrentTransactions);
    }
    // KIP-360: a client that names the id and epoch it holds may only bump from the current ones.
    if producer_id != -1
        && (producer_id != metadata.producer_id || producer_epoch != metadata.producer_epoch)
    {
        return Err(TxnError::ProducerFenced);
    }
    // The epoch is about to be exhausted: the id gets a fresh producer id at epoch 0, as in Kafka.
    if metadata.producer_epoch >= i16::MAX - 1 {
        return Ok(InitNext::NewProducerId);
    }
    metadata.timeout_ms = timeout_ms;
    metadata.producer_epoch += 1;
    if metadata.state == TxnState::Ongoing {
        metadata.state = TxnState::PrepareAbort;
        metadata.busy = true;
        return Ok(InitNext::AbortOpen);
    }
    metadata.state = TxnState::Empty;
    metadata.partitions.clear();
    metadata.groups.clear();
    metadata.start_ms = -1;
    Ok(InitNext::Ready(
        metadata.producer_id,
        metadata.producer_epoch,
    ))
}

async fn new_producer_id(shard: &Rc<Shard>) -> Result<i64, TxnError> {
    match shard
        .call(ShardId(0), ShardRequest::AllocateProducerId)
        .await
    {
        Ok(ShardResponse::ProducerId(result)) => result,
        Ok(other) => unreachable!("AllocateProducerId answered with {other:?}"),
        Err(error) => Err(TxnError::Storage(error.to_string())),
    }
}

/// Checks that the id exists, names this producer, and is not completing a transaction.
fn check_open(
    metadata: Option<&TxnMetadata>,
    (producer_id, producer_epoch): (i64, i16),
) -> Result<(), TxnError> {
    let metadata = metadata.ok_or(TxnError::InvalidProducerIdMapping)?;
    metadata.check_producer(producer_id, producer_epoch)?;
    if metadata.busy
        || matches!(
            metadata.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort
        )
    {
        return Err(TxnError::ConcurrentTransactions);
    }
    Ok(())
}

/// Opens the transaction if it is not open yet; returns whether that changed the state.
fn open(shard: &Shard, metadata: &mut TxnMetadata) -> bool {
    if metadata.state == TxnState::Ongoing {
        return false;
    }
    metadata.state = TxnState::Ongoing;
    metadata.partitions.clear();
    metadata.groups.clear();
    metadata.start_ms = now_ms();
    shard
        .txn()
        .opened(metadata.start_ms + i64::from(metadata.timeout_ms));
    true
}

fn add_partitions(
    shard: &Shard,
    id: &str,
    producer: (i64, i16),
    partitions: &[TopicPartition],
    verify_only: bool,
) -> Vec<Result<(), TxnError>> {
    let mut table = shard.txn().table.borrow_mut();
    let all = |result: Result<(), TxnError>| partitions.iter().map(|_| result.clone()).collect();
    if let Err(error) = check_open(table.entries.get(id), producer) {
        return all(Err(error));
    }
    let metadata = table.entries.get_mut(id).expect("checked above");
    if verify_only {
        return partitions
            .iter()
            .map(|partition| {
                let open = metadata.state == TxnState::Ongoing;
                match open && metadata.partitions.contains(partition) {
                    true => Ok(()),
                    false => Err(TxnError::InvalidTxnState),
                }
            })
            .collect();
    }
    let mut changed = open(shard, metadata);
    for partition in partitions {
        changed |= metadata.partitions.insert(partition.clone());
    }
    if changed {
        if let Err(error) = table.persist(id) {
            return all(Err(error));
        }
    }
    all(Ok(()))
}

fn add_offsets(
    shard: &Shard,
    id: &str,
    producer: (i64, i16),
    group_id: String,
) -> Result<(), TxnError> {
    let mut table = shard.txn().table.borrow_mut();
    check_open(table.entries.get(id), producer)?;
    let metadata = table.entries.get_mut(id).expect("checked above");
    let mut changed = open(shard, metadata);
    if let std::collections::btree_map::Entry::Vacant(entry) = metadata.groups.entry(group_id) {
        entry.insert(BTreeMap::new());
        changed = true;
    }
    if changed {
        table.persist(id)?;
    }
    Ok(())
}

/// TxnOffsetCommit: keeps the offsets with the open transaction (durably, in the state file) until
/// EndTxn hands them to the group (commit) or drops them (abort). The group must have been added
/// with AddOffsetsToTxn, as Kafka's clients always do first.
fn offset_commit(
    shard: &Shard,
    id: &str,
    producer: (i64, i16),
    group_id: &str,
    offsets: Vec<CommitOffset>,
) -> Vec<Result<(), TxnError>> {
    let mut table = shard.txn().table.borrow_mut();
    let all = |result: Result<(), TxnError>| offsets.iter().map(|_| result.clone()).collect();
    if let Err(error) = check_open(table.entries.get(id), producer) {
        return all(Err(error));
    }
    let metadata = table.entries.get_mut(id).expect("checked above");
    let pending = match metadata.state {
        TxnState::Ongoing => metadata.groups.get_mut(group_id),
        _ => None,
    };
    let Some(pending) = pending else {
        return all(Err(TxnError::InvalidTxnState));
    };
    for offset in &offsets {
        pending.insert((offset.topic.clone(), offset.partition), offset.clone());
    }
    all(table.persist(id))
}

async fn end_txn(
    shard: &Rc<Shard>,
    id: &str,
    producer: (i64, i16),
    commit: bool,
) -> Result<(), TxnError> {
    {
        let mut table = shard.txn().table.borrow_mut();
        let metadata = table
            .entries
            .get_mut(id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        metadata.check_producer(producer.0, producer.1)?;
        if metadata.busy {
            return Err(TxnError::ConcurrentTransactions);
        }
        match (metadata.state, commit) {
            (TxnState::Ongoing, _) => {
                metadata.state = match commit {
                    true => TxnState::PrepareCommit,
                    false => TxnState::PrepareAbort,
                };
                metadata.busy = true;
            }
            // A retry of an EndTxn that already completed.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => return Ok(()),
            (TxnState::PrepareCommit | TxnState::PrepareAbort, _) => {
                return Err(TxnError::ConcurrentTransactions)
            }
            _ => return Err(TxnError::InvalidTxnState),
        }
        table.persist(id)?;
    }
    complete(shard, id, commit).await
}

/// Writes the markers of a transaction in PrepareCommit/PrepareAbort (marked busy), then records it
/// complete. Partitions that no longer exist are skipped; other marker failures are logged and the
/// transaction still completes, as no retry could make them succeed.
async fn complete(shard: &Rc<Shard>, id: &str, commit: bool) -> Result<(), TxnError> {
    let (markers, offsets) = {
        let table = shard.txn().table.borrow();
        let metadata = table.entries.get(id).expect("a completing id exists");
        assert!(metadata.busy);
        let markers: Vec<TxnMarker> = metadata
            .partitions
            .iter()
            .map(|partition| TxnMarker {
                partition: partition.clone(),
                producer_id: metadata.producer_id,
                producer_epoch: metadata.producer_epoch,
                commit,
            })
            .collect();
        // An abort drops the offsets: the group never sees them.
        let offsets: Vec<(String, Vec<CommitOffset>)> = match commit {
            true => metadata
                .groups
                .iter()
                .filter(|(_, offsets)| !offsets.is_empty())
                .map(|(group, offsets)| (group.clone(), offsets.values().cloned().collect()))
                .collect(),
            false => Vec::new(),
        };
        (markers, offsets)
    };
    write_markers(shard, markers).await;
    commit_group_offsets(shard, offsets).await;
    let mut table = shard.txn().table.borrow_mut();
    let metadata = table.entries.get_mut(id).expect("a completing id exists");
    metadata.state = match commit {
        true => TxnState::CompleteCommit,
        false => TxnState::CompleteAbort,
    };
    metadata.partitions.clear();
    metadata.groups.clear();
    metadata.start_ms = -1;
    metadata.busy = false;
    table.persist(id)
}

async fn write_markers(shard: &Rc<Shard>, markers: Vec<TxnMarker>) {
    let mut by_shard: BTreeMap<ShardId, Vec<TxnMarker>> = BTreeMap::new();
    for marker in markers {
        by_shard
            .entry(shard.owner(&marker.partition))
            .or_default()
            .push(marker);
    }
    let tasks: Vec<_> = by_shard
        .into_iter()
        .map(|(target, markers)| {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                let names: Vec<TopicPartition> = markers
                    .iter()
                    .map(|marker| marker.partition.clone())
                    .collect();
                match shard
                    .call(target, ShardRequest::WriteTxnMarkers(markers))
                    .await
                {
                    Ok(ShardResponse::TxnMarkersWritten(results)) => {
                        for (name, result) in names.iter().zip(results) {
                            if let Err(error) = result {
                                warn!("{}: marker for {name} not written: {error}", shard.id);
                            }
                        }
                    }
                    Ok(other) => unreachable!("WriteTxnMarkers answered with {other:?}"),
                    Err(error) => warn!("{}: markers to {target} not written: {error}", shard.id),
                }
            })
        })
        .collect();
    for task in tasks {
        task.await;
    }
}

/// Hands a committed transaction's offsets to each group's coordinator, after the markers: a
/// restart between the two repeats both, which changes nothing the second time.
async fn commit_group_offsets(shard: &Rc<Shard>, offsets: Vec<(String, Vec<CommitOffset>)>) {
    for (group_id, offsets) in offsets {
        let work = CommitWork {
            group_id: group_id.clone(),
            generation_or_member_epoch: -1,
            member_id: String::new(),
            group_instance_id: None,
            offsets,
        };
        let owner = shard.group_owner(&group_id);
        let request = ShardRequest::Group(Box::new(GroupRequest::CommitTxnOffsets(work)));
        let response = match shard.call(owner, request).await {
            Ok(ShardResponse::Group(response)) => Ok(*response),
            Ok(other) => unreachable!("CommitTxnOffsets answered with {other:?}"),
            Err(error) => Err(error),
        };
        match response {
            Ok(GroupResponse::OffsetCommit(Ok(results))) => {
                for error in results.into_iter().filter_map(Result::err) {
                    warn!(
                        "{}: an offset of group {group_id:?} not committed: {error}",
                        shard.id
                    );
                }
            }
            Ok(GroupResponse::OffsetCommit(Err(error))) => {
                warn!(
                    "{}: offsets of group {group_id:?} not committed: {error}",
                    shard.id
                )
            }
            Ok(other) => unreachable!("CommitTxnOffsets answered with {other:?}"),
            Err(error) => warn!("{}: group {group_id:?} unreachable: {error}", shard.id),
        }
    }
}

fn describe(shard: &Shard, ids: Vec<String>) -> Vec<TxnDescription> {
    let table = shard.txn().table.borrow();
    ids.into_iter()
        .map(|id| {
            let state = table.entries.get(&id).map(TxnMetadata::summary);
            TxnDescription {
                transactional_id: id,
                state,
            }
        })
        .collect()
}

fn list(
    shard: &Shard,
    states: &[String],
    producer_ids: &[i64],
    duration_ms: i64,
) -> Vec<TxnListing> {
    let now = now_ms();
    let table = shard.txn().table.borrow();
    table
        .entries
        .iter()
        .filter(|(_, metadata)| {
            let state_matches =
                states.is_empty() || states.iter().any(|state| state == metadata.state.name());
            let producer_matches =
                producer_ids.is_empty() || producer_ids.contains(&metadata.producer_id);
            let long_enough = duration_ms < 0
                || (metadata.start_ms >= 0 && now - metadata.start_ms > duration_ms);
            state_matches && producer_matches && long_enough
        })
        .map(|(id, metadata)| TxnListing {
            transactional_id: id.clone(),
            producer_id: metadata.producer_id,
            state: metadata.state.name(),
        })
        .collect()
}

/// Aborts transactions open longer than their timeout, bumping the epoch so the producer is fenced
/// (Kafka's coordinator does the same). Sleeps until the earliest deadline; with no open transaction
/// it waits for one to open, so an idle shard does nothing.
pub async fn timeout_loop(shard: Rc<Shard>) {
    while !shard.is_stopped() {
        let generation = shard.txn().deadline_changed.generation();
        let now = now_ms();
        let (expired, next_deadline) = expired_and_next(&shard, now);
        shard
            .txn()
            .deadline_scheduled_ms
            .set(next_deadline.unwrap_or(i64::MAX));
        for id in &expired {
            abort_expired(&shard, id).await;
        }
        if !expired.is_empty() {
            continue;
        }
        let changed = shard.txn().deadline_changed.changed_since(generation);
        let stopped = shard.wait_stopped();
        match next_deadline {
            Some(deadline) => {
                let sleep = Duration::from_millis((deadline - now).max(1) as u64);
                futures_lite::future::or(
                    futures_lite::future::or(changed, stopped),
                    glommio::timer::sleep(sleep),
                )
                .await;
            }
            None => futures_lite::future::or(changed, stopped).await,
        }
    }
}

fn expired_and_next(shard: &Shard, now: i64) -> (Vec<String>, Option<i64>) {
    let table = shard.txn().table.borrow();
    let mut expired = Vec::new();
    let mut next: Option<i64> = None;
    for (id, metadata) in &table.entries {
        if metadata.state != TxnState::Ongoing || metadata.busy {
            continue;
        }
        let deadline = metadata
            .start_ms
            .saturating_add(i64::from(metadata.timeout_ms));
        if deadline <= now {
            expired.push(id.clone());
        } else {
            next = Some(next.map_or(deadline, |next| next.min(deadline)));
        }
    }
    (expired, next)
}

async fn abort_expired(shard: &Rc<Shard>, id: &str) {
    let fenced = {
        let mut table = shard.txn().table.borrow_mut();
        let Some(metadata) = table.entries.get_mut(id) else {
            return;
        };
        if metadata.state != TxnState::Ongoing || metadata.busy {
            return;
        }
        metadata.producer_epoch = metadata.producer_epoch.saturating_add(1);
        metadata.state = TxnState::PrepareAbort;
        metadata.busy = true;
        let epoch = metadata.producer_epoch;
        table.persist(id).map(|()| epoch)
    };
    match fenced {
        Ok(epoch) => {
            info!(
                "{}: transaction {id:?} timed out; aborting with epoch {epoch}",
                shard.id
            );
            if let Err(error) = complete(shard, id, false).await {
                warn!("{}: aborting {id:?} failed: {error}", shard.id);
            }
        }
        Err(error) => warn!("{}: cannot abort {id:?}: {error}", shard.id),
    }
}

/// After a restart: finishes transactions a crash left in PrepareCommit or PrepareAbort.
pub async fn resume_pending(shard: Rc<Shard>) {
    let pending: Vec<(String, bool)> = {
        let mut table = shard.txn().table.borrow_mut();
        table
            .entries
            .iter_mut()
            .filter_map(|(id, metadata)| {
                let commit = match metadata.state {
                    TxnState::PrepareCommit => true,
                    TxnState::PrepareAbort => false,
                    _ => return None,
                };
                metadata.busy = true;
                Some((id.clone(), commit))
            })
            .collect()
    };
    for (id, commit) in pending {
        info!(
            "{}: resuming the completion of transaction {id:?}",
            shard.id
        );
        if let Err(error) = complete(&shard, &id, commit).await {
            warn!("{}: completing {id:?} failed: {error}", shard.id);
        }
    }
}
