//! Transactions and producer ids: the transaction coordinator state of the transactional ids this
//! shard owns, its append-only state file, and (on shard 0) the producer id allocator.
//!
//! Owns: the state machine of each transactional id (Kafka's `TransactionMetadata`: Empty → Ongoing →
//! PrepareCommit/PrepareAbort → CompleteCommit/CompleteAbort), its persistence, and producer ids that
//! never repeat across restarts. Never: partitions (markers are written by their owners over the mesh,
//! see `coordinator.rs`), Kafka error codes, or another shard's transactional ids.
//!
//! State file `<data-dir>/meta/transactions-<shard>`: one line per persisted change, the whole state of
//! one transactional id, the last line for an id wins (its `version` breaks ties between files when the
//! shard count changed). A torn last line is ignored. Fields, space separated:
//!
//! ```text
//! <version> <transactional id, hex> <producer id> <epoch> <timeout ms> <state> <start ms>
//!     <partition count> (<topic> <partition>)... <group count> (<group id, hex> <offset count>
//!     (<topic> <partition> <offset> <leader epoch> <metadata, hex, or ~ for null>)...)...
//! ```
//!
//! Durability matches produce: a line is written (page cache) before the change is acknowledged, so
//! it survives the process being killed.

pub mod coordinator;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log::warn;

use crate::mesh::{CommitOffset, TxnError, TxnSummary};
use crate::router::shard_for_transactional_id;
use crate::{ShardId, TopicPartition};

/// Kafka's `transaction.max.timeout.ms` default: InitProducerId asking for a longer transaction
/// timeout is refused with INVALID_TRANSACTION_TIMEOUT. Bounds how long an abandoned transaction can
/// hold back the last stable offset.
pub const TRANSACTION_TIMEOUT_MS_MAX: i32 = 900_000;
/// Producer ids reserved per write of the allocator file: one fsync per thousand producers, and a
/// crash wastes at most a thousand ids of the 2^63.
pub const PRODUCER_ID_BLOCK: i64 = 1_000;
/// Transactional ids one shard coordinates. Each costs a few hundred bytes; Kafka expires idle ids
/// after 7 days instead, which we do not do yet, so this is the bound.
pub const TRANSACTIONAL_IDS_PER_SHARD_MAX: usize = 1_000_000;
/// The state file is rewritten with one line per id once it holds this many lines more than that.
const STATE_FILE_SLACK_LINES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    /// Kafka's names, as DescribeTransactions and ListTransactions report them.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    fn from_name(name: &str) -> Option<TxnState> {
        [
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::PrepareAbort,
            TxnState::CompleteCommit,
            TxnState::CompleteAbort,
        ]
        .into_iter()
        .find(|state| state.name() == name)
    }
}

/// One transactional id's coordinator state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    /// Groups added by AddOffsetsToTxn, each with the offsets TxnOffsetCommit gave it so far (by
    /// partition); they reach the group when the transaction commits.
    pub groups: BTreeMap<String, BTreeMap<(Arc<str>, i32), CommitOffset>>,
    /// When the open transaction began (broker clock), -1 when none is open.
    pub start_ms: i64,
    /// Incremented with every persisted change.
    pub version: u64,
    /// Markers are being written for this id (not persisted: a restart finds Prepare* and resumes).
    pub busy: bool,
}

impl TxnMetadata {
    pub fn summary(&self) -> TxnSummary {
        TxnSummary {
            state: self.state.name(),
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            start_time_ms: self.start_ms,
            partitions: self.partitions.iter().cloned().collect(),
        }
    }

    /// Checks that a request names the current producer of this id.
    pub fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if producer_epoch != self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }
}

/// The coordinator's map plus its state file.
pub struct TxnTable {
    pub entries: HashMap<String, TxnMetadata>,
    /// Latest lines found in our file for ids other shards own (after a change of shard count); kept
    /// when the file is rewritten so the owner can still load them.
    foreign_lines: Vec<String>,
    file: Option<File>,
    path: PathBuf,
    lines_in_file: usize,
}

impl TxnTable {
    /// Loads the ids `shard` owns from every shard's state file and rewrites this shard's file.
    pub fn load(data_dir: &Path, shard: ShardId, shard_count: usize) -> std::io::Result<TxnTable> {
        let dir = data_dir.join("meta");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("transactions-{}", shard.0));
        let mut latest: HashMap<String, (TxnMetadata, String, bool)> = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with("transactions-") || name.ends_with(".tmp") {
                continue;
            }
            let ours = entry.path() == path;
            let text = std::fs::read_to_string(entry.path())?;
            for line in text.lines() {
                let Some((id, metadata)) = parse_line(line) else {
                    warn!("{}: skipping an unreadable line", entry.path().display());
                    continue;
                };
                let newer = latest
                    .get(&id)
                    .is_none_or(|(current, _, _)| metadata.version > current.version);
                if newer {
                    latest.insert(id, (metadata, line.to_string(), ours));
                }
            }
        }
        let mut table = TxnTable {
            entries: HashMap::new(),
            foreign_lines: Vec::new(),
            file: None,
            path,
            lines_in_file: 0,
        };
        for (id, (metadata, line, in_our_file)) in latest {
            if shard_for_transactional_id(&id, shard_count) == shard {
                table.entries.insert(id, metadata);
            } else if in_our_file {
                table.foreign_lines.push(line);
            }
        }
        table.rewrite()?;
        Ok(table)
    }

    /// Persists the state of `id` (which must be in the map), bumping its version.
    pub fn persist(&mut self, id: &str) -> Result<(), TxnError> {
        let Some(metadata) = self.entries.get_mut(id) else {
            unreachable!("persist of an unknown transactional id");
        };
        metadata.version += 1;
        let line = format_line(id, metadata);
        let result = match self.file.as_mut() {
            Some(file) => file.write_all(line.as_bytes()),
            None => Err(std::io::Error::other("the state file is not open")),
        };
        result.map_err(|error| TxnError::Storage(format!("{}: {error}", self.path.display())))?;
        self.lines_in_file += 1;
        if self.lines_in_file
            > self.entries.len() + self.foreign_lines.len() + STATE_FILE_SLACK_LINES
        {
            if let Err(error) = self.rewrite() {
                warn!("cannot compact {}: {error}", self.path.display());
            }
        }
        Ok(())
    }

    /// Rewrites the state file with one line per id, atomically, and reopens it for appending.
    fn rewrite(&mut self) -> std::io::Result<()> {
        let mut text = String::new();
        for (id, metadata) in &self.entries {
            text.push_str(&format_line(id, metadata));
        }
        for line in &self.foreign_lines {
            text.push_str(line);
            text.push('\n');
        }
        crate::catalog::write_atomically(&self.path, text.as_bytes())?;
        self.file = Some(OpenOptions::new().append(true).open(&self.path)?);
        self.lines_in_file = self.entries.len() + self.foreign_lines.len();
        Ok(())
    }
}

fn format_line(id: &str, metadata: &TxnMetadata) -> String {
    let mut line = format!(
        "{} {} {} {} {} {} {} {}",
        metadata.version,
        hex(id),
        metadata.producer_id,
        metadata.producer_epoch,
        metadata.timeout_ms,
        metadata.state.name(),
        metadata.start_ms,
        metadata.partitions.len()
    );
    for partition in &metadata.partitions {
        let _ = write!(line, " {} {}", partition.topic, partition.partition);
    }
    let _ = write!(line, " {}", metadata.groups.len());
    for (group, offsets) in &metadata.groups {
        let _ = write!(line, " {} {}", hex(group), offsets.len());
        for pending in offsets.values() {
            let _ = write!(
                line,
                " {} {} {} {} {}",
                pending.topic,
                pending.partition,
                pending.offset,
                pending.leader_epoch,
                pending.metadata.as_deref().map_or("~".into(), hex)
            );
        }
    }
    line.push('\n');
    line
}

fn parse_line(line: &str) -> Option<(String, TxnMetadata)> {
    let mut fields = line.split(' ');
    let version = fields.next()?.parse().ok()?;
    let id = unhex(fields.next()?)?;
    let producer_id = fields.next()?.parse().ok()?;
    let producer_epoch = fields.next()?.parse().ok()?;
    let timeout_ms = fields.next()?.parse().ok()?;
    let state = TxnState::from_name(fields.next()?)?;
    let start_ms = fields.next()?.parse().ok()?;
    let partition_count: usize = fields.next()?.parse().ok()?;
    let mut partitions = BTreeSet::new();
    for _ in 0..partition_count {
        let topic: Arc<str> = Arc::from(fields.next()?);
        let partition = fields.next()?.parse().ok()?;
        partitions.insert(TopicPartition { topic, partition });
    }
    let group_count: usize = fields.next()?.parse().ok()?;
    let mut groups = BTreeMap::new();
    for _ in 0..group_count {
        let group = unhex(fields.next()?)?;
        let offset_count: usize = fields.next()?.parse().ok()?;
        let mut offsets = BTreeMap::new();
        for _ in 0..offset_count {
            let topic: Arc<str> = Arc::from(fields.next()?);
            let partition: i32 = fields.next()?.parse().ok()?;
            let offset = fields.next()?.parse().ok()?;
            let leader_epoch = fields.next()?.parse().ok()?;
            let metadata = match fields.next()? {
                "~" => None,
                text => Some(unhex(text)?),
            };
            let pending = CommitOffset {
                topic: topic.clone(),
                partition,
                offset,
                leader_epoch,
                metadata,
            };
            offsets.insert((topic, partition), pending);
        }
        groups.insert(group, offsets);
    }
    if fields.next().is_some() {
        return None;
    }
    let metadata = TxnMetadata {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        groups,
        start_ms,
        version,
        busy: false,
    };
    Some((id, metadata))
}

/// Ids and group names may hold any character, spaces and newlines included; hex keeps lines whole.
/// An empty string is written as `-`.
fn hex(text: &str) -> String {
    if text.is_empty() {
        return "-".into();
    }
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if text == "-" {
        return Some(String::new());
    }
    if text.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Shard 0's producer id source. The file `<data-dir>/meta/producer-ids` holds the first id not yet
/// reserved; a block is reserved (written and fsynced) before any id in it is handed out, so ids never
/// repeat, even after a crash.
pub struct ProducerIdAllocator {
    path: PathBuf,
    next: i64,
    reserved_end: i64,
}

impl ProducerIdAllocator {
    pub fn load(data_dir: &Path) -> std::io::Result<ProducerIdAllocator> {
        let dir = data_dir.join("meta");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("producer-ids");
        let reserved_end = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<i64>().map_err(|error| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {error}", path.display()),
                )
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error),
        };
        Ok(ProducerIdAllocator {
            path,
            next: reserved_end,
            reserved_end,
        })
    }

    pub fn allocate(&mut self) -> Result<i64, TxnError> {
        if self.next == self.reserved_end {
            let end = self.reserved_end + PRODUCER_ID_BLOCK;
            crate::catalog::write_atomically(&self.path, format!("{end}\n").as_bytes())
                .map_err(|error| TxnError::Storage(format!("{}: {error}", self.path.display())))?;
            self.reserved_end = end;
        }
        let id = self.next;
        self.next += 1;
        assert!(self.next <= self.reserved_end);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(state: TxnState) -> TxnMetadata {
        TxnMetadata {
            producer_id: 12,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state,
            partitions: [TopicPartition {
                topic: Arc::from("orders"),
                partition: 2,
            }]
            .into(),
            groups: [(
                "group one\n".to_string(),
                [(
                    (Arc::from("orders"), 2),
                    CommitOffset {
                        topic: Arc::from("orders"),
                        partition: 2,
                        offset: 41,
                        leader_epoch: -1,
                        metadata: Some("m d".into()),
                    },
                )]
                .into(),
            )]
            .into(),
            start_ms: 77,
            version: 0,
            busy: false,
        }
    }

    #[test]
    fn producer_ids_never_repeat_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut allocator = ProducerIdAllocator::load(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| allocator.allocate().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        let mut restarted = ProducerIdAllocator::load(dir.path()).unwrap();
        assert_eq!(restarted.allocate().unwrap(), PRODUCER_ID_BLOCK);
    }

    #[test]
    fn state_lines_round_trip_and_the_latest_version_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut table = TxnTable::load(dir.path(), ShardId(0), 1).unwrap();
        let id = "tx ß\n1";
        table.entries.insert(id.into(), metadata(TxnState::Empty));
        table.persist(id).unwrap();
        table.entries.get_mut(id).unwrap().state = TxnState::Ongoing;
        table.persist(id).unwrap();
        drop(table);
        let loaded = TxnTable::load(dir.path(), ShardId(0), 1).unwrap();
        let mut expected = metadata(TxnState::Ongoing);
        expected.version = 2;
        assert_eq!(loaded.entries.get(id), Some(&expected));
        // With two shards, the id moves to its new owner, which finds it in the old owner's file.
        let owner = shard_for_transactional_id(id, 2);
        let other = ShardId(1 - owner.0);
        let mine = TxnTable::load(dir.path(), owner, 2).unwrap();
        let theirs = TxnTable::load(dir.path(), other, 2).unwrap();
        assert!(mine.entries.contains_key(id));
        assert!(theirs.entries.is_empty());
    }

    #[test]
    fn torn_lines_are_skipped() {
        assert!(parse_line("3 6162 1 0 100 Ongoing 5 1 t").is_none());
        assert!(parse_line("3 6162 1 0 100 Bogus 5 0 0").is_none());
        let (id, parsed) = parse_line("3 6162 1 0 100 Ongoing 5 1 t 0 1 67 1 t 0 9 -1 ~").unwrap();
        assert_eq!(parsed.groups["g"].len(), 1);
        assert_eq!(id, "ab");
        assert_eq!(parsed.partitions.len(), 1);
    }
}
