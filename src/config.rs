//! Every knob of the broker: parsed once from the command line, validated, then immutable.
//!
//! Owns: the command line (clap), core selection (`--cores`, `--core-mask`, or the CPUs the process may
//! run on), defaults and their reasons. Never: reloading in place.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::limits;

/// FluxMQ: a Kafka-compatible streaming broker, one pinned io_uring executor (shard) per core.
///
/// Point any Kafka client at `--listen`:`--port`. Each selected core runs one shard that owns a
/// disjoint set of partitions. By default every CPU the process may run on gets a shard, so
/// `taskset -c 2,3 fluxmq` and `numactl --cpunodebind=1 fluxmq` choose cores without any flag.
#[derive(Debug, Clone, Parser)]
#[command(name = "fluxmq", version, about, long_about)]
pub struct Config {
    /// Address to listen on. Every shard binds it with SO_REUSEPORT and the kernel spreads
    /// connections over the shards.
    #[arg(long, default_value = "0.0.0.0")]
    pub listen: IpAddr,

    /// Kafka port.
    #[arg(long, default_value_t = 9092)]
    pub port: u16,

    /// Host name clients are told to connect to (Metadata, FindCoordinator). Defaults to the
    /// --listen address, or to this machine's host name when listening on all addresses.
    #[arg(long)]
    pub advertised_host: Option<String>,

    /// Port clients are told to connect to, when it differs from --port (a proxy or NAT in front of
    /// the broker, as Kafka's advertised.listeners allows). Defaults to --port.
    #[arg(long)]
    pub advertised_port: Option<u16>,

    /// Directory for topic data and broker metadata. Created if missing.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,

    /// CPUs to run shards on, e.g. `0-3,6`: one shard per listed CPU. Default: every CPU this
    /// process is allowed to run on (its affinity mask).
    #[arg(long, conflicts_with = "core_mask")]
    pub cores: Option<String>,

    /// CPUs to run shards on as a hexadecimal mask, e.g. `0x4F` for CPUs 0-3 and 6.
    #[arg(long)]
    pub core_mask: Option<String>,

    /// Log level or env_logger filter (error, warn, info, debug, trace; `fluxmq=debug`). The
    /// FLUXMQ_LOG environment variable overrides it.
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// Size of each log segment file in bytes. Segments are appended with pwrite and read through
    /// mmap; a file holds only what was written, so a partition reserves no disk up front and a full
    /// disk fails the produce (KAFKA_STORAGE_ERROR) rather than the broker. 64 MiB rolls to a new
    /// file at most once per 64 MiB appended while bounding what one roll leaves to sync in the
    /// background and what recovery re-checks after a crash.
    #[arg(long, default_value_t = limits::SEGMENT_BYTES_DEFAULT)]
    pub segment_bytes: u64,

    /// Partition count of auto-created topics and of CreateTopics requests that ask for the default.
    #[arg(long, default_value_t = 1)]
    pub default_partitions: i32,

    /// Create a topic when a client asks for an unknown one in Metadata or Produce (Kafka's
    /// auto.create.topics.enable).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Serve consumer groups: FindCoordinator, the classic group APIs (JoinGroup, SyncGroup,
    /// Heartbeat, LeaveGroup), KIP-848 (ConsumerGroupHeartbeat, ConsumerGroupDescribe), committed
    /// offsets and group administration. On by default, as groups always are in Kafka; the bare
    /// flag (the seed's spelling) also means on. `--enable-consumer-groups false` stops advertising
    /// and serving those APIs (a request for one then closes the connection, as for any API a broker
    /// does not serve), for deployments that only use `assign()` consumers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub enable_consumer_groups: bool,

    /// group.initial.rebalance.delay.ms: how long the first rebalance of an empty classic group waits
    /// for more members to join (each new member extends it, up to the rebalance timeout).
    #[arg(long, default_value_t = 3_000)]
    pub group_initial_rebalance_delay_ms: u64,

    /// group.min.session.timeout.ms: the shortest session timeout a classic member may ask for.
    #[arg(long, default_value_t = 6_000)]
    pub group_min_session_timeout_ms: i32,

    /// group.max.session.timeout.ms: the longest session timeout a classic member may ask for.
    #[arg(long, default_value_t = 1_800_000)]
    pub group_max_session_timeout_ms: i32,

    /// group.consumer.heartbeat.interval.ms: how often KIP-848 members heartbeat.
    #[arg(long, default_value_t = 5_000)]
    pub group_consumer_heartbeat_interval_ms: u64,

    /// group.consumer.session.timeout.ms: a KIP-848 member that has not heartbeated for this long is
    /// removed and its partitions reassigned.
    #[arg(long, default_value_t = 45_000)]
    pub group_consumer_session_timeout_ms: u64,

    /// offsets.retention.minutes in ms: committed offsets of a group that has been empty this long
    /// are deleted (7 days, as in Kafka).
    #[arg(long, default_value_t = 604_800_000)]
    pub offsets_retention_ms: i64,

    /// Broker node id reported in Metadata.
    #[arg(long, default_value_t = 0)]
    pub node_id: i32,

    /// Time-based retention default (retention.ms): 7 days, as in Kafka. -1 keeps data forever.
    #[arg(long, default_value_t = 604_800_000, allow_negative_numbers = true)]
    pub retention_ms: i64,

    /// Largest record batch a producer may send (max.message.bytes), as in Kafka.
    #[arg(long, default_value_t = 1_048_588)]
    pub message_max_bytes: i64,

    /// Buffer pool per shard in MiB: request frames and fetch replies in flight. When it is
    /// exhausted, new reads wait (backpressure) instead of allocating more.
    #[arg(long, default_value_t = limits::POOL_MIB_PER_SHARD_DEFAULT)]
    pub pool_mib: usize,

    /// Sealed segments each shard keeps in the page cache, in MiB. Once a sealed segment is durable and
    /// older than this much of the shard's newer sealed data, its pages are dropped from the page cache
    /// (and consumers reading it later read from the disk), so the page cache stops growing with every
    /// byte produced. Default: an eighth of physical memory, divided among the shards. 0 drops each
    /// segment as soon as it is durable.
    #[arg(long)]
    pub page_cache_mib: Option<u64>,

    /// Move a client connection to the shard that owns every partition its produce and fetch requests
    /// name (after `CONNECTION_MOVE_STREAK` such requests in a row), so that those requests stop
    /// crossing cores; the client sees the same TCP connection. `false` keeps each connection on the
    /// shard the kernel gave it, every request to another shard's partitions going over the mesh.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub move_connections: bool,

    /// Most concurrent client connections per shard; further connections wait to be accepted.
    #[arg(long, default_value_t = limits::CONNECTIONS_PER_SHARD_DEFAULT)]
    pub max_connections_per_shard: usize,
}

impl Config {
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_bytes < shards::catalog::SEGMENT_BYTES_MIN
            || self.segment_bytes > i32::MAX as u64
        {
            return Err(format!(
                "--segment-bytes must be between {} and {}",
                shards::catalog::SEGMENT_BYTES_MIN,
                i32::MAX
            ));
        }
        if !(1..=shards::catalog::PARTITIONS_PER_TOPIC_MAX).contains(&self.default_partitions) {
            return Err("--default-partitions must be at least 1".into());
        }
        // A batch larger than a segment is still stored (it gets a segment of its own), so the two
        // limits are independent.
        if !(1..=i64::from(i32::MAX)).contains(&self.message_max_bytes) {
            return Err(format!(
                "--message-max-bytes must be between 1 and {}",
                i32::MAX
            ));
        }
        if self.pool_mib * 1024 * 1024 < shards::pool::CLASS_BYTES_MAX * 4 {
            return Err(format!(
                "--pool-mib must be at least {}",
                (shards::pool::CLASS_BYTES_MAX * 4) >> 20
            ));
        }
        if self.group_min_session_timeout_ms < 1
            || self.group_min_session_timeout_ms > self.group_max_session_timeout_ms
        {
            return Err("--group-min-session-timeout-ms must be positive and at most --group-max-session-timeout-ms".into());
        }
        if self.group_consumer_heartbeat_interval_ms == 0
            || self.group_consumer_heartbeat_interval_ms >= self.group_consumer_session_timeout_ms
            || self.group_consumer_session_timeout_ms > i32::MAX as u64
        {
            return Err("--group-consumer-heartbeat-interval-ms must be positive and below --group-consumer-session-timeout-ms".into());
        }
        if self.offsets_retention_ms < 1 {
            return Err("--offsets-retention-ms must be positive".into());
        }
        if self.max_connections_per_shard == 0 {
            return Err("--max-connections-per-shard must be at least 1".into());
        }
        self.selected_cpus().map(|_| ())
    }

    /// The CPUs to run shards on, in ascending order, without duplicates.
    pub fn selected_cpus(&self) -> Result<Vec<usize>, String> {
        let allowed = allowed_cpus();
        let selected = match (&self.cores, &self.core_mask) {
            (Some(list), _) => parse_cpu_list(list)?,
            (None, Some(mask)) => parse_cpu_mask(mask)?,
            (None, None) => allowed.clone(),
        };
        if selected.is_empty() {
            return Err("no CPU selected".into());
        }
        if let Some(cpu) = selected.iter().find(|cpu| !allowed.contains(cpu)) {
            return Err(format!(
                "CPU {cpu} is not in this process's affinity mask {allowed:?}"
            ));
        }
        if selected.len() > limits::SHARDS_MAX {
            return Err(format!("at most {} shards", limits::SHARDS_MAX));
        }
        Ok(selected)
    }

    /// The host clients are told to connect to.
    pub fn advertised_host(&self) -> String {
        if let Some(host) = &self.advertised_host {
            return host.clone();
        }
        if !self.listen.is_unspecified() {
            return self.listen.to_string();
        }
        hostname().unwrap_or_else(|| "localhost".into())
    }
}

fn hostname() -> Option<String> {
    let mut buffer = [0u8; 256];
    // gethostname(2) NUL-terminates unless the name is truncated; we pass the longest legal size.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return None;
    }
    let length = buffer.iter().position(|&byte| byte == 0)?;
    String::from_utf8(buffer[..length].to_vec())
        .ok()
        .filter(|name| !name.is_empty())
}

/// The CPUs in this process's affinity mask (what `taskset` and `numactl` set).
fn allowed_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|core| core.id)
        .collect();
    cpus.sort_unstable();
    cpus
}

/// Parses `0-3,6` into `[0, 1, 2, 3, 6]`.
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for item in list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let parse = |text: &str| {
            text.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad CPU number {text:?} in --cores"))
        };
        let (first, last) = match item.split_once('-') {
            Some((first, last)) => (parse(first)?, parse(last)?),
            None => (parse(item)?, parse(item)?),
        };
        if first > last || last >= limits::CPU_ID_MAX {
            return Err(format!("bad CPU range {item:?} in --cores"));
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Parses a hexadecimal mask like `0x4F` (bit n selects CPU n).
pub fn parse_cpu_mask(mask: &str) -> Result<Vec<usize>, String> {
    let digits = mask
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X")
        .replace([',', '_'], "");
    if digits.is_empty() || digits.len() > limits::CPU_ID_MAX / 4 {
        return Err(format!("bad --core-mask {mask:?}"));
    }
    let mut cpus = Vec::new();
    for (position, digit) in digits.chars().rev().enumerate() {
        let value = digit
            .to_digit(16)
            .ok_or_else(|| format!("bad --core-mask {mask:?}"))?;
        for bit in 0..4 {
            if value & (1 << bit) != 0 {
                cpus.push(position * 4 + bit);
            }
        }
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_groups_are_on_by_default_and_the_bare_flag_means_on() {
        let parse = |args: &[&str]| Config::try_parse_from(args).unwrap().enable_consumer_groups;
        assert!(parse(&["fluxmq"]));
        assert!(parse(&["fluxmq", "--enable-consumer-groups"]));
        assert!(parse(&[
            "fluxmq",
            "--enable-consumer-groups",
            "--port",
            "9093"
        ]));
        assert!(!parse(&["fluxmq", "--enable-consumer-groups", "false"]));
    }

    #[test]
    fn cpu_lists_and_masks_parse() {
        assert_eq!(parse_cpu_list("0-3,6").unwrap(), vec![0, 1, 2, 3, 6]);
        assert_eq!(parse_cpu_list("2, 1,2").unwrap(), vec![1, 2]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert_eq!(parse_cpu_mask("0x4F").unwrap(), vec![0, 1, 2, 3, 6]);
        assert_eq!(parse_cpu_mask("1,00000000").unwrap(), vec![32]);
        assert!(parse_cpu_mask("0xZ").is_err());
        assert!(parse_cpu_mask("").is_err());
    }
}
