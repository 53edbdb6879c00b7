//! Everything that crosses cores: the closed request/response enums and the bounded SPSC mesh.
//!
//! Owns: [`ShardRequest`], [`ShardResponse`] and their payloads, the [`Envelope`] that carries them, and
//! the wiring of one bounded glommio shared channel per ordered pair of shards. These are the only
//! `Send` types of the crate that carry data, so a reviewer can audit every byte that changes cores by
//! reading this file. Payloads are owned values (`Bytes`, `Arc` snapshots), never references.
//! Never: behaviour. What a shard does with a request lives in `shard.rs`.

use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::Bytes;
use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};

use crate::catalog::{Catalog, TopicConfig};
use crate::{ShardId, TopicPartition};

/// Depth of each shard-to-shard channel. Every connection has at most one request in flight and fans
/// out at most one message per shard, so this bounds the burst one shard can queue at another before
/// its senders wait (backpressure) rather than growing a queue.
pub const MESH_QUEUE_DEPTH: usize = 1024;

/// A request one shard asks of another (or of itself, through the same code path).
#[derive(Debug)]
pub enum ShardRequest {
    /// Append the record batches to the owned partitions.
    Produce(Vec<ProducePart>),
    /// Read whole batches from the owned partitions.
    Fetch(FetchWork),
    /// Answer once any of these partitions has grown past the given end offset, or at the deadline.
    WaitForData(WaitWork),
    /// Offsets by timestamp (or the special -1 latest, -2 earliest, -3 max timestamp).
    ListOffsets(Vec<OffsetQuery>),
    /// Sizes of the owned partitions of these topics (all topics when empty).
    PartitionSizes,
    /// Catalog changes; only shard 0, the single writer of the catalog, serves these.
    Controller(ControllerOp),
    /// A new catalog snapshot: open the partitions this shard now owns, delete the removed ones.
    ApplyCatalog(Arc<Catalog>),
    /// Consumer-group work for groups this shard owns (`router::shard_for_group`). Boxed: group
    /// requests are many times larger than the partition requests that dominate the mesh.
    Group(Box<GroupRequest>),
    /// Close every partition cleanly and stop.
    Shutdown,
    /// A new producer id; only shard 0, the single owner of the producer id space, serves it.
    AllocateProducerId,
    /// Work for the transaction coordinator of one transactional id (the shard
    /// `router::shard_for_transactional_id` names).
    Transaction(TxnRequest),
    /// Write transaction markers to the owned partitions (from a transaction coordinator).
    WriteTxnMarkers(Vec<TxnMarker>),
    /// The active producers of the owned partitions (DescribeProducers).
    DescribeProducers(Vec<TopicPartition>),
    /// A client connection whose requests all go to this shard's partitions: serve it here from now
    /// on (the sender has answered every request it read and read nothing more; see
    /// `src/net/affinity.rs`).
    AdoptConnection(OwnedFd),
}

/// The answer to a [`ShardRequest`], in the same order as the request's parts.
#[derive(Debug)]
pub enum ShardResponse {
    Produce(Vec<Result<AppendResult, PartitionError>>),
    Fetch(Vec<Result<FetchedData, PartitionError>>),
    WaitForData,
    ListOffsets(Vec<Result<OffsetAnswer, PartitionError>>),
    PartitionSizes(Vec<(TopicPartition, u64)>),
    Controller(Vec<Result<(), ControllerError>>),
    CatalogApplied,
    Group(Box<GroupResponse>),
    ShutdownDone,
    ProducerId(Result<i64, TxnError>),
    Transaction(TxnResponse),
    TxnMarkersWritten(Vec<Result<i64, PartitionError>>),
    Producers(Vec<Result<Vec<ProducerInfo>, PartitionError>>),
    ConnectionAdopted,
}

#[derive(Debug)]
pub struct ProducePart {
    pub partition: TopicPartition,
    /// One or more record batches exactly as the client sent them (a slice of the request frame).
    pub records: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

#[derive(Debug)]
pub struct FetchWork {
    pub parts: Vec<FetchPart>,
    /// Budget for all parts of this work item together; the first batch is always returned whole.
    pub max_bytes: usize,
}

#[derive(Debug)]
pub struct FetchPart {
    pub partition: TopicPartition,
    pub offset: i64,
    pub max_bytes: usize,
    /// `read_committed`: stop at the last stable offset and report aborted transactions.
    pub read_committed: bool,
}

#[derive(Debug)]
pub struct FetchedData {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Whole batches copied out of the log into a buffer of the owner's pool.
    pub records: Bytes,
    /// For `read_committed`: (producer id, first offset) of the aborted transactions the records
    /// overlap; `None` for `read_uncommitted`.
    pub aborted: Option<Vec<(i64, i64)>>,
}

#[derive(Debug)]
pub struct WaitWork {
    /// Each partition with the end offset the caller has already seen.
    pub parts: Vec<(TopicPartition, i64)>,
    pub timeout_ms: u64,
}

#[derive(Debug)]
pub struct OffsetQuery {
    pub partition: TopicPartition,
    pub timestamp: i64,
    /// `read_committed`: LATEST (-1) answers the last stable offset instead of the high watermark.
    pub read_committed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAnswer {
    /// -1 when no record matches.
    pub offset: i64,
    /// -1 when not applicable.
    pub timestamp: i64,
}

/// Why an operation on one partition failed. The broker maps each to a Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error("this shard does not have the partition")]
    UnknownTopicOrPartition,
    #[error("offset out of range")]
    OffsetOutOfRange,
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    #[error("record batch larger than max.message.bytes")]
    MessageTooLarge,
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("{0}")]
    OutOfOrderSequence(String),
    #[error("{0}")]
    InvalidProducerEpoch(String),
    #[error("{0}")]
    InvalidTxnState(String),
}

/// A transaction marker for one partition.
#[derive(Debug, Clone)]
pub struct TxnMarker {
    pub partition: TopicPartition,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
}

/// One producer of a partition, as DescribeProducers reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    /// -1 when the producer has no open transaction here.
    pub current_txn_start_offset: i64,
}

/// Requests a transaction coordinator serves, one transactional id each (Describe and List span all
/// the ids a coordinator owns).
#[derive(Debug)]
pub enum TxnRequest {
    InitProducerId {
        transactional_id: String,
        timeout_ms: i32,
        /// -1 and -1 unless the client asks to bump the epoch of the id it holds (KIP-360).
        producer_id: i64,
        producer_epoch: i16,
    },
    AddPartitions {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
        /// Only check that the partitions are in the transaction (AddPartitionsToTxn v4+).
        verify_only: bool,
    },
    AddOffsets {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        group_id: String,
    },
    /// TxnOffsetCommit: offsets the transaction commits for a group, visible to the group only once
    /// the transaction commits.
    OffsetCommit {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        group_id: String,
        offsets: Vec<CommitOffset>,
    },
    EndTxn {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    },
    Describe(Vec<String>),
    List {
        /// Kafka state names; empty means every state.
        states: Vec<String>,
        /// Empty means every producer id.
        producer_ids: Vec<i64>,
        /// Only transactions open longer than this; -1 means no filter.
        duration_ms: i64,
    },
}

#[derive(Debug)]
pub enum TxnResponse {
    InitProducerId(Result<(i64, i16), TxnError>),
    /// Results in the request's partition order.
    AddPartitions(Vec<Result<(), TxnError>>),
    /// Results in the request's offset order.
    OffsetCommit(Vec<Result<(), TxnError>>),
    Done(Result<(), TxnError>),
    Describe(Vec<TxnDescription>),
    List(Vec<TxnListing>),
}

/// Why a coordinator refused a request; each maps to Kafka's error of that name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("transaction timeout is outside (0, transaction.max.timeout.ms]")]
    InvalidTransactionTimeout,
    #[error("the producer has been fenced by a newer epoch")]
    ProducerFenced,
    #[error("the producer id does not belong to this transactional id")]
    InvalidProducerIdMapping,
    #[error("another operation on this transaction is in progress")]
    ConcurrentTransactions,
    #[error("the transaction is not in a state that allows this operation")]
    InvalidTxnState,
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("not attempted because another partition failed")]
    OperationNotAttempted,
    #[error("coordinator storage error: {0}")]
    Storage(String),
}

#[derive(Debug, Clone)]
pub struct TxnDescription {
    pub transactional_id: String,
    /// None: this coordinator has no such transactional id.
    pub state: Option<TxnSummary>,
}

#[derive(Debug, Clone)]
pub struct TxnSummary {
    /// Kafka's state name: Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort.
    pub state: &'static str,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// -1 when no transaction is open.
    pub start_time_ms: i64,
    pub partitions: Vec<TopicPartition>,
}

#[derive(Debug, Clone)]
pub struct TxnListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: &'static str,
}

/// A change to the catalog.
#[derive(Debug)]
pub enum ControllerOp {
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        topics: Vec<(String, i32)>,
        validate_only: bool,
    },
}

#[derive(Debug)]
pub struct NewTopic {
    pub name: String,
    /// -1 means the broker default.
    pub partitions: i32,
    /// -1 means the broker default; only 1 can be satisfied by a single node.
    pub replication_factor: i16,
    pub config: TopicConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControllerError {
    #[error("topic already exists")]
    TopicAlreadyExists,
    #[error("invalid topic name")]
    InvalidTopic,
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor: only 1 is possible on a single node")]
    InvalidReplicationFactor,
    #[error("unknown topic")]
    UnknownTopic,
    #[error("storage error: {0}")]
    Storage(String),
}

// ---- Consumer groups. The group's owning shard serves these; the handlers decode the Kafka requests
// into them and encode the answers. Topic ids are the catalog's 16 raw bytes.

/// A topic id and partition indexes: how KIP-848 assignments travel.
pub type TopicIdPartitions = Vec<([u8; 16], Vec<i32>)>;

/// Work for the group coordinator of one shard.
#[derive(Debug)]
pub enum GroupRequest {
    Join(JoinWork),
    Sync(SyncWork),
    Heartbeat(HeartbeatWork),
    Leave(LeaveWork),
    OffsetCommit(CommitWork),
    /// TxnOffsetCommit's membership check (generation or member epoch, KIP-447), writing nothing: the
    /// offsets wait with the transaction. Answered as `GroupResponse::OffsetCommit`.
    ValidateTxnOffsets(CommitWork),
    /// A committed transaction's offsets, from its coordinator: written without a membership check
    /// (it passed when they were sent). Answered as `GroupResponse::OffsetCommit`.
    CommitTxnOffsets(CommitWork),
    OffsetFetch(OffsetFetchWork),
    OffsetDelete(OffsetDeleteWork),
    /// Classic-protocol descriptions of these groups.
    Describe(Vec<String>),
    /// Every group this shard owns.
    List,
    Delete(Vec<String>),
    ConsumerHeartbeat(ConsumerHeartbeatWork),
    /// KIP-848 descriptions of these groups.
    ConsumerDescribe(Vec<String>),
}

#[derive(Debug)]
pub enum GroupResponse {
    Join(JoinAnswer),
    Sync(Result<SyncAnswer, GroupError>),
    Heartbeat(Result<(), GroupError>),
    /// A group-level error, or one result per leaving member in request order.
    Leave(Result<Vec<Result<(), GroupError>>, GroupError>),
    /// A group-level error, or one result per committed partition in request order.
    OffsetCommit(Result<Vec<Result<(), GroupError>>, GroupError>),
    OffsetFetch(Result<Vec<FetchedOffset>, GroupError>),
    /// A group-level error, or one result per partition in request order.
    OffsetDelete(Result<Vec<Result<(), GroupError>>, GroupError>),
    /// One entry per asked group, in request order; `None` for a group that does not exist.
    Describe(Vec<Option<GroupDescription>>),
    List(Vec<ListedGroup>),
    /// One result per asked group, in request order.
    Delete(Vec<Result<(), GroupError>>),
    ConsumerHeartbeat(Result<ConsumerHeartbeatAnswer, GroupError>),
    /// One entry per asked group, in request order.
    ConsumerDescribe(Vec<Result<ConsumerGroupDescription, GroupError>>),
}

/// Why a group operation failed. `src/errors.rs` maps each to its Kafka code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("invalid group id")]
    InvalidGroupId,
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("illegal generation")]
    IllegalGeneration,
    #[error("rebalance in progress")]
    RebalanceInProgress,
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    #[error("session timeout out of the allowed range")]
    InvalidSessionTimeout,
    #[error("member id required")]
    MemberIdRequired,
    #[error("fenced instance id")]
    FencedInstanceId,
    #[error("group has reached its maximum size")]
    GroupMaxSizeReached,
    #[error("the group is not empty")]
    NonEmptyGroup,
    #[error("{0}")]
    GroupIdNotFound(String),
    #[error("the group is subscribed to the topic")]
    GroupSubscribedToTopic,
    #[error("stale member epoch")]
    StaleMemberEpoch,
    #[error("fenced member epoch")]
    FencedMemberEpoch,
    #[error("the instance id is still used by another member")]
    UnreleasedInstanceId,
    #[error("unsupported assignor {0}")]
    UnsupportedAssignor(String),
    #[error("invalid regular expression: {0}")]
    InvalidRegularExpression(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("offset metadata too large")]
    OffsetMetadataTooLarge,
    #[error("the coordinator is not available: {0}")]
    CoordinatorNotAvailable(String),
}

#[derive(Debug)]
pub struct JoinWork {
    pub group_id: String,
    /// Empty for a member joining for the first time.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member is first given an id (MEMBER_ID_REQUIRED) and joins with it.
    pub member_id_required: bool,
    pub reason: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Topics named by the member's consumer-protocol subscription (decoded by the handler), used to
    /// refuse OffsetDelete on subscribed topics; `None` when the metadata is not a consumer subscription.
    pub subscribed_topics: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct JoinAnswer {
    pub error: Option<GroupError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: every member and its metadata for the chosen protocol.
    pub members: Vec<JoinedMember>,
}

#[derive(Debug, Clone)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug)]
pub struct SyncWork {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment per member; empty from followers.
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone)]
pub struct SyncAnswer {
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

#[derive(Debug)]
pub struct HeartbeatWork {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

#[derive(Debug)]
pub struct LeaveWork {
    pub group_id: String,
    /// (member id, group instance id, reason) per leaving member.
    pub members: Vec<(String, Option<String>, Option<String>)>,
}

#[derive(Debug)]
pub struct CommitWork {
    pub group_id: String,
    /// The classic generation or, for KIP-848 groups, the member epoch; -1 for a commit from outside
    /// group management (AdminClient, `assign()` consumers).
    pub generation_or_member_epoch: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub offsets: Vec<CommitOffset>,
}

/// One committed offset, from OffsetCommit or (held until the transaction commits) TxnOffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOffset {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

#[derive(Debug)]
pub struct OffsetFetchWork {
    pub group_id: String,
    /// KIP-848 members name themselves (OffsetFetch v9+); `None` and -1 otherwise.
    pub member_id: Option<String>,
    pub member_epoch: i32,
    /// `None` asks for every committed offset of the group.
    pub partitions: Option<Vec<(Arc<str>, i32)>>,
}

#[derive(Debug, Clone)]
pub struct FetchedOffset {
    pub topic: Arc<str>,
    pub partition: i32,
    /// -1 when nothing is committed.
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

#[derive(Debug)]
pub struct OffsetDeleteWork {
    pub group_id: String,
    pub partitions: Vec<(Arc<str>, i32)>,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    /// Kafka's state names: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead (classic);
    /// Empty, Assigning, Reconciling, Stable (consumer).
    pub state: String,
    pub protocol_type: String,
    pub protocol_data: String,
    pub is_consumer_group: bool,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    /// "classic" or "consumer".
    pub group_type: String,
}

#[derive(Debug)]
pub struct ConsumerHeartbeatWork {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns, when it reports them (on join and after each change).
    pub owned: Option<TopicIdPartitions>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone)]
pub struct ConsumerHeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Sent when it changed (or the member asked with a full request); `None` keeps the last one.
    pub assignment: Option<TopicIdPartitions>,
}

#[derive(Debug, Clone)]
pub struct ConsumerGroupDescription {
    pub group_id: String,
    pub state: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<ConsumerMemberDescription>,
}

#[derive(Debug, Clone)]
pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub assignment: TopicIdPartitions,
    pub target_assignment: TopicIdPartitions,
}

/// What travels on a mesh channel: a request with the id its answer will carry, or that answer.
#[derive(Debug)]
pub struct Envelope {
    pub id: u64,
    pub from: ShardId,
    pub body: Body,
}

#[derive(Debug)]
pub enum Body {
    Request(ShardRequest),
    Response(ShardResponse),
}

/// Envelopes ever sent into one channel, shared by its two ends. The sender adds one after each
/// envelope it queued; the receiver compares it with the envelopes it has taken, so it can tell that
/// one is waiting without polling the channel (a poll of an empty glommio channel registers a waker
/// with the reactor, which only the reactor clears).
pub type SentCount = Arc<AtomicU64>;

/// One shard's ends of the mesh, before they are connected on its executor. Indexed by peer shard;
/// the shard's own slot is `None` (a shard calls itself directly).
pub struct MeshEnds {
    pub senders: Vec<Option<(SharedSender<Envelope>, SentCount)>>,
    pub receivers: Vec<Option<(SharedReceiver<Envelope>, SentCount)>>,
}

/// Builds the full mesh: one bounded channel for each ordered pair of distinct shards. Called once at
/// boot; glommio's advice is to create channels early and connect them as the executors start.
pub fn wire(shard_count: usize) -> Vec<MeshEnds> {
    let mut ends: Vec<MeshEnds> = (0..shard_count)
        .map(|_| MeshEnds {
            senders: (0..shard_count).map(|_| None).collect(),
            receivers: (0..shard_count).map(|_| None).collect(),
        })
        .collect();
    for source in 0..shard_count {
        for target in 0..shard_count {
            if source == target {
                continue;
            }
            let (sender, receiver) = shared_channel::new_bounded(MESH_QUEUE_DEPTH);
            let sent = SentCount::default();
            ends[source].senders[target] = Some((sender, sent.clone()));
            ends[target].receivers[source] = Some((receiver, sent));
        }
    }
    ends
}
