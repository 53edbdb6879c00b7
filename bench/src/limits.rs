//! Every bound the load generator runs under, in one place, each with the reason for its value.
//!
//! Owns: the constants and the compile-time checks that tie them together. Never: runtime state.
//! Flags are validated against these once, at start (see `cli.rs`), so the hot loops never grow a
//! buffer, a queue or a wait without limit.

use std::time::Duration;

/// The client id in every request header, so broker logs show where the load came from.
pub const CLIENT_ID: &str = "fluxmq-bench";

/// The largest record batch we build. Kafka's default `message.max.bytes` is 1 MiB + 12 bytes, so a
/// default-configured broker rejects anything larger with MESSAGE_TOO_LARGE.
pub const BATCH_BYTES_MAX: usize = 1024 * 1024;

/// The largest Produce request one connection sends (its template holds one batch per partition of
/// the connection). Kafka's default `socket.request.max.bytes` is 100 MiB; we stay well below it.
pub const REQUEST_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The largest `--max-bytes` a fetch may ask for. Kafka's own consumer default is 50 MiB.
pub const FETCH_MAX_BYTES_MAX: usize = 100 * 1024 * 1024;

/// The largest response frame we accept. A fetch answer may exceed its `max_bytes` by one batch (the
/// broker always returns a first batch whole), and anything beyond that is a corrupt length prefix
/// that must not make us allocate.
pub const RESPONSE_FRAME_BYTES_MAX: usize = FETCH_MAX_BYTES_MAX + 2 * BATCH_BYTES_MAX;

/// Bytes read per `read` call into the ring buffer of small frames. Frames larger than this are
/// read straight into their own allocation, so a big fetch is never copied.
pub const READ_CHUNK_BYTES: usize = 256 * 1024;

/// One thread per connection; beyond this the machine would spend its time switching threads.
pub const CONNECTIONS_MAX: usize = 256;

/// Partitions one run may target. Every partition costs a batch slot in a Produce request and an
/// entry in a Fetch request; Kafka itself advises against topics far larger than this.
pub const PARTITIONS_MAX: usize = 4096;

/// Produce requests one connection may have unanswered. Kafka's producer defaults to 5; more only
/// hides latency behind queueing.
pub const IN_FLIGHT_MAX: usize = 64;

/// The longest run we accept: a day. Anything longer is a typo.
pub const DURATION_SECS_MAX: u64 = 24 * 3600;

/// How long an answered-nothing request may wait before the connection is declared failed. Kafka's
/// clients default `request.timeout.ms` to 30 s.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The `timeout_ms` sent in Produce requests, the same 30 s as the response timeout.
pub const PRODUCE_TIMEOUT_MS: i32 = 30_000;

/// Time allowed to open a TCP connection to a broker on this machine.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocked write gives up after this long: a broker that stops reading must not hang the tool.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a blocked read wakes up to check deadlines when nothing else is due.
pub const POLL_TICK: Duration = Duration::from_millis(100);

/// Long-poll wait of a Fetch: a consumer that has caught up gets an answer at least this often.
pub const FETCH_MAX_WAIT_MS: i32 = 500;

/// How long we wait for a freshly created topic to have a leader for every partition.
pub const METADATA_WAIT: Duration = Duration::from_secs(10);

/// Pause between Metadata (or failed Fetch) retries, so a broker in trouble is not flooded.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// After the producer of an end-to-end run stops, the consumer may keep reading this long to
/// collect the records still in flight.
pub const E2E_DRAIN_GRACE: Duration = Duration::from_secs(5);

/// The largest latency the histograms hold (an hour, in microseconds); larger values are clamped.
pub const LATENCY_US_MAX: u64 = 3_600 * 1_000_000;

/// Significant decimal digits the histograms keep: 0.1 % precision at every magnitude.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// The largest `--rate` (records per second over the whole run).
pub const RATE_MAX: u64 = 100_000_000;

const _: () = assert!(RESPONSE_FRAME_BYTES_MAX > FETCH_MAX_BYTES_MAX + BATCH_BYTES_MAX);
const _: () = assert!(REQUEST_BYTES_MAX >= BATCH_BYTES_MAX);
const _: () = assert!(READ_CHUNK_BYTES >= 4096);
const _: () = assert!(RESPONSE_TIMEOUT.as_millis() == PRODUCE_TIMEOUT_MS as u128);
const _: () = assert!(POLL_TICK.as_millis() < FETCH_MAX_WAIT_MS as u128);
