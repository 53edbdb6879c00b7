//! Produce → Fetch round trips over one connection, on an 8-partition topic spread over both shards:
//! byte-exact batches, contiguous offsets, high watermarks, mid-batch fetches, out-of-range fetches and
//! every ListOffsets flavour.

mod common;

use common::*;
use std::collections::HashMap;

const T0: i64 = 1_700_000_000_000;
const PARTITIONS: i32 = 8;
const TOPIC: &str = "roundtrip";

/// What the tests expect a partition to hold.
#[derive(Default, Clone)]
struct PartitionModel {
    /// (base offset, batch bytes as produced).
    batches: Vec<(i64, Vec<u8>)>,
    /// (offset, timestamp) of every record.
    records: Vec<(i64, i64)>,
}

impl PartitionModel {
    fn end(&self) -> i64 {
        self.records.len() as i64
    }
    /// First record (in offset order) whose timestamp is ≥ target: what ListOffsets must answer.
    fn offset_for_time(&self, target: i64) -> Option<(i64, i64)> {
        self.records.iter().copied().find(|(_, ts)| *ts >= target)
    }
    fn max_timestamp(&self) -> (i64, i64) {
        // Kafka answers the first record carrying the max timestamp.
        let max = self.records.iter().map(|r| r.1).max().unwrap();
        self.records.iter().copied().find(|r| r.1 == max).unwrap()
    }
}

fn record_ts(partition: i32, offset: i64) -> i64 {
    T0 + 100_000 * partition as i64 + 10 * offset
}

fn outlier_ts(partition: i32) -> i64 {
    T0 + 50_000_000 + partition as i64
}

/// A batch for `partition` whose records will land at `first_offset..`; record `outlier` (if any)
/// carries a timestamp far in the future, record `tombstone` (if any) a null value.
fn model_batch(
    partition: i32,
    first_offset: i64,
    count: usize,
    value_bytes: usize,
    outlier: Option<usize>,
    tombstone: Option<usize>,
) -> (Vec<u8>, Vec<i64>) {
    let mut records = Vec::new();
    let mut timestamps = Vec::new();
    for i in 0..count {
        let offset = first_offset + i as i64;
        let ts = if outlier == Some(i) {
            outlier_ts(partition)
        } else {
            record_ts(partition, offset)
        };
        let key = format!("p{partition}-o{offset}");
        let value = payload((partition as u64) << 32 | offset as u64, value_bytes);
        let mut record = TestRecord::new(
            ts,
            Some(key.as_bytes()),
            if tombstone == Some(i) {
                None
            } else {
                Some(&value)
            },
        );
        if i % 2 == 1 {
            record
                .headers
                .push(("h1".to_string(), Some(b"header-value".to_vec())));
            record.headers.push(("h-null".to_string(), None));
        }
        records.push(record);
        timestamps.push(ts);
    }
    (build_batch(&records), timestamps)
}

struct Round {
    version: i16,
    acks: i16,
    count: usize,
    value_bytes: usize,
    outlier: Option<usize>,
    tombstone: Option<usize>,
}

/// Produces one batch to every partition in one request and updates the model.
fn produce_round(
    client: &mut Client,
    topic: &TopicInfo,
    models: &mut [PartitionModel],
    round: &Round,
) {
    let mut batches = Vec::new();
    let mut timestamps = Vec::new();
    for partition in 0..PARTITIONS {
        let first = models[partition as usize].end();
        let (batch, ts) = model_batch(
            partition,
            first,
            round.count,
            round.value_bytes,
            round.outlier,
            round.tombstone,
        );
        batches.push((partition, batch));
        timestamps.push(ts);
    }
    let results = produce(client, round.version, topic, round.acks, &batches);
    for (index, (partition, batch)) in batches.into_iter().enumerate() {
        let model = &mut models[partition as usize];
        let base = model.end();
        if round.acks != 0 {
            let result = &results[index];
            assert_eq!(
                result.error_code, NONE,
                "Produce v{} acks={} partition {partition}: error",
                round.version, round.acks
            );
            assert_eq!(
                result.base_offset, base,
                "Produce v{} acks={} partition {partition}: base offset",
                round.version, round.acks
            );
        }
        model.batches.push((base, batch));
        for (i, ts) in timestamps[index].iter().enumerate() {
            model.records.push((base + i as i64, *ts));
        }
    }
}

fn check_partition_against_model(
    client: &mut Client,
    version: i16,
    topic: &TopicInfo,
    partition: i32,
    model: &PartitionModel,
) {
    let context = format!("Fetch v{version} {TOPIC}/{partition}");
    let (batches, high_watermark) = fetch_all(client, version, topic, partition, 0);
    assert_eq!(high_watermark, model.end(), "{context}: high watermark");
    assert_eq!(batches.len(), model.batches.len(), "{context}: batch count");
    let mut expected_next = 0;
    for (got, (base, sent)) in batches.iter().zip(&model.batches) {
        assert_eq!(
            got.base_offset, expected_next,
            "{context}: offsets must be contiguous"
        );
        assert_same_batch(sent, got, *base, &context);
        expected_next = got.next_offset();
    }
    assert_eq!(
        expected_next, high_watermark,
        "{context}: high watermark = last offset + 1"
    );
}

fn setup(broker: &Broker) -> (Client, TopicInfo) {
    let mut client = broker.client();
    let (error, response) = create_topic_with(&mut client, 7, TOPIC, PARTITIONS, &[], false);
    assert_eq!(error, NONE, "CreateTopics {TOPIC}: {response:?}");
    assert_eq!(
        response.topics[0].num_partitions, PARTITIONS,
        "CreateTopics v7 num_partitions"
    );
    assert!(
        !response.topics[0].topic_id.is_nil(),
        "CreateTopics v7 must return the topic id"
    );
    let topic = topic_info(&mut client, TOPIC);
    assert_eq!(topic.partitions, PARTITIONS as usize);
    assert_eq!(
        topic.id_text,
        response.topics[0].topic_id.to_string(),
        "Metadata and CreateTopics disagree on the topic id"
    );
    (client, topic)
}

#[test]
fn produce_fetch_roundtrip() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(8),
        ..Default::default()
    });
    let (mut client, topic) = setup(&broker);
    let mut models = vec![PartitionModel::default(); PARTITIONS as usize];

    // Multi-partition produce requests over both shards, flexible and not, acks 1 and -1.
    let rounds = [
        Round {
            version: 3,
            acks: 1,
            count: 3,
            value_bytes: 100,
            outlier: None,
            tombstone: None,
        },
        Round {
            version: 9,
            acks: -1,
            count: 5,
            value_bytes: 64,
            outlier: None,
            tombstone: Some(4),
        },
        Round {
            version: 13,
            acks: -1,
            count: 1,
            value_bytes: 1000,
            outlier: None,
            tombstone: None,
        },
        Round {
            version: 7,
            acks: 1,
            count: 10,
            value_bytes: 300,
            outlier: None,
            tombstone: None,
        },
        Round {
            version: 11,
            acks: 1,
            count: 1,
            value_bytes: 200_000,
            outlier: None,
            tombstone: None,
        },
    ];
    for round in &rounds {
        produce_round(&mut client, &topic, &mut models, round);
    }

    // acks=0: no response; the next request on the same connection must see the data.
    produce_round(
        &mut client,
        &topic,
        &mut models,
        &Round {
            version: 9,
            acks: 0,
            count: 2,
            value_bytes: 10,
            outlier: None,
            tombstone: None,
        },
    );
    let latest: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, LATEST)).collect();
    let listed = list_offsets(&mut client, 7, TOPIC, &latest);
    for partition in 0..PARTITIONS {
        assert_eq!(listed[partition as usize].error_code, NONE);
        assert_eq!(
            listed[partition as usize].offset,
            models[partition as usize].end(),
            "ListOffsets latest after an acks=0 produce, partition {partition}"
        );
    }
    {
        let partitions: Vec<(i32, i64)> = (0..PARTITIONS)
            .map(|p| (p, models[p as usize].end() - 2))
            .collect();
        let result = fetch(
            &mut client,
            12,
            &topic,
            &partitions,
            &FetchParams::default(),
        );
        for partition in 0..PARTITIONS {
            let model = &models[partition as usize];
            let part = &result[&partition];
            assert_eq!(part.error_code, NONE);
            let (batches, _) = parse_batches(&part.records).unwrap();
            assert_eq!(
                batches.len(),
                1,
                "Fetch of the acks=0 batch, partition {partition}"
            );
            let (base, sent) = model.batches.last().unwrap();
            assert_same_batch(sent, &batches[0], *base, "acks=0 batch");
        }
    }
    // One more acknowledged round after the acks=0 one, to check offsets kept counting. Its second
    // record carries the partition's max timestamp, so ListOffsets max-timestamp (-3) differs from
    // latest (-1), and a time after every other record answers that record, not the batch.
    produce_round(
        &mut client,
        &topic,
        &mut models,
        &Round {
            version: 9,
            acks: 1,
            count: 4,
            value_bytes: 20,
            outlier: Some(1),
            tombstone: None,
        },
    );

    // Everything back, one partition at a time, in Fetch v4 (oldest), v12 (first flexible) and v18 (newest, topic ids).
    for version in [4, 12, 18] {
        for partition in 0..PARTITIONS {
            check_partition_against_model(
                &mut client,
                version,
                &topic,
                partition,
                &models[partition as usize],
            );
        }
    }

    // One Fetch spanning all partitions (both shards): each answers its data, watermarks and log start.
    for version in [4, 11, 12, 18] {
        let partitions: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
        let result = fetch(
            &mut client,
            version,
            &topic,
            &partitions,
            &FetchParams::default(),
        );
        assert_eq!(
            result.len(),
            PARTITIONS as usize,
            "Fetch v{version}: all partitions answered"
        );
        for partition in 0..PARTITIONS {
            let model = &models[partition as usize];
            let part = &result[&partition];
            let context = format!("multi-partition Fetch v{version} partition {partition}");
            assert_eq!(part.error_code, NONE, "{context}: error");
            assert_eq!(
                part.high_watermark,
                model.end(),
                "{context}: high watermark"
            );
            assert_eq!(
                part.last_stable_offset,
                model.end(),
                "{context}: last stable offset (no transactions: = high watermark)"
            );
            if version >= 5 {
                assert_eq!(part.log_start_offset, 0, "{context}: log start offset");
            }
            let (batches, _) = parse_batches(&part.records).unwrap();
            assert!(!batches.is_empty(), "{context}: no data");
            for (got, (base, sent)) in batches.iter().zip(&model.batches) {
                assert_same_batch(sent, got, *base, &context);
            }
        }
    }

    // A fetch from inside a batch returns that whole batch.
    for version in [4, 12, 18] {
        for partition in 0..PARTITIONS {
            let model = &models[partition as usize];
            for batch_index in [1usize, 3] {
                let (base, sent) = &model.batches[batch_index];
                let inside = base + 2;
                let result = fetch(
                    &mut client,
                    version,
                    &topic,
                    &[(partition, inside)],
                    &FetchParams::default(),
                );
                let part = &result[&partition];
                let context = format!(
                    "Fetch v{version} partition {partition} from mid-batch offset {inside}"
                );
                assert_eq!(part.error_code, NONE, "{context}: error");
                let (batches, _) = parse_batches(&part.records).unwrap();
                assert!(
                    !batches.is_empty(),
                    "{context}: returned nothing (a consumer resuming mid-batch would stall)"
                );
                assert_same_batch(sent, &batches[0], *base, &context);
            }
        }
    }

    // At the end: empty, no error. Past the end: OFFSET_OUT_OF_RANGE.
    for version in [4, 12, 18] {
        for partition in [0, 5] {
            let end = models[partition as usize].end();
            let result = fetch(
                &mut client,
                version,
                &topic,
                &[(partition, end)],
                &FetchParams::default(),
            );
            let part = &result[&partition];
            assert_eq!(
                part.error_code, NONE,
                "Fetch v{version} at the high watermark"
            );
            assert!(
                part.records.is_empty(),
                "Fetch v{version} at the high watermark returned data"
            );
            assert_eq!(part.high_watermark, end);
            let result = fetch(
                &mut client,
                version,
                &topic,
                &[(partition, end + 1)],
                &FetchParams::default(),
            );
            assert_eq!(
                result[&partition].error_code, OFFSET_OUT_OF_RANGE,
                "Fetch v{version} past the end: error code"
            );
            let result = fetch(
                &mut client,
                version,
                &topic,
                &[(partition, end + 1000)],
                &FetchParams::default(),
            );
            assert_eq!(
                result[&partition].error_code, OFFSET_OUT_OF_RANGE,
                "Fetch v{version} far past the end: error code"
            );
        }
    }

    check_list_offsets(&mut client, &models);
}

fn check_list_offsets(client: &mut Client, models: &[PartitionModel]) {
    for version in [1i16, 4, 7, 10] {
        let mut queries = Vec::new();
        let mut expected = Vec::new();
        for partition in 0..PARTITIONS {
            let model = &models[partition as usize];
            queries.push((partition, EARLIEST));
            expected.push((format!("earliest p{partition}"), Some((0, None))));
            queries.push((partition, LATEST));
            expected.push((format!("latest p{partition}"), Some((model.end(), None))));
            // Record precision: a timestamp inside the 10-record batch (4th round) answers that record.
            let (base, _) = model.batches[3];
            let (inside_offset, inside_ts) = model.records[(base + 4) as usize];
            for (label, target) in [
                ("exact ts of a mid-batch record", inside_ts),
                ("just below a mid-batch record", inside_ts - 5),
                ("before every record", record_ts(partition, 0) - 1_000),
                (
                    "after all but the outlier",
                    model.records.last().unwrap().1 + 1,
                ),
                ("after every record", outlier_ts(partition) + 1),
            ] {
                queries.push((partition, target));
                let answer = model.offset_for_time(target).map(|(o, ts)| (o, Some(ts)));
                let answer = answer.or(Some((-1, None)));
                expected.push((format!("{label} (target {target}) p{partition}"), answer));
                if label.starts_with("exact") {
                    assert_eq!(answer.unwrap().0, inside_offset);
                }
            }
            if version >= 7 {
                let (offset, ts) = model.max_timestamp();
                queries.push((partition, MAX_TIMESTAMP));
                expected.push((
                    format!("max timestamp p{partition}"),
                    Some((offset, Some(ts))),
                ));
            }
        }
        // Kafka rejects the same partition twice in one request; ask one query per request.
        for (query, (label, want)) in queries.iter().zip(&expected) {
            let got = &list_offsets(client, version, TOPIC, &[*query])[0];
            let (offset, timestamp) = want.unwrap();
            assert_eq!(
                got.error_code, NONE,
                "ListOffsets v{version} {label}: error"
            );
            assert_eq!(got.offset, offset, "ListOffsets v{version} {label}: offset");
            if let Some(ts) = timestamp {
                assert_eq!(
                    got.timestamp, ts,
                    "ListOffsets v{version} {label}: timestamp"
                );
            }
        }
    }
}

/// A first batch larger than partition_max_bytes / max_bytes is still returned whole, so consumers progress.
#[test]
fn fetch_returns_an_oversized_first_batch_whole() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(2),
        ..Default::default()
    });
    let mut client = broker.client();
    let topic = topic_info(&mut client, "oversized");
    let big = simple_batch(42, 3, 100_000, T0);
    let small = simple_batch(43, 2, 10, T0 + 100);
    assert_eq!(produce_one(&mut client, &topic, 0, &big), (NONE, 0));
    assert_eq!(produce_one(&mut client, &topic, 0, &small), (NONE, 3));
    for version in [4i16, 12, 18] {
        let params = FetchParams {
            partition_max_bytes: 1024,
            max_bytes: 1024,
            ..Default::default()
        };
        let result = fetch(&mut client, version, &topic, &[(0, 0)], &params);
        let part = &result[&0];
        assert_eq!(part.error_code, NONE);
        let (batches, _) = parse_batches(&part.records).unwrap();
        assert!(
            !batches.is_empty(),
            "Fetch v{version} with limits below the first batch returned no whole batch"
        );
        assert_same_batch(&big, &batches[0], 0, "oversized first batch");
        let result = fetch(&mut client, version, &topic, &[(0, 3)], &params);
        let (batches, _) = parse_batches(&result[&0].records).unwrap();
        assert_same_batch(&small, &batches[0], 3, "batch after the oversized one");
    }
}

/// Unknown partitions answer UNKNOWN_TOPIC_OR_PARTITION per partition without failing the others.
#[test]
fn unknown_partition_errors_are_per_partition() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(2),
        ..Default::default()
    });
    let mut client = broker.client();
    let topic = topic_info(&mut client, "twoparts");
    assert_eq!(topic.partitions, 2);
    let batch = simple_batch(1, 1, 10, T0);
    let results = produce(
        &mut client,
        9,
        &topic,
        1,
        &[(0, batch.clone()), (7, batch.clone())],
    );
    assert_eq!(results[0].error_code, NONE, "produce to partition 0");
    assert_eq!(
        results[1].error_code, UNKNOWN_TOPIC_OR_PARTITION,
        "produce to missing partition 7"
    );
    let result = fetch(
        &mut client,
        12,
        &topic,
        &[(0, 0), (7, 0)],
        &FetchParams::default(),
    );
    assert_eq!(result[&0].error_code, NONE, "fetch partition 0");
    assert_eq!(
        result[&7].error_code, UNKNOWN_TOPIC_OR_PARTITION,
        "fetch missing partition 7"
    );
    let listed = list_offsets(&mut client, 7, "twoparts", &[(0, LATEST), (7, LATEST)]);
    assert_eq!(
        listed[0],
        ListedOffset {
            error_code: NONE,
            timestamp: -1,
            offset: 1
        },
        "ListOffsets latest partition 0"
    );
    assert_eq!(
        listed[1].error_code, UNKNOWN_TOPIC_OR_PARTITION,
        "ListOffsets missing partition 7"
    );
}

/// Batches carrying producer ids/sequences (idempotent-style, as kcat/Java send them) are stored as sent.
#[test]
fn keeps_producer_fields_and_many_small_batches() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(2),
        ..Default::default()
    });
    let mut client = broker.client();
    let topic = topic_info(&mut client, "smalls");
    let mut sent: HashMap<i64, Vec<u8>> = HashMap::new();
    let mut next = 0i64;
    for i in 0..200 {
        let records: Vec<TestRecord> = (0..(1 + i % 3))
            .map(|r| {
                TestRecord::new(
                    T0 + i as i64 * 10 + r as i64,
                    None,
                    Some(format!("v{i}-{r}").as_bytes()),
                )
            })
            .collect();
        let batch = build_batch(&records);
        let (error, base) = produce_one(&mut client, &topic, 1, &batch);
        assert_eq!(error, NONE);
        assert_eq!(base, next, "base offset of small batch {i}");
        sent.insert(base, batch);
        next += records.len() as i64;
    }
    let (batches, high_watermark) = fetch_all(&mut client, 4, &topic, 1, 0);
    assert_eq!(high_watermark, next);
    assert_eq!(batches.len(), 200);
    for got in &batches {
        assert_same_batch(&sent[&got.base_offset], got, got.base_offset, "small batch");
    }
}

/// Offsets the client sets in a batch are replaced; negative fetch offsets are out of range; an empty
/// partition answers ListOffsets sensibly.
#[test]
fn edge_offsets_and_client_set_fields() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(2),
        ..Default::default()
    });
    let mut client = broker.client();
    let topic = topic_info(&mut client, "edges");
    // Empty partition.
    let listed = list_offsets(&mut client, 7, "edges", &[(0, EARLIEST)]);
    assert_eq!(
        (listed[0].error_code, listed[0].offset),
        (NONE, 0),
        "earliest of an empty partition"
    );
    let listed = list_offsets(&mut client, 7, "edges", &[(0, LATEST)]);
    assert_eq!(
        (listed[0].error_code, listed[0].offset),
        (NONE, 0),
        "latest of an empty partition"
    );
    let listed = list_offsets(&mut client, 7, "edges", &[(0, T0)]);
    assert_eq!(
        (listed[0].error_code, listed[0].offset),
        (NONE, -1),
        "offset for a time in an empty partition"
    );
    let result = fetch(&mut client, 12, &topic, &[(0, 0)], &FetchParams::default());
    assert_eq!(
        (result[&0].error_code, result[&0].high_watermark),
        (NONE, 0),
        "fetch at 0 of an empty partition"
    );
    assert!(result[&0].records.is_empty());

    // A batch whose base offset and leader epoch the client filled with junk is stored at the log end.
    let mut batch = simple_batch(5, 3, 20, T0);
    batch[0..8].copy_from_slice(&12_345i64.to_be_bytes());
    batch[12..16].copy_from_slice(&77i32.to_be_bytes());
    assert_eq!(
        produce_one(&mut client, &topic, 0, &batch),
        (NONE, 0),
        "client-set base offset must be ignored"
    );
    let batch2 = simple_batch(6, 2, 20, T0 + 100);
    assert_eq!(produce_one(&mut client, &topic, 0, &batch2), (NONE, 3));
    let (batches, high_watermark) = fetch_all(&mut client, 12, &topic, 0, 0);
    assert_eq!(high_watermark, 5);
    assert_same_batch(&batch, &batches[0], 0, "client-set base offset");
    assert_same_batch(&batch2, &batches[1], 3, "batch after it");

    for version in [4i16, 12, 18] {
        let result = fetch(
            &mut client,
            version,
            &topic,
            &[(0, -1)],
            &FetchParams::default(),
        );
        assert_eq!(
            result[&0].error_code, OFFSET_OUT_OF_RANGE,
            "Fetch v{version} at offset -1"
        );
        let result = fetch(
            &mut client,
            version,
            &topic,
            &[(0, i64::MIN)],
            &FetchParams::default(),
        );
        assert_eq!(
            result[&0].error_code, OFFSET_OUT_OF_RANGE,
            "Fetch v{version} at offset i64::MIN"
        );
        let result = fetch(
            &mut client,
            version,
            &topic,
            &[(0, i64::MAX)],
            &FetchParams::default(),
        );
        assert_eq!(
            result[&0].error_code, OFFSET_OUT_OF_RANGE,
            "Fetch v{version} at offset i64::MAX"
        );
    }
}

/// Pages of the file at `path` in the page cache (`mincore` on a mapping that touches nothing).
fn cached_pages(path: &std::path::Path) -> usize {
    let file = std::fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len() as usize;
    if len == 0 {
        return 0;
    }
    // SAFETY: a read-only mapping whose bytes are never read; only its addresses go to mincore.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        )
    };
    assert_ne!(address, libc::MAP_FAILED);
    let mut residency = vec![0u8; len.div_ceil(4096)];
    // SAFETY: the range is the mapping just made; `residency` has a byte per page of it.
    let result = unsafe { libc::mincore(address, len, residency.as_mut_ptr()) };
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(address, len) };
    assert_eq!(result, 0);
    residency.iter().filter(|status| **status & 1 == 1).count()
}

/// Cached pages of every sealed segment of the topic (all data files but the newest of each partition).
fn cached_pages_of_sealed_segments(data_dir: &std::path::Path) -> (usize, usize) {
    let (mut segments, mut cached) = (0, 0);
    for partition in 0..PARTITIONS {
        let dir = data_dir.join(format!("{TOPIC}-{partition}"));
        let mut logs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        logs.sort();
        logs.pop();
        segments += logs.len();
        cached += logs.iter().map(|path| cached_pages(path)).sum::<usize>();
    }
    (segments, cached)
}

/// With `--page-cache-mib 0` every sealed segment leaves the page cache once durable; consumers then
/// read it from the disk, byte-exact, and leave it out of the page cache behind them. After a restart
/// the segments found sealed count against the budget the same way.
#[test]
fn segments_dropped_from_the_page_cache_fetch_back_byte_exact() {
    // The page cache of a tmpfs cannot be dropped: keep the data on the target directory's disk.
    let data_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut broker = Broker::start(BrokerOpts {
        data_dir: Some(data_dir.path().to_path_buf()),
        segment_bytes: Some(2 * 1024 * 1024),
        extra_args: vec!["--page-cache-mib".into(), "0".into()],
        ..Default::default()
    });
    let (mut client, topic) = setup(&broker);
    let mut models = vec![PartitionModel::default(); PARTITIONS as usize];
    let round = Round {
        version: 11,
        acks: 1,
        count: 50,
        value_bytes: 1000,
        outlier: None,
        tombstone: None,
    };
    // About 7 MiB per partition: three sealed 2 MiB segments each.
    for _ in 0..140 {
        produce_round(&mut client, &topic, &mut models, &round);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (segments, mut cached) = cached_pages_of_sealed_segments(data_dir.path());
    assert!(
        segments >= 3 * PARTITIONS as usize,
        "{segments} sealed segments"
    );
    while cached > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        cached = cached_pages_of_sealed_segments(data_dir.path()).1;
    }
    assert_eq!(cached, 0, "sealed segments still cached after 20 s");
    for partition in 0..PARTITIONS {
        check_partition_against_model(
            &mut client,
            16,
            &topic,
            partition,
            &models[partition as usize],
        );
    }
    let (_, cached) = cached_pages_of_sealed_segments(data_dir.path());
    assert_eq!(
        cached, 0,
        "consumers left sealed segments in the page cache"
    );

    assert!(broker.stop().success());
    let broker = broker.restart_same_dir();
    let mut client = broker.client();
    let topic = topic_info(&mut client, TOPIC);
    for (partition, model) in models.iter().enumerate() {
        check_partition_against_model(&mut client, 16, &topic, partition as i32, model);
    }
    let (_, cached) = cached_pages_of_sealed_segments(data_dir.path());
    assert_eq!(
        cached, 0,
        "after a restart, consumers left sealed segments cached"
    );
}
