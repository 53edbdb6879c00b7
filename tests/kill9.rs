//! Crash safety: SIGKILL the broker while producers hammer it, restart on the same data dir, and check
//! that every acknowledged batch is there, byte-equal, at its acknowledged offset; that every served
//! batch has a valid CRC-32C (checked here, not trusted); that offsets stay contiguous; and that appends
//! continue at the end.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const TOPIC: &str = "hammer";
const PARTITIONS: i32 = 4;

#[derive(Clone)]
struct Acked {
    partition: i32,
    base_offset: i64,
    batch: Vec<u8>,
}

/// Produces (acks=1) to `partitions` until the connection fails or `stop` is set; returns what was acked.
fn hammer(
    port: u16,
    topic: TopicInfo,
    partitions: Vec<i32>,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Vec<Acked> {
    let mut acked = Vec::new();
    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return acked;
    };
    drop(stream);
    let mut client = Client::connect(port);
    client.set_read_timeout(Duration::from_secs(5));
    let mut counter = 0u64;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(20) {
        let batches: Vec<(i32, Vec<u8>)> = partitions
            .iter()
            .map(|p| {
                counter += 1;
                let value_bytes = 512 + (counter * 7919 % 16_000) as usize;
                let count = 1 + (counter % 8) as usize;
                (
                    *p,
                    simple_batch(
                        seed * 1_000_000 + counter,
                        count,
                        value_bytes,
                        1_700_000_000_000 + counter as i64,
                    ),
                )
            })
            .collect();
        let request = produce_request(&topic, 9, 1, &batches);
        let response = match client.try_send(&request, 9) {
            Ok(response) => response,
            Err(_) => break, // The broker was killed.
        };
        let results = produce_results(&response, &topic, 9, &batches);
        for (result, (partition, batch)) in results.into_iter().zip(batches) {
            assert_eq!(
                result.error_code, NONE,
                "hammer produce to partition {partition} failed"
            );
            acked.push(Acked {
                partition,
                base_offset: result.base_offset,
                batch,
            });
        }
    }
    acked
}

/// Hammers for `run_for`, then SIGKILLs the broker mid-stream. Returns the acknowledged batches.
fn hammer_then_kill(
    broker: &mut Broker,
    topic: &TopicInfo,
    run_for: Duration,
    seed: u64,
) -> Vec<Acked> {
    let hammers = Hammers::start(broker.port, topic, seed);
    thread::sleep(run_for);
    broker.kill9();
    hammers.stop()
}

/// Two producer threads, one on partitions 0 and 1, one on 2 and 3, until `stop`.
struct Hammers {
    stop: Arc<AtomicBool>,
    workers: Vec<thread::JoinHandle<Vec<Acked>>>,
}

impl Hammers {
    fn start(port: u16, topic: &TopicInfo, seed: u64) -> Hammers {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = [vec![0, 1], vec![2, 3]]
            .into_iter()
            .enumerate()
            .map(|(i, partitions)| {
                let (topic, stop) = (topic.clone(), stop.clone());
                thread::spawn(move || hammer(port, topic, partitions, seed * 10 + i as u64, stop))
            })
            .collect();
        Hammers { stop, workers }
    }

    /// Stops the threads and returns every batch they had acknowledged.
    fn stop(self) -> Vec<Acked> {
        self.stop.store(true, Ordering::Relaxed);
        let mut acked = Vec::new();
        for worker in self.workers {
            acked.extend(worker.join().expect("producer thread panicked"));
        }
        acked
    }
}

/// Reads every partition back and checks the acked batches, CRCs and contiguity. Returns the ends.
fn verify_after_crash(
    client: &mut Client,
    topic: &TopicInfo,
    acked: &[Acked],
    context: &str,
) -> Vec<i64> {
    let mut ends = Vec::new();
    for partition in 0..PARTITIONS {
        let (batches, high_watermark) = fetch_all(client, 12, topic, partition, 0);
        let mut next = 0;
        for batch in &batches {
            assert!(batch.crc_ok(), "{context}: partition {partition}: served batch at offset {} has a bad CRC (torn write?)", batch.base_offset);
            assert_eq!(
                batch.base_offset, next,
                "{context}: partition {partition}: offsets not contiguous"
            );
            assert_eq!(
                batch.records.len() as i32,
                batch.record_count,
                "{context}: partition {partition}: record count"
            );
            next = batch.next_offset();
        }
        assert_eq!(
            next, high_watermark,
            "{context}: partition {partition}: high watermark = last offset + 1"
        );
        for ack in acked.iter().filter(|a| a.partition == partition) {
            let found = batches.iter().find(|b| b.base_offset == ack.base_offset);
            let found = found.unwrap_or_else(|| {
                panic!(
                    "{context}: partition {partition}: acknowledged batch at offset {} is missing after SIGKILL + restart (high watermark {high_watermark})",
                    ack.base_offset
                )
            });
            assert_same_batch(
                &ack.batch,
                found,
                ack.base_offset,
                &format!("{context}: acknowledged batch"),
            );
        }
        ends.push(high_watermark);
    }
    ends
}

/// A broker on a fresh data directory (named with `prefix`) with `segment_bytes` segments and `topic`
/// created with `PARTITIONS` partitions; the options are returned for restarts on the same directory.
fn start_with_topic(
    prefix: &str,
    topic: &str,
    segment_bytes: u64,
) -> (tempfile::TempDir, BrokerOpts, Broker, TopicInfo) {
    let data_dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let opts = BrokerOpts {
        data_dir: Some(data_dir.path().to_path_buf()),
        default_partitions: Some(PARTITIONS as u32),
        segment_bytes: Some(segment_bytes),
        ..Default::default()
    };
    let broker = Broker::start(opts.clone());
    let info = {
        let mut client = broker.client();
        assert_eq!(create_topic(&mut client, topic, PARTITIONS), NONE);
        topic_info(&mut client, topic)
    };
    (data_dir, opts, broker, info)
}

/// One batch per partition after a restart, `(seed, records, value bytes)` shaped; each must land
/// exactly at the end recovery found, and joins the acknowledged batches checked later.
fn append_at_ends(
    client: &mut Client,
    topic: &TopicInfo,
    ends: &[i64],
    (seed, records, value_bytes): (u64, usize, usize),
    context: &str,
    all_acked: &mut Vec<Acked>,
) {
    for partition in 0..PARTITIONS {
        let batch = simple_batch(
            seed + partition as u64,
            records,
            value_bytes,
            1_800_000_000_000,
        );
        let (error, base) = produce_one(client, topic, partition, &batch);
        assert_eq!(error, NONE, "{context}: produce after recovery");
        assert_eq!(
            base, ends[partition as usize],
            "{context}: first offset after recovery"
        );
        all_acked.push(Acked {
            partition,
            base_offset: base,
            batch,
        });
    }
}

#[test]
fn kill9_no_torn_batch() {
    // Small segments (the minimum the default max.message.bytes allows) so a roll can happen mid-hammer.
    let (_data_dir, opts, mut broker, topic) = start_with_topic("fluxmq-kill9-", TOPIC, 3 << 20);

    let mut all_acked: Vec<Acked> = Vec::new();
    for cycle in 0..2u64 {
        let acked = hammer_then_kill(&mut broker, &topic, Duration::from_millis(1500), cycle + 1);
        assert!(
            acked.len() >= 10,
            "cycle {cycle}: only {} batches acknowledged before the kill: broker too slow to test",
            acked.len()
        );
        all_acked.extend(acked);
        broker = Broker::start(opts.clone());
        let mut client = broker.client();
        let topic_after = topic_info(&mut client, TOPIC);
        assert_eq!(
            topic_after.id_text, topic.id_text,
            "topic id after SIGKILL + restart"
        );
        let context = format!("after kill -9 #{}", cycle + 1);
        let ends = verify_after_crash(&mut client, &topic_after, &all_acked, &context);
        eprintln!(
            "{context}: {} batches acknowledged so far, recovered ends {ends:?}, data dir holds {} paths",
            all_acked.len(),
            list_tree(&broker.data_dir).len()
        );
        // Appends continue right at the recovered end.
        let seed = 9_999 + cycle * 10;
        append_at_ends(
            &mut client,
            &topic_after,
            &ends,
            (seed, 3, 100),
            &context,
            &mut all_acked,
        );
        verify_after_crash(
            &mut client,
            &topic_after,
            &all_acked,
            &format!("{context} + appends"),
        );
    }
    // A final clean stop and start keeps all of it.
    let status = broker.stop();
    assert!(status.success(), "SIGTERM exit status {status}");
    let broker = Broker::start(opts);
    let mut client = broker.client();
    let topic_after = topic_info(&mut client, TOPIC);
    verify_after_crash(
        &mut client,
        &topic_after,
        &all_acked,
        "after the final clean restart",
    );
}

/// What a partition directory holds: its data files (base offsets, sorted) and which of them have an
/// offset index file.
fn segment_files(dir: &std::path::Path) -> (Vec<u64>, Vec<u64>) {
    let mut data = Vec::new();
    let mut indexed = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".log") {
            data.extend(stem.parse::<u64>());
        } else if let Some(stem) = name.strip_suffix(".index") {
            indexed.extend(stem.parse::<u64>());
        }
    }
    data.sort_unstable();
    (data, indexed)
}

/// Sealed segments (every data file but the newest) of the topic's partitions that have no index file
/// yet: their seal job (fdatasync, index files) has not finished.
fn sealed_without_index(data_dir: &std::path::Path, topic: &str) -> usize {
    (0..PARTITIONS)
        .map(|partition| {
            let (data, indexed) = segment_files(&data_dir.join(format!("{topic}-{partition}")));
            let sealed = &data[..data.len().saturating_sub(1)];
            sealed.iter().filter(|base| !indexed.contains(base)).count()
        })
        .sum()
}

/// Hammers until a roll has just sealed a segment whose seal job has not finished (no index file yet),
/// and SIGKILLs the broker at that moment; after 10 s without seeing one, kills anyway. Returns the
/// acknowledged batches and how many sealed segments had no index file right after the kill.
fn hammer_until_roll_then_kill(
    broker: &mut Broker,
    topic: &TopicInfo,
    topic_name: &str,
    seed: u64,
) -> (Vec<Acked>, usize) {
    let hammers = Hammers::start(broker.port, topic, seed);
    let started = Instant::now();
    let pending_before = sealed_without_index(&broker.data_dir, topic_name);
    while started.elapsed() < Duration::from_secs(10)
        && sealed_without_index(&broker.data_dir, topic_name) <= pending_before
    {
        thread::yield_now();
    }
    broker.kill9();
    let pending = sealed_without_index(&broker.data_dir, topic_name);
    (hammers.stop(), pending)
}

/// SIGKILL right after a segment roll, while the sealed segment's background sync is still queued
/// or running: every acknowledged batch survives, restart is clean, the sealed segments get their
/// indexes back, and appends continue at the end.
#[test]
fn kill9_right_after_a_roll_keeps_every_acknowledged_batch() {
    const ROLLED: &str = "rolled";
    // The smallest segment the broker accepts, so rolls come every few hundred batches.
    let (data_dir, opts, mut broker, topic) =
        start_with_topic("fluxmq-kill9-roll-", ROLLED, 2 << 20);
    let mut all_acked: Vec<Acked> = Vec::new();
    let mut kills_with_pending_seal = 0;
    for cycle in 0..3u64 {
        let (acked, pending) = hammer_until_roll_then_kill(&mut broker, &topic, ROLLED, cycle + 11);
        assert!(
            acked.len() >= 10,
            "cycle {cycle}: only {} batches acknowledged before the kill",
            acked.len()
        );
        kills_with_pending_seal += usize::from(pending > 0);
        all_acked.extend(acked);
        broker = Broker::start(opts.clone());
        let stderr = broker.stderr_tail(200);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("could not open partition"),
            "cycle {cycle}: unclean restart:\n{stderr}"
        );
        let mut client = broker.client();
        let context = format!("after kill -9 right after a roll #{}", cycle + 1);
        let ends = verify_after_crash(&mut client, &topic, &all_acked, &context);
        // Recovery rebuilt (after syncing the data) the index of every segment whose job had not run.
        assert_eq!(
            sealed_without_index(data_dir.path(), ROLLED),
            0,
            "{context}: sealed segments without an index after recovery"
        );
        eprintln!(
            "{context}: {} sealed segments had no index at the kill; {} batches acknowledged so far, \
             ends {ends:?}",
            pending,
            all_acked.len()
        );
        let seed = 77_000 + cycle * 10;
        append_at_ends(
            &mut client,
            &topic,
            &ends,
            (seed, 2, 50),
            &context,
            &mut all_acked,
        );
    }
    eprintln!("{kills_with_pending_seal} of 3 kills came while a seal job was pending");
    let status = broker.stop();
    assert!(status.success(), "SIGTERM exit status {status}");
    let broker = Broker::start(opts);
    let mut client = broker.client();
    verify_after_crash(
        &mut client,
        &topic,
        &all_acked,
        "after the final clean restart",
    );
}

/// Acknowledged topic changes survive a SIGKILL that comes right after them.
#[test]
fn kill9_keeps_acknowledged_topic_changes() {
    let data_dir = tempfile::Builder::new()
        .prefix("fluxmq-kill9-catalog-")
        .tempdir()
        .unwrap();
    let opts = BrokerOpts {
        data_dir: Some(data_dir.path().to_path_buf()),
        default_partitions: Some(2),
        ..Default::default()
    };
    let mut broker = Broker::start(opts.clone());
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, "k-grown", 2), NONE);
    assert_eq!(create_topic(&mut client, "k-doomed", 2), NONE);
    let doomed = topic_info(&mut client, "k-doomed");
    assert_eq!(
        produce_one(
            &mut client,
            &doomed,
            1,
            &simple_batch(1, 2, 10, 1_700_000_000_000)
        ),
        (NONE, 0)
    );
    // Auto-created by Metadata, then acknowledged by a produce.
    let auto = topic_info(&mut client, "k-auto");
    assert_eq!(
        produce_one(
            &mut client,
            &auto,
            1,
            &simple_batch(2, 2, 10, 1_700_000_000_000)
        ),
        (NONE, 0)
    );
    assert_eq!(create_topic(&mut client, "k-new", 6), NONE);
    let mut grow =
        kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic::default();
    grow.name = topic_name("k-grown");
    grow.count = 4;
    grow.assignments = None;
    let mut request =
        kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest::default();
    request.topics = vec![grow];
    request.timeout_ms = 10_000;
    assert_eq!(client.send(&request, 3).results[0].error_code, NONE);
    let mut delete =
        kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest::default();
    delete.topic_names = vec![topic_name("k-doomed")];
    delete.timeout_ms = 10_000;
    assert_eq!(client.send(&delete, 5).responses[0].error_code, NONE);
    broker.kill9();

    let broker = Broker::start(opts);
    let mut client = broker.client();
    let check = |client: &mut Client, name: &str| {
        let response = metadata(client, 12, Some(&[name]), false);
        let topic = &response.topics[0];
        (topic.error_code, topic.partitions.len())
    };
    assert_eq!(
        check(&mut client, "k-new"),
        (NONE, 6),
        "a created topic was lost by kill -9"
    );
    assert_eq!(
        check(&mut client, "k-grown"),
        (NONE, 4),
        "CreatePartitions was lost by kill -9"
    );
    assert_eq!(
        check(&mut client, "k-auto"),
        (NONE, 2),
        "an auto-created topic was lost by kill -9"
    );
    assert_eq!(
        end_offset(&mut client, "k-auto", 1),
        2,
        "acknowledged data of an auto-created topic"
    );
    assert_eq!(
        check(&mut client, "k-doomed").0,
        UNKNOWN_TOPIC_OR_PARTITION,
        "a deleted topic came back after kill -9"
    );
}

/// Where `needle` sits in the files below `root` (the broker stores batches verbatim after the base
/// offset and leader epoch fields, so a batch's bytes from the magic byte on are searchable).
fn find_in_files(root: &std::path::Path, needle: &[u8]) -> Option<(std::path::PathBuf, usize)> {
    for relative in list_tree(root) {
        let path = root.join(&relative);
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path).ok()?;
        if let Some(position) = data.windows(needle.len()).position(|w| w == needle) {
            return Some((path, position));
        }
    }
    None
}

/// Damages the stored copy of `batch` (or what follows it) the way a crash can, in place.
fn damage(root: &std::path::Path, batch: &[u8], how: &str) {
    use std::io::{Seek, SeekFrom, Write};
    let (path, magic_position) = find_in_files(root, &batch[16..]).unwrap_or_else(|| {
        panic!("the last batch was not found verbatim in any file under {root:?}")
    });
    let start = magic_position - 16;
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    match how {
        "bit flip" => {
            file.seek(SeekFrom::Start((start + batch.len() - 10) as u64))
                .unwrap();
            file.write_all(&[batch[batch.len() - 10] ^ 0x40]).unwrap();
        }
        "torn" => {
            let half = batch.len() / 2;
            file.seek(SeekFrom::Start((start + half) as u64)).unwrap();
            file.write_all(&vec![0u8; batch.len() - half]).unwrap();
        }
        "garbage after" => {
            file.seek(SeekFrom::Start((start + batch.len()) as u64))
                .unwrap();
            file.write_all(&payload(77, 300)).unwrap();
        }
        _ => unreachable!(),
    }
    file.sync_all().unwrap();
}

/// A crash that leaves the last batch torn or bit-flipped (or junk after it) is recovered by cutting
/// the log at the last valid batch: nothing invalid is ever served and appends continue there.
#[test]
fn kill9_recovery_cuts_a_damaged_tail() {
    let data_dir = tempfile::Builder::new()
        .prefix("fluxmq-torn-")
        .tempdir()
        .unwrap();
    let opts = BrokerOpts {
        data_dir: Some(data_dir.path().to_path_buf()),
        default_partitions: Some(1),
        segment_bytes: Some(3 << 20),
        ..Default::default()
    };
    let mut broker = Broker::start(opts.clone());
    let mut kept: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut next = 0i64;
    for (round, how) in ["bit flip", "torn", "garbage after"]
        .into_iter()
        .enumerate()
    {
        let mut client = broker.client();
        let topic = topic_info(&mut client, "torn");
        let mut last = Vec::new();
        for i in 0..6u64 {
            let batch = simple_batch(round as u64 * 100 + i, 3, 2000, 1_700_000_000_000);
            let (error, base) = produce_one(&mut client, &topic, 0, &batch);
            assert_eq!((error, base), (NONE, next), "{how}: produce");
            next += 3;
            kept.push((base, batch.clone()));
            last = batch;
        }
        broker.kill9();
        damage(data_dir.path(), &last, how);
        if how != "garbage after" {
            kept.pop();
            next -= 3;
        }

        broker = Broker::start(opts.clone());
        let mut client = broker.client();
        let topic = topic_info(&mut client, "torn");
        let (batches, high_watermark) = fetch_all(&mut client, 12, &topic, 0, 0);
        for got in &batches {
            assert!(
                got.crc_ok(),
                "{how}: a batch with a bad CRC was served at offset {}",
                got.base_offset
            );
        }
        assert_eq!(high_watermark, next, "{how}: recovered high watermark");
        assert_eq!(batches.len(), kept.len(), "{how}: recovered batch count");
        for (got, (base, sent)) in batches.iter().zip(&kept) {
            assert_same_batch(sent, got, *base, how);
        }
        assert_eq!(
            end_offset(&mut client, "torn", 0),
            next,
            "{how}: ListOffsets latest after recovery"
        );
    }
    // Appends continue at the recovered end.
    let mut client = broker.client();
    let topic = topic_info(&mut client, "torn");
    assert_eq!(
        produce_one(
            &mut client,
            &topic,
            0,
            &simple_batch(999, 1, 10, 1_700_000_000_000)
        ),
        (NONE, next)
    );
}
