//! Admin APIs: CreateTopics, CreatePartitions, DeleteTopics, DescribeConfigs, DescribeCluster.

mod common;

use common::*;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsResponse;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::create_topics_response::CreateTopicsResponse;
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::delete_topics_response::DeleteTopicsResponse;
use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterResponse;
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResponse;
use std::collections::HashMap;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

const T0: i64 = 1_700_000_000_000;
const DEFAULT_PARTITIONS: usize = 3;
const RESOURCE_TOPIC: i8 = 2;

fn start() -> Broker {
    Broker::start(BrokerOpts {
        default_partitions: Some(DEFAULT_PARTITIONS as u32),
        ..Default::default()
    })
}

/// Partition count of `name`, or the topic error code when it does not exist (never auto-creates).
fn partitions_of(client: &mut Client, name: &str) -> Result<usize, i16> {
    let response = metadata(client, 12, Some(&[name]), false);
    assert_eq!(response.topics.len(), 1);
    let topic = &response.topics[0];
    if topic.error_code == NONE {
        Ok(topic.partitions.len())
    } else {
        Err(topic.error_code)
    }
}

#[test]
fn create_topics() {
    let broker = start();
    let mut client = broker.client();

    for (version, name, partitions) in [(2i16, "ct-v2", 4), (5, "ct-v5", 5), (7, "ct-v7", 6)] {
        let (error, response) =
            create_topic_with(&mut client, version, name, partitions, &[], false);
        assert_eq!(error, NONE, "CreateTopics v{version}: {response:?}");
        let result = &response.topics[0];
        if version >= 5 {
            assert_eq!(
                result.num_partitions, partitions,
                "CreateTopics v{version}: num_partitions echoed"
            );
            assert_eq!(
                result.replication_factor, 1,
                "CreateTopics v{version}: replication factor"
            );
        }
        if version >= 7 {
            assert!(!result.topic_id.is_nil(), "CreateTopics v7: topic id");
            assert_eq!(
                topic_info(&mut client, name).id_text,
                result.topic_id.to_string(),
                "CreateTopics and Metadata topic ids"
            );
        }
        assert_eq!(
            partitions_of(&mut client, name),
            Ok(partitions as usize),
            "{name} partitions in Metadata"
        );
    }

    // validate_only: success but nothing created.
    let (error, response) = create_topic_with(&mut client, 7, "ct-validate", 4, &[], true);
    assert_eq!(error, NONE, "validate_only CreateTopics: {response:?}");
    assert_eq!(
        partitions_of(&mut client, "ct-validate"),
        Err(UNKNOWN_TOPIC_OR_PARTITION),
        "validate_only must not create the topic"
    );
    // validate_only still reports what would fail.
    let (error, _) = create_topic_with(&mut client, 7, "ct-v7", 4, &[], true);
    assert_eq!(
        error, TOPIC_ALREADY_EXISTS,
        "validate_only on an existing topic"
    );

    // Duplicate.
    for version in [2i16, 7] {
        let (error, response) = create_topic_with(&mut client, version, "ct-v7", 6, &[], false);
        assert_eq!(
            error, TOPIC_ALREADY_EXISTS,
            "CreateTopics v{version} duplicate: {response:?}"
        );
    }
    assert_eq!(partitions_of(&mut client, "ct-v7"), Ok(6));

    // Invalid names.
    let long_name = "x".repeat(250);
    for name in [
        "",
        ".",
        "..",
        "bad name",
        "a/b",
        "ä-umlaut",
        "tab\tname",
        long_name.as_str(),
    ] {
        let (error, response) = create_topic_with(&mut client, 7, name, 1, &[], false);
        assert_eq!(
            error, INVALID_TOPIC_EXCEPTION,
            "CreateTopics with invalid name {name:?}: {response:?}"
        );
    }
    // Legal unusual names.
    for name in ["a.b_c-D", &"y".repeat(249)] {
        assert_eq!(
            create_topic(&mut client, name, 1),
            NONE,
            "CreateTopics with legal name {name:?}"
        );
    }

    // Invalid partition counts and replication factors.
    let (error, _) = create_topic_with(&mut client, 7, "ct-zero", 0, &[], false);
    assert_eq!(error, INVALID_PARTITIONS, "0 partitions");
    let (error, _) = create_topic_with(&mut client, 7, "ct-negative", -5, &[], false);
    assert_eq!(error, INVALID_PARTITIONS, "-5 partitions");
    assert_eq!(
        partitions_of(&mut client, "ct-zero"),
        Err(UNKNOWN_TOPIC_OR_PARTITION)
    );

    let mut topic = CreatableTopic::default();
    topic.name = topic_name("ct-rf3");
    topic.num_partitions = 1;
    topic.replication_factor = 3;
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![topic];
    let response: CreateTopicsResponse = client.send(&request, 7);
    assert_eq!(
        response.topics[0].error_code, INVALID_REPLICATION_FACTOR,
        "replication factor 3 on a one-broker cluster"
    );

    // -1 partitions / -1 replication factor (v4+) mean the broker defaults.
    let mut topic = CreatableTopic::default();
    topic.name = topic_name("ct-defaults");
    topic.num_partitions = -1;
    topic.replication_factor = -1;
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![topic];
    let response: CreateTopicsResponse = client.send(&request, 7);
    assert_eq!(
        response.topics[0].error_code, NONE,
        "CreateTopics with -1/-1: {response:?}"
    );
    assert_eq!(response.topics[0].num_partitions, DEFAULT_PARTITIONS as i32);
    assert_eq!(
        partitions_of(&mut client, "ct-defaults"),
        Ok(DEFAULT_PARTITIONS)
    );

    // Several topics in one request get one result each.
    let mut request = CreateTopicsRequest::default();
    for (name, partitions) in [
        ("ct-multi-1", 2),
        ("ct-v7", 2),
        ("bad name", 2),
        ("ct-multi-2", 8),
    ] {
        let mut topic = CreatableTopic::default();
        topic.name = topic_name(name);
        topic.num_partitions = partitions;
        topic.replication_factor = 1;
        request.topics.push(topic);
    }
    let response: CreateTopicsResponse = client.send(&request, 7);
    let errors: HashMap<String, i16> = response
        .topics
        .iter()
        .map(|t| (t.name.to_string(), t.error_code))
        .collect();
    assert_eq!(errors.len(), 4, "one result per topic: {response:?}");
    assert_eq!(errors["ct-multi-1"], NONE);
    assert_eq!(errors["ct-v7"], TOPIC_ALREADY_EXISTS);
    assert_eq!(errors["bad name"], INVALID_TOPIC_EXCEPTION);
    assert_eq!(errors["ct-multi-2"], NONE);
    assert_eq!(partitions_of(&mut client, "ct-multi-2"), Ok(8));

    // Created topics work.
    let topic = topic_info(&mut client, "ct-multi-2");
    for partition in 0..8 {
        assert_eq!(
            produce_one(
                &mut client,
                &topic,
                partition,
                &simple_batch(partition as u64, 1, 10, T0)
            ),
            (NONE, 0)
        );
    }
}

fn create_partitions(
    client: &mut Client,
    version: i16,
    name: &str,
    count: i32,
    validate_only: bool,
) -> (i16, CreatePartitionsResponse) {
    let mut topic = CreatePartitionsTopic::default();
    topic.name = topic_name(name);
    topic.count = count;
    topic.assignments = None;
    let mut request = CreatePartitionsRequest::default();
    request.topics = vec![topic];
    request.timeout_ms = 10_000;
    request.validate_only = validate_only;
    let response: CreatePartitionsResponse = client.send(&request, version);
    assert_eq!(
        response.results.len(),
        1,
        "CreatePartitions v{version}: {response:?}"
    );
    assert_eq!(response.results[0].name.as_str(), name);
    (response.results[0].error_code, response)
}

#[test]
fn create_partitions_grows_topics() {
    let broker = start();
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, "cp", 2), NONE);
    let topic = topic_info(&mut client, "cp");
    for partition in 0..2 {
        assert_eq!(
            produce_one(
                &mut client,
                &topic,
                partition,
                &simple_batch(partition as u64, 2, 10, T0)
            ),
            (NONE, 0)
        );
    }

    let (error, response) = create_partitions(&mut client, 3, "cp", 5, false);
    assert_eq!(error, NONE, "CreatePartitions 2 -> 5: {response:?}");
    assert_eq!(partitions_of(&mut client, "cp"), Ok(5));
    let topic = topic_info(&mut client, "cp");
    // Old partitions keep their data, new ones start empty and take writes.
    assert_eq!(end_offset(&mut client, "cp", 0), 2);
    for partition in 2..5 {
        assert_eq!(
            end_offset(&mut client, "cp", partition),
            0,
            "new partition {partition} starts empty"
        );
        let batch = simple_batch(100 + partition as u64, 3, 10, T0);
        assert_eq!(
            produce_one(&mut client, &topic, partition, &batch),
            (NONE, 0),
            "produce to new partition {partition}"
        );
        let (batches, high_watermark) = fetch_all(&mut client, 12, &topic, partition, 0);
        assert_eq!(high_watermark, 3);
        assert_same_batch(&batch, &batches[0], 0, "new partition");
    }

    // Shrinking or keeping the count is INVALID_PARTITIONS.
    for count in [3, 5] {
        let (error, response) = create_partitions(&mut client, 3, "cp", count, false);
        assert_eq!(
            error, INVALID_PARTITIONS,
            "CreatePartitions to {count} on a 5-partition topic: {response:?}"
        );
    }
    // validate_only does not change anything.
    let (error, _) = create_partitions(&mut client, 3, "cp", 9, true);
    assert_eq!(error, NONE, "validate_only CreatePartitions");
    assert_eq!(
        partitions_of(&mut client, "cp"),
        Ok(5),
        "validate_only must not add partitions"
    );
    // Unknown topic.
    let (error, _) = create_partitions(&mut client, 3, "cp-missing", 4, false);
    assert_eq!(
        error, UNKNOWN_TOPIC_OR_PARTITION,
        "CreatePartitions on a missing topic"
    );
    // Non-flexible version.
    let (error, _) = create_partitions(&mut client, 0, "cp", 6, false);
    assert_eq!(error, NONE, "CreatePartitions v0");
    assert_eq!(partitions_of(&mut client, "cp"), Ok(6));
}

fn delete_topics_by_name(
    client: &mut Client,
    version: i16,
    names: &[&str],
) -> DeleteTopicsResponse {
    let mut request = DeleteTopicsRequest::default();
    request.timeout_ms = 10_000;
    if version >= 6 {
        request.topics = names
            .iter()
            .map(|name| {
                let mut state = DeleteTopicState::default();
                state.name = Some(topic_name(name));
                state
            })
            .collect();
    } else {
        request.topic_names = names.iter().map(|name| topic_name(name)).collect();
    }
    client.send(&request, version)
}

fn new_paths(before: &[PathBuf], after: &[PathBuf]) -> Vec<PathBuf> {
    after
        .iter()
        .filter(|p| !before.contains(p))
        .cloned()
        .collect()
}

fn wait_gone(broker: &Broker, paths: &[PathBuf], context: &str) {
    let started = Instant::now();
    loop {
        let remaining: Vec<&PathBuf> = paths
            .iter()
            .filter(|p| broker.data_dir.join(p).exists())
            .collect();
        if remaining.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{context}: data still on disk 10 s after DeleteTopics: {remaining:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn delete_topics() {
    let broker = start();
    let mut client = broker.client();
    // Make sure unrelated state (e.g. a metadata log) already exists before we snapshot the tree.
    assert_eq!(create_topic(&mut client, "keeper", 2), NONE);
    let keeper = topic_info(&mut client, "keeper");
    assert_eq!(
        produce_one(&mut client, &keeper, 0, &simple_batch(1, 2, 10, T0)),
        (NONE, 0)
    );

    for (version, name) in [(6i16, "del-v6"), (4, "del-v4"), (1, "del-v1")] {
        let before = list_tree(&broker.data_dir);
        assert_eq!(create_topic(&mut client, name, 3), NONE);
        let topic = topic_info(&mut client, name);
        for partition in 0..3 {
            assert_eq!(
                produce_one(
                    &mut client,
                    &topic,
                    partition,
                    &simple_batch(partition as u64, 5, 1000, T0)
                )
                .0,
                NONE
            );
        }
        let diff = new_paths(&before, &list_tree(&broker.data_dir));
        // Only the paths that name the topic (by name or id): other state files may come and go.
        let id_simple = topic.id_text.replace('-', "");
        let created: Vec<PathBuf> = diff
            .iter()
            .filter(|p| {
                let text = p.to_string_lossy();
                text.contains(name) || text.contains(&topic.id_text) || text.contains(&id_simple)
            })
            .cloned()
            .collect();
        assert!(!created.is_empty(), "creating and writing {name} left nothing naming it in the data dir; new paths: {diff:?}");

        let response = delete_topics_by_name(&mut client, version, &[name]);
        assert_eq!(
            response.responses.len(),
            1,
            "DeleteTopics v{version}: {response:?}"
        );
        assert_eq!(
            response.responses[0].name.as_ref().map(|n| n.to_string()),
            Some(name.to_string())
        );
        assert_eq!(
            response.responses[0].error_code, NONE,
            "DeleteTopics v{version} {name}"
        );
        assert_eq!(
            partitions_of(&mut client, name),
            Err(UNKNOWN_TOPIC_OR_PARTITION),
            "{name} still in Metadata after delete"
        );
        let result = fetch(&mut client, 12, &topic, &[(0, 0)], &FetchParams::default());
        assert_eq!(
            result[&0].error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "Fetch v12 of deleted topic {name}"
        );
        let listed = list_offsets(&mut client, 7, name, &[(0, LATEST)]);
        assert_eq!(
            listed[0].error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "ListOffsets of deleted topic {name}"
        );
        wait_gone(
            &broker,
            &created,
            &format!("DeleteTopics v{version} {name}"),
        );

        // Re-creating the name gives a new, empty topic with a new id: no old data resurfaces.
        assert_eq!(create_topic(&mut client, name, 2), NONE, "re-create {name}");
        let again = topic_info(&mut client, name);
        assert_eq!(again.partitions, 2);
        assert_ne!(
            again.id_text, topic.id_text,
            "re-created topic must get a new topic id"
        );
        // Clients still holding the old topic id (Fetch v13+, Produce v13) must not reach the new topic.
        let result = fetch(&mut client, 18, &topic, &[(0, 0)], &FetchParams::default());
        assert_eq!(
            result[&0].error_code, UNKNOWN_TOPIC_ID,
            "Fetch v18 with the deleted topic's id after {name} was re-created"
        );
        let stale = produce(
            &mut client,
            13,
            &topic,
            1,
            &[(0, simple_batch(9, 1, 10, T0))],
        );
        assert!(
            [UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION].contains(&stale[0].error_code),
            "Produce v13 with the deleted topic's id answered {:?}",
            stale[0]
        );
        for partition in 0..2 {
            assert_eq!(
                end_offset(&mut client, name, partition),
                0,
                "re-created {name}/{partition} must be empty"
            );
            let result = fetch(
                &mut client,
                12,
                &again,
                &[(partition, 0)],
                &FetchParams::default(),
            );
            assert!(
                result[&partition].records.is_empty(),
                "old data resurfaced in re-created {name}/{partition}"
            );
        }
    }

    // Delete by topic id (v6).
    let target = topic_info(&mut client, "del-v6");
    let mut state = DeleteTopicState::default();
    state.topic_id = target.metadata.topic_id;
    let mut request = DeleteTopicsRequest::default();
    request.topics = vec![state];
    request.timeout_ms = 10_000;
    let response: DeleteTopicsResponse = client.send(&request, 6);
    assert_eq!(response.responses.len(), 1);
    assert_eq!(
        response.responses[0].error_code, NONE,
        "DeleteTopics v6 by id: {response:?}"
    );
    assert_eq!(
        partitions_of(&mut client, "del-v6"),
        Err(UNKNOWN_TOPIC_OR_PARTITION)
    );

    // Unknown topic.
    let response = delete_topics_by_name(&mut client, 6, &["never-existed"]);
    assert_eq!(
        response.responses[0].error_code, UNKNOWN_TOPIC_OR_PARTITION,
        "DeleteTopics on a missing topic"
    );

    // The unrelated topic is untouched.
    let (batches, high_watermark) = fetch_all(&mut client, 12, &keeper, 0, 0);
    assert_eq!(
        (batches.len(), high_watermark),
        (1, 2),
        "unrelated topic after deletions"
    );
}

fn describe_topic_configs(
    client: &mut Client,
    version: i16,
    name: &str,
    keys: Option<&[&str]>,
) -> DescribeConfigsResponse {
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = RESOURCE_TOPIC;
    resource.resource_name = sb(name);
    resource.configuration_keys = keys.map(|keys| keys.iter().map(|k| sb(k)).collect());
    let mut request = DescribeConfigsRequest::default();
    request.resources = vec![resource];
    client.send(&request, version)
}

fn config_map(response: &DescribeConfigsResponse) -> HashMap<String, Option<String>> {
    response.results[0]
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
        .collect()
}

#[test]
fn describe_configs() {
    let broker = start();
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, "dc", 2), NONE);
    for version in [1i16, 2, 3, 4] {
        let response = describe_topic_configs(&mut client, version, "dc", None);
        assert_eq!(
            response.results.len(),
            1,
            "DescribeConfigs v{version}: {response:?}"
        );
        let result = &response.results[0];
        assert_eq!(
            result.error_code, NONE,
            "DescribeConfigs v{version}: {response:?}"
        );
        assert_eq!(result.resource_type, RESOURCE_TOPIC);
        assert_eq!(result.resource_name.as_str(), "dc");
        let configs = config_map(&response);
        assert_eq!(
            configs.get("max.message.bytes"),
            Some(&Some(MAX_MESSAGE_BYTES_DEFAULT.to_string())),
            "DescribeConfigs v{version}: default max.message.bytes; got {configs:?}"
        );
        for config in &result.configs {
            assert!(
                !config.is_sensitive || config.value.is_none(),
                "sensitive config values must not be returned"
            );
        }
    }
    // Only the keys asked for.
    let response = describe_topic_configs(&mut client, 4, "dc", Some(&["max.message.bytes"]));
    let configs = config_map(&response);
    assert_eq!(
        configs.len(),
        1,
        "DescribeConfigs with one key returned {configs:?}"
    );
    assert_eq!(
        configs["max.message.bytes"],
        Some(MAX_MESSAGE_BYTES_DEFAULT.to_string())
    );
    // Missing topic.
    let response = describe_topic_configs(&mut client, 4, "dc-missing", None);
    assert_eq!(
        response.results[0].error_code, UNKNOWN_TOPIC_OR_PARTITION,
        "DescribeConfigs of a missing topic"
    );
}

/// A config given at creation is either rejected, or honoured (described and enforced): never silently dropped.
#[test]
fn create_topic_config_is_honoured_or_rejected() {
    let broker = start();
    let mut client = broker.client();
    let (error, response) = create_topic_with(
        &mut client,
        7,
        "dc-small",
        1,
        &[("max.message.bytes", "2000")],
        false,
    );
    if error != NONE {
        assert_eq!(
            partitions_of(&mut client, "dc-small"),
            Err(UNKNOWN_TOPIC_OR_PARTITION),
            "rejected CreateTopics created the topic anyway"
        );
        return;
    }
    let configs = config_map(&describe_topic_configs(
        &mut client,
        4,
        "dc-small",
        Some(&["max.message.bytes"]),
    ));
    assert_eq!(
        configs.get("max.message.bytes"),
        Some(&Some("2000".to_string())),
        "config accepted at creation but not described: {response:?}"
    );
    let topic = topic_info(&mut client, "dc-small");
    let big = simple_batch(1, 1, 3000, T0);
    assert_eq!(
        produce_one(&mut client, &topic, 0, &big).0,
        MESSAGE_TOO_LARGE,
        "topic max.message.bytes=2000 not enforced"
    );
    let small = simple_batch(2, 1, 100, T0);
    assert_eq!(produce_one(&mut client, &topic, 0, &small), (NONE, 0));
}

#[test]
fn describe_cluster() {
    let broker = start();
    let mut client = broker.client();
    let cluster_id_metadata = metadata(&mut client, 12, Some(&[]), false)
        .cluster_id
        .map(|c| c.to_string())
        .unwrap_or_default();
    for version in [0i16, 1, 2] {
        let request = DescribeClusterRequest::default();
        let response: DescribeClusterResponse = client.send(&request, version);
        let context = format!("DescribeCluster v{version}");
        assert_eq!(response.error_code, NONE, "{context}: {response:?}");
        assert!(!response.cluster_id.is_empty(), "{context}: cluster id");
        assert_eq!(
            response.cluster_id.to_string(),
            cluster_id_metadata,
            "{context}: cluster id differs from Metadata's"
        );
        assert_eq!(*response.controller_id, 0, "{context}: controller id");
        assert_eq!(response.brokers.len(), 1, "{context}: brokers");
        let node = &response.brokers[0];
        assert_eq!(*node.broker_id, 0);
        assert_eq!(node.host.as_str(), "127.0.0.1");
        assert_eq!(node.port, broker.port as i32);
        if version >= 1 {
            assert_eq!(
                response.endpoint_type, 1,
                "{context}: endpoint type (brokers)"
            );
        }
        if version >= 2 {
            assert!(!node.is_fenced);
        }
    }
}
