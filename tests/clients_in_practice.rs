//! What real clients do beyond one request at a time: pipelining (librdkafka and Java keep up to 5
//! requests in flight per connection, and expect answers in order), many concurrent producers,
//! compressed batches, read_committed consumers and fetch sessions (Java's first Fetch), requests near
//! the 100 MiB frame limit, and SIGTERM while clients are connected.

mod common;

use common::*;
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::fetch_response::FetchResponse;
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::produce_response::ProduceResponse;
use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

const T0: i64 = 1_700_000_000_000;

enum Expect {
    ApiVersions,
    Produce(i32, Vec<u8>),
    Fetch {
        partition: i32,
        offset: i64,
        wait_ms: i32,
    },
    Metadata,
}

/// Many requests written back to back on one connection, including a long-polling fetch and an acks=0
/// produce: every answer comes back, in request order, and each is right.
#[test]
fn pipelined_requests_answer_in_order() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(8),
        ..Default::default()
    });
    let mut client = broker.client();
    let topic = topic_info(&mut client, "pipeline");
    let mut ends: Vec<i64> = vec![0; 8];
    let mut frames: Vec<u8> = Vec::new();
    let mut expected: Vec<(i32, Expect)> = Vec::new();
    let frame = |payload: Vec<u8>| {
        let mut out = (payload.len() as i32).to_be_bytes().to_vec();
        out.extend(payload);
        out
    };
    for i in 0..40i32 {
        // Produces go to partitions 0..7; partition 7 stays quiet for the long poll.
        let partition = i % 7;
        match i % 5 {
            0 => {
                let mut request = ApiVersionsRequest::default();
                request.client_software_name = sb("pipeline");
                request.client_software_version = sb("1");
                let (id, payload) = client.encode_request(&request, 3);
                frames.extend(frame(payload));
                expected.push((id, Expect::ApiVersions));
            }
            1 | 3 => {
                let batch = simple_batch(i as u64, 1 + (i as usize % 3), 200, T0 + i as i64);
                let acks = if i == 13 { 0 } else { 1 };
                let request = produce_request(&topic, 9, acks, &[(partition, batch.clone())]);
                let (id, payload) = client.encode_request(&request, 9);
                frames.extend(frame(payload));
                if acks != 0 {
                    expected.push((id, Expect::Produce(partition, batch.clone())));
                }
                ends[partition as usize] += 1 + (i as i64 % 3);
            }
            2 => {
                // A fetch at the current end of a partition that no later request writes to: it
                // long-polls (300 ms) and the requests behind it must wait for it.
                let quiet = 7;
                let wait_ms = if i == 12 { 300 } else { 0 };
                let offset = if wait_ms > 0 { ends[quiet] } else { 0 };
                let fetch_partition = if wait_ms > 0 { quiet as i32 } else { partition };
                let params = FetchParams {
                    max_wait_ms: wait_ms,
                    min_bytes: 1,
                    ..Default::default()
                };
                let request = fetch_request(&topic, 12, &[(fetch_partition, offset)], &params);
                let (id, payload) = client.encode_request(&request, 12);
                frames.extend(frame(payload));
                expected.push((
                    id,
                    Expect::Fetch {
                        partition: fetch_partition,
                        offset,
                        wait_ms,
                    },
                ));
            }
            _ => {
                let mut request =
                    kafka_protocol::messages::metadata_request::MetadataRequest::default();
                request.topics = None;
                let (id, payload) = client.encode_request(&request, 12);
                frames.extend(frame(payload));
                expected.push((id, Expect::Metadata));
            }
        }
    }
    // Partition 7 must stay quiet for the long poll: check no produce went there.
    assert_eq!(ends[7], 0, "test setup: partition 7 must get no produce");
    client.write_raw(&frames).unwrap();

    let mut produced_bases: HashMap<i32, Vec<i64>> = HashMap::new();
    for (index, (id, expect)) in expected.iter().enumerate() {
        let frame = client
            .read_frame()
            .unwrap_or_else(|e| panic!("pipelined response #{index}: {e}"));
        let got_id = i32::from_be_bytes(frame[0..4].try_into().unwrap());
        assert_eq!(got_id, *id, "pipelined response #{index} is out of order (Kafka answers each connection's requests in order)");
        match expect {
            Expect::ApiVersions => {
                let response: ApiVersionsResponse = decode_response(&frame, 3, *id).unwrap();
                assert_eq!(response.error_code, NONE);
            }
            Expect::Produce(partition, batch) => {
                let response: ProduceResponse = decode_response(&frame, 9, *id).unwrap();
                let results = produce_results(&response, &topic, 9, &[(*partition, batch.clone())]);
                assert_eq!(results[0].error_code, NONE, "pipelined produce #{index}");
                produced_bases
                    .entry(*partition)
                    .or_default()
                    .push(results[0].base_offset);
            }
            Expect::Fetch {
                partition,
                offset,
                wait_ms,
            } => {
                let response: FetchResponse = decode_response(&frame, 12, *id).unwrap();
                let result = fetch_results(&response, &topic, 12);
                assert_eq!(
                    result[partition].error_code, NONE,
                    "pipelined fetch #{index} of {partition}@{offset} (wait {wait_ms})"
                );
            }
            Expect::Metadata => {
                let response: MetadataResponse = decode_response(&frame, 12, *id).unwrap();
                assert!(response
                    .topics
                    .iter()
                    .any(|t| t.name.as_ref().map(|n| n.as_str()) == Some("pipeline")));
            }
        }
    }
    // Produce base offsets per partition increase in request order.
    for (partition, bases) in &produced_bases {
        let mut sorted = bases.clone();
        sorted.sort();
        assert_eq!(
            &sorted, bases,
            "partition {partition}: pipelined produces applied out of order"
        );
    }
    // The acks=0 produce in the middle landed too: every partition ends where the model says.
    for partition in 0..8 {
        assert_eq!(
            end_offset(&mut client, "pipeline", partition),
            ends[partition as usize],
            "end offset of partition {partition}"
        );
    }
}

/// Many connections producing to the same partitions at once (both shards, cross-shard hops on every
/// connection): every acknowledged batch is stored exactly once at its acknowledged offset.
#[test]
fn concurrent_producers_keep_every_acked_batch() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(8),
        ..Default::default()
    });
    let topic = {
        let mut client = broker.client();
        topic_info(&mut client, "concurrent")
    };
    let workers: Vec<_> = (0..12u64)
        .map(|worker| {
            let (port, topic) = (broker.port, topic.clone());
            thread::spawn(move || {
                let mut client = Client::connect(port);
                let mut acked = Vec::new();
                for i in 0..40u64 {
                    let first = ((worker * 7 + i * 3) % 8) as i32;
                    let partitions: Vec<i32> = (0..(1 + i % 3) as i32)
                        .map(|k| (first + k * 3) % 8)
                        .collect();
                    let batches: Vec<(i32, Vec<u8>)> = partitions
                        .iter()
                        .map(|p| {
                            (
                                *p,
                                simple_batch(
                                    worker * 100_000 + i * 10 + *p as u64,
                                    1 + (i % 4) as usize,
                                    100 + (i as usize * 37 % 900),
                                    T0,
                                ),
                            )
                        })
                        .collect();
                    let version = [3i16, 9, 12, 13][(i % 4) as usize];
                    let acks = if i % 2 == 0 { 1 } else { -1 };
                    for (result, (partition, batch)) in
                        produce(&mut client, version, &topic, acks, &batches)
                            .into_iter()
                            .zip(batches)
                    {
                        assert_eq!(
                            result.error_code, NONE,
                            "worker {worker} produce {i} to {partition}"
                        );
                        acked.push((partition, result.base_offset, batch));
                    }
                }
                acked
            })
        })
        .collect();
    let mut acked: Vec<(i32, i64, Vec<u8>)> = Vec::new();
    for worker in workers {
        acked.extend(worker.join().expect("producer thread panicked"));
    }
    let mut client = broker.client();
    for partition in 0..8 {
        let mine: HashMap<i64, &Vec<u8>> = acked
            .iter()
            .filter(|a| a.0 == partition)
            .map(|a| (a.1, &a.2))
            .collect();
        let count = acked.iter().filter(|a| a.0 == partition).count();
        assert_eq!(
            mine.len(),
            count,
            "partition {partition}: two acknowledged batches got the same base offset"
        );
        let (batches, high_watermark) = fetch_all(&mut client, 12, &topic, partition, 0);
        assert_eq!(
            batches.len(),
            count,
            "partition {partition}: stored batches vs acknowledged batches"
        );
        let mut next = 0;
        for batch in &batches {
            assert_eq!(
                batch.base_offset, next,
                "partition {partition}: contiguous offsets"
            );
            let sent = mine.get(&batch.base_offset).unwrap_or_else(|| {
                panic!(
                    "partition {partition}: unacknowledged batch at {}",
                    batch.base_offset
                )
            });
            assert_same_batch(sent, batch, batch.base_offset, "concurrent producers");
            next = batch.next_offset();
        }
        assert_eq!(next, high_watermark);
    }
}

fn crc32_ieee(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// gzip stream made of stored (uncompressed) deflate blocks: valid gzip without a compressor.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(65_535).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(if i + 1 == chunks.len() { 1 } else { 0 });
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32_ieee(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// zstd frame made of raw blocks: valid zstd without a compressor.
fn zstd_raw(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd];
    out.push(0x00); // Frame header descriptor: no content size, no checksum, no dictionary.
    out.push(7 << 3); // Window descriptor: 2^(10+7) = 128 KiB.
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(64 * 1024).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        let last = (i + 1 == chunks.len()) as u32;
        // Block type 0 (raw) sits in bits 1-2, so only the last-block flag and the size are set.
        let header = last | ((chunk.len() as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
    out
}

/// Turns an uncompressed batch into one compressed with `codec` (1 gzip, 4 zstd), CRC fixed.
fn compress_batch(batch: &[u8], codec: i16) -> Vec<u8> {
    let records = &batch[61..];
    let compressed = match codec {
        1 => gzip_stored(records),
        4 => zstd_raw(records),
        _ => unreachable!(),
    };
    let mut out = batch[..61].to_vec();
    out.extend_from_slice(&compressed);
    let attributes = i16::from_be_bytes([out[21], out[22]]) | codec;
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    let length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    fix_crc(&mut out);
    out
}

/// Compressed batches (most producers compress) are stored and served as sent.
#[test]
fn compressed_batches_round_trip() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(2),
        ..Default::default()
    });
    let mut client = broker.client();
    let topic = topic_info(&mut client, "compressed");
    let mut next = 0;
    let mut sent = Vec::new();
    for (i, codec) in [1i16, 4, 1, 4].into_iter().enumerate() {
        let plain = simple_batch(500 + i as u64, 5 + i, 3000, T0 + i as i64 * 100);
        let batch = compress_batch(&plain, codec);
        let (error, base) = produce_one(&mut client, &topic, 1, &batch);
        assert_eq!(error, NONE, "produce a codec-{codec} batch");
        assert_eq!(base, next, "codec-{codec} batch base offset");
        sent.push((base, batch));
        next += 5 + i as i64;
    }
    let (batches, high_watermark) = fetch_all(&mut client, 12, &topic, 1, 0);
    assert_eq!(
        high_watermark, next,
        "high watermark counts the records inside compressed batches"
    );
    assert_eq!(batches.len(), sent.len());
    for (got, (base, batch)) in batches.iter().zip(&sent) {
        assert_same_batch(batch, got, *base, "compressed batch");
    }
    // A fetch from inside a compressed batch returns that batch.
    let result = fetch(
        &mut client,
        12,
        &topic,
        &[(1, sent[2].0 + 3)],
        &FetchParams::default(),
    );
    let (batches, _) = parse_batches(&result[&1].records).unwrap();
    assert_same_batch(
        &sent[2].1,
        &batches[0],
        sent[2].0,
        "compressed batch fetched from its middle",
    );
}

/// librdkafka's default read_committed, and the Java consumer's first Fetch (session epoch 0).
#[test]
fn read_committed_and_fetch_sessions() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(4),
        ..Default::default()
    });
    let mut client = broker.client();
    let topic = topic_info(&mut client, "sessions");
    let mut sent = Vec::new();
    for partition in 0..4 {
        let batch = simple_batch(partition as u64, 3, 50, T0);
        assert_eq!(
            produce_one(&mut client, &topic, partition, &batch),
            (NONE, 0)
        );
        sent.push(batch);
    }
    let all: Vec<(i32, i64)> = (0..4).map(|p| (p, 0)).collect();
    for version in [4i16, 12, 18] {
        let params = FetchParams {
            isolation_level: 1,
            ..Default::default()
        };
        let result = fetch(&mut client, version, &topic, &all, &params);
        for partition in 0..4 {
            let part = &result[&partition];
            assert_eq!(part.error_code, NONE);
            assert_eq!(part.high_watermark, 3);
            assert_eq!(
                part.last_stable_offset, 3,
                "read_committed Fetch v{version}: last stable offset"
            );
            let (batches, _) = parse_batches(&part.records).unwrap();
            assert_eq!(
                batches.len(),
                1,
                "read_committed Fetch v{version} partition {partition} returned no data"
            );
            assert_same_batch(&sent[partition as usize], &batches[0], 0, "read_committed");
        }
    }

    // Session epoch 0 asks for a new fetch session; a broker may decline by answering session id 0.
    let mut request = fetch_request(&topic, 12, &all, &FetchParams::default());
    request.session_id = 0;
    request.session_epoch = 0;
    let response: FetchResponse = client.send(&request, 12);
    assert_eq!(response.error_code, NONE, "Fetch creating a session");
    let result = fetch_results(&response, &topic, 12);
    assert_eq!(
        result.len(),
        4,
        "a full fetch (new session) answers every partition"
    );
    for partition in 0..4 {
        assert!(
            !result[&partition].records.is_empty(),
            "new-session fetch returned no data for partition {partition}"
        );
    }
    if response.session_id != 0 {
        // Incremental fetch: the client lists the partitions whose fetch offset moved (all four, now
        // at 3); only the partition with new data has to come back.
        let batch = simple_batch(99, 2, 10, T0);
        assert_eq!(produce_one(&mut client, &topic, 2, &batch), (NONE, 3));
        let moved: Vec<(i32, i64)> = (0..4).map(|p| (p, 3)).collect();
        let mut incremental = fetch_request(&topic, 12, &moved, &FetchParams::default());
        incremental.session_id = response.session_id;
        incremental.session_epoch = 1;
        let response: FetchResponse = client.send(&incremental, 12);
        assert_eq!(
            response.error_code, NONE,
            "incremental fetch in session {}",
            response.session_id
        );
        let result = fetch_results(&response, &topic, 12);
        let part = result
            .get(&2)
            .expect("incremental fetch omits the partition that has new data");
        let (batches, _) = parse_batches(&part.records).unwrap();
        assert!(
            batches.iter().any(|b| b.base_offset == 3),
            "incremental fetch lacks the new batch"
        );
    }
}

/// Requests close to the 100 MiB frame limit are served, alone and two at once, and reads stay bounded.
#[test]
fn large_requests_near_the_frame_limit() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(2),
        segment_bytes: Some(3 << 20),
        ..Default::default()
    });
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, "big", 90), NONE);
    let topic = topic_info(&mut client, "big");
    // One batch just under max.message.bytes, reused for every partition.
    let batch = build_batch(&[TestRecord::new(
        T0,
        Some(b"big"),
        Some(&payload(7, 1_000_000)),
    )]);
    assert!(batch.len() < MAX_MESSAGE_BYTES_DEFAULT);

    // ~90 MB in one Produce request (Kafka's socket.request.max.bytes is 100 MiB).
    let batches: Vec<(i32, Vec<u8>)> = (0..90).map(|p| (p, batch.clone())).collect();
    let started = Instant::now();
    let results = produce(&mut client, 9, &topic, 1, &batches);
    for result in &results {
        assert_eq!(
            (result.error_code, result.base_offset),
            (NONE, 0),
            "90 MB Produce, partition {}",
            result.partition
        );
    }
    eprintln!("90 MB produce took {:?}", started.elapsed());

    // Two ~55 MB requests at once on two connections (more than one shard's buffer pool together).
    let workers: Vec<_> = [0..55, 35..90]
        .into_iter()
        .map(|range| {
            let (port, topic, batch) = (broker.port, topic.clone(), batch.clone());
            thread::spawn(move || {
                let mut client = Client::connect(port);
                let batches: Vec<(i32, Vec<u8>)> = range.map(|p| (p, batch.clone())).collect();
                produce(&mut client, 9, &topic, 1, &batches)
                    .into_iter()
                    .map(|r| (r.partition, r.error_code))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for worker in workers {
        for (partition, error) in worker.join().expect("large producer panicked") {
            assert_eq!(
                error, NONE,
                "concurrent 55 MB Produce, partition {partition}"
            );
        }
    }
    let mut client = broker.client();
    for partition in 0..90 {
        let expected = if (35..55).contains(&partition) { 3 } else { 2 };
        assert_eq!(
            end_offset(&mut client, "big", partition),
            expected,
            "end offset of partition {partition}"
        );
    }

    // A fetch asking for everything (100 MB) gets a bounded, valid answer and makes progress.
    let all: Vec<(i32, i64)> = (0..90).map(|p| (p, 0)).collect();
    let params = FetchParams {
        max_bytes: 100 << 20,
        partition_max_bytes: 4 << 20,
        ..Default::default()
    };
    let result = fetch(&mut client, 12, &topic, &all, &params);
    let mut total = 0;
    for part in result.values() {
        assert_eq!(part.error_code, NONE);
        let (batches, _) = parse_batches(&part.records).unwrap();
        for got in &batches {
            assert!(got.crc_ok());
        }
        total += part.records.len();
    }
    assert!(
        total >= batch.len(),
        "a 100 MB fetch over 230 MB of data returned {total} bytes"
    );
    for partition in [0, 44, 89] {
        let (batches, high_watermark) = fetch_all(&mut client, 12, &topic, partition, 0);
        assert_eq!(batches.len() as i64, high_watermark);
        for got in &batches {
            assert_same_batch(&batch, got, got.base_offset, "large batch");
        }
    }
}

/// SIGTERM with an idle connection and a parked long poll open: the broker still exits, cleanly.
#[test]
fn sigterm_with_clients_connected() {
    let mut broker = Broker::start(BrokerOpts {
        default_partitions: Some(2),
        ..Default::default()
    });
    let mut idle = broker.client();
    let topic = topic_info(&mut idle, "stopping");
    let (port, poll_topic) = (broker.port, topic.clone());
    let poller = thread::spawn(move || {
        let mut client = Client::connect(port);
        let params = FetchParams {
            max_wait_ms: 30_000,
            min_bytes: 1,
            ..Default::default()
        };
        let request = fetch_request(&poll_topic, 12, &[(0, 0)], &params);
        client.try_send(&request, 12).map(|_| ())
    });
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = broker.stop();
    assert!(
        status.success(),
        "exit status {status} on SIGTERM with clients connected"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "SIGTERM took {:?} with clients connected",
        started.elapsed()
    );
    // The parked fetch was answered or its connection closed; it did not hang.
    let _ = poller.join().expect("poller thread");
    drop(idle);
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// An idle broker, with an idle connection and a parked long poll, uses (almost) no CPU.
#[test]
fn idle_broker_uses_almost_no_cpu() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(4),
        ..Default::default()
    });
    let mut client = broker.client();
    let topic = topic_info(&mut client, "idle");
    assert_eq!(
        produce_one(&mut client, &topic, 0, &simple_batch(1, 1, 10, T0)).0,
        NONE
    );
    let (port, poll_topic) = (broker.port, topic.clone());
    let poller = thread::spawn(move || {
        let mut client = Client::connect(port);
        let params = FetchParams {
            max_wait_ms: 3000,
            min_bytes: 1,
            ..Default::default()
        };
        fetch(&mut client, 12, &poll_topic, &[(1, 0)], &params);
    });
    thread::sleep(Duration::from_millis(300));
    let pid = broker.pid().unwrap();
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let before = cpu_ticks(pid);
    let window = Duration::from_secs(2);
    thread::sleep(window);
    let used = (cpu_ticks(pid) - before) as f64 / ticks_per_second;
    poller.join().unwrap();
    assert!(
        used <= 0.1 * window.as_secs_f64(),
        "an idle broker used {used:.2} s of CPU in {window:?} (a background loop spins instead of parking)"
    );
}

/// Hundreds of connections at once (spread over both shards) are all served.
#[test]
fn many_connections_are_served() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(4),
        ..Default::default()
    });
    let mut clients: Vec<Client> = (0..300).map(|_| broker.client()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let request = ApiVersionsRequest::default();
        let (_, payload) = client.encode_request(&request, 0);
        client
            .write_frame(&payload)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let frame = client
            .read_frame()
            .unwrap_or_else(|e| panic!("connection {i} got no ApiVersions answer: {e}"));
        assert!(frame.len() > 8, "connection {i}");
    }
    let mut client = broker.client();
    let topic = topic_info(&mut client, "many");
    for (i, c) in clients.iter_mut().enumerate().step_by(10) {
        let results = produce(
            c,
            9,
            &topic,
            1,
            &[((i % 4) as i32, simple_batch(i as u64, 1, 10, T0))],
        );
        assert_eq!(results[0].error_code, NONE, "produce on connection {i}");
    }
    drop(clients);
    let _ = ApiVersionsResponse::default();
}
