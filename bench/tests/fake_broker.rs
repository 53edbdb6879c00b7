//! Runs the `fluxmq-bench` binary against an in-process fake Kafka broker on 127.0.0.1.
//!
//! Owns: the fake broker (just enough of ApiVersions, Metadata, CreateTopics, Produce, ListOffsets
//! and Fetch, kept in memory) and the end-to-end checks of the three modes. Never: other binaries
//! or any address but loopback.
//!
//! The fake broker doubles as an oracle: every batch produced is decoded (CRC included) with
//! kafka-protocol's record decoder before it is stored, and the records it accepted are compared
//! with what the tool reports having produced and consumed. Topics whose name starts with
//! `reject-` refuse every batch with NOT_LEADER_OR_FOLLOWER, to check that errors are counted.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{
    decode_request_header_from_buffer, Decodable, Encodable, HeaderVersion,
};
use kafka_protocol::records::{self, RecordBatchDecoder};

/// Requests larger than this are a bug in the tool: its own limit is 64 MiB.
const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// One partition's log: (base offset, record count, batch bytes with the base offset assigned).
#[derive(Default)]
struct Log {
    batches: Vec<(i64, i64, Bytes)>,
    end: i64,
}

#[derive(Default)]
struct FakeBroker {
    port: u16,
    topics: Mutex<HashMap<String, Vec<Log>>>,
    records_accepted: AtomicU64,
}

impl FakeBroker {
    /// Listens on an ephemeral loopback port; connection threads end when the test process does.
    fn start() -> Arc<FakeBroker> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local address").port();
        let broker = Arc::new(FakeBroker {
            port,
            ..FakeBroker::default()
        });
        let shared = broker.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let broker = shared.clone();
                thread::spawn(move || broker.serve(stream));
            }
        });
        broker
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn serve(&self, mut stream: TcpStream) {
        stream.set_nodelay(true).expect("nodelay");
        loop {
            let mut size = [0u8; 4];
            if stream.read_exact(&mut size).is_err() {
                return; // The tool closed the connection.
            }
            let size = i32::from_be_bytes(size) as usize;
            assert!(size <= FRAME_BYTES_MAX, "request of {size} bytes");
            let mut frame = vec![0u8; size];
            stream.read_exact(&mut frame).expect("whole request");
            let mut body = Bytes::from(frame);
            let header = decode_request_header_from_buffer(&mut body).expect("request header");
            let answer = self.handle(&header, body);
            if let Some(answer) = answer {
                stream.write_all(&answer).expect("write answer");
            }
        }
    }

    fn handle(&self, header: &RequestHeader, mut body: Bytes) -> Option<BytesMut> {
        let version = header.request_api_version;
        let id = header.correlation_id;
        match ApiKey::try_from(header.request_api_key).expect("known api key") {
            ApiKey::ApiVersions => Some(frame(id, version, &api_versions())),
            ApiKey::Metadata => {
                let request = MetadataRequest::decode(&mut body, version).expect("metadata");
                Some(frame(id, version, &self.metadata(&request)))
            }
            ApiKey::CreateTopics => {
                let request = CreateTopicsRequest::decode(&mut body, version).expect("create");
                Some(frame(id, version, &self.create_topics(&request)))
            }
            ApiKey::Produce => {
                let request = ProduceRequest::decode(&mut body, version).expect("produce");
                let response = self.produce(&request);
                (request.acks != 0).then(|| frame(id, version, &response))
            }
            ApiKey::ListOffsets => {
                let request = ListOffsetsRequest::decode(&mut body, version).expect("list offsets");
                Some(frame(id, version, &self.list_offsets(&request)))
            }
            ApiKey::Fetch => {
                let request = FetchRequest::decode(&mut body, version).expect("fetch");
                Some(frame(id, version, &self.fetch(&request)))
            }
            other => panic!("the tool sent an unexpected {other:?}"),
        }
    }

    fn metadata(&self, request: &MetadataRequest) -> MetadataResponse {
        let topics = self.topics.lock().expect("lock");
        let mut answers = Vec::new();
        for wanted in request.topics.iter().flatten() {
            let name = wanted.name.clone().expect("topic by name");
            let answer = match topics.get(name.0.as_str()) {
                Some(logs) => MetadataResponseTopic::default().with_partitions(
                    (0..logs.len() as i32)
                        .map(|index| {
                            MetadataResponsePartition::default()
                                .with_partition_index(index)
                                .with_leader_id(BrokerId(0))
                                .with_replica_nodes(vec![BrokerId(0)])
                                .with_isr_nodes(vec![BrokerId(0)])
                        })
                        .collect(),
                ),
                None => {
                    MetadataResponseTopic::default().with_error_code(UNKNOWN_TOPIC_OR_PARTITION)
                }
            };
            answers.push(answer.with_name(Some(name)));
        }
        let broker = MetadataResponseBroker::default()
            .with_node_id(BrokerId(0))
            .with_host("127.0.0.1".into())
            .with_port(self.port as i32);
        MetadataResponse::default()
            .with_brokers(vec![broker])
            .with_controller_id(BrokerId(0))
            .with_topics(answers)
    }

    fn create_topics(&self, request: &CreateTopicsRequest) -> CreateTopicsResponse {
        let mut topics = self.topics.lock().expect("lock");
        let results = request
            .topics
            .iter()
            .map(|topic| {
                let name = topic.name.0.to_string();
                let code = match topics.contains_key(&name) {
                    true => TOPIC_ALREADY_EXISTS,
                    false => {
                        let logs = (0..topic.num_partitions).map(|_| Log::default()).collect();
                        topics.insert(name, logs);
                        0
                    }
                };
                CreatableTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_error_code(code)
            })
            .collect();
        CreateTopicsResponse::default().with_topics(results)
    }

    fn produce(&self, request: &ProduceRequest) -> ProduceResponse {
        let mut topics = self.topics.lock().expect("lock");
        let mut responses = Vec::new();
        for topic in &request.topic_data {
            let name = topic.name.0.as_str();
            let logs = topics.get_mut(name).expect("produce to an existing topic");
            let mut partitions = Vec::new();
            for data in &topic.partition_data {
                let answer = PartitionProduceResponse::default().with_index(data.index);
                if name.starts_with("reject-") {
                    partitions.push(answer.with_error_code(NOT_LEADER_OR_FOLLOWER));
                    continue;
                }
                let records = data.records.clone().expect("records");
                let log = &mut logs[data.index as usize];
                let base_offset = append(log, records);
                self.records_accepted
                    .fetch_add((log.end - base_offset) as u64, Ordering::SeqCst);
                partitions.push(answer.with_base_offset(base_offset));
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic.name.clone())
                    .with_partition_responses(partitions),
            );
        }
        ProduceResponse::default().with_responses(responses)
    }

    fn list_offsets(&self, request: &ListOffsetsRequest) -> ListOffsetsResponse {
        let topics = self.topics.lock().expect("lock");
        let answers = request
            .topics
            .iter()
            .map(|topic| {
                let logs = &topics[topic.name.0.as_str()];
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|wanted| {
                        let log = &logs[wanted.partition_index as usize];
                        let offset = if wanted.timestamp == -2 { 0 } else { log.end };
                        ListOffsetsPartitionResponse::default()
                            .with_partition_index(wanted.partition_index)
                            .with_offset(offset)
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(topic.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        ListOffsetsResponse::default().with_topics(answers)
    }

    /// Answers at once when any partition has data, else long-polls up to `max_wait_ms`.
    fn fetch(&self, request: &FetchRequest) -> FetchResponse {
        let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
        loop {
            let (response, any) = self.read(request);
            if any || Instant::now() >= deadline {
                return response;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    fn read(&self, request: &FetchRequest) -> (FetchResponse, bool) {
        let topics = self.topics.lock().expect("lock");
        let mut any = false;
        let mut answers = Vec::new();
        for topic in &request.topics {
            let logs = &topics[topic.topic.0.as_str()];
            let mut partitions = Vec::new();
            for wanted in &topic.partitions {
                let log = &logs[wanted.partition as usize];
                let mut records = BytesMut::new();
                for (base, count, batch) in &log.batches {
                    let past_limit =
                        records.len() + batch.len() > wanted.partition_max_bytes as usize;
                    if base + count <= wanted.fetch_offset || (past_limit && !records.is_empty()) {
                        continue;
                    }
                    records.extend_from_slice(batch);
                }
                any |= !records.is_empty();
                partitions.push(
                    PartitionData::default()
                        .with_partition_index(wanted.partition)
                        .with_high_watermark(log.end)
                        .with_last_stable_offset(log.end)
                        .with_records(Some(records.freeze())),
                );
            }
            answers.push(
                FetchableTopicResponse::default()
                    .with_topic(topic.topic.clone())
                    .with_partitions(partitions),
            );
        }
        (FetchResponse::default().with_responses(answers), any)
    }
}

/// Validates a produced batch with kafka-protocol's decoder (CRC and every record), assigns its
/// base offset and stores it; returns the base offset.
fn append(log: &mut Log, records: Bytes) -> i64 {
    let mut reader = records.clone();
    let set = RecordBatchDecoder::decode_with_custom_compression(&mut reader, Some(decompress))
        .expect("the tool's batch decodes and verifies");
    assert_eq!(reader.remaining(), 0, "one batch per partition");
    let base_offset = log.end;
    let mut stored = BytesMut::from(&records[..]);
    stored[..8].copy_from_slice(&base_offset.to_be_bytes());
    log.end += set.records.len() as i64;
    log.batches
        .push((base_offset, set.records.len() as i64, stored.freeze()));
    base_offset
}

fn decompress(section: &mut Bytes, codec: records::Compression) -> anyhow::Result<Bytes> {
    let plain = match codec {
        records::Compression::None => section.to_vec(),
        records::Compression::Lz4 => {
            let mut plain = Vec::new();
            lz4_flex::frame::FrameDecoder::new(&section[..]).read_to_end(&mut plain)?;
            plain
        }
        records::Compression::Zstd => zstd::stream::decode_all(&section[..])?,
        other => anyhow::bail!("unexpected codec {other:?}"),
    };
    Ok(Bytes::from(plain))
}

fn api_versions() -> ApiVersionsResponse {
    let api = |key: ApiKey, min: i16, max: i16| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    ApiVersionsResponse::default().with_api_keys(vec![
        api(ApiKey::ApiVersions, 0, 3),
        api(ApiKey::Metadata, 0, 12),
        api(ApiKey::CreateTopics, 2, 7),
        api(ApiKey::Produce, 3, 12),
        api(ApiKey::ListOffsets, 1, 9),
        api(ApiKey::Fetch, 4, 12),
    ])
}

/// A size-prefixed response frame.
fn frame<R: Encodable + HeaderVersion>(correlation_id: i32, version: i16, body: &R) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, R::header_version(version))
        .expect("header encodes");
    body.encode(&mut out, version).expect("body encodes");
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out
}

/// Runs the tool; returns its exit code, its JSON summary line and its stderr.
fn bench(arguments: &str) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_fluxmq-bench"))
        .args(arguments.split_whitespace())
        .output()
        .expect("the tool runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let json = stdout.lines().last().unwrap_or_default().to_string();
    (output.status.code().unwrap_or(-1), json, stderr)
}

/// The number after `"key":` in the summary line.
fn field(json: &str, key: &str) -> u64 {
    let pattern = format!("\"{key}\":");
    let start = json
        .find(&pattern)
        .unwrap_or_else(|| panic!("{key} in {json}"))
        + pattern.len();
    let digits: String = json[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{key} is a number in {json}"))
}

#[test]
fn produce_consume_and_e2e_agree_with_the_broker() {
    let broker = FakeBroker::start();
    let target = format!(
        "--bootstrap {} --topic load --partitions 3",
        broker.bootstrap()
    );
    let (code, json, stderr) = bench(&format!(
        "produce {target} --connections 2 --duration-secs 1 --records-per-batch 10 \
         --record-bytes 50 --max-in-flight 3 --create-topic"
    ));
    assert_eq!(code, 0, "{stderr}");
    let produced = field(&json, "msgs");
    assert!(produced > 0);
    assert_eq!(field(&json, "errors"), 0);
    assert_eq!(field(&json, "bytes"), produced * 50);
    assert_eq!(produced, broker.records_accepted.load(Ordering::SeqCst));
    assert!(json.contains("\"latency_us\":{\"p50\":"), "{json}");
    assert!(
        stderr.contains("msg/s"),
        "progress lines on stderr: {stderr}"
    );

    let (code, json, stderr) = bench(&format!(
        "consume {target} --connections 2 --duration-secs 20 --from-beginning --until-caught-up"
    ));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        field(&json, "msgs"),
        produced,
        "read back exactly what was produced"
    );

    let (code, json, stderr) = bench(&format!("e2e {target} --rate 300 --duration-secs 1"));
    assert_eq!(code, 0, "{stderr}");
    let consumed = field(&json, "msgs");
    assert!(
        (250..=310).contains(&consumed),
        "about 300 records at 300/s: {json}"
    );
    assert_eq!(
        field(&json, "count"),
        consumed,
        "one e2e latency per record"
    );
    assert!(json.contains("\"produce_latency_us\":{"), "{json}");
}

#[test]
fn compressed_and_unacknowledged_batches_are_accepted() {
    let broker = FakeBroker::start();
    let target = format!(
        "--bootstrap {} --topic packed --partitions 2",
        broker.bootstrap()
    );
    let mut expected = 0;
    for flags in [
        "--compression lz4 --acks -1",
        "--compression zstd --acks all",
        "--acks 0",
    ] {
        let (code, json, stderr) = bench(&format!(
            "produce {target} --duration-secs 1 --rate 2000 --create-topic {flags}"
        ));
        assert_eq!(code, 0, "{flags}: {stderr}");
        assert_eq!(field(&json, "errors"), 0, "{flags}");
        expected += field(&json, "msgs");
    }
    // acks=0 has no answer to wait for: give the broker a moment to store the last requests.
    let deadline = Instant::now() + Duration::from_secs(5);
    while broker.records_accepted.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(broker.records_accepted.load(Ordering::SeqCst), expected);
}

#[test]
fn refused_batches_are_counted_as_errors() {
    let broker = FakeBroker::start();
    let (code, json, _) = bench(&format!(
        "produce --bootstrap {} --topic reject-all --partitions 2 --duration-secs 1 --create-topic",
        broker.bootstrap()
    ));
    assert_eq!(code, 1, "errors make the exit status 1");
    assert_eq!(field(&json, "msgs"), 0);
    assert!(field(&json, "errors") > 0);
    assert!(json.contains("produce: NotLeaderOrFollower (6)"), "{json}");

    let (code, _, stderr) = bench(&format!(
        "produce --bootstrap {} --topic missing --duration-secs 1",
        broker.bootstrap()
    ));
    assert_eq!(code, 1);
    assert!(stderr.contains("UnknownTopicOrPartition (3)"), "{stderr}");
}
