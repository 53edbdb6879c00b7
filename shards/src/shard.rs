//! The shard: one pinned executor's partitions, catalog snapshot, mesh endpoints and pump.
//!
//! Owns: every partition this core owns (a plain `HashMap` behind a `RefCell`: single-threaded, no
//! synchronization), the single place where they change ([`Shard::serve`]), the calls to other shards,
//! and on shard 0 the catalog controller. Never: blocking on locks, holding a `RefCell` borrow across an
//! `.await`, or touching another shard's partitions (that is a [`Shard::call`] away).
//!
//! `Shard` is `!Send` and `!Sync` by construction (`Rc`, `RefCell`, glommio's connected channel ends),
//! so anything holding a `&Partition` is stuck on its core.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use glommio::sync::Semaphore;
use glommio::{GlommioError, ResourceType};
use log::{debug, error, info, warn};

use crate::catalog::{self, BrokerDefaults, Catalog, CatalogStore, TopicInfo};
use crate::mesh::*;
use crate::partition::{partition_dir, Partition};
use crate::pool::{self, PoolBuf, ReturnReceivers, ReturnSenders};
use crate::router::shard_for;
use crate::storage::batch::ControlType;
use crate::storage::syncer::Syncer;
use crate::time::now_ms;
use crate::txn::coordinator::{self, TxnShard};
use crate::{ShardId, TopicPartition};

/// How often each shard enforces retention; Kafka's log.retention.check.interval.ms default.
pub const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(300);
/// The longest a parked fetch waits, whatever the client asks: bounds how long a wait task lives.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

/// Settings every shard shares, fixed at boot.
#[derive(Debug)]
pub struct ShardConfig {
    pub data_dir: PathBuf,
    pub defaults: BrokerDefaults,
    pub shard_count: usize,
    pub pool_bytes: usize,
    /// Sealed segments this shard keeps in the page cache once they are durable (`storage/syncer.rs`).
    pub page_cache_bytes: u64,
    pub groups: crate::group::GroupConfig,
}

/// A shard's ends of the mesh and of the pool's return queues, created at boot on the main thread.
pub struct ShardEnds {
    pub mesh: MeshEnds,
    pub pool: (ReturnSenders, ReturnReceivers),
}

/// Wires the mesh and the pool return queues for `shard_count` shards.
pub fn wire(shard_count: usize) -> Vec<ShardEnds> {
    crate::mesh::wire(shard_count)
        .into_iter()
        .zip(pool::return_queues(shard_count))
        .map(|(mesh, pool)| ShardEnds { mesh, pool })
        .collect()
}

/// Why a call to another shard failed: its executor is gone, which only happens while stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    #[error("the shard is gone")]
    Closed,
}

pub struct Shard {
    pub id: ShardId,
    config: Arc<ShardConfig>,
    catalog: RefCell<Arc<Catalog>>,
    partitions: RefCell<HashMap<TopicPartition, Partition>>,
    senders: Vec<Option<Outbox>>,
    /// The incoming ends of the mesh, read by their pumps and by `drain_mesh`.
    inboxes: Vec<Rc<Inbox>>,
    /// Set while `drain_mesh` runs, so that a request it serves does not drain again.
    draining: Cell<bool>,
    pending: RefCell<HashMap<u64, LocalSender<ShardResponse>>>,
    next_call_id: Cell<u64>,
    appended: Notify,
    stopped: Notify,
    is_stopped: Cell<bool>,
    controller: Option<Controller>,
    txn: TxnShard,
    groups: crate::group::Coordinator,
    /// The helper thread that makes this shard's sealed segments durable off the reactor.
    syncer: Rc<Syncer>,
    /// Client connections other shards handed over (`ShardRequest::AdoptConnection`), until the
    /// network layer takes the receiving end (`take_adopted_connections`) and serves them.
    adopted: LocalSender<OwnedFd>,
    adopted_receiver: RefCell<Option<LocalReceiver<OwnedFd>>>,
}

/// Shard 0's catalog writer. The semaphore serializes catalog changes, which are rare and may await.
struct Controller {
    store: CatalogStore,
    lock: Semaphore,
}

impl Shard {
    /// Connects the shard's mesh ends, installs its pool, opens the partitions it owns (recovering
    /// them), and starts its pump. Runs on the shard's own executor.
    pub async fn start(
        id: ShardId,
        ends: ShardEnds,
        config: Arc<ShardConfig>,
        catalog: Arc<Catalog>,
    ) -> Rc<Shard> {
        pool::install(id, config.pool_bytes, ends.pool);
        // Connect every end at once: connecting waits for the peer to connect its end, so connecting
        // one end after another would deadlock shards that pick different orders.
        let senders: Vec<_> = ends
            .mesh
            .senders
            .into_iter()
            .map(|end| {
                glommio::spawn_local(async move {
                    let (sender, sent) = end?;
                    Some(Outbox {
                        sender: sender.connect().await,
                        sent,
                    })
                })
            })
            .collect();
        let receivers: Vec<_> = ends
            .mesh
            .receivers
            .into_iter()
            .flatten()
            .map(|(receiver, sent)| {
                glommio::spawn_local(async move {
                    Rc::new(Inbox {
                        receiver: receiver.connect().await,
                        pump_waker: RefCell::new(None),
                        sent,
                        received: Cell::new(0),
                    })
                })
            })
            .collect();
        let mut connected_senders = Vec::with_capacity(senders.len());
        for sender in senders {
            connected_senders.push(sender.await);
        }
        let mut connected_receivers = Vec::with_capacity(receivers.len());
        for receiver in receivers {
            connected_receivers.push(receiver.await);
        }
        let (senders, inboxes) = (connected_senders, connected_receivers);
        let controller = (id == ShardId(0)).then(|| Controller {
            store: CatalogStore::new(&config.data_dir),
            lock: Semaphore::new(1),
        });
        let txn = TxnShard::load(&config.data_dir, id, config.shard_count)
            .unwrap_or_else(|error| panic!("{id}: cannot load transaction state: {error}"));
        let groups = crate::group::Coordinator::load(
            id,
            config.shard_count,
            config.data_dir.clone(),
            config.groups.clone(),
        );
        let syncer = Syncer::start(&format!("fluxmq-sync-{}", id.0), config.page_cache_bytes)
            .unwrap_or_else(|error| panic!("{id}: cannot start the syncer: {error}"));
        let (adopted, adopted_receiver) = local_channel::new_unbounded();
        let shard = Rc::new(Shard {
            id,
            config,
            catalog: RefCell::new(Arc::new(Catalog::default())),
            partitions: RefCell::new(HashMap::new()),
            senders,
            inboxes,
            draining: Cell::new(false),
            pending: RefCell::new(HashMap::new()),
            next_call_id: Cell::new(0),
            appended: Notify::default(),
            stopped: Notify::default(),
            is_stopped: Cell::new(false),
            controller,
            txn,
            groups,
            syncer: Rc::new(syncer),
            adopted,
            adopted_receiver: RefCell::new(Some(adopted_receiver)),
        });
        let started = Instant::now();
        shard.remove_orphans(&catalog);
        shard.apply_catalog(catalog);
        info!(
            "{id}: opened {} partitions in {} ms",
            shard.partitions.borrow().len(),
            started.elapsed().as_millis()
        );
        for inbox in &shard.inboxes {
            glommio::spawn_local(pump(shard.clone(), inbox.clone())).detach();
        }
        glommio::spawn_local(retention_loop(shard.clone())).detach();
        glommio::spawn_local(coordinator::timeout_loop(shard.clone())).detach();
        glommio::spawn_local(coordinator::resume_pending(shard.clone())).detach();
        glommio::spawn_local(crate::group::run_timers(shard.clone())).detach();
        shard
    }

    /// This shard's transaction coordinator state (and producer id allocator on shard 0).
    pub(crate) fn txn(&self) -> &TxnShard {
        &self.txn
    }

    /// The consumer groups this shard coordinates.
    pub fn groups(&self) -> &crate::group::Coordinator {
        &self.groups
    }

    /// The shard that coordinates a consumer group.
    pub fn group_owner(&self, group_id: &str) -> ShardId {
        crate::router::shard_for_group(group_id, self.config.shard_count)
    }

    pub fn shard_count(&self) -> usize {
        self.config.shard_count
    }

    pub fn defaults(&self) -> &BrokerDefaults {
        &self.config.defaults
    }

    /// The current catalog snapshot. Cheap: an `Arc` clone.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// The connections other shards hand to this one, for the network layer to serve; `None` after the
    /// first call.
    pub fn take_adopted_connections(&self) -> Option<LocalReceiver<OwnedFd>> {
        self.adopted_receiver.borrow_mut().take()
    }

    /// The shard that owns a partition.
    pub fn owner(&self, partition: &TopicPartition) -> ShardId {
        shard_for(
            &partition.topic,
            partition.partition,
            self.config.shard_count,
        )
    }

    /// Sends a request to `target` and waits for its answer. A request for this shard takes the
    /// direct path; the answer is the same either way.
    pub async fn call(
        self: &Rc<Self>,
        target: ShardId,
        request: ShardRequest,
    ) -> Result<ShardResponse, MeshError> {
        self.drain_mesh().await;
        if target == self.id {
            return Ok(Box::pin(self.clone().serve(request)).await);
        }
        let id = self.next_call_id.get();
        self.next_call_id.set(id.wrapping_add(1));
        let (reply_sender, reply_receiver) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(id, reply_sender);
        let envelope = Envelope {
            id,
            from: self.id,
            body: Body::Request(request),
        };
        if self.outbox(target).send(envelope).await.is_err() {
            self.pending.borrow_mut().remove(&id);
            return Err(MeshError::Closed);
        }
        reply_receiver.recv().await.ok_or(MeshError::Closed)
    }

    /// Takes what other shards have sent this shard, without waiting for its reactor: answers complete
    /// their calls, produce and list-offsets requests are served here and now, other requests get a
    /// task of their own as in the pump, and the caller yields once so that those run. Called at every
    /// `call`, so that a shard kept busy by connections whose sockets are always readable still serves
    /// the others: glommio reads a readable socket without yielding and notices shared-channel messages
    /// only from its reactor, which such a shard would rarely run (docs/perf/PROFILE.md, "Two shards
    /// and the mesh"). At most `MESH_DRAINED_PER_CALL_MAX` messages per peer, so the caller's own
    /// request is not starved.
    async fn drain_mesh(self: &Rc<Self>) {
        if self.draining.replace(true) {
            return;
        }
        // Cleared however this future ends, dropped half-way included.
        let _draining = DrainingGuard(&self.draining);
        let mut spawned = false;
        for inbox in &self.inboxes {
            for _ in 0..MESH_DRAINED_PER_CALL_MAX {
                let Some(envelope) = inbox.try_recv() else {
                    break;
                };
                spawned |=
                    self.receive(envelope, Serve::InlineWhenQuick).await == Received::Spawned;
            }
        }
        // Let the tasks just spawned run now, not when the caller next waits.
        if spawned {
            futures_lite::future::yield_now().await;
        }
    }

    /// What arrived over the mesh: an answer completes its call; a request is served, inline or on a
    /// task of its own (so a slow one never blocks the channel, and the channels cannot deadlock).
    async fn receive(self: &Rc<Self>, envelope: Envelope, serve: Serve) -> Received {
        match envelope.body {
            Body::Request(request) => {
                // Served without waiting: produce appends, list-offsets lookups and adopted
                // connections. A fetch may wait for this shard's pool, which the caller's own request
                // may be holding.
                let quick = matches!(
                    request,
                    ShardRequest::Produce(_)
                        | ShardRequest::ListOffsets(_)
                        | ShardRequest::AdoptConnection(_)
                );
                if quick && serve == Serve::InlineWhenQuick {
                    let response = Box::pin(self.clone().serve(request)).await;
                    self.answer_now(envelope.from, envelope.id, response);
                    return Received::Done;
                }
                let shard = self.clone();
                glommio::spawn_local(async move {
                    let response = shard.clone().serve(request).await;
                    shard.answer(envelope.from, envelope.id, response).await;
                })
                .detach();
                Received::Spawned
            }
            Body::Response(response) => {
                let waiter = self.pending.borrow_mut().remove(&envelope.id);
                match waiter {
                    Some(waiter) => {
                        // The waiter may have given up (its connection closed); then nobody listens.
                        let _ = waiter.try_send(response);
                    }
                    None => warn!(
                        "{}: answer {} from {} matches no call",
                        self.id, envelope.id, envelope.from
                    ),
                }
                Received::Done
            }
        }
    }

    /// Queues an answer without waiting; when the peer's channel is full, a task of its own waits for
    /// room, so the caller (a connection between its own requests) never does.
    fn answer_now(self: &Rc<Self>, to: ShardId, id: u64, response: ShardResponse) {
        let answer = self.answer_envelope(id, response);
        match self.outbox(to).try_send(answer) {
            Ok(()) => {}
            Err(GlommioError::WouldBlock(ResourceType::Channel(answer))) => {
                let shard = self.clone();
                glommio::spawn_local(async move { shard.send_answer(to, answer).await }).detach();
            }
            Err(_) => debug!("{}: {to} is gone; dropping an answer", self.id),
        }
    }

    async fn answer(&self, to: ShardId, id: u64, response: ShardResponse) {
        self.send_answer(to, self.answer_envelope(id, response))
            .await;
    }

    fn answer_envelope(&self, id: u64, response: ShardResponse) -> Envelope {
        Envelope {
            id,
            from: self.id,
            body: Body::Response(response),
        }
    }

    fn outbox(&self, to: ShardId) -> &Outbox {
        self.senders[usize::from(to.0)]
            .as_ref()
            .expect("a sender to every other shard")
    }

    async fn send_answer(&self, to: ShardId, answer: Envelope) {
        if self.outbox(to).send(answer).await.is_err() {
            debug!("{}: {to} is gone; dropping an answer", self.id);
        }
    }

    /// Waits until this shard has been told to stop and has closed its partitions.
    pub async fn wait_stopped(&self) {
        while !self.is_stopped.get() {
            let generation = self.stopped.generation();
            self.stopped.changed_since(generation).await;
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.is_stopped.get()
    }

    /// The single point where this shard's partitions change or are read for another shard.
    pub async fn serve(self: Rc<Self>, request: ShardRequest) -> ShardResponse {
        match request {
            ShardRequest::Produce(parts) => ShardResponse::Produce(self.produce(parts)),
            ShardRequest::Fetch(work) => ShardResponse::Fetch(self.fetch(work).await),
            ShardRequest::WaitForData(work) => {
                self.wait_for_data(work).await;
                ShardResponse::WaitForData
            }
            ShardRequest::ListOffsets(queries) => {
                ShardResponse::ListOffsets(self.list_offsets(queries))
            }
            ShardRequest::PartitionSizes => ShardResponse::PartitionSizes(self.partition_sizes()),
            ShardRequest::Controller(operation) => {
                ShardResponse::Controller(self.control(operation).await)
            }
            ShardRequest::ApplyCatalog(catalog) => {
                self.apply_catalog(catalog);
                ShardResponse::CatalogApplied
            }
            ShardRequest::Group(request) => {
                ShardResponse::Group(Box::new(crate::group::serve(&self, *request).await))
            }
            ShardRequest::Shutdown => {
                self.shutdown();
                ShardResponse::ShutdownDone
            }
            ShardRequest::AllocateProducerId => {
                ShardResponse::ProducerId(self.txn.allocate_producer_id())
            }
            ShardRequest::Transaction(request) => {
                ShardResponse::Transaction(coordinator::serve(&self, request).await)
            }
            ShardRequest::WriteTxnMarkers(markers) => {
                ShardResponse::TxnMarkersWritten(self.write_markers(markers))
            }
            ShardRequest::DescribeProducers(partitions) => {
                ShardResponse::Producers(self.describe_producers(partitions))
            }
            ShardRequest::AdoptConnection(fd) => {
                // Refused only once the network layer has stopped listening; dropping the descriptor
                // then closes the connection, as stopping does to every other one.
                if self.adopted.try_send(fd).is_err() {
                    debug!("{}: stopping; closing a handed-over connection", self.id);
                }
                ShardResponse::ConnectionAdopted
            }
        }
    }

    fn write_markers(&self, markers: Vec<TxnMarker>) -> Vec<Result<i64, PartitionError>> {
        let now = now_ms();
        let mut partitions = self.partitions.borrow_mut();
        let results: Vec<_> = markers
            .iter()
            .map(|marker| match partitions.get_mut(&marker.partition) {
                Some(partition) => {
                    let control = match marker.commit {
                        true => ControlType::Commit,
                        false => ControlType::Abort,
                    };
                    partition.write_marker(marker.producer_id, marker.producer_epoch, control, now)
                }
                None => Err(PartitionError::UnknownTopicOrPartition),
            })
            .collect();
        drop(partitions);
        if results.iter().any(Result::is_ok) {
            self.appended.notify_all();
        }
        results
    }

    fn describe_producers(
        &self,
        names: Vec<TopicPartition>,
    ) -> Vec<Result<Vec<ProducerInfo>, PartitionError>> {
        let partitions = self.partitions.borrow();
        names
            .iter()
            .map(|name| {
                let partition = partitions
                    .get(name)
                    .ok_or(PartitionError::UnknownTopicOrPartition)?;
                Ok(partition
                    .producers()
                    .map(|(producer_id, entry)| ProducerInfo {
                        producer_id,
                        producer_epoch: entry.epoch,
                        last_sequence: entry.last_sequence(),
                        last_timestamp: entry.last_timestamp,
                        current_txn_start_offset: entry.txn_first_offset.unwrap_or(-1),
                    })
                    .collect())
            })
            .collect()
    }

    fn produce(&self, parts: Vec<ProducePart>) -> Vec<Result<AppendResult, PartitionError>> {
        let now = now_ms();
        let mut partitions = self.partitions.borrow_mut();
        let results: Vec<_> = parts
            .iter()
            .map(|part| match partitions.get_mut(&part.partition) {
                Some(partition) => partition.append(&part.records, now),
                None => Err(PartitionError::UnknownTopicOrPartition),
            })
            .collect();
        drop(partitions);
        if results.iter().any(Result::is_ok) {
            self.appended.notify_all();
        }
        results
    }

    async fn fetch(&self, work: FetchWork) -> Vec<Result<FetchedData, PartitionError>> {
        // The usual case finds every partition's bytes once and copies those very slices, with no
        // await between (so no borrow is held across one).
        let lengths = match self.fetch_without_waiting(&work) {
            Ok(reads) => return reads,
            Err(lengths) => lengths,
        };
        // The pool is over budget: wait for a buffer with no partition borrowed, then find the bytes
        // again. The log only grows at its end, so re-reading each part with its planned length
        // returns the same whole batches (or an error if the partition went away meanwhile).
        let total: usize = lengths
            .iter()
            .map(|length| *length.as_ref().unwrap_or(&0))
            .sum();
        let buffer = PoolBuf::acquire_empty(total).await;
        let partitions = self.partitions.borrow();
        let slices = work
            .parts
            .iter()
            .zip(lengths)
            .map(|(part, length)| {
                let length = length?;
                let partition = partitions
                    .get(&part.partition)
                    .ok_or(PartitionError::UnknownTopicOrPartition)?;
                if length == 0 {
                    return Ok((partition, &[][..]));
                }
                let bytes = partition.read(part.offset, length)?;
                Ok((partition, &bytes[..bytes.len().min(length)]))
            })
            .collect();
        copy_fetched(&work, slices, buffer)
    }

    /// Serves a fetch if the pool lends a buffer at once; otherwise answers each part's planned
    /// length (or error) so the caller can wait for one.
    #[allow(clippy::type_complexity)]
    fn fetch_without_waiting(
        &self,
        work: &FetchWork,
    ) -> Result<Vec<Result<FetchedData, PartitionError>>, Vec<Result<usize, PartitionError>>> {
        let partitions = self.partitions.borrow();
        let slices = plan_fetch(&partitions, work);
        let total: usize = slices
            .iter()
            .map(|slice| slice.as_ref().map_or(0, |(_, bytes)| bytes.len()))
            .sum();
        match PoolBuf::try_acquire_empty(total) {
            Some(buffer) => Ok(copy_fetched(work, slices, buffer)),
            None => Err(slices
                .into_iter()
                .map(|slice| slice.map(|(_, bytes)| bytes.len()))
                .collect()),
        }
    }

    async fn wait_for_data(&self, work: WaitWork) {
        let deadline =
            Instant::now() + Duration::from_millis(work.timeout_ms.min(FETCH_WAIT_MS_MAX));
        loop {
            let generation = self.appended.generation();
            if self.any_grew(&work.parts) || self.is_stopped.get() {
                return;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            if left.is_zero() {
                return;
            }
            futures_lite::future::or(
                self.appended.changed_since(generation),
                glommio::timer::sleep(left),
            )
            .await;
        }
    }

    fn any_grew(&self, parts: &[(TopicPartition, i64)]) -> bool {
        let partitions = self.partitions.borrow();
        parts
            .iter()
            .any(|(partition, seen_end)| match partitions.get(partition) {
                Some(partition) => partition.log().log_end_offset() > *seen_end,
                // A partition that vanished (deleted topic) is a change the fetch must see.
                None => true,
            })
    }

    fn list_offsets(&self, queries: Vec<OffsetQuery>) -> Vec<Result<OffsetAnswer, PartitionError>> {
        let partitions = self.partitions.borrow();
        queries
            .iter()
            .map(|query| {
                let partition = partitions
                    .get(&query.partition)
                    .ok_or(PartitionError::UnknownTopicOrPartition)?;
                let log = partition.log();
                let (offset, timestamp) = match query.timestamp {
                    -2 => (log.log_start_offset(), -1),
                    -1 if query.read_committed => (partition.last_stable_offset(), -1),
                    -1 => (log.log_end_offset(), -1),
                    -3 => log
                        .max_timestamp()
                        .map_or((-1, -1), |(timestamp, offset)| (offset, timestamp)),
                    target => log
                        .offset_for_timestamp(target)
                        .map_err(crate::partition::storage_error)?
                        .unwrap_or((-1, -1)),
                };
                Ok(OffsetAnswer { offset, timestamp })
            })
            .collect()
    }

    fn partition_sizes(&self) -> Vec<(TopicPartition, u64)> {
        let partitions = self.partitions.borrow();
        partitions
            .iter()
            .map(|(name, partition)| (name.clone(), partition.log().size_bytes()))
            .collect()
    }

    /// Opens the partitions this shard owns in `next` and deletes the ones it no longer has.
    fn apply_catalog(&self, next: Arc<Catalog>) {
        if next.version <= self.catalog.borrow().version {
            return;
        }
        *self.catalog.borrow_mut() = next.clone();
        let mut partitions = self.partitions.borrow_mut();
        let stale: Vec<TopicPartition> = partitions
            .iter()
            .filter(|(name, partition)| match next.topic(&name.topic) {
                Some(topic) => topic.id != partition.topic_id || name.partition >= topic.partitions,
                None => true,
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            let partition = partitions
                .remove(&name)
                .expect("stale partition is present");
            info!("{}: deleting partition {name}", self.id);
            if let Err(error) = partition.into_log().delete() {
                error!("{}: could not delete partition {name}: {error}", self.id);
            }
        }
        let now = now_ms();
        // Segments found sealed in the partitions opened now, for the page-cache budget.
        let mut durable_sealed = Vec::new();
        for topic in next.topics().values() {
            for index in 0..topic.partitions {
                let name = TopicPartition {
                    topic: topic.name.clone(),
                    partition: index,
                };
                if self.owner(&name) != self.id || partitions.contains_key(&name) {
                    continue;
                }
                match self.open_partition(topic, &name, now) {
                    Ok(partition) => {
                        durable_sealed.extend(partition.log().durable_sealed_segments());
                        partitions.insert(name, partition);
                    }
                    Err(error) => error!("{}: could not open partition {name}: {error}", self.id),
                }
            }
        }
        // Oldest first, so that the budget keeps the newest data of the shard cached.
        durable_sealed.sort_by_key(|(modified_ms, _)| *modified_ms);
        let durable_sealed = durable_sealed.into_iter().map(|(_, segment)| segment);
        self.syncer.admit_cached(durable_sealed.collect());
    }

    fn open_partition(
        &self,
        topic: &TopicInfo,
        name: &TopicPartition,
        now: i64,
    ) -> Result<Partition, PartitionError> {
        let dir = partition_dir(&self.config.data_dir, name);
        let config = topic.config.log_config(&self.config.defaults);
        Partition::open(&dir, topic.id, config, now, self.syncer.clone())
    }

    /// Deletes partition directories this shard owns that the catalog no longer lists (a crash between
    /// persisting a deletion and carrying it out leaves them behind).
    fn remove_orphans(&self, catalog: &Catalog) {
        let Ok(entries) = std::fs::read_dir(&self.config.data_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            let Some((topic, index)) = name.rsplit_once('-') else {
                continue;
            };
            let Ok(index) = index.parse::<i32>() else {
                continue;
            };
            if !catalog::valid_topic_name(topic) || !entry.path().is_dir() {
                continue;
            }
            if shard_for(topic, index, self.config.shard_count) != self.id {
                continue;
            }
            let listed = catalog
                .topic(topic)
                .is_some_and(|info| index < info.partitions);
            if !listed {
                warn!("{}: removing orphaned partition directory {name}", self.id);
                if let Err(error) = std::fs::remove_dir_all(entry.path()) {
                    error!("{}: could not remove {name}: {error}", self.id);
                }
            }
        }
    }

    fn shutdown(&self) {
        let partitions: Vec<(TopicPartition, Partition)> =
            self.partitions.borrow_mut().drain().collect();
        for (name, partition) in partitions {
            if let Err(error) = partition.close() {
                error!("{}: closing {name} failed: {error}", self.id);
            }
        }
        self.is_stopped.set(true);
        self.stopped.notify_all();
        // Wake parked fetches so their connections can answer and close.
        self.appended.notify_all();
        debug!("{}: stopped", self.id);
    }

    fn enforce_retention(&self) {
        let now = now_ms();
        let mut partitions = self.partitions.borrow_mut();
        for (name, partition) in partitions.iter_mut() {
            partition.maintain(now);
            match partition.log_mut().enforce_retention(now) {
                Ok(0) => {}
                Ok(deleted) => info!(
                    "{}: retention deleted {deleted} segments of {name}",
                    self.id
                ),
                Err(error) => error!("{}: retention on {name} failed: {error}", self.id),
            }
        }
    }
}

/// What a fetch part found: its partition and the whole batches it returns (a slice of the mapping).
type FetchSlice<'a> = Result<(&'a Partition, &'a [u8]), PartitionError>;

/// Finds the bytes each part of a fetch returns, within the work's byte budget.
fn plan_fetch<'a>(
    partitions: &'a HashMap<TopicPartition, Partition>,
    work: &FetchWork,
) -> Vec<FetchSlice<'a>> {
    let mut budget = work.max_bytes;
    let mut any_data = false;
    work.parts
        .iter()
        .map(|part| {
            let partition = partitions
                .get(&part.partition)
                .ok_or(PartitionError::UnknownTopicOrPartition)?;
            let limit = part.max_bytes.min(budget);
            let bytes = match part.read_committed {
                true => partition.read_stable(part.offset, limit.max(1))?,
                false => partition.read(part.offset, limit.max(1))?,
            };
            // Only the first partition with data may exceed the budget (KIP-74); later ones that
            // would are left for the next fetch.
            let bytes = if bytes.len() > limit && any_data {
                &bytes[..0]
            } else {
                bytes
            };
            budget = budget.saturating_sub(bytes.len());
            any_data |= !bytes.is_empty();
            Ok((partition, bytes))
        })
        .collect()
}

/// Copies every part's slice into `buffer` (lent with room for them all) and answers each part with
/// its share of the buffer and its partition's offsets.
fn copy_fetched(
    work: &FetchWork,
    slices: Vec<FetchSlice<'_>>,
    mut buffer: PoolBuf,
) -> Vec<Result<FetchedData, PartitionError>> {
    assert!(buffer.is_empty());
    assert!(slices.len() == work.parts.len());
    let mut answers = Vec::with_capacity(slices.len());
    for (part, slice) in work.parts.iter().zip(slices) {
        answers.push(slice.map(|(partition, bytes)| {
            let start = buffer.len();
            buffer.extend_from_slice(bytes);
            partition.log().done_reading(bytes);
            let aborted = part.read_committed.then(|| {
                // Transactions overlapping what this fetch returns (or could have returned).
                let end = partition.last_stable_offset();
                partition
                    .aborted_between(part.offset, end)
                    .iter()
                    .map(|txn| (txn.producer_id, txn.first_offset))
                    .collect()
            });
            let answer = FetchedData {
                high_watermark: partition.log().log_end_offset(),
                last_stable_offset: partition.last_stable_offset(),
                log_start_offset: partition.log().log_start_offset(),
                records: bytes::Bytes::new(),
                aborted,
            };
            (start..buffer.len(), answer)
        }));
    }
    let records = buffer.into_bytes();
    answers
        .into_iter()
        .map(|answer| {
            answer.map(|(range, mut data)| {
                data.records = records.slice(range);
                data
            })
        })
        .collect()
}

/// Messages `drain_mesh` takes from each peer per call.
const MESH_DRAINED_PER_CALL_MAX: usize = 64;

/// Clears `Shard::draining` when dropped.
struct DrainingGuard<'a>(&'a Cell<bool>);

impl Drop for DrainingGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// What `Shard::receive` did with an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Received {
    /// Answered, or served and answered.
    Done,
    /// A request left to a task of its own.
    Spawned,
}

/// Where `Shard::receive` serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serve {
    /// Produce and list-offsets requests on the caller's task, the rest on tasks of their own.
    InlineWhenQuick,
    /// Every request on a task of its own: the pump must stay free to read its channel.
    Spawned,
}

/// One outgoing end of the mesh.
struct Outbox {
    sender: ConnectedSender<Envelope>,
    /// Counted after each envelope queued, for the receiver's `Inbox::try_recv`.
    sent: SentCount,
}

impl Outbox {
    async fn send(&self, envelope: Envelope) -> Result<(), GlommioError<Envelope>> {
        self.sender.send(envelope).await?;
        self.sent.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn try_send(&self, envelope: Envelope) -> Result<(), GlommioError<Envelope>> {
        self.sender.try_send(envelope)?;
        self.sent.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

/// One incoming end of the mesh. Its pump waits on it; `drain_mesh` takes from it between requests.
struct Inbox {
    receiver: ConnectedReceiver<Envelope>,
    /// The waker of the pump's latest poll; `None` until the pump first runs.
    pump_waker: RefCell<Option<Waker>>,
    /// The sender's count of envelopes queued, and this end's count of envelopes taken.
    sent: SentCount,
    received: Cell<u64>,
}

impl Inbox {
    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Envelope>> {
        let receive = std::pin::pin!(self.receiver.recv());
        let polled = receive.poll(cx);
        if let Poll::Ready(Some(_)) = polled {
            self.received.set(self.received.get() + 1);
        }
        polled
    }

    /// An envelope if one is queued. Polls the channel only when the sender's count says one is
    /// there, so the poll is ready and registers no waker (glommio keeps every waker an empty poll
    /// registers until its reactor runs). Polls with the pump's waker all the same, in case.
    fn try_recv(&self) -> Option<Envelope> {
        // The pump may take an envelope before its sender has counted it: `received` can run ahead.
        if self.sent.load(Ordering::Acquire) <= self.received.get() {
            return None;
        }
        let waker = self.pump_waker.borrow().clone()?;
        match self.poll_recv(&mut Context::from_waker(&waker)) {
            Poll::Ready(envelope) => envelope,
            Poll::Pending => None,
        }
    }
}

/// Reads one peer's channel whenever the reactor reports a message (an idle shard sleeps in the
/// reactor; a busy one also drains at each call, `Shard::drain_mesh`).
async fn pump(shard: Rc<Shard>, inbox: Rc<Inbox>) {
    loop {
        let next = std::future::poll_fn(|cx| {
            let mut pump_waker = inbox.pump_waker.borrow_mut();
            if !pump_waker
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
            {
                *pump_waker = Some(cx.waker().clone());
            }
            drop(pump_waker);
            inbox.poll_recv(cx)
        })
        .await;
        let Some(envelope) = next else {
            break;
        };
        shard.receive(envelope, Serve::Spawned).await;
    }
}

async fn retention_loop(shard: Rc<Shard>) {
    while !shard.is_stopped() {
        futures_lite::future::or(
            glommio::timer::sleep(RETENTION_CHECK_INTERVAL),
            shard.wait_stopped(),
        )
        .await;
        if shard.is_stopped() {
            return;
        }
        shard.enforce_retention();
    }
}

impl Shard {
    async fn control(self: &Rc<Self>, operation: ControllerOp) -> Vec<Result<(), ControllerError>> {
        let controller = self
            .controller
            .as_ref()
            .expect("controller operations go to shard 0");
        let _permit = controller
            .lock
            .acquire_permit(1)
            .await
            .expect("the controller lock is never closed");
        let current = self.catalog();
        let (next, results) = plan_catalog_change(&current, operation, &self.config.defaults);
        let Some(mut next) = next else { return results };
        next.version = current.version + 1;
        if let Err(error) = controller.store.save(&next) {
            error!("could not persist the catalog: {error}");
            return results
                .into_iter()
                .map(|_| Err(ControllerError::Storage(error.to_string())))
                .collect();
        }
        let next = Arc::new(next);
        for target in 0..self.config.shard_count {
            let target = ShardId(target as u16);
            if let Err(error) = self
                .call(target, ShardRequest::ApplyCatalog(next.clone()))
                .await
            {
                error!("could not apply the catalog on {target}: {error}");
            }
        }
        results
    }
}

/// Computes the catalog after `operation` (or `None` when nothing changes) and a result per item.
fn plan_catalog_change(
    current: &Catalog,
    operation: ControllerOp,
    defaults: &BrokerDefaults,
) -> (Option<Catalog>, Vec<Result<(), ControllerError>>) {
    let mut topics: BTreeMap<Arc<str>, Arc<TopicInfo>> = current.topics().clone();
    let (results, validate_only): (Vec<_>, bool) = match operation {
        ControllerOp::CreateTopics {
            topics: requested,
            validate_only,
        } => {
            let results = requested
                .into_iter()
                .map(|topic| create_topic(&mut topics, topic, defaults))
                .collect();
            (results, validate_only)
        }
        ControllerOp::DeleteTopics { names } => {
            let results = names
                .iter()
                .map(|name| {
                    topics
                        .remove(name.as_str())
                        .map(|_| ())
                        .ok_or(ControllerError::UnknownTopic)
                })
                .collect();
            (results, false)
        }
        ControllerOp::CreatePartitions {
            topics: requested,
            validate_only,
        } => {
            let results = requested
                .into_iter()
                .map(|(name, count)| add_partitions(&mut topics, &name, count))
                .collect();
            (results, validate_only)
        }
    };
    let changed = !validate_only && results.iter().any(Result::is_ok);
    let next = changed.then(|| Catalog::new(current.version, current.cluster_id.clone(), topics));
    (next, results)
}

fn create_topic(
    topics: &mut BTreeMap<Arc<str>, Arc<TopicInfo>>,
    topic: NewTopic,
    defaults: &BrokerDefaults,
) -> Result<(), ControllerError> {
    if !catalog::valid_topic_name(&topic.name) {
        return Err(ControllerError::InvalidTopic);
    }
    if topics.contains_key(topic.name.as_str()) {
        return Err(ControllerError::TopicAlreadyExists);
    }
    let partitions = if topic.partitions == -1 {
        defaults.partitions
    } else {
        topic.partitions
    };
    if !(1..=catalog::PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
        return Err(ControllerError::InvalidPartitions(format!(
            "number of partitions must be between 1 and {}, got {partitions}",
            catalog::PARTITIONS_PER_TOPIC_MAX
        )));
    }
    if topic.replication_factor != -1 && topic.replication_factor != 1 {
        return Err(ControllerError::InvalidReplicationFactor);
    }
    let name: Arc<str> = Arc::from(topic.name.as_str());
    let info = TopicInfo {
        name: name.clone(),
        id: catalog::random_id(),
        partitions,
        config: topic.config,
    };
    topics.insert(name, Arc::new(info));
    Ok(())
}

fn add_partitions(
    topics: &mut BTreeMap<Arc<str>, Arc<TopicInfo>>,
    name: &str,
    count: i32,
) -> Result<(), ControllerError> {
    let topic = topics.get(name).ok_or(ControllerError::UnknownTopic)?;
    if count <= topic.partitions {
        return Err(ControllerError::InvalidPartitions(format!(
            "topic currently has {} partitions, which is higher than or equal to the requested {count}",
            topic.partitions
        )));
    }
    if count > catalog::PARTITIONS_PER_TOPIC_MAX {
        return Err(ControllerError::InvalidPartitions(format!(
            "at most {} partitions per topic",
            catalog::PARTITIONS_PER_TOPIC_MAX
        )));
    }
    let grown = TopicInfo {
        partitions: count,
        ..(**topic).clone()
    };
    topics.insert(grown.name.clone(), Arc::new(grown));
    Ok(())
}

/// An event that tasks on one shard can wait for: a generation counter plus the wakers of its waiters.
/// Waiters that give up (a timeout won the race) remove their waker when dropped, so an idle shard
/// with many short polls does not accumulate wakers.
#[derive(Default)]
pub struct Notify {
    generation: Cell<u64>,
    next_key: Cell<u64>,
    waiters: RefCell<BTreeMap<u64, Waker>>,
}

impl Notify {
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    pub fn notify_all(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters.into_values() {
            waker.wake();
        }
    }

    /// Resolves once `notify_all` has run after `generation` was read.
    pub fn changed_since(&self, generation: u64) -> Changed<'_> {
        let key = self.next_key.get();
        self.next_key.set(key.wrapping_add(1));
        Changed {
            notify: self,
            generation,
            key,
        }
    }
}

pub struct Changed<'a> {
    notify: &'a Notify,
    generation: u64,
    key: u64,
}

impl Future for Changed<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.generation {
            return Poll::Ready(());
        }
        self.notify
            .waiters
            .borrow_mut()
            .insert(self.key, context.waker().clone());
        Poll::Pending
    }
}

impl Drop for Changed<'_> {
    fn drop(&mut self) {
        self.notify.waiters.borrow_mut().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> BrokerDefaults {
        BrokerDefaults {
            partitions: 3,
            segment_bytes: 4 << 20,
            segment_ms: 604_800_000,
            retention_ms: -1,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            auto_create_topics: true,
        }
    }

    fn new_topic(name: &str, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: -1,
            config: Default::default(),
        }
    }

    #[test]
    fn catalog_changes_validate_each_item() {
        let current = Catalog::default();
        let operation = ControllerOp::CreateTopics {
            topics: vec![
                new_topic("a", -1),
                new_topic("bad name", 1),
                new_topic("b", 0),
            ],
            validate_only: false,
        };
        let (next, results) = plan_catalog_change(&current, operation, &defaults());
        assert_eq!(results[0], Ok(()));
        assert_eq!(results[1], Err(ControllerError::InvalidTopic));
        assert!(matches!(
            results[2],
            Err(ControllerError::InvalidPartitions(_))
        ));
        let next = next.unwrap();
        assert_eq!(next.topic("a").unwrap().partitions, 3);
        let grow = ControllerOp::CreatePartitions {
            topics: vec![("a".into(), 2), ("a".into(), 5)],
            validate_only: false,
        };
        let (grown, results) = plan_catalog_change(&next, grow, &defaults());
        assert!(results[0].is_err());
        assert_eq!(results[1], Ok(()));
        let grown = grown.unwrap();
        assert_eq!(grown.topic("a").unwrap().partitions, 5);
        // The index by id follows every snapshot: the grown topic, found by its id, has 5 partitions.
        let id = grown.topic("a").unwrap().id;
        assert_eq!(grown.topic_by_id(&id).unwrap().partitions, 5);
        let delete = ControllerOp::DeleteTopics {
            names: vec!["a".into()],
        };
        let (deleted, results) = plan_catalog_change(&grown, delete, &defaults());
        assert_eq!(results, vec![Ok(())]);
        assert!(deleted.unwrap().topic_by_id(&id).is_none());
    }

    #[test]
    fn validate_only_changes_nothing() {
        let operation = ControllerOp::CreateTopics {
            topics: vec![new_topic("a", 1)],
            validate_only: true,
        };
        let (next, results) = plan_catalog_change(&Catalog::default(), operation, &defaults());
        assert_eq!(results, vec![Ok(())]);
        assert!(next.is_none());
    }

    async fn started_shard(data_dir: &std::path::Path, pool_bytes: usize) -> Rc<Shard> {
        let config = ShardConfig {
            data_dir: data_dir.to_path_buf(),
            defaults: defaults(),
            shard_count: 1,
            pool_bytes,
            page_cache_bytes: u64::MAX,
            groups: Default::default(),
        };
        let ends = wire(1).pop().unwrap();
        let catalog = Arc::new(Catalog::default());
        Shard::start(ShardId(0), ends, Arc::new(config), catalog).await
    }

    async fn control(shard: &Rc<Shard>, operation: ControllerOp) {
        let ShardResponse::Controller(results) = shard
            .clone()
            .serve(ShardRequest::Controller(operation))
            .await
        else {
            panic!("a controller answer");
        };
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    async fn produce(shard: &Rc<Shard>, partition: &TopicPartition, batches: usize) {
        for index in 0..batches {
            let batch = crate::storage::testing::simple_batch(10, 100, index as i64);
            let part = ProducePart {
                partition: partition.clone(),
                records: batch.into(),
            };
            let ShardResponse::Produce(results) =
                shard.clone().serve(ShardRequest::Produce(vec![part])).await
            else {
                panic!("a produce answer");
            };
            assert!(results[0].is_ok(), "{results:?}");
        }
    }

    async fn fetch(shard: &Rc<Shard>, parts: &[(&TopicPartition, i64)]) -> Vec<FetchedData> {
        let reads = fetch_results(shard, parts).await;
        reads.into_iter().map(Result::unwrap).collect()
    }

    async fn fetch_results(
        shard: &Rc<Shard>,
        parts: &[(&TopicPartition, i64)],
    ) -> Vec<Result<FetchedData, PartitionError>> {
        let parts = parts
            .iter()
            .map(|(partition, offset)| FetchPart {
                partition: (*partition).clone(),
                offset: *offset,
                max_bytes: 1 << 20,
                read_committed: false,
            })
            .collect();
        let work = FetchWork {
            parts,
            max_bytes: 50 << 20,
        };
        let ShardResponse::Fetch(reads) = shard.clone().serve(ShardRequest::Fetch(work)).await
        else {
            panic!("a fetch answer");
        };
        reads
    }

    fn log_bytes(shard: &Shard, partition: &TopicPartition, offset: i64) -> Vec<u8> {
        let partitions = shard.partitions.borrow();
        partitions[partition]
            .read(offset, 1 << 20)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn fetch_copies_the_planned_batches_and_survives_waiting_for_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async move {
            let pool_bytes = 4 * pool::CLASS_BYTES_MAX;
            let shard = started_shard(dir.path(), pool_bytes).await;
            let create = ControllerOp::CreateTopics {
                topics: vec![new_topic("grows", 1), new_topic("goes", 1)],
                validate_only: false,
            };
            control(&shard, create).await;
            let grows = TopicPartition {
                topic: "grows".into(),
                partition: 0,
            };
            let goes = TopicPartition {
                topic: "goes".into(),
                partition: 0,
            };
            produce(&shard, &grows, 5).await;
            produce(&shard, &goes, 3).await;

            // Without waiting: whole batches from the one holding the offset (15 is mid-batch).
            let reads = fetch(&shard, &[(&grows, 15), (&goes, 0)]).await;
            assert_eq!(&reads[0].records[..], &log_bytes(&shard, &grows, 15)[..]);
            assert_eq!(&reads[1].records[..], &log_bytes(&shard, &goes, 0)[..]);
            assert_eq!(reads[0].high_watermark, 50);
            assert_eq!(reads[1].high_watermark, 30);
            let planned = log_bytes(&shard, &grows, 0);
            drop(reads);
            assert_eq!(pool::stats().unwrap().lent_count, 0);

            // Over budget: the fetch waits for the pool with nothing borrowed while one partition
            // grows and the other's topic is deleted, then answers what it planned and the deletion.
            let hold = PoolBuf::acquire(pool_bytes).await;
            let waiting = glommio::spawn_local({
                let shard = shard.clone();
                let (grows, goes) = (grows.clone(), goes.clone());
                async move { fetch_results(&shard, &[(&grows, 0), (&goes, 0)]).await }
            });
            glommio::timer::sleep(Duration::from_millis(5)).await;
            let waits = pool::stats().unwrap().over_budget_waits;
            assert!(waits > 0);
            produce(&shard, &grows, 2).await;
            let delete = ControllerOp::DeleteTopics {
                names: vec!["goes".into()],
            };
            control(&shard, delete).await;
            drop(hold);
            let mut reads = waiting.await.into_iter();
            let grown = reads.next().unwrap().unwrap();
            assert_eq!(&grown.records[..], &planned[..]);
            assert_eq!(grown.high_watermark, 70);
            let gone = reads.next().unwrap();
            assert!(matches!(gone, Err(PartitionError::UnknownTopicOrPartition)));
        });
    }

    #[test]
    fn notify_wakes_waiters_and_forgets_dropped_ones() {
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async {
            let notify = Rc::new(Notify::default());
            let generation = notify.generation();
            let abandoned = futures_lite::future::or(
                notify.changed_since(generation),
                glommio::timer::sleep(Duration::from_millis(1)),
            );
            abandoned.await;
            assert!(notify.waiters.borrow().is_empty());
            let waiter = glommio::spawn_local({
                let notify = notify.clone();
                async move { notify.changed_since(generation).await }
            });
            glommio::executor().yield_task_queue_now().await;
            notify.notify_all();
            waiter.await;
        });
    }

    /// A shard busy with calls that never wait (a connection whose socket stays readable and whose
    /// partitions are its own) still answers another shard, inline or on a task of its own: it takes
    /// mesh messages at each call instead of only when its reactor runs, which such a shard never does. Without `drain_mesh` the
    /// answer only comes once the busy loop gives up, after `BUSY_FOR_MAX`.
    #[test]
    fn a_busy_shard_answers_other_shards_between_its_own_calls() {
        use std::sync::atomic::AtomicBool;
        const BUSY_FOR_MAX: Duration = Duration::from_secs(20);
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(ShardConfig {
            data_dir: dir.path().to_path_buf(),
            defaults: defaults(),
            shard_count: 2,
            pool_bytes: 4 * pool::CLASS_BYTES_MAX,
            page_cache_bytes: u64::MAX,
            groups: Default::default(),
        });
        let busy = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicBool::new(false));
        let busy_loop_ended = Arc::new(AtomicBool::new(false));
        let mut executors = Vec::new();
        for (index, ends) in wire(2).into_iter().enumerate() {
            let config = config.clone();
            let (busy, answered, busy_loop_ended) =
                (busy.clone(), answered.clone(), busy_loop_ended.clone());
            let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                .spawn(move || async move {
                    let id = ShardId(index as u16);
                    let shard = Shard::start(id, ends, config, Arc::new(Catalog::default())).await;
                    if id == ShardId(1) {
                        let started = Instant::now();
                        busy.store(true, Ordering::Release);
                        while !answered.load(Ordering::Acquire) && started.elapsed() < BUSY_FOR_MAX
                        {
                            let answer =
                                shard.call(id, ShardRequest::ListOffsets(Vec::new())).await;
                            assert!(answer.is_ok());
                        }
                        busy_loop_ended.store(true, Ordering::Release);
                        shard.wait_stopped().await;
                        return true;
                    }
                    while !busy.load(Ordering::Acquire) {
                        glommio::timer::sleep(Duration::from_millis(1)).await;
                    }
                    let answer = shard
                        .call(ShardId(1), ShardRequest::ListOffsets(Vec::new()))
                        .await;
                    assert!(matches!(answer, Ok(ShardResponse::ListOffsets(_))));
                    // Served on a task of its own, which the busy caller lets run.
                    let answer = shard.call(ShardId(1), ShardRequest::PartitionSizes).await;
                    assert!(matches!(answer, Ok(ShardResponse::PartitionSizes(_))));
                    let while_busy = !busy_loop_ended.load(Ordering::Acquire);
                    answered.store(true, Ordering::Release);
                    for target in [ShardId(1), ShardId(0)] {
                        let _ = shard.call(target, ShardRequest::Shutdown).await;
                    }
                    while_busy
                })
                .unwrap();
            executors.push(executor);
        }
        let results: Vec<bool> = executors
            .into_iter()
            .map(|executor| executor.join().unwrap())
            .collect();
        assert!(
            results[0],
            "shard 1 answered only after its busy loop ended"
        );
    }
}
