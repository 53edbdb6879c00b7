//! OffsetCommit v10 and OffsetFetch v10 at the wire level: topics named by topic id. Commits round-trip
//! by id with metadata and leader epoch, fetching every offset lists topics by id (and leaves out
//! deleted ones), unknown ids answer UNKNOWN_TOPIC_ID, offsets committed by name are fetched by id and
//! the other way round, and malformed v10 bodies close the connection without hurting the broker.
//!
//! The `kafka-protocol` crate cannot encode v10 requests, so the bodies are written by hand here; its
//! v10 response decoders read the answers.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::*;
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_commit_response::OffsetCommitResponse;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{ApiKey, GroupId, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

const V10: i16 = 10;

/// A flexible request body, written field by field.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn i32(mut self, value: i32) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn i64(mut self, value: i64) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn boolean(mut self, value: bool) -> Self {
        self.0.push(u8::from(value));
        self
    }

    fn varint(mut self, mut value: u32) -> Self {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
        self
    }

    /// A compact array's (or nullable string's) length: `count + 1`, 0 for null.
    fn count(self, count: Option<usize>) -> Self {
        self.varint(count.map_or(0, |count| count as u32 + 1))
    }

    fn string(self, value: Option<&str>) -> Self {
        let mut body = self.count(value.map(str::len));
        body.0.extend_from_slice(value.unwrap_or("").as_bytes());
        body
    }

    fn uuid(mut self, id: [u8; 16]) -> Self {
        self.0.extend_from_slice(&id);
        self
    }

    /// An empty tagged-field section.
    fn tags(self) -> Self {
        self.varint(0)
    }
}

/// One partition of an OffsetCommit v10: (index, offset, leader epoch, metadata).
type Commit<'a> = (i32, i64, i32, Option<&'a str>);

fn commit_body(group: &str, topics: &[([u8; 16], Vec<Commit>)]) -> Vec<u8> {
    let mut body = Body::default()
        .string(Some(group))
        .i32(-1)
        .string(Some(""))
        .string(None)
        .count(Some(topics.len()));
    for (id, partitions) in topics {
        body = body.uuid(*id).count(Some(partitions.len()));
        for &(partition, offset, epoch, metadata) in partitions {
            body = body
                .i32(partition)
                .i64(offset)
                .i32(epoch)
                .string(metadata)
                .tags();
        }
        body = body.tags();
    }
    body.tags().0
}

/// OffsetFetch v10 for one group: the given topics (by id), or every offset with `None`.
fn fetch_body(group: &str, topics: Option<&[([u8; 16], Vec<i32>)]>) -> Vec<u8> {
    let mut body = Body::default()
        .count(Some(1))
        .string(Some(group))
        .string(None)
        .i32(-1)
        .count(topics.map(<[_]>::len));
    for (id, partitions) in topics.unwrap_or_default() {
        body = body.uuid(*id).count(Some(partitions.len()));
        for &partition in partitions {
            body = body.i32(partition);
        }
        body = body.tags();
    }
    body.tags().boolean(false).tags().0
}

/// Frames `body` after a request header v2 for `key` v10.
fn frame(client: &mut Client, key: ApiKey, body: &[u8]) -> (i32, Vec<u8>) {
    let correlation_id = client.next_correlation_id();
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = V10;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("fluxmq-tests"));
    let mut payload = BytesMut::new();
    header.encode(&mut payload, 2).expect("request header v2");
    payload.extend_from_slice(body);
    (correlation_id, payload.to_vec())
}

fn send_v10<R: Decodable + HeaderVersion>(client: &mut Client, key: ApiKey, body: &[u8]) -> R {
    let (correlation_id, payload) = frame(client, key, body);
    client.write_frame(&payload).expect("write v10 request");
    let response = client.read_frame().expect("read v10 response");
    decode_response::<R>(&response, V10, correlation_id)
        .unwrap_or_else(|error| panic!("{key:?} v10: {error}"))
}

fn commit_v10(
    client: &mut Client,
    group: &str,
    topics: &[([u8; 16], Vec<Commit>)],
) -> OffsetCommitResponse {
    send_v10(client, ApiKey::OffsetCommit, &commit_body(group, topics))
}

/// The one group's topics of an OffsetFetch v10.
fn fetch_v10(
    client: &mut Client,
    group: &str,
    topics: Option<&[([u8; 16], Vec<i32>)]>,
) -> Vec<OffsetFetchResponseTopics> {
    let response: OffsetFetchResponse =
        send_v10(client, ApiKey::OffsetFetch, &fetch_body(group, topics));
    assert_eq!(response.groups.len(), 1, "{response:?}");
    let group_response = &response.groups[0];
    assert_eq!(group_response.group_id.as_str(), group);
    assert_eq!(group_response.error_code, NONE, "{response:?}");
    group_response.topics.clone()
}

fn topic_id(client: &mut Client, name: &str) -> [u8; 16] {
    *topic_info(client, name).metadata.topic_id.as_bytes()
}

fn groups_broker() -> Broker {
    Broker::start(BrokerOpts {
        extra_args: vec!["--group-initial-rebalance-delay-ms".into(), "0".into()],
        ..BrokerOpts::default()
    })
}

fn partition(topic: &OffsetFetchResponseTopics, index: i32) -> &OffsetFetchResponsePartitions {
    topic
        .partitions
        .iter()
        .find(|partition| partition.partition_index == index)
        .unwrap_or_else(|| panic!("partition {index} missing: {topic:?}"))
}

/// (offset, leader epoch, metadata, error) of one fetched partition.
fn fetched(partition: &OffsetFetchResponsePartitions) -> (i64, i32, String, i16) {
    (
        partition.committed_offset,
        partition.committed_leader_epoch,
        partition
            .metadata
            .as_ref()
            .map_or_else(String::new, ToString::to_string),
        partition.error_code,
    )
}

#[test]
fn api_versions_advertises_v10_for_commit_and_fetch() {
    let broker = groups_broker();
    let mut client = broker.client();
    let response = api_versions(&mut client, 3);
    for key in [ApiKey::OffsetCommit, ApiKey::OffsetFetch] {
        let entry = response
            .api_keys
            .iter()
            .find(|entry| entry.api_key == key as i16)
            .unwrap_or_else(|| panic!("{key:?} not advertised"));
        assert_eq!(entry.max_version, 10, "{key:?}: {entry:?}");
    }
}

#[test]
fn commit_and_fetch_round_trip_by_topic_id() {
    let broker = groups_broker();
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, "v10-orders", 3), NONE);
    let id = topic_id(&mut client, "v10-orders");

    let response = commit_v10(
        &mut client,
        "v10-group",
        &[(id, vec![(0, 42, 7, Some("meta-0")), (2, 100, -1, None)])],
    );
    assert_eq!(response.topics.len(), 1, "{response:?}");
    assert_eq!(*response.topics[0].topic_id.as_bytes(), id);
    assert!(response.topics[0].name.is_empty());
    let codes: Vec<(i32, i16)> = response.topics[0]
        .partitions
        .iter()
        .map(|partition| (partition.partition_index, partition.error_code))
        .collect();
    assert_eq!(codes, vec![(0, NONE), (2, NONE)]);

    let topics = fetch_v10(&mut client, "v10-group", Some(&[(id, vec![0, 1, 2])]));
    assert_eq!(topics.len(), 1, "{topics:?}");
    assert_eq!(*topics[0].topic_id.as_bytes(), id);
    assert_eq!(
        fetched(partition(&topics[0], 0)),
        (42, 7, "meta-0".into(), NONE)
    );
    assert_eq!(fetched(partition(&topics[0], 1)), (-1, -1, "".into(), NONE));
    assert_eq!(
        fetched(partition(&topics[0], 2)),
        (100, -1, "".into(), NONE)
    );

    // A later commit replaces the first.
    commit_v10(
        &mut client,
        "v10-group",
        &[(id, vec![(0, 43, 8, Some("m"))])],
    );
    let topics = fetch_v10(&mut client, "v10-group", Some(&[(id, vec![0])]));
    assert_eq!(fetched(partition(&topics[0], 0)), (43, 8, "m".into(), NONE));
}

#[test]
fn unknown_topic_ids_answer_unknown_topic_id() {
    let broker = groups_broker();
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, "v10-known", 2), NONE);
    let known = topic_id(&mut client, "v10-known");
    let unknown = [0x5a; 16];

    let response = commit_v10(
        &mut client,
        "v10-unknown",
        &[
            (unknown, vec![(0, 1, -1, None), (1, 2, -1, None)]),
            (known, vec![(1, 5, -1, None), (9, 5, -1, None)]),
            ([0; 16], vec![(0, 1, -1, None)]),
        ],
    );
    let codes: Vec<([u8; 16], Vec<i16>)> = response
        .topics
        .iter()
        .map(|topic| {
            let codes = topic.partitions.iter().map(|p| p.error_code).collect();
            (*topic.topic_id.as_bytes(), codes)
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            (unknown, vec![UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_ID]),
            (known, vec![NONE, UNKNOWN_TOPIC_OR_PARTITION]),
            ([0; 16], vec![UNKNOWN_TOPIC_ID]),
        ]
    );

    let topics = fetch_v10(
        &mut client,
        "v10-unknown",
        Some(&[(unknown, vec![0, 3]), (known, vec![1])]),
    );
    assert_eq!(topics.len(), 2, "{topics:?}");
    assert_eq!(*topics[0].topic_id.as_bytes(), unknown);
    assert_eq!(
        fetched(partition(&topics[0], 0)),
        (-1, -1, "".into(), UNKNOWN_TOPIC_ID)
    );
    assert_eq!(
        fetched(partition(&topics[0], 3)),
        (-1, -1, "".into(), UNKNOWN_TOPIC_ID)
    );
    assert_eq!(*topics[1].topic_id.as_bytes(), known);
    assert_eq!(fetched(partition(&topics[1], 1)), (5, -1, "".into(), NONE));

    // Asking an unknown id of a group with no offsets at all answers the same way.
    let topics = fetch_v10(&mut client, "v10-nobody", Some(&[(unknown, vec![0])]));
    assert_eq!(
        fetched(partition(&topics[0], 0)),
        (-1, -1, "".into(), UNKNOWN_TOPIC_ID)
    );
}

fn commit_v9_by_name(client: &mut Client, group: &str, topic: &str, offset: i64) {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(sb(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(3)
                .with_committed_metadata(Some(sb("by-name")))])]);
    let response = client.send(&request, 9);
    assert_eq!(response.topics[0].name.as_str(), topic);
    assert_eq!(response.topics[0].partitions[0].error_code, NONE);
}

#[test]
fn offsets_committed_by_name_are_fetched_by_id_and_back() {
    let broker = groups_broker();
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, "v10-by-name", 1), NONE);
    assert_eq!(create_topic(&mut client, "v10-by-id", 1), NONE);
    let by_name = topic_id(&mut client, "v10-by-name");
    let by_id = topic_id(&mut client, "v10-by-id");

    commit_v9_by_name(&mut client, "v10-mixed", "v10-by-name", 11);
    let topics = fetch_v10(&mut client, "v10-mixed", Some(&[(by_name, vec![0])]));
    assert_eq!(*topics[0].topic_id.as_bytes(), by_name);
    assert_eq!(
        fetched(partition(&topics[0], 0)),
        (11, 3, "by-name".into(), NONE)
    );

    commit_v10(
        &mut client,
        "v10-mixed",
        &[(by_id, vec![(0, 22, 4, Some("by-id"))])],
    );
    let request =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(sb("v10-mixed")))
            .with_member_id(None)
            .with_member_epoch(-1)
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name("v10-by-id"))
                .with_partition_indexes(vec![0])]))]);
    let response = client.send(&request, 9);
    let topic = &response.groups[0].topics[0];
    assert_eq!(topic.name.as_str(), "v10-by-id");
    assert_eq!(fetched(partition(topic, 0)), (22, 4, "by-id".into(), NONE));
}

#[test]
fn fetching_every_offset_lists_topics_by_id_and_skips_deleted_topics() {
    let broker = groups_broker();
    let mut client = broker.client();
    for name in ["v10-all-a", "v10-all-b", "v10-all-gone"] {
        assert_eq!(create_topic(&mut client, name, 2), NONE);
    }
    let a = topic_id(&mut client, "v10-all-a");
    let b = topic_id(&mut client, "v10-all-b");
    let gone = topic_id(&mut client, "v10-all-gone");

    commit_v10(
        &mut client,
        "v10-all",
        &[
            (a, vec![(0, 1, 2, Some("a0")), (1, 3, -1, None)]),
            (gone, vec![(0, 9, -1, None)]),
        ],
    );
    commit_v9_by_name(&mut client, "v10-all", "v10-all-b", 7);

    let mut ids: Vec<[u8; 16]> = fetch_v10(&mut client, "v10-all", None)
        .iter()
        .map(|topic| *topic.topic_id.as_bytes())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![a, b, gone];
    expected.sort_unstable();
    assert_eq!(ids, expected);

    let mut request = DeleteTopicsRequest::default();
    request.timeout_ms = 10_000;
    let mut state = DeleteTopicState::default();
    state.name = Some(topic_name("v10-all-gone"));
    request.topics = vec![state];
    let response = client.send(&request, 6);
    assert_eq!(response.responses[0].error_code, NONE, "{response:?}");

    let topics = fetch_v10(&mut client, "v10-all", None);
    assert_eq!(topics.len(), 2, "{topics:?}");
    let topic_a = topics
        .iter()
        .find(|topic| *topic.topic_id.as_bytes() == a)
        .expect("topic a listed by id");
    assert!(topic_a.name.is_empty());
    assert_eq!(fetched(partition(topic_a, 0)), (1, 2, "a0".into(), NONE));
    assert_eq!(fetched(partition(topic_a, 1)), (3, -1, "".into(), NONE));
    let topic_b = topics
        .iter()
        .find(|topic| *topic.topic_id.as_bytes() == b)
        .expect("topic b listed by id");
    assert_eq!(
        fetched(partition(topic_b, 0)),
        (7, 3, "by-name".into(), NONE)
    );
}

/// Sends `body` as `key` v10 and expects the connection to close.
fn assert_closes(broker: &Broker, key: ApiKey, body: &[u8], what: &str) {
    let mut client = broker.client();
    let (_, payload) = frame(&mut client, key, body);
    client
        .write_frame(&payload)
        .expect("write malformed request");
    match client.read_outcome(Duration::from_secs(10)) {
        RawOutcome::Closed => {}
        other => panic!("{what}: expected the connection to close, got {other:?}"),
    }
}

#[test]
fn malformed_v10_bodies_close_the_connection_and_the_broker_keeps_serving() {
    let mut broker = groups_broker();
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, "v10-bad", 1), NONE);
    let id = topic_id(&mut client, "v10-bad");

    // A topic id cut short, in each API.
    let commit = commit_body("v10-bad", &[(id, vec![(0, 1, -1, None)])]);
    let uuid_at = commit.len() - 37;
    assert_eq!(commit[uuid_at..uuid_at + 16], id);
    assert_closes(
        &broker,
        ApiKey::OffsetCommit,
        &commit[..uuid_at + 7],
        "commit, truncated uuid",
    );
    let fetch = fetch_body("v10-bad", Some(&[(id, vec![0])]));
    let uuid_at = fetch.len() - 25;
    assert_eq!(fetch[uuid_at..uuid_at + 16], id);
    assert_closes(
        &broker,
        ApiKey::OffsetFetch,
        &fetch[..uuid_at + 9],
        "fetch, truncated uuid",
    );

    // Array lengths of 2^31 - 1 with a few bytes behind them.
    let huge = |body: Body| body.varint(0x8000_0000).i32(0).i32(0).0;
    let head = Body::default()
        .string(Some("v10-bad"))
        .i32(-1)
        .string(Some(""))
        .string(None);
    assert_closes(
        &broker,
        ApiKey::OffsetCommit,
        &huge(head),
        "commit, huge topics",
    );
    let head = Body::default()
        .string(Some("v10-bad"))
        .i32(-1)
        .string(Some(""))
        .string(None)
        .count(Some(1))
        .uuid(id);
    assert_closes(
        &broker,
        ApiKey::OffsetCommit,
        &huge(head),
        "commit, huge partitions",
    );
    assert_closes(
        &broker,
        ApiKey::OffsetFetch,
        &huge(Body::default()),
        "fetch, huge groups",
    );
    let head = Body::default()
        .count(Some(1))
        .string(Some("v10-bad"))
        .string(None)
        .i32(-1);
    assert_closes(
        &broker,
        ApiKey::OffsetFetch,
        &huge(head),
        "fetch, huge topics",
    );
    let head = Body::default()
        .count(Some(1))
        .string(Some("v10-bad"))
        .string(None)
        .i32(-1)
        .count(Some(1))
        .uuid(id);
    assert_closes(
        &broker,
        ApiKey::OffsetFetch,
        &huge(head),
        "fetch, huge partition indexes",
    );

    assert_serving(&mut broker, "after malformed v10 offset requests");
    // Nothing malformed was committed, and a well-formed v10 round trip still works.
    let topics = fetch_v10(&mut client, "v10-bad", Some(&[(id, vec![0])]));
    assert_eq!(fetched(partition(&topics[0], 0)), (-1, -1, "".into(), NONE));
    commit_v10(&mut client, "v10-bad", &[(id, vec![(0, 5, -1, None)])]);
    let topics = fetch_v10(&mut client, "v10-bad", Some(&[(id, vec![0])]));
    assert_eq!(fetched(partition(&topics[0], 0)), (5, -1, "".into(), NONE));
}
