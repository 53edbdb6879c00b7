//! ApiVersions (v0 and v3, response header v0 for both, advertised ranges) and Metadata (v0 … v13:
//! the broker, topics, partitions, leaders, auto-creation).

mod common;

use common::*;
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Decodable;
use std::collections::HashSet;

const DEFAULT_PARTITIONS: usize = 3;

fn start() -> Broker {
    Broker::start(BrokerOpts {
        default_partitions: Some(DEFAULT_PARTITIONS as u32),
        ..Default::default()
    })
}

/// Sends ApiVersions at `version` and checks by hand that the response header is v0 (correlation id
/// only, no tagged-field byte) before decoding the body.
fn api_versions_raw(client: &mut Client, version: i16) -> ApiVersionsResponse {
    let mut request = ApiVersionsRequest::default();
    if version >= 3 {
        request.client_software_name = sb("librdkafka");
        request.client_software_version = sb("2.3.0");
    }
    let (correlation_id, payload) = client.encode_request(&request, version);
    client.write_frame(&payload).unwrap();
    let frame = client.read_frame().unwrap();
    assert_eq!(
        i32::from_be_bytes(frame[0..4].try_into().unwrap()),
        correlation_id,
        "ApiVersions v{version} correlation id"
    );
    // With header v0 the body starts right away with error_code = 0 and then the api_keys array.
    assert_eq!(
        &frame[4..6],
        &[0, 0],
        "ApiVersions v{version}: error_code right after the correlation id"
    );
    let mut body = bytes::Bytes::copy_from_slice(&frame[4..]);
    let response = ApiVersionsResponse::decode(&mut body, version).unwrap_or_else(|e| {
        panic!(
            "ApiVersions v{version} body (after a v0 header): {e}; {}",
            hex_prefix(&frame)
        )
    });
    assert!(body.is_empty(), "ApiVersions v{version}: {} trailing bytes: the response header must be v0 (no tagged fields), even for v3+", body.len());
    response
}

fn check_ranges(response: &ApiVersionsResponse, version: i16) {
    assert_eq!(response.error_code, NONE, "ApiVersions v{version} error");
    let mut seen = HashSet::new();
    for key in &response.api_keys {
        assert!(
            seen.insert(key.api_key),
            "ApiVersions v{version}: api key {} listed twice",
            key.api_key
        );
        assert!(
            key.min_version <= key.max_version,
            "ApiVersions v{version}: empty range {key:?}"
        );
        assert!(
            key.min_version >= 0,
            "ApiVersions v{version}: negative min {key:?}"
        );
    }
    // (api, highest allowed min, lowest allowed max) per the broker interface.
    let expected: [(ApiKey, i16, i16); 10] = [
        (ApiKey::Produce, 0, 9),
        (ApiKey::Fetch, 4, 12),
        (ApiKey::ListOffsets, 1, 7),
        (ApiKey::Metadata, 0, 12),
        (ApiKey::ApiVersions, 0, 3),
        (ApiKey::CreateTopics, 2, 5),
        (ApiKey::DeleteTopics, 1, 4),
        (ApiKey::CreatePartitions, 0, 2),
        (ApiKey::DescribeCluster, 0, 1),
        (ApiKey::DescribeConfigs, 1, 4),
    ];
    for (api, min_at_most, max_at_least) in expected {
        let key = response
            .api_keys
            .iter()
            .find(|k| k.api_key == api as i16)
            .unwrap_or_else(|| panic!("ApiVersions v{version} does not list {api:?}"));
        assert!(
            key.min_version <= min_at_most,
            "ApiVersions v{version}: {api:?} min {} > {min_at_most}",
            key.min_version
        );
        assert!(
            key.max_version >= max_at_least,
            "ApiVersions v{version}: {api:?} max {} < {max_at_least}",
            key.max_version
        );
        // Advertised maxima must not exceed what Kafka 4.1 defines (clients would pick unknown versions).
        assert!(
            key.max_version <= api.valid_versions().max,
            "ApiVersions v{version}: {api:?} max {} beyond the spec",
            key.max_version
        );
    }
    let produce = response
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .unwrap();
    assert_eq!(
        produce.min_version, 0,
        "Produce must be advertised from v0 (librdkafka feature detection)"
    );
    let fetch = response
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .unwrap();
    assert!(
        fetch.min_version <= 4,
        "Fetch must overlap v4 (librdkafka MsgVer2)"
    );
}

#[test]
fn api_versions_and_metadata() {
    let broker = start();
    let mut client = broker.client();
    for version in [0i16, 1, 2, 3, 4] {
        let response = api_versions_raw(&mut client, version);
        check_ranges(&response, version);
    }
    // The same through the generic path (header version from the crate: 0).
    check_ranges(&api_versions(&mut client, 3), 3);

    // Auto-creation via Metadata (allow_auto_topic_creation on v4+, implied before).
    let created = topic_info(&mut client, "md-auto");
    assert_eq!(
        created.partitions, DEFAULT_PARTITIONS,
        "auto-created topic gets --default-partitions"
    );
    assert!(
        !created.metadata.topic_id.is_nil(),
        "Metadata v12 topic id of an auto-created topic"
    );

    for version in [0i16, 1, 4, 9, 10, 12, 13] {
        let response = metadata(&mut client, version, Some(&["md-auto"]), true);
        let context = format!("Metadata v{version}");
        assert_eq!(
            response.brokers.len(),
            1,
            "{context}: brokers {:?}",
            response.brokers
        );
        let node = &response.brokers[0];
        assert_eq!(*node.node_id, 0, "{context}: node id");
        assert_eq!(
            node.host.as_str(),
            "127.0.0.1",
            "{context}: advertised host"
        );
        assert_eq!(node.port, broker.port as i32, "{context}: advertised port");
        if version >= 1 {
            assert_eq!(*response.controller_id, 0, "{context}: controller id");
        }
        if version >= 2 {
            let cluster_id = response
                .cluster_id
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default();
            assert!(!cluster_id.is_empty(), "{context}: cluster id");
        }
        if version >= 13 {
            assert_eq!(response.error_code, NONE, "{context}: top-level error");
        }
        assert_eq!(
            response.topics.len(),
            1,
            "{context}: topics {:?}",
            response.topics
        );
        let topic = &response.topics[0];
        assert_eq!(topic.error_code, NONE, "{context}: topic error");
        assert_eq!(topic.name.as_ref().map(|n| n.as_str()), Some("md-auto"));
        assert!(!topic.is_internal);
        if version >= 10 {
            assert_eq!(
                topic.topic_id.to_string(),
                created.id_text,
                "{context}: topic id"
            );
        }
        let mut indexes: Vec<i32> = topic.partitions.iter().map(|p| p.partition_index).collect();
        indexes.sort();
        assert_eq!(
            indexes,
            (0..DEFAULT_PARTITIONS as i32).collect::<Vec<_>>(),
            "{context}: partition indexes"
        );
        for partition in &topic.partitions {
            assert_eq!(partition.error_code, NONE, "{context}: partition error");
            assert_eq!(*partition.leader_id, 0, "{context}: leader");
            assert_eq!(
                partition
                    .replica_nodes
                    .iter()
                    .map(|b| **b)
                    .collect::<Vec<_>>(),
                vec![0],
                "{context}: replicas"
            );
            assert_eq!(
                partition.isr_nodes.iter().map(|b| **b).collect::<Vec<_>>(),
                vec![0],
                "{context}: isr"
            );
            if version >= 7 {
                assert!(
                    partition.leader_epoch >= 0,
                    "{context}: leader epoch {}",
                    partition.leader_epoch
                );
            }
        }
    }

    // Auto-creation through old versions (v0 always auto-creates).
    let response = metadata(&mut client, 0, Some(&["md-auto-v0"]), true);
    let topic = &response.topics[0];
    assert!(
        topic.error_code == NONE || topic.error_code == LEADER_NOT_AVAILABLE,
        "Metadata v0 on a new topic must auto-create it, got error {}",
        topic.error_code
    );
    assert_eq!(
        topic_info(&mut client, "md-auto-v0").partitions,
        DEFAULT_PARTITIONS
    );

    // allow_auto_topic_creation=false: UNKNOWN_TOPIC_OR_PARTITION and nothing created.
    let response = metadata(&mut client, 12, Some(&["md-no-auto"]), false);
    assert_eq!(response.topics.len(), 1);
    assert_eq!(
        response.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION,
        "Metadata without auto-create on a missing topic"
    );

    // All topics: v0 with an empty list, v1+ with a null list.
    for version in [0i16, 1, 9, 12] {
        let response = metadata(&mut client, version, None, false);
        let names: HashSet<String> = response
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
            .collect();
        assert!(
            names.contains("md-auto") && names.contains("md-auto-v0"),
            "Metadata v{version} all topics: {names:?}"
        );
        assert!(
            !names.contains("md-no-auto"),
            "Metadata v{version}: a topic was created although auto-creation was off"
        );
    }

    // Empty topic list on v1+ means no topics (AdminClient bootstrap).
    let response = metadata(&mut client, 12, Some(&[]), false);
    assert!(
        response.topics.is_empty(),
        "Metadata v12 with an empty topic list must list no topics"
    );
    assert_eq!(response.brokers.len(), 1);
}

/// Produce to an unknown topic auto-creates it (a client may retry once on a retriable error).
#[test]
fn produce_auto_creates_topics() {
    let broker = start();
    let mut client = broker.client();
    // The topic id is unknown before creation, so produce by name (v9).
    let placeholder = TopicInfo {
        name: "produce-auto".to_string(),
        id_text: String::new(),
        partitions: 0,
        metadata: Default::default(),
    };
    let batch = simple_batch(5, 2, 20, 1_700_000_000_000);
    let mut last = None;
    for _attempt in 0..5 {
        let results = produce(&mut client, 9, &placeholder, 1, &[(0, batch.clone())]);
        last = Some(results[0].clone());
        if results[0].error_code == NONE {
            break;
        }
        assert!(
            [UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE].contains(&results[0].error_code),
            "Produce to a new topic answered {:?}",
            results[0]
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let last = last.unwrap();
    assert_eq!(
        (last.error_code, last.base_offset),
        (NONE, 0),
        "Produce to a new topic must auto-create it"
    );
    let topic = topic_info(&mut client, "produce-auto");
    assert_eq!(topic.partitions, DEFAULT_PARTITIONS);
    let (batches, high_watermark) = fetch_all(&mut client, 12, &topic, 0, 0);
    assert_eq!(high_watermark, 2);
    assert_same_batch(&batch, &batches[0], 0, "auto-created by produce");
}

/// Metadata for many topics at once (more than one shard's worth), including unknown ones mixed in.
#[test]
fn metadata_mixed_known_and_unknown() {
    let broker = start();
    let mut client = broker.client();
    for name in ["mx-a", "mx-b", "mx-c"] {
        assert_eq!(create_topic(&mut client, name, 2), NONE);
    }
    let response = metadata(
        &mut client,
        12,
        Some(&["mx-a", "mx-missing", "mx-b", "mx-c"]),
        false,
    );
    assert_eq!(response.topics.len(), 4);
    for topic in &response.topics {
        let name = topic.name.as_ref().unwrap().to_string();
        if name == "mx-missing" {
            assert_eq!(topic.error_code, UNKNOWN_TOPIC_OR_PARTITION);
        } else {
            assert_eq!(topic.error_code, NONE, "{name}");
            assert_eq!(topic.partitions.len(), 2, "{name}");
        }
    }
}
