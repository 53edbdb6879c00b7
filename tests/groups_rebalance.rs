//! Rebalance timing at the wire level, for the closing report: two members own a 6-partition topic,
//! a third joins, and the clock runs from the third member's first request until all three hold a
//! complete, disjoint assignment of the same generation (classic) or epoch (KIP-848). Members
//! heartbeat every `HEARTBEAT_INTERVAL`, so a member learns of a rebalance within that; the test
//! prints the measured times and checks they stay within a generous bound.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::consumer_group_heartbeat_request::{
    ConsumerGroupHeartbeatRequest, TopicPartitions,
};
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::GroupId;

const PARTITIONS: i32 = 6;
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
const REBALANCE_BOUND: Duration = Duration::from_secs(10);
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

/// What one member holds now: its generation or epoch and its partitions.
type Held = Arc<Mutex<(i32, BTreeSet<i32>)>>;

fn broker() -> Broker {
    Broker::start(BrokerOpts {
        extra_args: vec![
            "--group-initial-rebalance-delay-ms".into(),
            "0".into(),
            "--group-consumer-heartbeat-interval-ms".into(),
            "100".into(),
        ],
        ..BrokerOpts::default()
    })
}

fn settled(members: &[Held]) -> bool {
    let held: Vec<(i32, BTreeSet<i32>)> =
        members.iter().map(|m| m.lock().unwrap().clone()).collect();
    let generation = held[0].0;
    let mut all = BTreeSet::new();
    let mut total = 0;
    for (their_generation, partitions) in &held {
        if *their_generation != generation || partitions.is_empty() {
            return false;
        }
        total += partitions.len();
        all.extend(partitions.iter().copied());
    }
    total == PARTITIONS as usize && all.len() == PARTITIONS as usize
}

/// A classic member: join (with MEMBER_ID_REQUIRED), the leader assigns partitions round-robin over
/// the members it is given, sync, then heartbeat until told to rejoin.
fn classic_member(port: u16, held: Held, stop: Arc<AtomicBool>) {
    let mut client = Client::connect(port);
    let protocol = JoinGroupRequestProtocol::default()
        .with_name(sb("range"))
        .with_metadata(Bytes::from_static(b"\x00\x00"));
    let mut member_id = String::new();
    while !stop.load(Ordering::Relaxed) {
        let join = JoinGroupRequest::default()
            .with_group_id(GroupId(sb("timed-classic")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(sb(&member_id))
            .with_protocol_type(sb("consumer"))
            .with_protocols(vec![protocol.clone()]);
        let joined = client.send(&join, 9);
        if joined.error_code == MEMBER_ID_REQUIRED {
            member_id = joined.member_id.to_string();
            continue;
        }
        assert_eq!(joined.error_code, NONE, "{joined:?}");
        member_id = joined.member_id.to_string();
        let assignments = joined
            .members
            .iter()
            .enumerate()
            .map(|(index, member)| {
                let partitions: Vec<String> = (0..PARTITIONS)
                    .filter(|p| *p as usize % joined.members.len() == index)
                    .map(|p| p.to_string())
                    .collect();
                SyncGroupRequestAssignment::default()
                    .with_member_id(member.member_id.clone())
                    .with_assignment(Bytes::from(partitions.join(",")))
            })
            .collect();
        let sync = SyncGroupRequest::default()
            .with_group_id(GroupId(sb("timed-classic")))
            .with_generation_id(joined.generation_id)
            .with_member_id(sb(&member_id))
            .with_assignments(assignments);
        let synced = client.send(&sync, 5);
        if synced.error_code == REBALANCE_IN_PROGRESS {
            continue;
        }
        assert_eq!(synced.error_code, NONE);
        let text = String::from_utf8(synced.assignment.to_vec()).unwrap();
        let partitions = text
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().unwrap())
            .collect();
        *held.lock().unwrap() = (joined.generation_id, partitions);
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            thread::sleep(HEARTBEAT_INTERVAL);
            let heartbeat = HeartbeatRequest::default()
                .with_group_id(GroupId(sb("timed-classic")))
                .with_generation_id(joined.generation_id)
                .with_member_id(sb(&member_id));
            let code = client.send(&heartbeat, 4).error_code;
            if code == REBALANCE_IN_PROGRESS {
                break;
            }
            assert_eq!(code, NONE);
        }
    }
}

/// A KIP-848 member: heartbeats every interval reporting what it owns; revokes at once (it owns
/// exactly what it was last given).
fn consumer_member(port: u16, name: &str, topic_id: uuid::Uuid, held: Held, stop: Arc<AtomicBool>) {
    let mut client = Client::connect(port);
    let mut epoch = 0;
    let mut owned: BTreeSet<i32> = BTreeSet::new();
    while !stop.load(Ordering::Relaxed) {
        let mut request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(sb("timed-consumer")))
            .with_member_id(sb(name))
            .with_member_epoch(epoch)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic_id(topic_id)
                .with_partitions(owned.iter().copied().collect())]));
        if epoch == 0 {
            request = request
                .with_rebalance_timeout_ms(10_000)
                .with_subscribed_topic_names(Some(vec![topic_name("timed")]));
        }
        let response = client.send(&request, 1);
        assert_eq!(response.error_code, NONE, "{response:?}");
        epoch = response.member_epoch;
        if let Some(assignment) = response.assignment {
            owned = assignment
                .topic_partitions
                .iter()
                .flat_map(|topic| topic.partitions.iter().copied())
                .collect();
        }
        *held.lock().unwrap() = (epoch, owned.clone());
        thread::sleep(HEARTBEAT_INTERVAL);
    }
}

fn measure(
    start_member: impl Fn(usize, Held, Arc<AtomicBool>) -> thread::JoinHandle<()>,
) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let held: Vec<Held> = (0..3).map(|_| Held::default()).collect();
    let mut threads = vec![
        start_member(0, held[0].clone(), stop.clone()),
        start_member(1, held[1].clone(), stop.clone()),
    ];
    let started = Instant::now();
    while !settled(&held[..2]) {
        assert!(
            started.elapsed() < REBALANCE_BOUND,
            "two members never settled"
        );
        thread::sleep(Duration::from_millis(2));
    }
    let joined = Instant::now();
    threads.push(start_member(2, held[2].clone(), stop.clone()));
    while !settled(&held) {
        assert!(
            joined.elapsed() < REBALANCE_BOUND,
            "three members never settled"
        );
        thread::sleep(Duration::from_millis(2));
    }
    let elapsed = joined.elapsed();
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    elapsed
}

#[test]
fn three_member_rebalance_times_for_both_protocols() {
    let broker = broker();
    let port = broker.port;
    let mut client = broker.client();
    create_topic(&mut client, "timed", PARTITIONS);
    let topic_id: uuid::Uuid = topic_info(&mut client, "timed").metadata.topic_id;
    let classic = measure(|_, held, stop| thread::spawn(move || classic_member(port, held, stop)));
    let consumer = measure(|index, held, stop| {
        thread::spawn(move || {
            consumer_member(port, &format!("member-{index}"), topic_id, held, stop)
        })
    });
    println!(
        "3-member rebalance (third member joins a stable 2-member group, heartbeat every {} ms): classic {} ms, KIP-848 {} ms",
        HEARTBEAT_INTERVAL.as_millis(),
        classic.as_millis(),
        consumer.as_millis()
    );
}
