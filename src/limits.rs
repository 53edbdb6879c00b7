//! Every limit of the broker binary in one place, each with why it is set so and what it costs.
//!
//! Owns: `*_MAX` and default constants for the network, requests and boot, and the compile-time facts
//! that tie them together. Never: runtime state. Limits of what one shard owns (pool classes, mesh depth,
//! fetch wait) live beside that code in the `shards` crate; limits of the request decoder live in
//! `src/protocol/mod.rs`.

/// Largest request frame (Kafka's socket.request.max.bytes default). A frame is read whole into one
/// pool buffer before it is decoded, so this is also the largest single buffer a connection can take.
pub const FRAME_BYTES_MAX: usize = 100 * 1024 * 1024;
/// Smallest frame that can hold a request header (api key, version, correlation id, client id length).
pub const FRAME_BYTES_MIN: usize = 10;
/// Largest fetch response we build, whatever max_bytes the client asks (Kafka caps fetch.max.bytes at
/// 55 MiB by default). It must fit in a shard's pool with room for other connections' buffers.
pub const FETCH_RESPONSE_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Default pool per shard: two maximal fetch responses in flight at once.
pub const POOL_MIB_PER_SHARD_DEFAULT: usize = 64;
/// The default page-cache budget for sealed segments is physical memory divided by this, shared by
/// all shards: room for the rest of the machine, and consumers within a few GiB of the tail read from
/// memory on a server of tens of GiB.
pub const PAGE_CACHE_SHARE_OF_MEMORY_DIVISOR: u64 = 8;
/// Default concurrent connections per shard; each costs a task, a small write buffer and one request
/// buffer while a request is in flight.
pub const CONNECTIONS_PER_SHARD_DEFAULT: usize = 10_000;
/// Produce or fetch requests in a row that must all go to one other shard before their connection moves
/// there (`net/affinity.rs`): enough that a client touching several shards in turn does not bounce
/// between them, few enough that a producer moves within its first milliseconds. A move costs one mesh
/// message and a `dup`.
pub const CONNECTION_MOVE_STREAK: u32 = 16;
/// Shards we can run: a shard id is a u16 and the mesh costs shards² channels.
pub const SHARDS_MAX: usize = 1024;
/// Highest CPU number we accept in --cores/--core-mask (Linux's default NR_CPUS ceiling).
pub const CPU_ID_MAX: usize = 8192;
/// Default segment size; see `--segment-bytes` for the reasoning.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Memory glommio registers with io_uring per shard. FluxMQ does not use glommio's DMA files (segments
/// are mmap'd) so this only serves the network path; small enough that all shards fit in the common
/// 8 MiB RLIMIT_MEMLOCK default. Raise `ulimit -l` (LimitMEMLOCK= in systemd) on big servers.
pub const IO_MEMORY_BYTES_PER_SHARD_MAX: usize = 1024 * 1024;
/// glommio refuses to start under 512 KiB of locked memory per executor.
pub const IO_MEMORY_BYTES_PER_SHARD_MIN: usize = 64 * 1024;
/// How long a connection's writer waits for a reply to a parked fetch before the client's own timeout
/// would fire anyway; the fetch handler caps max_wait_ms with it.
pub const FETCH_WAIT_MS_MAX: i32 = shards::shard::FETCH_WAIT_MS_MAX as i32;

const _: () = assert!(FETCH_RESPONSE_BYTES_MAX <= POOL_MIB_PER_SHARD_DEFAULT * 1024 * 1024 / 2);
const _: () = assert!(FRAME_BYTES_MAX <= i32::MAX as usize);
const _: () = assert!(SEGMENT_BYTES_DEFAULT >= shards::catalog::SEGMENT_BYTES_MIN);
const _: () = assert!(IO_MEMORY_BYTES_PER_SHARD_MIN <= IO_MEMORY_BYTES_PER_SHARD_MAX);
