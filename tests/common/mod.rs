//! Integration-test harness: runs the real `fluxmq` binary on 127.0.0.1 and talks to it over TCP.
//!
//! Owns: spawning and stopping brokers (temp data dirs, free ports, stderr capture), a tiny blocking
//! Kafka client (requests encoded and responses decoded with the `kafka-protocol` crate), a hand-rolled
//! record batch v2 builder/parser with its own CRC-32C (so tests can also craft corrupt batches), and
//! raw frame helpers for malformed input. Never: anything but loopback, or processes it did not start.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::create_topics_response::CreateTopicsResponse;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::FetchResponse;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::{MetadataResponse, MetadataResponseTopic};
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::produce_response::ProduceResponse;
use kafka_protocol::messages::{BrokerId, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

// ---------------------------------------------------------------------------------------------
// Kafka error codes used by the tests.
// ---------------------------------------------------------------------------------------------
pub const NONE: i16 = 0;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_REQUEST: i16 = 42;
pub const INVALID_CONFIG: i16 = 40;
pub const INVALID_RECORD: i16 = 87;
pub const UNKNOWN_TOPIC_ID: i16 = 100;

/// Default max.message.bytes of Kafka (1 MiB + the 12-byte log overhead).
pub const MAX_MESSAGE_BYTES_DEFAULT: usize = 1_048_588;

/// How long a client read may block before the test calls the broker unresponsive.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Broker process management.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
pub struct BrokerOpts {
    /// Data directory to use; when `None` the broker gets a fresh temp dir that is removed on drop.
    pub data_dir: Option<PathBuf>,
    pub default_partitions: Option<u32>,
    pub segment_bytes: Option<u64>,
    /// `--log-level` (an env_logger filter); `info` when `None`.
    pub log_level: Option<String>,
    pub extra_args: Vec<String>,
}

pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    opts: BrokerOpts,
    _data_tmp: Option<tempfile::TempDir>,
    log_dir: tempfile::TempDir,
    stderr_path: PathBuf,
    stdout_path: PathBuf,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// True when `text` contains the word "ready" (not as part of "already").
fn contains_ready_word(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut start = 0;
    while let Some(found) = lower[start..].find("ready") {
        let index = start + found;
        let before_ok = index == 0 || !bytes[index - 1].is_ascii_alphabetic();
        if before_ok {
            return true;
        }
        start = index + 5;
    }
    false
}

impl Broker {
    /// Starts a broker and waits until it serves. Panics (with the broker's stderr) if it does not.
    pub fn start(opts: BrokerOpts) -> Broker {
        let mut last_error = String::new();
        for _attempt in 0..3 {
            match Broker::try_start(opts.clone()) {
                Ok(broker) => return broker,
                Err(message) => {
                    // A port collision is the only failure worth a retry.
                    let retry = message.contains("in use") || message.contains("AddrInUse");
                    last_error = message;
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("broker failed to start:\n{last_error}");
    }

    fn try_start(opts: BrokerOpts) -> Result<Broker, String> {
        let (data_dir, data_tmp) = match &opts.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("fluxmq-data-")
                    .tempdir()
                    .expect("tempdir");
                (tmp.path().to_path_buf(), Some(tmp))
            }
        };
        let log_dir = tempfile::Builder::new()
            .prefix("fluxmq-log-")
            .tempdir()
            .expect("tempdir");
        let stderr_path = log_dir.path().join("stderr.log");
        let stdout_path = log_dir.path().join("stdout.log");
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_fluxmq"));
        command
            .arg("--listen")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--cores")
            .arg("0,1")
            .arg("--log-level")
            .arg(opts.log_level.as_deref().unwrap_or("info"));
        if let Some(partitions) = opts.default_partitions {
            command
                .arg("--default-partitions")
                .arg(partitions.to_string());
        }
        if let Some(segment_bytes) = opts.segment_bytes {
            command
                .arg("--segment-bytes")
                .arg(segment_bytes.to_string());
        }
        command.args(&opts.extra_args);
        command
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).expect("stdout file"))
            .stderr(fs::File::create(&stderr_path).expect("stderr file"))
            .env("RUST_BACKTRACE", "1");
        let child = command
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", env!("CARGO_BIN_EXE_fluxmq")))?;
        let mut broker = Broker {
            child: Some(child),
            port,
            data_dir,
            opts,
            _data_tmp: data_tmp,
            log_dir,
            stderr_path,
            stdout_path,
        };
        broker.wait_ready()?;
        Ok(broker)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let mut connectable_since: Option<Instant> = None;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok())
                .flatten()
            {
                self.child = None;
                return Err(format!(
                    "broker exited before becoming ready ({status}); stderr tail:\n{}",
                    self.stderr_tail(60)
                ));
            }
            let stderr = fs::read_to_string(&self.stderr_path).unwrap_or_default();
            let stdout = fs::read_to_string(&self.stdout_path).unwrap_or_default();
            if contains_ready_word(&stderr) || contains_ready_word(&stdout) {
                // The line is printed once the listeners accept; make sure ours does.
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return Ok(());
                }
            }
            if TcpStream::connect_timeout(
                &([127, 0, 0, 1], self.port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                let since = *connectable_since.get_or_insert_with(Instant::now);
                // Accepting connections without printing "ready": give it a second, then go ahead.
                if since.elapsed() > Duration::from_secs(1) {
                    return Ok(());
                }
            }
            if started.elapsed() > Duration::from_secs(10) {
                let tail = self.stderr_tail(60);
                self.kill_now();
                return Err(format!(
                    "broker not ready within 10 s on port {}; stderr tail:\n{tail}",
                    self.port
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// True while the broker process has not exited.
    pub fn is_alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Exit status if the process has exited (reaps it).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok())
            .flatten()
    }

    /// Everything the broker has logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        let mut out = all[from..].join("\n");
        if out.len() > 20_000 {
            out = out[out.len() - 20_000..].to_string();
        }
        out
    }

    /// SIGTERM and wait (≤ 15 s). Panics if the broker does not exit by itself.
    pub fn stop(&mut self) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            panic!("stop(): broker is not running");
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if started.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within 15 s of SIGTERM; stderr tail:\n{}",
                    self.stderr_tail(40)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new broker process on the same data dir and options (new port).
    pub fn restart_same_dir(&self) -> Broker {
        let mut opts = self.opts.clone();
        opts.data_dir = Some(self.data_dir.clone());
        Broker::start(opts)
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "---- fluxmq (port {}) stderr tail ----\n{}\n---- end of fluxmq stderr ----",
                self.port,
                self.stderr_tail(80)
            );
        }
        self.kill_now();
    }
}

// ---------------------------------------------------------------------------------------------
// Blocking Kafka client.
// ---------------------------------------------------------------------------------------------

pub struct Client {
    pub stream: TcpStream,
    correlation_id: i32,
    pub port: u16,
}

/// Outcome of a request that may legitimately be refused by closing the connection.
#[derive(Debug)]
pub enum RawOutcome {
    /// The broker answered with a frame (whole frame, header included).
    Response(Vec<u8>),
    /// The broker closed (EOF or reset) the connection.
    Closed,
    /// Neither within the timeout.
    TimedOut,
    Other(String),
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            correlation_id: 1000,
            port,
        }
    }

    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    pub fn next_correlation_id(&mut self) -> i32 {
        self.correlation_id += 1;
        self.correlation_id
    }

    /// Encodes header + body for request type `R` at `version`.
    pub fn encode_request<R: Request>(&mut self, request: &R, version: i16) -> (i32, Vec<u8>) {
        let correlation_id = self.next_correlation_id();
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation_id;
        header.client_id = Some(StrBytes::from_static_str("fluxmq-tests"));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, R::header_version(version))
            .unwrap_or_else(|e| panic!("encode request header: {e}"));
        request
            .encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("encode request api {} v{version}: {e}", R::KEY));
        (correlation_id, buf.to_vec())
    }

    pub fn write_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 4);
        frame.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)
    }

    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one size-prefixed frame (without the prefix).
    pub fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        if !(0..=200 * 1024 * 1024).contains(&size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("response frame size {size}"),
            ));
        }
        let mut payload = vec![0u8; size as usize];
        self.stream.read_exact(&mut payload)?;
        Ok(payload)
    }

    /// Sends request `R` and decodes its response; errors are returned as text.
    pub fn try_send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, String> {
        let (correlation_id, payload) = self.encode_request(request, version);
        self.write_frame(&payload)
            .map_err(|e| format!("write api {} v{version}: {e}", R::KEY))?;
        let frame = self
            .read_frame()
            .map_err(|e| format!("read response to api {} v{version}: {e}", R::KEY))?;
        decode_response::<R::Response>(&frame, version, correlation_id)
            .map_err(|e| format!("api {} v{version}: {e}", R::KEY))
    }

    /// Sends request `R` and decodes its response; panics on any I/O or decode error.
    pub fn send<R: Request>(&mut self, request: &R, version: i16) -> R::Response {
        self.try_send(request, version)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub fn send_no_response<R: Request>(&mut self, request: &R, version: i16) {
        let (_, payload) = self.encode_request(request, version);
        self.write_frame(&payload).expect("write request");
    }

    /// Waits for either a response frame or the connection closing.
    pub fn read_outcome(&mut self, timeout: Duration) -> RawOutcome {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let result = self.read_frame();
        self.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        match result {
            Ok(frame) => RawOutcome::Response(frame),
            Err(e) => match e.kind() {
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => RawOutcome::Closed,
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => RawOutcome::TimedOut,
                _ => RawOutcome::Other(e.to_string()),
            },
        }
    }

    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Decodes a response frame: header (v0/v1 per the API's flexible versions) + body, which must use
/// every byte of the frame.
pub fn decode_response<T: Decodable + HeaderVersion>(
    frame: &[u8],
    version: i16,
    correlation_id: i32,
) -> Result<T, String> {
    let mut buf = Bytes::copy_from_slice(frame);
    let header_version = T::header_version(version);
    let header = ResponseHeader::decode(&mut buf, header_version).map_err(|e| {
        format!(
            "decode response header v{header_version}: {e}; frame {}",
            hex_prefix(frame)
        )
    })?;
    if header.correlation_id != correlation_id {
        return Err(format!(
            "correlation id mismatch: sent {correlation_id}, got {}",
            header.correlation_id
        ));
    }
    let body = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        T::decode(&mut buf, version)
    }))
    .map_err(|_| {
        format!(
            "decoder panicked on response body v{version}; frame {}",
            hex_prefix(frame)
        )
    })?
    .map_err(|e| {
        format!(
            "decode response body v{version}: {e}; frame {}",
            hex_prefix(frame)
        )
    })?;
    if !buf.is_empty() {
        return Err(format!(
            "{} trailing bytes after the response body v{version} (header v{header_version}); frame {}",
            buf.len(),
            hex_prefix(frame)
        ));
    }
    Ok(body)
}

pub fn hex_prefix(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(64).map(|b| format!("{b:02x}")).collect();
    format!(
        "[{} bytes] {}{}",
        bytes.len(),
        shown.join(""),
        if bytes.len() > 64 { "…" } else { "" }
    )
}

pub fn sb(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

pub fn topic_name(text: &str) -> TopicName {
    TopicName(sb(text))
}

// ---------------------------------------------------------------------------------------------
// Record batch v2: builder, parser, CRC-32C.
// ---------------------------------------------------------------------------------------------

fn crc32c_table() -> &'static [u32; 256] {
    static TABLE: OnceLock<[u32; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (index, slot) in table.iter_mut().enumerate() {
            let mut crc = index as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
            *slot = crc;
        }
        table
    })
}

/// CRC-32C (Castagnoli), as used by record batch v2.
pub fn crc32c(data: &[u8]) -> u32 {
    let table = crc32c_table();
    let mut crc = !0u32;
    for &byte in data {
        crc = table[((crc ^ byte as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        if zigzag < 0x80 {
            out.push(zigzag as u8);
            return;
        }
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
}

fn get_varint(data: &[u8], pos: &mut usize) -> Result<i64, String> {
    let mut value: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = *data.get(*pos).ok_or("varint past end")?;
        *pos += 1;
        value |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return Err("varint too long".into());
        }
    }
    Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
}

#[derive(Clone, Debug, Default)]
pub struct TestRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl TestRecord {
    pub fn new(timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> TestRecord {
        TestRecord {
            key: key.map(|k| k.to_vec()),
            value: value.map(|v| v.to_vec()),
            timestamp,
            headers: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct BatchOptions {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub attributes: i16,
    pub partition_leader_epoch: i32,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
            partition_leader_epoch: -1,
        }
    }
}

/// Builds an uncompressed record batch v2 (base offset 0) with a correct CRC-32C.
pub fn build_batch(records: &[TestRecord]) -> Vec<u8> {
    build_batch_with(records, &BatchOptions::default())
}

pub fn build_batch_with(records: &[TestRecord], options: &BatchOptions) -> Vec<u8> {
    assert!(!records.is_empty());
    let base_timestamp = records[0].timestamp;
    let max_timestamp = records.iter().map(|r| r.timestamp).max().unwrap();
    let mut body = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let mut encoded = Vec::new();
        encoded.push(0u8); // Record attributes (unused).
        put_varint(&mut encoded, record.timestamp - base_timestamp);
        put_varint(&mut encoded, index as i64);
        match &record.key {
            Some(key) => {
                put_varint(&mut encoded, key.len() as i64);
                encoded.extend_from_slice(key);
            }
            None => put_varint(&mut encoded, -1),
        }
        match &record.value {
            Some(value) => {
                put_varint(&mut encoded, value.len() as i64);
                encoded.extend_from_slice(value);
            }
            None => put_varint(&mut encoded, -1),
        }
        put_varint(&mut encoded, record.headers.len() as i64);
        for (name, value) in &record.headers {
            put_varint(&mut encoded, name.len() as i64);
            encoded.extend_from_slice(name.as_bytes());
            match value {
                Some(value) => {
                    put_varint(&mut encoded, value.len() as i64);
                    encoded.extend_from_slice(value);
                }
                None => put_varint(&mut encoded, -1),
            }
        }
        put_varint(&mut body, encoded.len() as i64);
        body.extend_from_slice(&encoded);
    }
    let mut batch = Vec::with_capacity(61 + body.len());
    batch.extend_from_slice(&0i64.to_be_bytes()); // Base offset: the broker assigns it.
    batch.extend_from_slice(&0i32.to_be_bytes()); // Batch length, patched below.
    batch.extend_from_slice(&options.partition_leader_epoch.to_be_bytes());
    batch.push(2); // Magic.
    batch.extend_from_slice(&0u32.to_be_bytes()); // CRC, patched below.
    batch.extend_from_slice(&options.attributes.to_be_bytes());
    batch.extend_from_slice(&((records.len() - 1) as i32).to_be_bytes());
    batch.extend_from_slice(&base_timestamp.to_be_bytes());
    batch.extend_from_slice(&max_timestamp.to_be_bytes());
    batch.extend_from_slice(&options.producer_id.to_be_bytes());
    batch.extend_from_slice(&options.producer_epoch.to_be_bytes());
    batch.extend_from_slice(&options.base_sequence.to_be_bytes());
    batch.extend_from_slice(&(records.len() as i32).to_be_bytes());
    batch.extend_from_slice(&body);
    let batch_length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    fix_crc(&mut batch);
    batch
}

/// Recomputes the CRC of a batch in place (after a test edits it).
pub fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A batch of `count` records whose values are `value_bytes` long, deterministic from `seed`,
/// with timestamps `first_timestamp + 10 * i`.
pub fn simple_batch(seed: u64, count: usize, value_bytes: usize, first_timestamp: i64) -> Vec<u8> {
    let records: Vec<TestRecord> = (0..count)
        .map(|i| {
            let key = format!("k-{seed}-{i}");
            TestRecord::new(
                first_timestamp + 10 * i as i64,
                Some(key.as_bytes()),
                Some(&payload(seed * 1000 + i as u64, value_bytes)),
            )
        })
        .collect();
    build_batch(&records)
}

/// Deterministic pseudo-random bytes.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x2545_F491_4F6C_DD1D);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[derive(Clone, Debug)]
pub struct ParsedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct ParsedBatch {
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc_stored: u32,
    pub crc_computed: u32,
    pub attributes: i16,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    pub record_count: i32,
    pub raw: Vec<u8>,
    /// Parsed records (uncompressed batches only).
    pub records: Vec<ParsedRecord>,
}

impl ParsedBatch {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    pub fn crc_ok(&self) -> bool {
        self.crc_stored == self.crc_computed
    }
}

/// Parses the batches of a Fetch response's records field. A trailing partial batch (allowed by the
/// protocol when a size limit cuts it) is dropped and reported in the second value.
pub fn parse_batches(data: &[u8]) -> Result<(Vec<ParsedBatch>, usize), String> {
    let mut batches = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        if data.len() - pos < 61 {
            return Ok((batches, data.len() - pos));
        }
        let be_i64 = |at: usize| i64::from_be_bytes(data[at..at + 8].try_into().unwrap());
        let be_i32 = |at: usize| i32::from_be_bytes(data[at..at + 4].try_into().unwrap());
        let be_i16 = |at: usize| i16::from_be_bytes(data[at..at + 2].try_into().unwrap());
        let batch_length = be_i32(pos + 8);
        if batch_length < 49 {
            return Err(format!(
                "batch at byte {pos} has batch_length {batch_length}"
            ));
        }
        let total = 12 + batch_length as usize;
        if pos + total > data.len() {
            return Ok((batches, data.len() - pos));
        }
        let raw = data[pos..pos + total].to_vec();
        let magic = raw[16] as i8;
        if magic != 2 {
            return Err(format!("batch at byte {pos} has magic {magic}"));
        }
        let mut batch = ParsedBatch {
            base_offset: be_i64(pos),
            partition_leader_epoch: be_i32(pos + 12),
            magic,
            crc_stored: u32::from_be_bytes(raw[17..21].try_into().unwrap()),
            crc_computed: crc32c(&raw[21..]),
            attributes: be_i16(pos + 21),
            last_offset_delta: be_i32(pos + 23),
            first_timestamp: be_i64(pos + 27),
            max_timestamp: be_i64(pos + 35),
            record_count: be_i32(pos + 57),
            records: Vec::new(),
            raw,
        };
        if batch.attributes & 0x7 == 0 && batch.crc_ok() {
            batch.records = parse_records(&batch)?;
        }
        batches.push(batch);
        pos += total;
    }
    Ok((batches, 0))
}

fn parse_records(batch: &ParsedBatch) -> Result<Vec<ParsedRecord>, String> {
    let data = &batch.raw;
    let mut pos = 61;
    let mut records = Vec::new();
    for _ in 0..batch.record_count.max(0) {
        let length = get_varint(data, &mut pos)?;
        let end = pos + length as usize;
        if length < 0 || end > data.len() {
            return Err(format!(
                "record length {length} overruns batch at offset {}",
                batch.base_offset
            ));
        }
        pos += 1; // Attributes.
        let timestamp_delta = get_varint(data, &mut pos)?;
        let offset_delta = get_varint(data, &mut pos)?;
        let read_bytes = |pos: &mut usize| -> Result<Option<Vec<u8>>, String> {
            let len = get_varint(data, pos)?;
            if len < 0 {
                return Ok(None);
            }
            let out = data
                .get(*pos..*pos + len as usize)
                .ok_or("field overruns record")?
                .to_vec();
            *pos += len as usize;
            Ok(Some(out))
        };
        let key = read_bytes(&mut pos)?;
        let value = read_bytes(&mut pos)?;
        records.push(ParsedRecord {
            offset: batch.base_offset + offset_delta,
            timestamp: batch.first_timestamp + timestamp_delta,
            key,
            value,
        });
        pos = end;
    }
    if pos != data.len() {
        return Err(format!(
            "{} bytes left after the records of batch at {}",
            data.len() - pos,
            batch.base_offset
        ));
    }
    Ok(records)
}

/// Asserts a fetched batch equals the produced one, except for the base offset and partition leader
/// epoch fields the broker assigns.
pub fn assert_same_batch(sent: &[u8], got: &ParsedBatch, expected_base_offset: i64, context: &str) {
    assert!(
        got.crc_ok(),
        "{context}: fetched batch at {} has a bad CRC",
        got.base_offset
    );
    assert_eq!(
        got.base_offset, expected_base_offset,
        "{context}: base offset"
    );
    assert_eq!(
        got.raw.len(),
        sent.len(),
        "{context}: batch size at offset {expected_base_offset}"
    );
    assert!(
        got.raw[8..12] == sent[8..12] && got.raw[16..] == sent[16..],
        "{context}: batch bytes at offset {expected_base_offset} differ from what was produced"
    );
}

// ---------------------------------------------------------------------------------------------
// Topic identity (names and topic ids; the id type is only reachable through the crate's structs).
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct TopicInfo {
    pub name: String,
    pub id_text: String,
    pub partitions: usize,
    pub metadata: MetadataResponseTopic,
}

impl TopicInfo {
    /// A FetchTopic naming this topic the way `version` requires (name ≤ 12, id ≥ 13).
    pub fn fetch_topic(&self, version: i16) -> FetchTopic {
        let mut topic = FetchTopic::default();
        if version >= 13 {
            topic.topic_id = self.metadata.topic_id;
        } else {
            topic.topic = topic_name(&self.name);
        }
        topic
    }

    /// A TopicProduceData naming this topic the way `version` requires (name ≤ 12, id 13).
    pub fn produce_topic(&self, version: i16) -> TopicProduceData {
        let mut topic = TopicProduceData::default();
        if version >= 13 {
            topic.topic_id = self.metadata.topic_id;
        } else {
            topic.name = topic_name(&self.name);
        }
        topic
    }
}

/// Metadata for `topics` (None = all topics).
pub fn metadata(
    client: &mut Client,
    version: i16,
    topics: Option<&[&str]>,
    allow_auto_create: bool,
) -> MetadataResponse {
    let mut request = MetadataRequest::default();
    request.topics = topics.map(|names| {
        names
            .iter()
            .map(|name| {
                let mut topic = MetadataRequestTopic::default();
                topic.name = Some(topic_name(name));
                topic
            })
            .collect()
    });
    if version == 0 && request.topics.is_none() {
        request.topics = Some(Vec::new());
    }
    if version >= 4 {
        request.allow_auto_topic_creation = allow_auto_create;
    }
    client.send(&request, version)
}

/// Looks a topic up with Metadata v12 (auto-creating it when allowed), retrying while the broker
/// answers LEADER_NOT_AVAILABLE (what Kafka answers right after an auto-create).
pub fn topic_info(client: &mut Client, name: &str) -> TopicInfo {
    let started = Instant::now();
    loop {
        let response = metadata(client, 12, Some(&[name]), true);
        let topic = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.as_str() == name).unwrap_or(false))
            .unwrap_or_else(|| panic!("Metadata v12 response lacks topic {name}: {response:?}"))
            .clone();
        let retry = topic.error_code == LEADER_NOT_AVAILABLE
            || topic
                .partitions
                .iter()
                .any(|p| p.error_code == LEADER_NOT_AVAILABLE);
        if topic.error_code == NONE && !retry {
            assert!(
                !topic.partitions.is_empty(),
                "topic {name} has no partitions"
            );
            return TopicInfo {
                name: name.to_string(),
                id_text: topic.topic_id.to_string(),
                partitions: topic.partitions.len(),
                metadata: topic,
            };
        }
        if !retry || started.elapsed() > Duration::from_secs(10) {
            panic!(
                "Metadata for topic {name} answered error {}: {topic:?}",
                topic.error_code
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Creates a topic with CreateTopics v7 and returns the topic's error code.
pub fn create_topic(client: &mut Client, name: &str, partitions: i32) -> i16 {
    create_topic_with(client, 7, name, partitions, &[], false).0
}

pub fn create_topic_with(
    client: &mut Client,
    version: i16,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
    validate_only: bool,
) -> (i16, CreateTopicsResponse) {
    let mut topic = CreatableTopic::default();
    topic.name = topic_name(name);
    topic.num_partitions = partitions;
    topic.replication_factor = 1;
    topic.configs = configs
        .iter()
        .map(|(key, value)| {
            let mut config = CreatableTopicConfig::default();
            config.name = sb(key);
            config.value = Some(sb(value));
            config
        })
        .collect();
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![topic];
    request.timeout_ms = 10_000;
    request.validate_only = validate_only;
    let response: CreateTopicsResponse = client.send(&request, version);
    assert_eq!(
        response.topics.len(),
        1,
        "CreateTopics v{version} result count: {response:?}"
    );
    assert_eq!(
        response.topics[0].name.as_str(),
        name,
        "CreateTopics result topic name"
    );
    (response.topics[0].error_code, response)
}

#[derive(Clone, Debug)]
pub struct ProduceResult {
    pub partition: i32,
    pub error_code: i16,
    pub base_offset: i64,
}

/// Produces one batch per listed partition in a single request; returns the per-partition results
/// (ordered as requested). With acks = 0 nothing is read and the result is empty.
pub fn produce(
    client: &mut Client,
    version: i16,
    topic: &TopicInfo,
    acks: i16,
    batches: &[(i32, Vec<u8>)],
) -> Vec<ProduceResult> {
    let request = produce_request(topic, version, acks, batches);
    if acks == 0 {
        client.send_no_response(&request, version);
        return Vec::new();
    }
    let response: ProduceResponse = client.send(&request, version);
    produce_results(&response, topic, version, batches)
}

pub fn produce_request(
    topic: &TopicInfo,
    version: i16,
    acks: i16,
    batches: &[(i32, Vec<u8>)],
) -> ProduceRequest {
    let mut topic_data = topic.produce_topic(version);
    topic_data.partition_data = batches
        .iter()
        .map(|(partition, batch)| {
            let mut data = PartitionProduceData::default();
            data.index = *partition;
            data.records = Some(Bytes::copy_from_slice(batch));
            data
        })
        .collect();
    let mut request = ProduceRequest::default();
    request.acks = acks;
    request.timeout_ms = 10_000;
    request.topic_data = vec![topic_data];
    request
}

pub fn produce_results(
    response: &ProduceResponse,
    topic: &TopicInfo,
    version: i16,
    batches: &[(i32, Vec<u8>)],
) -> Vec<ProduceResult> {
    assert_eq!(
        response.responses.len(),
        1,
        "Produce v{version}: one topic expected in {response:?}"
    );
    let topic_response = &response.responses[0];
    if version >= 13 {
        assert_eq!(
            topic_response.topic_id.to_string(),
            topic.id_text,
            "Produce v{version} response topic id"
        );
    } else {
        assert_eq!(
            topic_response.name.as_str(),
            topic.name,
            "Produce v{version} response topic name"
        );
    }
    assert_eq!(
        topic_response.partition_responses.len(),
        batches.len(),
        "Produce v{version}: partition count in response {response:?}"
    );
    batches
        .iter()
        .map(|(partition, _)| {
            let found = topic_response
                .partition_responses
                .iter()
                .find(|p| p.index == *partition)
                .unwrap_or_else(|| {
                    panic!("Produce v{version} response lacks partition {partition}: {response:?}")
                });
            ProduceResult {
                partition: *partition,
                error_code: found.error_code,
                base_offset: found.base_offset,
            }
        })
        .collect()
}

/// Produces one batch to one partition (acks=1, Produce v9) and returns (error, base offset).
pub fn produce_one(
    client: &mut Client,
    topic: &TopicInfo,
    partition: i32,
    batch: &[u8],
) -> (i16, i64) {
    let results = produce(client, 9, topic, 1, &[(partition, batch.to_vec())]);
    (results[0].error_code, results[0].base_offset)
}

#[derive(Clone, Debug)]
pub struct FetchedPartition {
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub records: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct FetchParams {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    pub isolation_level: i8,
}

impl Default for FetchParams {
    fn default() -> Self {
        FetchParams {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 64 << 20,
            partition_max_bytes: 16 << 20,
            isolation_level: 0,
        }
    }
}

pub fn fetch_request(
    topic: &TopicInfo,
    version: i16,
    partitions: &[(i32, i64)],
    params: &FetchParams,
) -> FetchRequest {
    let mut fetch_topic = topic.fetch_topic(version);
    fetch_topic.partitions = partitions
        .iter()
        .map(|(partition, offset)| {
            let mut fetch_partition = FetchPartition::default();
            fetch_partition.partition = *partition;
            fetch_partition.fetch_offset = *offset;
            fetch_partition.partition_max_bytes = params.partition_max_bytes;
            if version >= 5 {
                fetch_partition.log_start_offset = -1;
            }
            fetch_partition
        })
        .collect();
    let mut request = FetchRequest::default();
    request.max_wait_ms = params.max_wait_ms;
    request.min_bytes = params.min_bytes;
    request.max_bytes = params.max_bytes;
    request.isolation_level = params.isolation_level;
    request.session_id = 0;
    request.session_epoch = -1;
    request.topics = vec![fetch_topic];
    request
}

/// One Fetch request; returns the per-partition results keyed by partition.
pub fn fetch(
    client: &mut Client,
    version: i16,
    topic: &TopicInfo,
    partitions: &[(i32, i64)],
    params: &FetchParams,
) -> HashMap<i32, FetchedPartition> {
    let request = fetch_request(topic, version, partitions, params);
    let response: FetchResponse = client.send(&request, version);
    fetch_results(&response, topic, version)
}

pub fn fetch_results(
    response: &FetchResponse,
    topic: &TopicInfo,
    version: i16,
) -> HashMap<i32, FetchedPartition> {
    assert_eq!(
        response.error_code, NONE,
        "Fetch v{version} top-level error_code"
    );
    let mut out = HashMap::new();
    for topic_response in &response.responses {
        if version >= 13 {
            assert_eq!(
                topic_response.topic_id.to_string(),
                topic.id_text,
                "Fetch v{version} response topic id"
            );
        } else {
            assert_eq!(
                topic_response.topic.as_str(),
                topic.name,
                "Fetch v{version} response topic name"
            );
        }
        for partition in &topic_response.partitions {
            let previous = out.insert(
                partition.partition_index,
                FetchedPartition {
                    partition: partition.partition_index,
                    error_code: partition.error_code,
                    high_watermark: partition.high_watermark,
                    last_stable_offset: partition.last_stable_offset,
                    log_start_offset: partition.log_start_offset,
                    records: partition
                        .records
                        .as_ref()
                        .map(|r| r.to_vec())
                        .unwrap_or_default(),
                },
            );
            assert!(
                previous.is_none(),
                "Fetch v{version}: partition {} answered twice",
                partition.partition_index
            );
        }
    }
    out
}

/// Fetches one partition from `from` until the high watermark; returns every batch and the final
/// high watermark. Each batch's CRC is checked by the caller (ParsedBatch::crc_ok).
pub fn fetch_all(
    client: &mut Client,
    version: i16,
    topic: &TopicInfo,
    partition: i32,
    from: i64,
) -> (Vec<ParsedBatch>, i64) {
    let mut batches: Vec<ParsedBatch> = Vec::new();
    let mut offset = from;
    for _round in 0..100_000 {
        let result = fetch(
            client,
            version,
            topic,
            &[(partition, offset)],
            &FetchParams::default(),
        );
        let part = result
            .get(&partition)
            .unwrap_or_else(|| panic!("Fetch v{version} response lacks partition {partition}"));
        assert_eq!(
            part.error_code, NONE,
            "Fetch v{version} {}/{partition} from offset {offset}: error code",
            topic.name
        );
        if offset >= part.high_watermark {
            assert!(
                part.records.is_empty() || parse_batches(&part.records).unwrap().0.is_empty(),
                "Fetch v{version} at the high watermark {} returned data",
                part.high_watermark
            );
            return (batches, part.high_watermark);
        }
        let (parsed, _partial) = parse_batches(&part.records).unwrap_or_else(|e| {
            panic!(
                "Fetch v{version} {}/{partition} @{offset}: unparsable records: {e}",
                topic.name
            )
        });
        let useful: Vec<ParsedBatch> = parsed
            .into_iter()
            .filter(|b| b.last_offset() >= offset)
            .collect();
        assert!(
            !useful.is_empty(),
            "Fetch v{version} {}/{partition} @{offset} below the high watermark {} returned no batch",
            topic.name,
            part.high_watermark
        );
        offset = useful.last().unwrap().next_offset();
        batches.extend(useful);
    }
    panic!("fetch_all did not reach the high watermark");
}

#[derive(Clone, Debug, PartialEq)]
pub struct ListedOffset {
    pub error_code: i16,
    pub timestamp: i64,
    pub offset: i64,
}

pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;

/// ListOffsets for (partition, timestamp) pairs.
pub fn list_offsets(
    client: &mut Client,
    version: i16,
    topic: &str,
    queries: &[(i32, i64)],
) -> Vec<ListedOffset> {
    let mut list_topic = ListOffsetsTopic::default();
    list_topic.name = topic_name(topic);
    list_topic.partitions = queries
        .iter()
        .map(|(partition, timestamp)| {
            let mut query = ListOffsetsPartition::default();
            query.partition_index = *partition;
            query.timestamp = *timestamp;
            query
        })
        .collect();
    let mut request = ListOffsetsRequest::default();
    request.replica_id = BrokerId(-1);
    request.topics = vec![list_topic];
    if version >= 10 {
        request.timeout_ms = 10_000;
    }
    let response = client.send(&request, version);
    assert_eq!(
        response.topics.len(),
        1,
        "ListOffsets v{version}: {response:?}"
    );
    assert_eq!(response.topics[0].name.as_str(), topic);
    queries
        .iter()
        .map(|(partition, _)| {
            let found = response.topics[0]
                .partitions
                .iter()
                .find(|p| p.partition_index == *partition)
                .unwrap_or_else(|| {
                    panic!("ListOffsets v{version} lacks partition {partition}: {response:?}")
                });
            ListedOffset {
                error_code: found.error_code,
                timestamp: found.timestamp,
                offset: found.offset,
            }
        })
        .collect()
}

/// The log end offset (ListOffsets v1 latest).
pub fn end_offset(client: &mut Client, topic: &str, partition: i32) -> i64 {
    let listed = list_offsets(client, 1, topic, &[(partition, LATEST)]);
    assert_eq!(
        listed[0].error_code, NONE,
        "ListOffsets latest {topic}/{partition}"
    );
    listed[0].offset
}

/// ApiVersions v3, the way librdkafka opens a connection.
pub fn api_versions(client: &mut Client, version: i16) -> ApiVersionsResponse {
    let mut request = ApiVersionsRequest::default();
    if version >= 3 {
        request.client_software_name = sb("fluxmq-tests");
        request.client_software_version = sb("0.1.0");
    }
    client.send(&request, version)
}

/// Produces and fetches back one small batch on a fresh connection: the broker still serves.
pub fn assert_serving(broker: &mut Broker, context: &str) {
    assert!(
        broker.is_alive(),
        "{context}: the broker process died; stderr tail:\n{}",
        broker.stderr_tail(40)
    );
    let mut client = broker.client();
    let topic = topic_info(&mut client, "health-check");
    let partition = 0;
    let before = end_offset(&mut client, "health-check", partition);
    let batch = simple_batch(before as u64 + 7, 2, 50, 1_700_000_000_000);
    let (error, base) = produce_one(&mut client, &topic, partition, &batch);
    assert_eq!(error, NONE, "{context}: health produce error");
    assert_eq!(base, before, "{context}: health produce base offset");
    let result = fetch(
        &mut client,
        12,
        &topic,
        &[(partition, base)],
        &FetchParams::default(),
    );
    let part = &result[&partition];
    assert_eq!(part.error_code, NONE, "{context}: health fetch error");
    let (batches, _) = parse_batches(&part.records).expect("health fetch records parse");
    assert!(
        !batches.is_empty(),
        "{context}: health fetch returned nothing"
    );
    assert_same_batch(&batch, &batches[0], base, context);
}

/// Every file and directory below `root`, relative to it.
pub fn list_tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_path_buf());
            }
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn crc32c_matches_the_standard_check_value() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn batch_builder_round_trips_through_the_parser() {
    let batch = simple_batch(1, 3, 10, 1000);
    let (parsed, partial) = parse_batches(&batch).unwrap();
    assert_eq!(partial, 0);
    assert_eq!(parsed.len(), 1);
    assert!(parsed[0].crc_ok());
    assert_eq!(parsed[0].records.len(), 3);
    assert_eq!(parsed[0].records[2].timestamp, 1020);
    assert_eq!(parsed[0].max_timestamp, 1020);
}
