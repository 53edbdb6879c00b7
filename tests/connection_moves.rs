//! Connections move to the shard that owns every partition their produce and fetch requests name
//! (`src/net/affinity.rs`): requests the client pipelined across the move are all answered, in order,
//! and the log holds every batch byte for byte; a connection whose requests also name its own shard's
//! partitions stays where the kernel put it. The broker runs two shards, and the log (debug level for
//! the network layer) tells which shard accepted a connection and where it moved.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::ProduceResponse;
use shards::router::shard_for;

const TOPIC: &str = "moves";
const SHARDS: usize = 2;
/// More than `CONNECTION_MOVE_STREAK` (16), so the move happens with requests still unread in the socket.
const PIPELINED_REQUESTS: usize = 48;
const RECORDS_PER_BATCH: usize = 3;
const T0: i64 = 1_700_000_000_000;

fn start() -> (Broker, TopicInfo) {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(SHARDS as u32),
        log_level: Some("info,fluxmq::net=debug".into()),
        ..Default::default()
    });
    let mut client = broker.client();
    let topic = topic_info(&mut client, TOPIC);
    assert_eq!(topic.partitions, SHARDS);
    (broker, topic)
}

/// Waits up to 10 s for a line of the broker's log that contains `needle`, and returns it.
fn logged_line(broker: &Broker, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = broker.log_text();
        if let Some(line) = log.lines().find(|line| line.contains(needle)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "expected `{needle}` in:\n{}",
            broker.stderr_tail(30)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The client's address as the broker logs it.
fn peer(client: &Client) -> String {
    format!("127.0.0.1:{}", client.stream.local_addr().unwrap().port())
}

/// The shard (as the log names it, `shard-N`) that accepted the client's connection.
fn accepted_on(broker: &Broker, client: &Client) -> String {
    let needle = format!(": connection from {}", peer(client));
    let line = logged_line(broker, &needle);
    let before = &line[..line.find(&needle).unwrap()];
    before.rsplit(' ').next().unwrap().to_string()
}

fn owner(partition: i32) -> String {
    shard_for(TOPIC, partition, SHARDS).to_string()
}

/// The partition the shard `home` owns, and the one the other shard owns.
fn local_and_remote(home: &str) -> (i32, i32) {
    let local = (0..SHARDS as i32).find(|&p| owner(p) == home).unwrap();
    let remote = (0..SHARDS as i32).find(|&p| owner(p) != home).unwrap();
    (local, remote)
}

fn batch(index: usize) -> Vec<u8> {
    simple_batch(index as u64, RECORDS_PER_BATCH, 40, T0 + index as i64)
}

#[test]
fn pipelined_requests_cross_a_move_in_order_and_every_byte_is_kept() {
    let (broker, topic) = start();
    let mut client = broker.client();
    let home = accepted_on(&broker, &client);
    let (_, remote) = local_and_remote(&home);

    // Every request goes out before any answer is read: the move happens after the 16th answer,
    // with the rest still in the socket for the new shard to read.
    let batches: Vec<Vec<u8>> = (0..PIPELINED_REQUESTS).map(batch).collect();
    let mut correlation_ids = Vec::new();
    for batch in &batches {
        let request = produce_request(&topic, 9, 1, &[(remote, batch.clone())]);
        let (correlation_id, payload) = client.encode_request(&request, 9);
        client.write_frame(&payload).unwrap();
        correlation_ids.push(correlation_id);
    }
    for (index, correlation_id) in correlation_ids.into_iter().enumerate() {
        let frame = client.read_frame().unwrap();
        let response: ProduceResponse = decode_response(&frame, 9, correlation_id)
            .unwrap_or_else(|error| panic!("answer {index}: {error}"));
        let results = produce_results(&response, &topic, 9, &[(remote, batches[index].clone())]);
        assert_eq!(results[0].error_code, NONE, "answer {index}");
        assert_eq!(
            results[0].base_offset,
            (index * RECORDS_PER_BATCH) as i64,
            "answer {index}"
        );
    }
    let moved = format!("{home}: {} moved to {}", peer(&client), owner(remote));
    logged_line(&broker, &moved);

    // The moved connection reads the log back, byte for byte, from the partition's own shard.
    let (fetched, high_watermark) = fetch_all(&mut client, 12, &topic, remote, 0);
    assert_eq!(
        high_watermark,
        (PIPELINED_REQUESTS * RECORDS_PER_BATCH) as i64
    );
    assert_eq!(fetched.len(), PIPELINED_REQUESTS);
    for (index, got) in fetched.iter().enumerate() {
        let base = (index * RECORDS_PER_BATCH) as i64;
        assert_same_batch(&batches[index], got, base, "after the move");
    }

    // A connection that only fetches the other shard's partition moves too, and keeps reading.
    let mut reader = broker.client();
    let reader_home = accepted_on(&broker, &reader);
    let (_, reader_remote) = local_and_remote(&reader_home);
    let end = end_offset(&mut reader, TOPIC, reader_remote);
    for round in 0..PIPELINED_REQUESTS {
        let result = fetch(
            &mut reader,
            12,
            &topic,
            &[(reader_remote, 0)],
            &FetchParams::default(),
        );
        let result = &result[&reader_remote];
        assert_eq!(result.error_code, NONE, "fetch {round}");
        assert_eq!(result.high_watermark, end, "fetch {round}");
        let (parsed, _) = parse_batches(&result.records).unwrap();
        assert_eq!(
            parsed.len() as i64 * RECORDS_PER_BATCH as i64,
            end,
            "fetch {round}"
        );
    }
    let moved = format!(
        "{reader_home}: {} moved to {}",
        peer(&reader),
        owner(reader_remote)
    );
    logged_line(&broker, &moved);
}

#[test]
fn a_connection_that_uses_its_own_shard_stays() {
    let (broker, topic) = start();
    let mut client = broker.client();
    let home = accepted_on(&broker, &client);
    let (local, remote) = local_and_remote(&home);
    let mut next = [0i64; SHARDS];
    // As a Java producer does: each request writes to every partition, so to both shards.
    for index in 0..PIPELINED_REQUESTS {
        let results = produce(
            &mut client,
            9,
            &topic,
            1,
            &[(local, batch(index)), (remote, batch(index))],
        );
        for result in results {
            assert_eq!(result.error_code, NONE);
            assert_eq!(result.base_offset, next[result.partition as usize]);
            next[result.partition as usize] += RECORDS_PER_BATCH as i64;
        }
    }
    // Its own shard's partition only, then runs shorter than the streak on the other shard's.
    for index in 0..PIPELINED_REQUESTS {
        let partition = if index % 8 == 7 { local } else { remote };
        let (error, base) = produce_one(&mut client, &topic, partition, &batch(index));
        assert_eq!(error, NONE);
        assert_eq!(base, next[partition as usize]);
        next[partition as usize] += RECORDS_PER_BATCH as i64;
    }
    let peer = peer(&client);
    drop(client);
    let closed = format!("{home}: {peer} closed");
    logged_line(&broker, &closed);
    let log = broker.log_text();
    assert!(
        !log.lines()
            .any(|line| line.contains(&format!("{peer} moved"))),
        "the connection moved:\n{log}"
    );
}
