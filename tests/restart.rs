//! Data survives a clean restart (SIGTERM, then a new process on the same data dir): topics keep
//! their partitions and ids, every batch reads back byte-equal, and new appends continue at the end.

mod common;

use common::*;

const T0: i64 = 1_700_000_000_000;

struct Model {
    topic: String,
    /// Per partition: (base offset, batch bytes).
    batches: Vec<Vec<(i64, Vec<u8>)>>,
    ends: Vec<i64>,
}

impl Model {
    fn new(topic: &str, partitions: usize) -> Model {
        Model {
            topic: topic.to_string(),
            batches: vec![Vec::new(); partitions],
            ends: vec![0; partitions],
        }
    }
}

/// Produces `rounds` rounds, one batch per partition per request, sizes varying so segments roll.
fn produce_rounds(
    client: &mut Client,
    topic: &TopicInfo,
    model: &mut Model,
    rounds: usize,
    seed: u64,
    big: bool,
) {
    let partitions = model.batches.len();
    for round in 0..rounds {
        let mut batches = Vec::new();
        for partition in 0..partitions {
            let count = 1 + (round + partition) % 5;
            let value_bytes = if big && round % 2 == 0 {
                80_000
            } else if round % 7 == 3 {
                20_000
            } else {
                50 + 37 * partition
            };
            let first_ts = T0 + model.ends[partition] * 10;
            let batch = simple_batch(
                seed + (round * 100 + partition) as u64,
                count,
                value_bytes,
                first_ts,
            );
            batches.push((partition as i32, batch));
        }
        let version = [3i16, 9, 12][round % 3];
        let results = produce(
            client,
            version,
            topic,
            if round % 2 == 0 { 1 } else { -1 },
            &batches,
        );
        for (result, (partition, batch)) in results.iter().zip(batches) {
            let p = partition as usize;
            assert_eq!(
                result.error_code, NONE,
                "produce {}/{partition} round {round}",
                model.topic
            );
            assert_eq!(
                result.base_offset, model.ends[p],
                "produce {}/{partition} round {round}: base offset",
                model.topic
            );
            let count = parse_batches(&batch).unwrap().0[0].record_count as i64;
            model.batches[p].push((model.ends[p], batch));
            model.ends[p] += count;
        }
    }
}

fn verify(client: &mut Client, topic: &TopicInfo, model: &Model, context: &str) {
    for version in [4i16, 12, 18] {
        for (partition, expected) in model.batches.iter().enumerate() {
            let ctx = format!("{context}: Fetch v{version} {}/{partition}", model.topic);
            let (batches, high_watermark) = fetch_all(client, version, topic, partition as i32, 0);
            assert_eq!(
                high_watermark, model.ends[partition],
                "{ctx}: high watermark"
            );
            assert_eq!(batches.len(), expected.len(), "{ctx}: batch count");
            let mut next = 0;
            for (got, (base, sent)) in batches.iter().zip(expected) {
                assert_eq!(got.base_offset, next, "{ctx}: contiguous offsets");
                assert_same_batch(sent, got, *base, &ctx);
                next = got.next_offset();
            }
        }
    }
    for (partition, end) in model.ends.iter().enumerate() {
        let listed = list_offsets(client, 7, &model.topic, &[(partition as i32, EARLIEST)]);
        assert_eq!(
            (listed[0].error_code, listed[0].offset),
            (NONE, 0),
            "{context}: earliest {}/{partition}",
            model.topic
        );
        let listed = list_offsets(client, 7, &model.topic, &[(partition as i32, LATEST)]);
        assert_eq!(
            (listed[0].error_code, listed[0].offset),
            (NONE, *end),
            "{context}: latest {}/{partition}",
            model.topic
        );
        // The batch timestamps are T0 + 10 * offset-ish and increasing: look one up by time.
        let (base, batch) = &model.batches[partition][model.batches[partition].len() / 2];
        let parsed = &parse_batches(batch).unwrap().0[0];
        let target = parsed.records.last().unwrap().timestamp;
        let listed = list_offsets(client, 7, &model.topic, &[(partition as i32, target)]);
        let expected_offset = base + parsed.records.len() as i64 - 1;
        assert_eq!(
            (listed[0].error_code, listed[0].offset),
            (NONE, expected_offset),
            "{context}: offset for time {}/{partition}",
            model.topic
        );
    }
}

#[test]
fn restart_keeps_data() {
    let data_dir = tempfile::Builder::new()
        .prefix("fluxmq-restart-")
        .tempdir()
        .unwrap();
    let opts = BrokerOpts {
        data_dir: Some(data_dir.path().to_path_buf()),
        default_partitions: Some(8),
        // The smallest segment the broker allows with the default max.message.bytes (2 × 1 MiB + 24 B),
        // rounded to pages, so the created topic rolls segments several times.
        segment_bytes: Some(3 << 20),
        ..Default::default()
    };
    let mut broker = Broker::start(opts.clone());
    let mut client = broker.client();
    // One auto-created 8-partition topic, one explicitly created 3-partition topic.
    let auto_topic = topic_info(&mut client, "restart-auto");
    assert_eq!(auto_topic.partitions, 8);
    assert_eq!(create_topic(&mut client, "restart-created", 3), NONE);
    let created_topic = topic_info(&mut client, "restart-created");
    assert_eq!(created_topic.partitions, 3);

    let mut auto_model = Model::new("restart-auto", 8);
    let mut created_model = Model::new("restart-created", 3);
    produce_rounds(&mut client, &auto_topic, &mut auto_model, 30, 1, false);
    // ~3.6 MB of 80 KB-value records per partition each time: segments roll before and after the restart.
    produce_rounds(&mut client, &created_topic, &mut created_model, 30, 2, true);
    verify(&mut client, &auto_topic, &auto_model, "before restart");
    drop(client);

    eprintln!(
        "data dir before the first restart: {:?}",
        list_tree(&broker.data_dir)
    );
    let status = broker.stop();
    assert!(
        status.success(),
        "the broker must exit cleanly (status 0) on SIGTERM, got {status}; stderr tail:\n{}",
        broker.stderr_tail(30)
    );

    // Restart 1: same dir.
    let mut broker = Broker::start(opts.clone());
    let mut client = broker.client();
    let auto_after = topic_info(&mut client, "restart-auto");
    let created_after = topic_info(&mut client, "restart-created");
    assert_eq!(auto_after.partitions, 8, "partition count after restart");
    assert_eq!(created_after.partitions, 3, "partition count after restart");
    assert_eq!(
        auto_after.id_text, auto_topic.id_text,
        "topic id must survive a restart"
    );
    assert_eq!(
        created_after.id_text, created_topic.id_text,
        "topic id must survive a restart"
    );
    verify(&mut client, &auto_after, &auto_model, "after restart 1");
    verify(
        &mut client,
        &created_after,
        &created_model,
        "after restart 1",
    );

    // New appends continue at the right offsets.
    produce_rounds(&mut client, &auto_after, &mut auto_model, 10, 3, false);
    produce_rounds(&mut client, &created_after, &mut created_model, 30, 4, true);
    verify(
        &mut client,
        &auto_after,
        &auto_model,
        "after restart 1 + new appends",
    );
    drop(client);
    let status = broker.stop();
    assert!(status.success(), "second SIGTERM exit status {status}");

    // Restart 2: everything, old and new, is still there.
    let broker = Broker::start(opts);
    let mut client = broker.client();
    let auto_after = topic_info(&mut client, "restart-auto");
    let created_after = topic_info(&mut client, "restart-created");
    verify(&mut client, &auto_after, &auto_model, "after restart 2");
    verify(
        &mut client,
        &created_after,
        &created_model,
        "after restart 2",
    );
    produce_rounds(&mut client, &created_after, &mut created_model, 2, 5, false);
}

/// An idle broker (no data written) restarts too, and topics created but never written survive.
#[test]
fn restart_keeps_empty_topics() {
    let data_dir = tempfile::Builder::new()
        .prefix("fluxmq-restart-empty-")
        .tempdir()
        .unwrap();
    let opts = BrokerOpts {
        data_dir: Some(data_dir.path().to_path_buf()),
        default_partitions: Some(2),
        ..Default::default()
    };
    let mut broker = Broker::start(opts.clone());
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, "empty-one", 5), NONE);
    drop(client);
    let status = broker.stop();
    assert!(status.success(), "SIGTERM exit status {status}");
    let broker = Broker::start(opts);
    let mut client = broker.client();
    let response = metadata(&mut client, 12, Some(&["empty-one"]), false);
    assert_eq!(response.topics.len(), 1);
    assert_eq!(
        response.topics[0].error_code, NONE,
        "topic created before the restart must exist after it"
    );
    assert_eq!(response.topics[0].partitions.len(), 5);
    for partition in 0..5 {
        assert_eq!(end_offset(&mut client, "empty-one", partition), 0);
    }
    let topic = topic_info(&mut client, "empty-one");
    assert_eq!(
        produce_one(&mut client, &topic, 4, &simple_batch(1, 2, 10, T0)),
        (NONE, 0)
    );
}

/// Topic changes (CreatePartitions, DeleteTopics, re-creation under the same name) survive a restart.
#[test]
fn restart_keeps_catalog_changes() {
    let data_dir = tempfile::Builder::new()
        .prefix("fluxmq-restart-catalog-")
        .tempdir()
        .unwrap();
    let opts = BrokerOpts {
        data_dir: Some(data_dir.path().to_path_buf()),
        default_partitions: Some(2),
        ..Default::default()
    };
    let mut broker = Broker::start(opts.clone());
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, "grown", 2), NONE);
    assert_eq!(create_topic(&mut client, "doomed", 2), NONE);
    assert_eq!(create_topic(&mut client, "reborn", 3), NONE);
    let doomed = topic_info(&mut client, "doomed");
    assert_eq!(
        produce_one(&mut client, &doomed, 0, &simple_batch(1, 4, 10, T0)),
        (NONE, 0)
    );
    let reborn_old = topic_info(&mut client, "reborn");
    assert_eq!(
        produce_one(&mut client, &reborn_old, 1, &simple_batch(2, 4, 10, T0)),
        (NONE, 0)
    );

    // Grow, delete, delete + re-create.
    let mut grow =
        kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic::default();
    grow.name = topic_name("grown");
    grow.count = 5;
    grow.assignments = None;
    let mut request =
        kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest::default();
    request.topics = vec![grow];
    request.timeout_ms = 10_000;
    let response = client.send(&request, 3);
    assert_eq!(
        response.results[0].error_code, NONE,
        "CreatePartitions: {response:?}"
    );
    let grown = topic_info(&mut client, "grown");
    assert_eq!(
        produce_one(&mut client, &grown, 4, &simple_batch(3, 2, 10, T0)),
        (NONE, 0)
    );
    let mut delete =
        kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest::default();
    delete.topic_names = vec![topic_name("doomed"), topic_name("reborn")];
    delete.timeout_ms = 10_000;
    let response = client.send(&delete, 5);
    assert!(
        response.responses.iter().all(|r| r.error_code == NONE),
        "DeleteTopics: {response:?}"
    );
    assert_eq!(create_topic(&mut client, "reborn", 1), NONE);
    let reborn_new = topic_info(&mut client, "reborn");
    assert_ne!(reborn_new.id_text, reborn_old.id_text);
    drop(client);
    let status = broker.stop();
    assert!(status.success(), "SIGTERM exit status {status}");

    let broker = Broker::start(opts);
    let mut client = broker.client();
    let grown_after = topic_info(&mut client, "grown");
    assert_eq!(
        grown_after.partitions, 5,
        "CreatePartitions lost in the restart"
    );
    assert_eq!(
        end_offset(&mut client, "grown", 4),
        2,
        "data of a partition added by CreatePartitions"
    );
    let response = metadata(&mut client, 12, Some(&["doomed"]), false);
    assert_eq!(
        response.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION,
        "a deleted topic came back after the restart"
    );
    let reborn_after = topic_info(&mut client, "reborn");
    assert_eq!(
        reborn_after.partitions, 1,
        "re-created topic's partition count after the restart"
    );
    assert_eq!(
        reborn_after.id_text, reborn_new.id_text,
        "re-created topic's id after the restart"
    );
    assert_eq!(
        end_offset(&mut client, "reborn", 0),
        0,
        "old data of a deleted topic resurfaced in its re-created namesake"
    );
}
