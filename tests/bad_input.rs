//! Malformed and hostile input: each case runs on its own connection, then a fresh client must still
//! produce and fetch and the process must still be alive. Failures are collected so one run reports
//! every misbehaving case (a dead broker is restarted so the later cases still run).

mod common;

use common::*;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::produce_request::ProduceRequest;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Encodable;
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(5);

struct Harness {
    broker: Broker,
    failures: Vec<String>,
    cases_checked: usize,
}

impl Harness {
    fn fail(&mut self, case: &str, message: String) {
        self.failures.push(format!("[{case}] {message}"));
    }

    /// After each case: the process lives and a new connection produces and fetches.
    fn after(&mut self, case: &str) {
        self.cases_checked += 1;
        let port = self.broker.port;
        let alive = self.broker.is_alive();
        let outcome = if alive {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                assert_serving(&mut self.broker, case)
            }))
            .map_err(|e| panic_text(&e))
        } else {
            Err(format!(
                "broker process exited ({:?}); stderr tail:\n{}",
                self.broker.exit_status(),
                self.broker.stderr_tail(30)
            ))
        };
        if let Err(message) = outcome {
            self.fail(
                case,
                format!("broker not healthy afterwards (port {port}): {message}"),
            );
            if !self.broker.is_alive() {
                self.broker = Broker::start(BrokerOpts {
                    default_partitions: Some(4),
                    ..Default::default()
                });
            }
        }
    }

    fn client(&self) -> Client {
        self.broker.client()
    }
}

fn panic_text(error: &Box<dyn std::any::Any + Send>) -> String {
    error
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| error.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".to_string())
}

/// Accepts a closed connection, or a response frame carrying our correlation id and the error code
/// `expected_error` somewhere in its body. Anything else (silence, wrong id) is a failure.
fn expect_closed_or_error(
    harness: &mut Harness,
    case: &str,
    client: &mut Client,
    correlation_id: Option<i32>,
    expected_errors: &[i16],
) {
    match client.read_outcome(WAIT) {
        RawOutcome::Closed => {}
        RawOutcome::Response(frame) => {
            let Some(correlation_id) = correlation_id else {
                harness.fail(
                    case,
                    format!(
                        "expected the connection to close, got a response {}",
                        hex_prefix(&frame)
                    ),
                );
                return;
            };
            if frame.len() < 4
                || i32::from_be_bytes(frame[0..4].try_into().unwrap()) != correlation_id
            {
                harness.fail(
                    case,
                    format!(
                        "response does not carry correlation id {correlation_id}: {}",
                        hex_prefix(&frame)
                    ),
                );
                return;
            }
            let carries = |code: i16| frame[4..].windows(2).any(|w| w == code.to_be_bytes());
            if !expected_errors.iter().any(|code| carries(*code)) {
                harness.fail(
                    case,
                    format!(
                        "response carries none of the error codes {expected_errors:?}: {}",
                        hex_prefix(&frame)
                    ),
                );
            }
        }
        RawOutcome::TimedOut => harness.fail(
            case,
            format!("broker neither answered nor closed the connection within {WAIT:?}"),
        ),
        RawOutcome::Other(e) => harness.fail(case, format!("unexpected I/O error {e}")),
    }
}

fn expect_closed(harness: &mut Harness, case: &str, client: &mut Client) {
    expect_closed_or_error(harness, case, client, None, &[]);
}

/// Header bytes for an arbitrary api key / version (header v1: key, version, correlation, client id).
fn header_v1(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&api_key.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    out.extend_from_slice(&4i16.to_be_bytes());
    out.extend_from_slice(b"test");
    out
}

fn encode_with_header(
    api_key: i16,
    header_version_as: i16,
    version_on_wire: i16,
    correlation_id: i32,
    body: &[u8],
) -> Vec<u8> {
    let mut header = RequestHeader::default();
    header.request_api_key = api_key;
    header.request_api_version = version_on_wire;
    header.correlation_id = correlation_id;
    header.client_id = Some(sb("fluxmq-tests"));
    let mut buf = bytes::BytesMut::new();
    header.encode(&mut buf, header_version_as).unwrap();
    buf.extend_from_slice(body);
    buf.to_vec()
}

fn body_of<R: Encodable>(request: &R, version: i16) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    request.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

#[test]
fn bad_input() {
    let broker = Broker::start(BrokerOpts {
        default_partitions: Some(4),
        ..Default::default()
    });
    let mut h = Harness {
        broker,
        failures: Vec::new(),
        cases_checked: 0,
    };
    h.after("baseline");

    framing_cases(&mut h);
    header_cases(&mut h);
    record_cases(&mut h);
    decoder_cases(&mut h);
    connection_cases(&mut h);

    eprintln!(
        "bad_input: {} cases checked, {} failures",
        h.cases_checked,
        h.failures.len()
    );
    assert!(
        h.failures.is_empty(),
        "{} bad-input case(s) failed:\n{}",
        h.failures.len(),
        h.failures.join("\n")
    );
}

fn framing_cases(h: &mut Harness) {
    // A truncated frame, then the client goes away.
    {
        let mut c = h.client();
        let _ = c.write_raw(&100i32.to_be_bytes());
        let _ = c.write_raw(&[0, 18, 0, 3, 0, 0]);
        drop(c);
    }
    h.after("truncated frame then close");

    // A truncated header inside a complete frame.
    {
        let mut c = h.client();
        let _ = c.write_frame(&[0, 18, 0]);
        expect_closed(h, "3-byte frame", &mut c);
    }
    h.after("3-byte frame");

    // Zero-length frame.
    {
        let mut c = h.client();
        let _ = c.write_raw(&0i32.to_be_bytes());
        expect_closed(h, "zero-length frame", &mut c);
    }
    h.after("zero-length frame");

    // Absurd and negative size prefixes: the broker must drop the connection, not wait or allocate.
    for (case, size) in [
        ("size 0x7fffffff", 0x7fff_ffffu32),
        ("size -1", 0xffff_ffff),
        ("size i32::MIN", 0x8000_0000),
        ("size 100 MiB + 1", (100 << 20) + 1),
    ] {
        let mut c = h.client();
        let _ = c.write_raw(&size.to_be_bytes());
        let _ = c.write_raw(&header_v1(18, 0, 7));
        expect_closed(h, case, &mut c);
        h.after(case);
    }

    // Garbage: unframed random bytes, and framed random bytes.
    {
        let mut c = h.client();
        let _ = c.write_raw(&payload(1, 4096));
        let _ = c.read_outcome(WAIT); // Whatever it does, it must survive.
    }
    h.after("unframed garbage");
    for seed in 2..6 {
        let mut c = h.client();
        let mut garbage = payload(seed, 300);
        garbage[0] = 0x7f; // An api key that does not exist.
        let _ = c.write_frame(&garbage);
        let correlation_id = i32::from_be_bytes(garbage[4..8].try_into().unwrap());
        expect_closed_or_error(
            h,
            &format!("framed garbage seed {seed}"),
            &mut c,
            Some(correlation_id),
            &[UNSUPPORTED_VERSION, INVALID_REQUEST],
        );
        h.after("framed garbage");
    }
}

fn header_cases(h: &mut Harness) {
    // Unknown API key 9999: error or close.
    {
        let mut c = h.client();
        let mut frame = header_v1(9999, 0, 42);
        frame.extend_from_slice(&[0, 0, 0, 0]);
        let _ = c.write_frame(&frame);
        expect_closed_or_error(
            h,
            "unknown api key 9999",
            &mut c,
            Some(42),
            &[UNSUPPORTED_VERSION, INVALID_REQUEST],
        );
    }
    h.after("unknown api key 9999");

    // Fetch v99.
    {
        let mut c = h.client();
        let body = body_of(&FetchRequest::default(), 12);
        let frame = encode_with_header(ApiKey::Fetch as i16, 2, 99, 43, &body);
        let _ = c.write_frame(&frame);
        expect_closed_or_error(
            h,
            "Fetch v99",
            &mut c,
            Some(43),
            &[UNSUPPORTED_VERSION, INVALID_REQUEST],
        );
    }
    h.after("Fetch v99");

    // Fetch v3 (below the served range 4..18).
    {
        let mut c = h.client();
        let body = body_of(&FetchRequest::default(), 4);
        let frame = encode_with_header(ApiKey::Fetch as i16, 1, 3, 44, &body);
        let _ = c.write_frame(&frame);
        expect_closed_or_error(
            h,
            "Fetch v3",
            &mut c,
            Some(44),
            &[UNSUPPORTED_VERSION, INVALID_REQUEST],
        );
    }
    h.after("Fetch v3");

    // Produce v1 (advertised from v0 for librdkafka, but only v3+ is served).
    {
        let mut c = h.client();
        let mut topic = kafka_protocol::messages::produce_request::TopicProduceData::default();
        topic.name = topic_name("health-check");
        let mut partition =
            kafka_protocol::messages::produce_request::PartitionProduceData::default();
        partition.records = Some(bytes::Bytes::from(simple_batch(1, 1, 10, T0)));
        topic.partition_data = vec![partition];
        let mut request = ProduceRequest::default();
        request.acks = 1;
        request.timeout_ms = 1000;
        request.topic_data = vec![topic];
        // v3's body minus the leading transactional id is the v1/v2 layout.
        let body = body_of(&request, 3);
        let frame = encode_with_header(ApiKey::Produce as i16, 1, 1, 45, &body[2..]);
        let _ = c.write_frame(&frame);
        expect_closed_or_error(
            h,
            "Produce v1",
            &mut c,
            Some(45),
            &[UNSUPPORTED_VERSION, INVALID_REQUEST],
        );
    }
    h.after("Produce v1");

    // ApiVersions v99: UNSUPPORTED_VERSION in a v0 body (header v0) that still lists the ranges.
    {
        let mut c = h.client();
        // Compact strings "" (client software name and version), then no tagged fields.
        let body = vec![1, 1, 0];
        let frame = encode_with_header(ApiKey::ApiVersions as i16, 2, 99, 46, &body);
        let _ = c.write_frame(&frame);
        match c.read_outcome(WAIT) {
            RawOutcome::Response(frame) => {
                match decode_response::<ApiVersionsResponse>(&frame, 0, 46) {
                    Ok(response) => {
                        if response.error_code != UNSUPPORTED_VERSION {
                            h.fail(
                                "ApiVersions v99",
                                format!("error code {} (want 35)", response.error_code),
                            );
                        }
                        let has =
                            |key: ApiKey| response.api_keys.iter().any(|k| k.api_key == key as i16);
                        if !(has(ApiKey::ApiVersions)
                            && has(ApiKey::Produce)
                            && has(ApiKey::Fetch)
                            && has(ApiKey::Metadata))
                        {
                            h.fail(
                                "ApiVersions v99",
                                format!("v0 fallback response must list the ranges: {response:?}"),
                            );
                        }
                        if let Some(k) = response
                            .api_keys
                            .iter()
                            .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                        {
                            if k.min_version != 0 || k.max_version < 3 {
                                h.fail("ApiVersions v99", format!("ApiVersions range {k:?}"));
                            }
                        }
                    }
                    Err(e) => h.fail(
                        "ApiVersions v99",
                        format!("response is not a header-v0 + v0 body: {e}"),
                    ),
                }
            }
            other => h.fail(
                "ApiVersions v99",
                format!("expected a response, got {other:?}"),
            ),
        }
        // The connection stays usable (librdkafka retries with v0 on it).
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| api_versions(&mut c, 0))) {
            Ok(response) if response.error_code == NONE => {}
            Ok(response) => h.fail(
                "ApiVersions v0 after v99",
                format!("error {}", response.error_code),
            ),
            Err(e) => h.fail(
                "ApiVersions v0 after v99",
                format!("same connection failed: {}", panic_text(&e)),
            ),
        }
    }
    h.after("ApiVersions v99");

    // Metadata with a body cut short.
    {
        let mut c = h.client();
        let frame = encode_with_header(ApiKey::Metadata as i16, 2, 12, 47, &[0x05, 0x00]);
        let _ = c.write_frame(&frame);
        expect_closed_or_error(
            h,
            "short Metadata v12 body",
            &mut c,
            Some(47),
            &[INVALID_REQUEST, UNSUPPORTED_VERSION],
        );
    }
    h.after("short Metadata v12 body");

    // Metadata v1 claiming 0x7fffffff topics in a tiny body (must not allocate for them).
    {
        let mut c = h.client();
        let frame = encode_with_header(
            ApiKey::Metadata as i16,
            1,
            1,
            48,
            &0x7fff_ffffi32.to_be_bytes(),
        );
        let _ = c.write_frame(&frame);
        expect_closed_or_error(
            h,
            "Metadata array count 0x7fffffff",
            &mut c,
            Some(48),
            &[INVALID_REQUEST, UNSUPPORTED_VERSION],
        );
    }
    h.after("Metadata array count 0x7fffffff");

    // Metadata v9 (compact) claiming a huge topic name.
    {
        let mut c = h.client();
        let frame = encode_with_header(
            ApiKey::Metadata as i16,
            2,
            9,
            49,
            &[0x02, 0xff, 0xff, 0xff, 0x7f, 0x41],
        );
        let _ = c.write_frame(&frame);
        expect_closed_or_error(
            h,
            "Metadata compact string length 2^28",
            &mut c,
            Some(49),
            &[INVALID_REQUEST, UNSUPPORTED_VERSION],
        );
    }
    h.after("Metadata compact string length 2^28");

    // ListOffsets v7 truncated in the middle of a partition (a seed-era broker aborted on this).
    {
        let mut c = h.client();
        let mut body = Vec::new();
        body.extend_from_slice(&(-1i32).to_be_bytes()); // replica id
        body.push(0); // isolation level
        body.extend_from_slice(&1i32.to_be_bytes()); // one topic
        body.extend_from_slice(&12i16.to_be_bytes());
        body.extend_from_slice(b"health-check");
        body.extend_from_slice(&1i32.to_be_bytes()); // one partition
        body.extend_from_slice(&[0, 0]); // ...cut inside the partition index
        let frame = encode_with_header(ApiKey::ListOffsets as i16, 1, 7, 50, &body);
        let _ = c.write_frame(&frame);
        expect_closed_or_error(
            h,
            "truncated ListOffsets v7",
            &mut c,
            Some(50),
            &[INVALID_REQUEST, UNSUPPORTED_VERSION],
        );
    }
    h.after("truncated ListOffsets v7");

    // A request of a valid API with only a header: Fetch v12 with no body.
    {
        let mut c = h.client();
        let frame = encode_with_header(ApiKey::Fetch as i16, 2, 12, 51, &[]);
        let _ = c.write_frame(&frame);
        expect_closed_or_error(
            h,
            "Fetch v12 without body",
            &mut c,
            Some(51),
            &[INVALID_REQUEST, UNSUPPORTED_VERSION],
        );
    }
    h.after("Fetch v12 without body");

    // A huge but allowed frame of zeros (8 MiB): the broker reads it and rejects it without dying.
    {
        let mut c = h.client();
        let mut frame = header_v1(ApiKey::Metadata as i16, 1, 52);
        frame.resize(8 << 20, 0);
        let _ = c.write_frame(&frame);
        match c.read_outcome(WAIT) {
            RawOutcome::Closed | RawOutcome::Response(_) => {}
            other => h.fail(
                "8 MiB Metadata frame",
                format!("no answer and no close: {other:?}"),
            ),
        }
    }
    h.after("8 MiB Metadata frame");
}

fn record_cases(h: &mut Harness) {
    let mut c = h.client();
    let topic = topic_info(&mut c, "records-bad");
    assert_eq!(topic.partitions, 4);

    // Wrong CRC on partition 0 with a good batch for partition 1 in the same request.
    {
        let case = "wrong CRC";
        let before = (
            end_offset(&mut c, "records-bad", 0),
            end_offset(&mut c, "records-bad", 1),
        );
        let mut bad = simple_batch(10, 3, 100, T0);
        bad[70] ^= 0x55;
        let good = simple_batch(11, 2, 100, T0);
        let results = produce(&mut c, 9, &topic, 1, &[(0, bad), (1, good.clone())]);
        if results[0].error_code != CORRUPT_MESSAGE {
            h.fail(
                case,
                format!(
                    "bad-CRC partition answered {} (want CORRUPT_MESSAGE 2)",
                    results[0].error_code
                ),
            );
        }
        if results[1].error_code != NONE || results[1].base_offset != before.1 {
            h.fail(
                case,
                format!(
                    "good partition in the same request answered {:?}",
                    results[1]
                ),
            );
        }
        let after = (
            end_offset(&mut c, "records-bad", 0),
            end_offset(&mut c, "records-bad", 1),
        );
        if after.0 != before.0 {
            h.fail(
                case,
                format!(
                    "the corrupt batch was appended: end offset {} -> {}",
                    before.0, after.0
                ),
            );
        }
        if after.1 != before.1 + 2 {
            h.fail(
                case,
                format!(
                    "good batch not appended: end offset {} -> {}",
                    before.1, after.1
                ),
            );
        }
    }
    h.after("wrong CRC");

    // A batch whose record count lies (huge) under a valid CRC.
    {
        let case = "record count 0x7fffffff";
        let mut batch = simple_batch(12, 2, 50, T0);
        batch[57..61].copy_from_slice(&0x7fff_ffffi32.to_be_bytes());
        fix_crc(&mut batch);
        let before = end_offset(&mut c, "records-bad", 2);
        let results = produce(&mut c, 9, &topic, 1, &[(2, batch)]);
        if ![CORRUPT_MESSAGE, INVALID_RECORD].contains(&results[0].error_code) {
            h.fail(
                case,
                format!(
                    "answered {} (want CORRUPT_MESSAGE 2 or INVALID_RECORD 87)",
                    results[0].error_code
                ),
            );
        }
        if end_offset(&mut c, "records-bad", 2) != before {
            h.fail(case, "the batch was appended".into());
        }
    }
    h.after("record count 0x7fffffff");

    // Batch length field larger than the bytes sent / records shorter than a batch header.
    for (case, records) in [
        ("records shorter than a batch header", payload(13, 20)),
        ("batch length beyond the records", {
            let mut batch = simple_batch(14, 2, 50, T0);
            let len = (batch.len() as i32 - 12) + 1000;
            batch[8..12].copy_from_slice(&len.to_be_bytes());
            batch
        }),
    ] {
        let before = end_offset(&mut c, "records-bad", 3);
        let results = produce(&mut c, 9, &topic, 1, &[(3, records)]);
        if ![CORRUPT_MESSAGE, INVALID_RECORD].contains(&results[0].error_code) {
            h.fail(
                case,
                format!(
                    "answered {} (want CORRUPT_MESSAGE 2 or INVALID_RECORD 87)",
                    results[0].error_code
                ),
            );
        }
        if end_offset(&mut c, "records-bad", 3) != before {
            h.fail(case, "the records were appended".into());
        }
        h.after(case);
    }

    // max.message.bytes: a batch of exactly 1048588 bytes is accepted, one byte more is MESSAGE_TOO_LARGE.
    {
        let overhead = simple_batch(15, 1, 0, T0).len();
        let build = |target: usize| {
            // One record; the value length varint grows by a byte or two, so adjust until it fits.
            let mut value_bytes = target - overhead;
            loop {
                let batch = build_batch(&[TestRecord::new(
                    T0,
                    Some(b"k-15-0"),
                    Some(&payload(15, value_bytes)),
                )]);
                if batch.len() <= target {
                    assert_eq!(
                        batch.len(),
                        target,
                        "could not build a batch of exactly {target} bytes"
                    );
                    return batch;
                }
                value_bytes -= batch.len() - target;
            }
        };
        let at_limit = build(MAX_MESSAGE_BYTES_DEFAULT);
        let over_limit = build(MAX_MESSAGE_BYTES_DEFAULT + 1);
        let before = end_offset(&mut c, "records-bad", 0);
        let results = produce(&mut c, 9, &topic, 1, &[(0, over_limit)]);
        if results[0].error_code != MESSAGE_TOO_LARGE {
            h.fail(
                "batch of max.message.bytes + 1",
                format!(
                    "answered {} (want MESSAGE_TOO_LARGE 10)",
                    results[0].error_code
                ),
            );
        }
        if end_offset(&mut c, "records-bad", 0) != before {
            h.fail(
                "batch of max.message.bytes + 1",
                "the batch was appended".into(),
            );
        }
        h.after("batch of max.message.bytes + 1");
        let huge = build_batch(&[TestRecord::new(T0, None, Some(&payload(16, 3 << 20)))]);
        let results = produce(&mut c, 9, &topic, 1, &[(0, huge)]);
        if results[0].error_code != MESSAGE_TOO_LARGE {
            h.fail(
                "3 MiB batch",
                format!(
                    "answered {} (want MESSAGE_TOO_LARGE 10)",
                    results[0].error_code
                ),
            );
        }
        h.after("3 MiB batch");
        let results = produce(&mut c, 9, &topic, 1, &[(0, at_limit.clone())]);
        if results[0].error_code != NONE || results[0].base_offset != before {
            h.fail(
                "batch of exactly max.message.bytes",
                format!(
                    "answered {:?} (want success at offset {before})",
                    results[0]
                ),
            );
        } else {
            let (batches, _) = fetch_all(&mut c, 12, &topic, 0, before);
            if batches.is_empty() || batches[0].raw[16..] != at_limit[16..] {
                h.fail(
                    "batch of exactly max.message.bytes",
                    "not read back byte-equal".into(),
                );
            }
        }
        h.after("batch of exactly max.message.bytes");
    }
}

fn connection_cases(h: &mut Harness) {
    // Pipelined requests, then the client vanishes before reading any answer.
    {
        let mut c = h.client();
        let topic = topic_info(&mut c, "health-check");
        let mut frames = Vec::new();
        for i in 0..20u64 {
            let request = produce_request(&topic, 9, 1, &[(1, simple_batch(200 + i, 2, 5000, T0))]);
            let (_, payload) = c.encode_request(&request, 9);
            frames.extend_from_slice(&(payload.len() as i32).to_be_bytes());
            frames.extend(payload);
        }
        let _ = c.write_raw(&frames);
        drop(c);
    }
    h.after("pipelined produces then close");

    // A parked long poll whose client goes away, then data arrives for it.
    {
        let mut c = h.client();
        let topic = topic_info(&mut c, "health-check");
        let end = end_offset(&mut c, "health-check", 2);
        let params = FetchParams {
            max_wait_ms: 10_000,
            min_bytes: 1,
            ..Default::default()
        };
        let request = fetch_request(&topic, 12, &[(2, end)], &params);
        let (_, payload) = c.encode_request(&request, 12);
        let _ = c.write_frame(&payload);
        std::thread::sleep(Duration::from_millis(200));
        drop(c);
        let mut producer = h.client();
        let (error, _) = produce_one(&mut producer, &topic, 2, &simple_batch(300, 1, 10, T0));
        if error != NONE {
            h.fail(
                "parked fetch then close",
                format!("produce after the poller left answered {error}"),
            );
        }
    }
    h.after("parked fetch then close");

    // acks other than -1, 0, 1: INVALID_REQUIRED_ACKS (21), nothing appended.
    {
        let mut c = h.client();
        let topic = topic_info(&mut c, "health-check");
        let before = end_offset(&mut c, "health-check", 3);
        let results = produce(&mut c, 9, &topic, 2, &[(3, simple_batch(301, 1, 10, T0))]);
        if results[0].error_code != 21 {
            h.fail(
                "acks=2",
                format!(
                    "answered {} (want INVALID_REQUIRED_ACKS 21)",
                    results[0].error_code
                ),
            );
        }
        if end_offset(&mut c, "health-check", 3) != before {
            h.fail("acks=2", "the batch was appended".into());
        }
    }
    h.after("acks=2");

    // Produce with a null records field for a partition.
    {
        let mut c = h.client();
        let topic = topic_info(&mut c, "health-check");
        let mut request = produce_request(&topic, 9, 1, &[(0, Vec::new())]);
        request.topic_data[0].partition_data[0].records = None;
        match c.try_send(&request, 9) {
            Ok(response) => {
                let code = response.responses[0].partition_responses[0].error_code;
                if code == NONE {
                    h.fail(
                        "null records",
                        "a Produce without records answered success".into(),
                    );
                }
            }
            Err(e) if e.contains("read response") => {} // Closing the connection is fine too.
            Err(e) => h.fail("null records", e),
        }
    }
    h.after("null records");
}

fn decoder_cases(h: &mut Harness) {
    // Every API we serve, with a body of random bytes, at its lowest and highest version.
    let apis: [(ApiKey, i16, i16); 10] = [
        (ApiKey::Produce, 3, 13),
        (ApiKey::Fetch, 4, 18),
        (ApiKey::ListOffsets, 1, 10),
        (ApiKey::Metadata, 0, 13),
        (ApiKey::CreateTopics, 2, 7),
        (ApiKey::DeleteTopics, 1, 6),
        (ApiKey::CreatePartitions, 0, 3),
        (ApiKey::DescribeCluster, 0, 2),
        (ApiKey::DescribeConfigs, 1, 4),
        (ApiKey::ApiVersions, 0, 4),
    ];
    for (api, low, high) in apis {
        for version in [low, high] {
            for seed in 0..3u64 {
                let case = format!("{api:?} v{version} random body seed {seed}");
                let mut c = h.client();
                let header_version = api.request_header_version(version);
                let body = payload(
                    1000 + seed + version as u64 * 7 + api as u64 * 131,
                    40 + 60 * seed as usize,
                );
                let frame = encode_with_header(api as i16, header_version, version, 60, &body);
                let _ = c.write_frame(&frame);
                match c.read_outcome(WAIT) {
                    // A lucky decode may produce a legitimate answer; a garbled one gets an error or a close.
                    RawOutcome::Closed | RawOutcome::Response(_) => {}
                    other => h.fail(&case, format!("no answer and no close: {other:?}")),
                }
                if !h.broker.is_alive() {
                    h.after(&case);
                }
            }
        }
        h.after(&format!("{api:?} random bodies"));
    }
}
