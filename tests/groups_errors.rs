//! Consumer groups at the wire level: the error paths clients depend on to recover (unknown member,
//! illegal generation, rebalance in progress, fenced and stale member epochs, protocol and assignor
//! validation), group administration errors, and committed offsets surviving a coordinator restart
//! and a kill -9.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::join_group_response::JoinGroupResponse;
use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestTopic};
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::GroupId;

const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;
const FENCED_MEMBER_EPOCH: i16 = 110;
const UNSUPPORTED_ASSIGNOR: i16 = 112;
const STALE_MEMBER_EPOCH: i16 = 113;
const INVALID_REGULAR_EXPRESSION: i16 = 128;

/// Groups complete their first rebalance at once, so the tests do not wait out Kafka's 3 s delay.
fn broker() -> Broker {
    Broker::start(BrokerOpts {
        extra_args: vec!["--group-initial-rebalance-delay-ms".into(), "0".into()],
        ..BrokerOpts::default()
    })
}

fn join_request(group: &str, member_id: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(sb(member_id))
        .with_group_instance_id(instance.map(sb))
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb("range"))
            .with_metadata(Bytes::from_static(b"\x00\x00\x00\x00\x00\x00"))])
}

/// JoinGroup v9 the way clients do it: an empty member id answers MEMBER_ID_REQUIRED with an id, and
/// the member joins again with it.
fn join(client: &mut Client, group: &str) -> JoinGroupResponse {
    let first = client.send(&join_request(group, "", None), 9);
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED, "{first:?}");
    assert!(!first.member_id.is_empty());
    let second = client.send(&join_request(group, first.member_id.as_str(), None), 9);
    assert_eq!(second.error_code, NONE, "{second:?}");
    second
}

fn sync(client: &mut Client, group: &str, generation: i32, member: &str, assign: &[&str]) -> i16 {
    let assignments = assign
        .iter()
        .map(|member| {
            SyncGroupRequestAssignment::default()
                .with_member_id(sb(member))
                .with_assignment(Bytes::from(format!("assignment for {member}")))
        })
        .collect();
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id(generation)
        .with_member_id(sb(member))
        .with_protocol_type(Some(sb("consumer")))
        .with_protocol_name(Some(sb("range")))
        .with_assignments(assignments);
    client.send(&request, 5).error_code
}

fn heartbeat(client: &mut Client, group: &str, generation: i32, member: &str) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id(generation)
        .with_member_id(sb(member));
    client.send(&request, 4).error_code
}

fn commit(
    client: &mut Client,
    version: i16,
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offset: i64,
) -> i16 {
    let partition = OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(offset)
        .with_committed_metadata(Some(sb("wire test")));
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(sb(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![partition])]);
    let response = client.send(&request, version);
    response.topics[0].partitions[0].error_code
}

/// (offset, metadata) committed for partition 0 of `topic`.
fn fetch_offset(client: &mut Client, group: &str, topic: &str) -> (i64, Option<String>) {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(vec![0])]));
    let response = client.send(&request, 7);
    assert_eq!(response.error_code, NONE, "{response:?}");
    let partition = &response.topics[0].partitions[0];
    (
        partition.committed_offset,
        partition.metadata.as_ref().map(|m| m.to_string()),
    )
}

#[test]
fn find_coordinator_answers_this_broker_for_single_and_batched_keys() {
    let broker = broker();
    let mut client = broker.client();
    for version in 0..=3 {
        let request = FindCoordinatorRequest::default().with_key(sb("g"));
        let response = client.send(&request, version);
        assert_eq!(response.error_code, NONE);
        assert_eq!(response.host.as_str(), "127.0.0.1");
        assert_eq!(response.port, i32::from(broker.port));
    }
    let request =
        FindCoordinatorRequest::default().with_coordinator_keys(vec![sb("a"), sb("b"), sb("c")]);
    let response = client.send(&request, 6);
    assert_eq!(response.coordinators.len(), 3);
    for coordinator in &response.coordinators {
        assert_eq!(coordinator.error_code, NONE);
        assert_eq!(coordinator.port, i32::from(broker.port));
    }
}

#[test]
fn unknown_member_and_illegal_generation_are_rejected() {
    let broker = broker();
    let mut client = broker.client();
    create_topic(&mut client, "errors", 1);
    // Nothing exists yet: every member is unknown.
    assert_eq!(heartbeat(&mut client, "g1", 1, "ghost"), UNKNOWN_MEMBER_ID);
    let joined = join(&mut client, "g1");
    let member = joined.member_id.to_string();
    assert_eq!(joined.leader.as_str(), member, "a lone member leads");
    assert_eq!(joined.members.len(), 1);
    let generation = joined.generation_id;
    assert_eq!(
        sync(&mut client, "g1", generation, &member, &[&member]),
        NONE
    );
    assert_eq!(heartbeat(&mut client, "g1", generation, &member), NONE);
    assert_eq!(
        heartbeat(&mut client, "g1", generation, "ghost"),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        heartbeat(&mut client, "g1", generation + 1, &member),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        sync(&mut client, "g1", generation - 1, &member, &[]),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        commit(&mut client, 8, "g1", generation + 3, &member, "errors", 5),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        commit(&mut client, 8, "g1", generation, "ghost", "errors", 5),
        UNKNOWN_MEMBER_ID
    );
    // A commit from outside the group while it has members is refused too.
    assert_eq!(
        commit(&mut client, 8, "g1", -1, "", "errors", 5),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        commit(&mut client, 8, "g1", generation, &member, "errors", 5),
        NONE
    );
    assert_eq!(fetch_offset(&mut client, "g1", "errors").0, 5);
    // Joining with another protocol type, or a session timeout out of range, is refused.
    let mut other = join_request("g1", "", None).with_protocol_type(sb("connect"));
    other.member_id = sb("");
    assert_eq!(
        client.send(&other, 9).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    let short = join_request("g1", "", None).with_session_timeout_ms(10);
    assert_eq!(client.send(&short, 9).error_code, INVALID_SESSION_TIMEOUT);
    // An unknown member id cannot join.
    assert_eq!(
        client
            .send(&join_request("g1", "ghost", None), 9)
            .error_code,
        UNKNOWN_MEMBER_ID
    );
}

#[test]
fn existing_members_learn_of_a_rebalance_and_old_generations_are_fenced() {
    let broker = broker();
    let mut first = broker.client();
    let joined = join(&mut first, "g2");
    let first_id = joined.member_id.to_string();
    let generation = joined.generation_id;
    assert_eq!(
        sync(&mut first, "g2", generation, &first_id, &[&first_id]),
        NONE
    );
    // A second member joins; its JoinGroup parks until the first member rejoins.
    let port = broker.port;
    let (sender, receiver) = mpsc::channel();
    let second = thread::spawn(move || {
        let mut client = Client::connect(port);
        let joined = join(&mut client, "g2");
        sender.send(joined).unwrap();
    });
    let started = Instant::now();
    loop {
        let code = heartbeat(&mut first, "g2", generation, &first_id);
        if code == REBALANCE_IN_PROGRESS {
            break;
        }
        assert_eq!(code, NONE);
        assert!(started.elapsed() < Duration::from_secs(10), "no rebalance");
        thread::sleep(Duration::from_millis(20));
    }
    // Commits of the current generation are still accepted while the group prepares to rebalance.
    let mut admin = broker.client();
    create_topic(&mut admin, "g2-topic", 1);
    assert_eq!(
        commit(&mut first, 9, "g2", generation, &first_id, "g2-topic", 3),
        NONE
    );
    let rejoined = first.send(&join_request("g2", &first_id, None), 9);
    assert_eq!(rejoined.error_code, NONE);
    let second_joined = receiver.recv_timeout(Duration::from_secs(10)).unwrap();
    second.join().unwrap();
    assert_eq!(rejoined.generation_id, generation + 1);
    assert_eq!(second_joined.generation_id, generation + 1);
    assert_eq!(rejoined.leader, second_joined.leader);
    // The old generation is fenced everywhere.
    assert_eq!(
        sync(&mut first, "g2", generation, &first_id, &[]),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        heartbeat(&mut first, "g2", generation, &first_id),
        ILLEGAL_GENERATION
    );
    // Until the leader syncs, commits answer REBALANCE_IN_PROGRESS (CompletingRebalance).
    assert_eq!(
        commit(
            &mut first,
            9,
            "g2",
            generation + 1,
            &first_id,
            "g2-topic",
            4
        ),
        REBALANCE_IN_PROGRESS
    );
    // Deleting a group with members fails; leaving empties it; then it can go.
    let delete = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb("g2"))]);
    assert_eq!(
        admin.send(&delete, 2).results[0].error_code,
        NON_EMPTY_GROUP
    );
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(sb("g2")))
        .with_members(vec![
            MemberIdentity::default().with_member_id(sb(&first_id)),
            MemberIdentity::default().with_member_id(second_joined.member_id.clone()),
            MemberIdentity::default().with_member_id(sb("ghost")),
        ]);
    let left = admin.send(&leave, 5);
    let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![NONE, NONE, UNKNOWN_MEMBER_ID]);
    assert_eq!(admin.send(&delete, 2).results[0].error_code, NONE);
    assert_eq!(
        admin.send(&delete, 2).results[0].error_code,
        GROUP_ID_NOT_FOUND
    );
}

#[test]
fn static_members_are_fenced_by_instance_id() {
    let broker = broker();
    let mut client = broker.client();
    // Static members skip MEMBER_ID_REQUIRED.
    let joined = client.send(&join_request("g3", "", Some("instance-1")), 9);
    assert_eq!(joined.error_code, NONE, "{joined:?}");
    let member = joined.member_id.to_string();
    assert_eq!(
        sync(&mut client, "g3", joined.generation_id, &member, &[&member]),
        NONE
    );
    // The same instance id rejoining replaces the member without a rebalance...
    let again = client.send(&join_request("g3", "", Some("instance-1")), 9);
    assert_eq!(again.error_code, NONE);
    assert_eq!(again.generation_id, joined.generation_id);
    assert_ne!(again.member_id, joined.member_id);
    // ...and the old member id is fenced.
    let old = HeartbeatRequest::default()
        .with_group_id(GroupId(sb("g3")))
        .with_generation_id(joined.generation_id)
        .with_member_id(sb(&member))
        .with_group_instance_id(Some(sb("instance-1")));
    assert_eq!(client.send(&old, 4).error_code, FENCED_INSTANCE_ID);
}

fn consumer_heartbeat(
    client: &mut Client,
    group: &str,
    member: &str,
    epoch: i32,
    topics: Option<Vec<&str>>,
) -> ConsumerGroupHeartbeatResponse {
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(
            topics.map(|topics| topics.into_iter().map(topic_name).collect()),
        );
    client.send(&request, 1)
}

#[test]
fn kip848_epochs_are_fenced_and_stale_commits_rejected() {
    let broker = broker();
    let mut client = broker.client();
    create_topic(&mut client, "kip848", 4);
    let joined = consumer_heartbeat(&mut client, "g4", "member-a", 0, Some(vec!["kip848"]));
    assert_eq!(joined.error_code, NONE, "{joined:?}");
    assert_eq!(joined.member_id.as_ref().unwrap().as_str(), "member-a");
    let epoch = joined.member_epoch;
    assert!(epoch > 0);
    let assignment = joined
        .assignment
        .expect("a joining member gets its assignment");
    let partitions: usize = assignment
        .topic_partitions
        .iter()
        .map(|topic| topic.partitions.len())
        .sum();
    assert_eq!(partitions, 4, "a lone member owns every partition");
    // A heartbeat with the current epoch is fine; a future epoch is fenced; a stranger is unknown.
    assert_eq!(
        consumer_heartbeat(&mut client, "g4", "member-a", epoch, None).error_code,
        NONE
    );
    assert_eq!(
        consumer_heartbeat(&mut client, "g4", "member-a", epoch + 5, None).error_code,
        FENCED_MEMBER_EPOCH
    );
    assert_eq!(
        consumer_heartbeat(&mut client, "g4", "stranger", 3, None).error_code,
        UNKNOWN_MEMBER_ID
    );
    // OffsetCommit v9 carries the member epoch: a stale one is refused, the current one accepted.
    assert_eq!(
        commit(&mut client, 9, "g4", epoch - 1, "member-a", "kip848", 8),
        STALE_MEMBER_EPOCH
    );
    assert_eq!(
        commit(&mut client, 9, "g4", epoch, "member-a", "kip848", 8),
        NONE
    );
    assert_eq!(fetch_offset(&mut client, "g4", "kip848").0, 8);
    // Request validation.
    let bad_regex = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb("g4")))
        .with_member_id(sb("member-b"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_regex(Some(sb("(unclosed")));
    assert_eq!(
        client.send(&bad_regex, 1).error_code,
        INVALID_REGULAR_EXPRESSION
    );
    let bad_assignor = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb("g4")))
        .with_member_id(sb("member-b"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(Some(vec![topic_name("kip848")]))
        .with_server_assignor(Some(sb("round-robin")));
    assert_eq!(
        client.send(&bad_assignor, 1).error_code,
        UNSUPPORTED_ASSIGNOR
    );
    // A classic JoinGroup cannot take over a KIP-848 group with members.
    assert_eq!(
        client.send(&join_request("g4", "", None), 9).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    // Leaving (epoch -1) removes the member; its epoch is then unknown.
    assert_eq!(
        consumer_heartbeat(&mut client, "g4", "member-a", -1, None).member_epoch,
        -1
    );
    assert_eq!(
        consumer_heartbeat(&mut client, "g4", "member-a", epoch, None).error_code,
        UNKNOWN_MEMBER_ID
    );
}

#[test]
fn committed_offsets_survive_restart_and_kill9() {
    let broker = broker();
    let mut client = broker.client();
    create_topic(&mut client, "durable", 1);
    for index in 0..50 {
        assert_eq!(
            commit(
                &mut client,
                8,
                &format!("group {index}/ü"),
                -1,
                "",
                "durable",
                index
            ),
            NONE
        );
    }
    let mut broker = broker;
    broker.stop();
    let restarted = broker.restart_same_dir();
    let mut client = restarted.client();
    for index in 0..50 {
        let (offset, metadata) = fetch_offset(&mut client, &format!("group {index}/ü"), "durable");
        assert_eq!(offset, index);
        assert_eq!(metadata.as_deref(), Some("wire test"));
    }
    // A commit acknowledged just before a kill -9 is in the page cache, so it survives too.
    assert_eq!(
        commit(&mut client, 8, "group 7/ü", -1, "", "durable", 700),
        NONE
    );
    let mut restarted = restarted;
    restarted.kill9();
    let again = restarted.restart_same_dir();
    let mut client = again.client();
    assert_eq!(fetch_offset(&mut client, "group 7/ü", "durable").0, 700);
    assert_eq!(fetch_offset(&mut client, "group 8/ü", "durable").0, 8);
    assert_eq!(
        fetch_offset(&mut client, "never committed", "durable").0,
        -1
    );
}
