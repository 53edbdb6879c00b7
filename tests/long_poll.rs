//! Long polling: a parked Fetch wakes as soon as another connection produces to its partition (on
//! either shard), and an empty Fetch waits for max_wait_ms, never returning immediately.

mod common;

use common::*;
use std::thread;
use std::time::{Duration, Instant};

const TOPIC: &str = "longpoll";
const PARTITIONS: i32 = 8;

fn start() -> (Broker, TopicInfo) {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(PARTITIONS as u32),
        ..Default::default()
    });
    let mut client = broker.client();
    let topic = topic_info(&mut client, TOPIC);
    assert_eq!(topic.partitions, PARTITIONS as usize);
    // Some data first, so the polls start in the middle of a non-empty log.
    for partition in 0..PARTITIONS {
        assert_eq!(
            produce_one(
                &mut client,
                &topic,
                partition,
                &simple_batch(partition as u64, 2, 10, 1_700_000_000_000)
            )
            .0,
            NONE
        );
    }
    (broker, topic)
}

/// Parks a Fetch (max_wait 5000, min_bytes 1) on `parked` partitions at their ends on a new
/// connection, produces to `target` from another connection after `delay`, and checks the Fetch
/// returns the produced batch promptly.
fn wake_on_produce(
    broker: &Broker,
    topic: &TopicInfo,
    version: i16,
    parked: &[i32],
    target: i32,
    delay: Duration,
) {
    let mut producer = broker.client();
    let offsets: Vec<(i32, i64)> = parked
        .iter()
        .map(|p| (*p, end_offset(&mut producer, TOPIC, *p)))
        .collect();
    let target_end = offsets.iter().find(|(p, _)| *p == target).unwrap().1;
    let (port, fetch_topic, fetch_offsets) = (broker.port, topic.clone(), offsets.clone());
    let poller = thread::spawn(move || {
        let mut client = Client::connect(port);
        let params = FetchParams {
            max_wait_ms: 5000,
            min_bytes: 1,
            ..Default::default()
        };
        let started = Instant::now();
        let result = fetch(&mut client, version, &fetch_topic, &fetch_offsets, &params);
        (started.elapsed(), result)
    });
    thread::sleep(delay);
    let batch = simple_batch(1000 + target as u64, 3, 30, 1_700_000_000_000);
    let produced_at = Instant::now();
    let (error, base) = produce_one(&mut producer, topic, target, &batch);
    assert_eq!(error, NONE);
    assert_eq!(base, target_end);
    let (elapsed, result) = poller.join().expect("poller thread");
    let woke_after_produce = produced_at.elapsed();
    let context = format!("Fetch v{version} parked on {parked:?}, produce to partition {target}");
    assert!(
        elapsed >= delay.saturating_sub(Duration::from_millis(50)),
        "{context}: returned after {elapsed:?}, before anything was produced (it must wait for data)"
    );
    assert!(
        woke_after_produce < Duration::from_secs(2),
        "{context}: returned {woke_after_produce:?} after the produce (the parked fetch must wake on new data, not on max_wait_ms)"
    );
    let part = &result[&target];
    assert_eq!(part.error_code, NONE, "{context}: error");
    let (batches, _) = parse_batches(&part.records).unwrap();
    assert_eq!(
        batches.len(),
        1,
        "{context}: the fetch must return the new batch"
    );
    assert_same_batch(&batch, &batches[0], base, &context);
}

#[test]
fn long_poll() {
    let (broker, topic) = start();
    // Each partition in turn, each poll on a new connection: partitions live on both shards and the
    // connections land on either shard, so same-shard and cross-shard wake-ups are both exercised.
    for partition in 0..PARTITIONS {
        let version = [4i16, 12, 18][partition as usize % 3];
        wake_on_produce(
            &broker,
            &topic,
            version,
            &[partition],
            partition,
            Duration::from_millis(300),
        );
    }
    // A fetch parked on every partition wakes when any one of them gets data.
    for target in [0, 3, 6, 7] {
        let all: Vec<i32> = (0..PARTITIONS).collect();
        wake_on_produce(
            &broker,
            &topic,
            12,
            &all,
            target,
            Duration::from_millis(300),
        );
    }
}

#[test]
fn empty_fetch_waits_for_max_wait() {
    let (broker, topic) = start();
    let mut client = broker.client();
    for (version, partitions) in [
        (4i16, vec![0]),
        (12, vec![1]),
        (18, vec![2]),
        (12, (0..PARTITIONS).collect::<Vec<_>>()),
    ] {
        let offsets: Vec<(i32, i64)> = partitions
            .iter()
            .map(|p| (*p, end_offset(&mut client, TOPIC, *p)))
            .collect();
        let params = FetchParams {
            max_wait_ms: 300,
            min_bytes: 1,
            ..Default::default()
        };
        let started = Instant::now();
        let result = fetch(&mut client, version, &topic, &offsets, &params);
        let elapsed = started.elapsed();
        let context = format!("empty Fetch v{version} on {partitions:?} with max_wait_ms=300");
        assert!(
            elapsed >= Duration::from_millis(250),
            "{context}: returned after {elapsed:?} (must wait ~300 ms, never return immediately)"
        );
        assert!(
            elapsed < Duration::from_secs(3),
            "{context}: returned after {elapsed:?}"
        );
        for (partition, offset) in &offsets {
            let part = &result[partition];
            assert_eq!(
                part.error_code, NONE,
                "{context}: error on partition {partition}"
            );
            assert!(
                part.records.is_empty(),
                "{context}: data on partition {partition}"
            );
            assert_eq!(part.high_watermark, *offset);
        }
    }
    // max_wait_ms = 0 answers at once.
    let offsets = [(0, end_offset(&mut client, TOPIC, 0))];
    let started = Instant::now();
    fetch(
        &mut client,
        12,
        &topic,
        &offsets,
        &FetchParams {
            max_wait_ms: 0,
            min_bytes: 1,
            ..Default::default()
        },
    );
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "Fetch with max_wait_ms=0 took {:?}",
        started.elapsed()
    );
}

/// While min_bytes is not reached the fetch keeps waiting until max_wait_ms, then returns what it has.
#[test]
fn min_bytes_not_reached_waits_for_max_wait() {
    let (broker, topic) = start();
    let mut producer = broker.client();
    let end = end_offset(&mut producer, TOPIC, 5);
    let (port, fetch_topic) = (broker.port, topic.clone());
    let poller = thread::spawn(move || {
        let mut client = Client::connect(port);
        let params = FetchParams {
            max_wait_ms: 1500,
            min_bytes: 1 << 20,
            ..Default::default()
        };
        let started = Instant::now();
        let result = fetch(&mut client, 12, &fetch_topic, &[(5, end)], &params);
        (started.elapsed(), result)
    });
    thread::sleep(Duration::from_millis(200));
    let batch = simple_batch(77, 1, 100, 1_700_000_000_000);
    assert_eq!(produce_one(&mut producer, &topic, 5, &batch), (NONE, end));
    let (elapsed, result) = poller.join().unwrap();
    assert!(
        elapsed >= Duration::from_millis(1300),
        "Fetch with min_bytes=1 MiB returned after {elapsed:?} with only ~200 bytes available"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "Fetch returned after {elapsed:?}"
    );
    let (batches, _) = parse_batches(&result[&5].records).unwrap();
    assert_eq!(
        batches.len(),
        1,
        "at max_wait_ms the fetch returns the data it has"
    );
    assert_same_batch(&batch, &batches[0], end, "min_bytes fetch");
}

/// A consumer tailing a partition with long polls while a producer writes to it: it sees every batch,
/// in order, each soon after it was produced.
#[test]
fn tailing_consumer_sees_every_batch_in_order() {
    let (broker, topic) = start();
    let partition = 4;
    let start_offset = {
        let mut client = broker.client();
        end_offset(&mut client, TOPIC, partition)
    };
    let batches: Vec<Vec<u8>> = (0..30u64)
        .map(|i| simple_batch(5000 + i, 1 + (i % 3) as usize, 100, 1_700_000_000_000))
        .collect();
    let total_records: i64 = (0..30i64).map(|i| 1 + i % 3).sum();
    let (port, consumer_topic) = (broker.port, topic.clone());
    let consumer = thread::spawn(move || {
        let mut client = Client::connect(port);
        let mut offset = start_offset;
        let mut seen = Vec::new();
        let started = Instant::now();
        while offset < start_offset + total_records && started.elapsed() < Duration::from_secs(20) {
            let params = FetchParams {
                max_wait_ms: 2000,
                min_bytes: 1,
                ..Default::default()
            };
            let result = fetch(
                &mut client,
                12,
                &consumer_topic,
                &[(partition, offset)],
                &params,
            );
            let part = &result[&partition];
            assert_eq!(part.error_code, NONE);
            let (batches, _) = parse_batches(&part.records).unwrap();
            let wanted = offset;
            for batch in batches.into_iter().filter(|b| b.last_offset() >= wanted) {
                offset = batch.next_offset();
                seen.push(batch);
            }
        }
        (seen, started.elapsed())
    });
    let mut producer = broker.client();
    for batch in &batches {
        thread::sleep(Duration::from_millis(20));
        assert_eq!(produce_one(&mut producer, &topic, partition, batch).0, NONE);
    }
    let produced_at = Instant::now();
    let (seen, _) = consumer.join().expect("consumer thread");
    assert!(
        produced_at.elapsed() < Duration::from_secs(2),
        "the consumer caught up {:?} after the last produce",
        produced_at.elapsed()
    );
    assert_eq!(
        seen.len(),
        batches.len(),
        "the tailing consumer saw {} of {} batches",
        seen.len(),
        batches.len()
    );
    let mut next = start_offset;
    for (got, sent) in seen.iter().zip(&batches) {
        assert_same_batch(sent, got, next, "tailing consumer");
        next = got.next_offset();
    }
}
