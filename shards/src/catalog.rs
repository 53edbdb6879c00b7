//! The topic catalog: which topics exist, their ids, partition counts and config overrides.
//!
//! Owns: the immutable [`Catalog`] snapshot, topic-config validation and resolution against the broker
//! defaults, and the catalog's file on disk. Never: mutation of a published snapshot. Shard 0 is the
//! single writer: it builds a new snapshot with a higher version, persists it, and sends it to every
//! shard, which swaps its `Arc` (see `shard.rs`). Reading a snapshot needs no lock because nothing
//! changes it.
//!
//! File format (`<data-dir>/meta/topics`, written to a temporary file, fsynced, then renamed): one topic
//! per line, `<name> <topic id as 32 hex digits> <partition count> <key=value,...|->`. Topic names and the
//! config values we accept contain no spaces, commas or equals signs. The cluster id lives in
//! `<data-dir>/meta/cluster_id`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::storage::log::LogConfig;

/// Kafka's limit on topic name length.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Upper bound on partitions per topic: each one is a directory, open files and mappings.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

/// Broker-wide defaults, fixed at boot from the command line.
#[derive(Debug, Clone)]
pub struct BrokerDefaults {
    pub partitions: i32,
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub max_message_bytes: i64,
    pub index_interval_bytes: i64,
    pub auto_create_topics: bool,
}

/// How one topic config is described to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub is_default: bool,
    pub read_only: bool,
}

/// A config key we understand, with its default and its validator.
struct ConfigKey {
    name: &'static str,
    read_only: bool,
    default: fn(&BrokerDefaults) -> String,
    valid: fn(&str) -> bool,
}

fn is_long_at_least(value: &str, minimum: i64) -> bool {
    value.parse::<i64>().is_ok_and(|number| number >= minimum)
}

/// Every topic config FluxMQ accepts. `compact` is not offered: compaction is not implemented, and
/// accepting the setting would promise what the broker does not do.
const CONFIG_KEYS: &[ConfigKey] = &[
    ConfigKey {
        name: "cleanup.policy",
        read_only: false,
        default: |_| "delete".into(),
        valid: |value| value == "delete",
    },
    ConfigKey {
        name: "compression.type",
        read_only: false,
        default: |_| "producer".into(),
        valid: |value| value == "producer",
    },
    ConfigKey {
        name: "index.interval.bytes",
        read_only: false,
        default: |defaults| defaults.index_interval_bytes.to_string(),
        valid: |value| {
            is_long_at_least(value, 1)
                && value
                    .parse::<i64>()
                    .is_ok_and(|bytes| bytes <= i64::from(i32::MAX))
        },
    },
    ConfigKey {
        name: "max.message.bytes",
        read_only: false,
        default: |defaults| defaults.max_message_bytes.to_string(),
        valid: |value| {
            is_long_at_least(value, 0)
                && value
                    .parse::<i64>()
                    .is_ok_and(|bytes| bytes <= i64::from(i32::MAX))
        },
    },
    ConfigKey {
        name: "message.timestamp.type",
        read_only: false,
        default: |_| "CreateTime".into(),
        valid: |value| value == "CreateTime" || value == "LogAppendTime",
    },
    ConfigKey {
        name: "min.insync.replicas",
        read_only: false,
        default: |_| "1".into(),
        valid: |value| value == "1",
    },
    ConfigKey {
        name: "retention.bytes",
        read_only: false,
        default: |defaults| defaults.retention_bytes.to_string(),
        valid: |value| is_long_at_least(value, -1),
    },
    ConfigKey {
        name: "retention.ms",
        read_only: false,
        default: |defaults| defaults.retention_ms.to_string(),
        valid: |value| is_long_at_least(value, -1),
    },
    ConfigKey {
        name: "segment.bytes",
        read_only: false,
        default: |defaults| defaults.segment_bytes.to_string(),
        valid: |value| {
            value.parse::<i64>().is_ok_and(|bytes| {
                (SEGMENT_BYTES_MIN as i64..=i64::from(i32::MAX)).contains(&bytes)
            })
        },
    },
    ConfigKey {
        name: "segment.ms",
        read_only: false,
        default: |defaults| defaults.segment_ms.to_string(),
        valid: |value| is_long_at_least(value, 1),
    },
];

/// The smallest segment we allow: it must hold the largest default batch with room to spare.
pub const SEGMENT_BYTES_MIN: u64 = 2 * 1024 * 1024;

/// A topic's explicitly set configs. Keys are always among [`CONFIG_KEYS`] and values valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
}

/// Why a topic config was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown topic config {0}")]
    Unknown(String),
    #[error("invalid value {value:?} for topic config {name}")]
    InvalidValue { name: String, value: String },
}

impl TopicConfig {
    /// Validates and collects `(name, value)` pairs; a `None` value means "use the default".
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<TopicConfig, ConfigError> {
        let mut overrides = BTreeMap::new();
        for (name, value) in pairs {
            let key = CONFIG_KEYS
                .iter()
                .find(|key| key.name == name)
                .ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
            let Some(value) = value else { continue };
            if !(key.valid)(value) {
                return Err(ConfigError::InvalidValue {
                    name: name.to_string(),
                    value: value.to_string(),
                });
            }
            overrides.insert(key.name.to_string(), value.to_string());
        }
        Ok(TopicConfig { overrides })
    }

    fn value(&self, name: &str, defaults: &BrokerDefaults) -> String {
        match self.overrides.get(name) {
            Some(value) => value.clone(),
            None => {
                let key = CONFIG_KEYS
                    .iter()
                    .find(|key| key.name == name)
                    .expect("config key is known");
                (key.default)(defaults)
            }
        }
    }

    fn long(&self, name: &str, defaults: &BrokerDefaults) -> i64 {
        // Values were validated on the way in (and defaults are numbers), so this parse cannot fail.
        self.value(name, defaults)
            .parse()
            .expect("numeric config was validated")
    }

    /// The storage settings this topic's partitions run with.
    pub fn log_config(&self, defaults: &BrokerDefaults) -> LogConfig {
        LogConfig {
            segment_bytes: self.long("segment.bytes", defaults) as u64,
            segment_ms: self.long("segment.ms", defaults),
            index_interval_bytes: self.long("index.interval.bytes", defaults) as u32,
            log_append_time: self.value("message.timestamp.type", defaults) == "LogAppendTime",
            max_batch_bytes: self.long("max.message.bytes", defaults) as usize,
            retention_ms: self.long("retention.ms", defaults),
            retention_bytes: self.long("retention.bytes", defaults),
        }
    }

    /// Every config, as DescribeConfigs shows it.
    pub fn describe(&self, defaults: &BrokerDefaults) -> Vec<ConfigEntry> {
        CONFIG_KEYS
            .iter()
            .map(|key| ConfigEntry {
                name: key.name,
                value: self.value(key.name, defaults),
                is_default: !self.overrides.contains_key(key.name),
                read_only: key.read_only,
            })
            .collect()
    }

    fn encode(&self) -> String {
        if self.overrides.is_empty() {
            return "-".into();
        }
        let pairs: Vec<String> = self
            .overrides
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        pairs.join(",")
    }

    fn decode(text: &str) -> Result<TopicConfig, ConfigError> {
        if text == "-" {
            return Ok(TopicConfig::default());
        }
        let pairs = text.split(',').map(|pair| match pair.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (pair, None),
        });
        TopicConfig::from_pairs(pairs)
    }
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: Arc<str>,
    pub id: [u8; 16],
    pub partitions: i32,
    pub config: TopicConfig,
}

/// An immutable snapshot of all topics. Replaced as a whole, never changed in place, so the index by
/// topic id (Fetch v13+, OffsetCommit/OffsetFetch v10 and the KIP-848 assignor look topics up by id) is
/// built once with the snapshot and can never disagree with the map by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub version: u64,
    pub cluster_id: String,
    topics: BTreeMap<Arc<str>, Arc<TopicInfo>>,
    by_id: HashMap<[u8; 16], Arc<TopicInfo>>,
}

impl Catalog {
    pub fn new(
        version: u64,
        cluster_id: String,
        topics: BTreeMap<Arc<str>, Arc<TopicInfo>>,
    ) -> Catalog {
        let by_id = topics
            .values()
            .map(|topic| (topic.id, Arc::clone(topic)))
            .collect();
        Catalog {
            version,
            cluster_id,
            topics,
            by_id,
        }
    }

    /// Every topic, ordered by name.
    pub fn topics(&self) -> &BTreeMap<Arc<str>, Arc<TopicInfo>> {
        &self.topics
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicInfo>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &[u8; 16]) -> Option<&Arc<TopicInfo>> {
        self.by_id.get(id)
    }
}

/// Kafka's topic name rule: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= TOPIC_NAME_BYTES_MAX
        && name != "."
        && name != ".."
        && name.bytes().all(|byte| {
            byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'_' || byte == b'-'
        })
}

/// A new random topic or cluster id from the kernel's generator.
pub fn random_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    // getrandom(2) on 16 bytes never returns short once the pool is initialised; a failure means the
    // kernel cannot give entropy at all, which is a broken machine, not an operating error.
    let read = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
    assert_eq!(read, 16, "getrandom failed");
    // A zero id means "no id" in Kafka's protocol; make sure we never hand one out.
    id[0] |= 1;
    id
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (index, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(id)
}

/// Kafka's cluster id shape: 16 random bytes in URL-safe base64 without padding (22 characters).
fn cluster_id_text(id: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    let mut text = String::with_capacity(22);
    for &byte in id {
        bits = (bits << 8) | u32::from(byte);
        bit_count += 8;
        while bit_count >= 6 {
            bit_count -= 6;
            text.push(ALPHABET[((bits >> bit_count) & 63) as usize] as char);
        }
    }
    if bit_count > 0 {
        text.push(ALPHABET[((bits << (6 - bit_count)) & 63) as usize] as char);
    }
    text
}

/// The catalog's home on disk.
pub struct CatalogStore {
    dir: PathBuf,
}

impl CatalogStore {
    pub fn new(data_dir: &Path) -> CatalogStore {
        CatalogStore {
            dir: data_dir.join("meta"),
        }
    }

    /// Loads the catalog, creating an empty one (with a fresh cluster id) on first start.
    pub fn load(&self) -> std::io::Result<Catalog> {
        fs::create_dir_all(&self.dir)?;
        let cluster_path = self.dir.join("cluster_id");
        let cluster_id = match fs::read_to_string(&cluster_path) {
            Ok(text) => text.trim().to_string(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let id = cluster_id_text(&random_id());
                write_atomically(&cluster_path, id.as_bytes())?;
                id
            }
            Err(error) => return Err(error),
        };
        let mut topics = BTreeMap::new();
        let text = match fs::read_to_string(self.dir.join("topics")) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => return Err(error),
        };
        for (number, line) in text.lines().enumerate() {
            let topic = parse_topic_line(line).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{}: line {} is malformed: {line:?}",
                        self.dir.join("topics").display(),
                        number + 1
                    ),
                )
            })?;
            topics.insert(topic.name.clone(), Arc::new(topic));
        }
        Ok(Catalog::new(1, cluster_id, topics))
    }

    /// Persists the topic list durably (temporary file, fsync, rename, fsync of the directory).
    pub fn save(&self, catalog: &Catalog) -> std::io::Result<()> {
        let mut text = String::new();
        for topic in catalog.topics.values() {
            text.push_str(&format!(
                "{} {} {} {}\n",
                topic.name,
                hex(&topic.id),
                topic.partitions,
                topic.config.encode()
            ));
        }
        write_atomically(&self.dir.join("topics"), text.as_bytes())
    }
}

fn parse_topic_line(line: &str) -> Option<TopicInfo> {
    let mut fields = line.split(' ');
    let name = fields.next().filter(|name| valid_topic_name(name))?;
    let id = unhex(fields.next()?)?;
    let partitions = fields
        .next()?
        .parse()
        .ok()
        .filter(|count| (1..=PARTITIONS_PER_TOPIC_MAX).contains(count))?;
    let config = TopicConfig::decode(fields.next()?).ok()?;
    Some(TopicInfo {
        name: Arc::from(name),
        id,
        partitions,
        config,
    })
}

pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = fs::File::create(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> BrokerDefaults {
        BrokerDefaults {
            partitions: 1,
            segment_bytes: 64 << 20,
            segment_ms: 604_800_000,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            auto_create_topics: true,
        }
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(valid_topic_name("orders.v1_eu-west"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name("."));
        assert!(!valid_topic_name(".."));
        assert!(!valid_topic_name("has space"));
        assert!(!valid_topic_name(&"x".repeat(250)));
        assert!(valid_topic_name(&"x".repeat(249)));
    }

    #[test]
    fn configs_validate_and_resolve() {
        let config = TopicConfig::from_pairs([
            ("retention.ms", Some("1000")),
            ("message.timestamp.type", Some("LogAppendTime")),
        ])
        .unwrap();
        let log = config.log_config(&defaults());
        assert_eq!(log.retention_ms, 1000);
        assert!(log.log_append_time);
        assert_eq!(log.segment_bytes, 64 << 20);
        assert_eq!(
            TopicConfig::from_pairs([("cleanup.policy", Some("compact"))]),
            Err(ConfigError::InvalidValue {
                name: "cleanup.policy".into(),
                value: "compact".into()
            })
        );
        assert!(matches!(
            TopicConfig::from_pairs([("no.such", Some("1"))]),
            Err(ConfigError::Unknown(_))
        ));
        let described = config.describe(&defaults());
        let retention = described
            .iter()
            .find(|entry| entry.name == "retention.ms")
            .unwrap();
        assert_eq!(retention.value, "1000");
        assert!(!retention.is_default);
        assert!(
            described
                .iter()
                .find(|entry| entry.name == "segment.bytes")
                .unwrap()
                .is_default
        );
    }

    #[test]
    fn catalog_survives_a_round_trip_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = CatalogStore::new(dir.path());
        let mut catalog = store.load().unwrap();
        assert_eq!(catalog.cluster_id.len(), 22);
        let config = TopicConfig::from_pairs([("retention.ms", Some("5"))]).unwrap();
        let topic = TopicInfo {
            name: Arc::from("t"),
            id: random_id(),
            partitions: 3,
            config,
        };
        catalog
            .topics
            .insert(topic.name.clone(), Arc::new(topic.clone()));
        store.save(&catalog).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.cluster_id, catalog.cluster_id);
        assert_eq!(
            loaded.topic("t").map(|topic| (**topic).clone()),
            Some(topic)
        );
    }
}
