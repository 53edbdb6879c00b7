//! Durable committed offsets: one append-only file per consumer group, replayed at start.
//!
//! Owns: the file format, appending commit and delete records, replay with torn-tail truncation,
//! compaction (rewrite when the file has grown well past its live content), and finding a shard's
//! groups by scanning the directory. Never: group membership (members and generations are not
//! durable, as in Kafka a restart makes every member rejoin), or deciding whether a commit is allowed.
//!
//! Layout: `<data-dir>/groups/<name>`, where `<name>` is the group id with every byte outside
//! `[A-Za-z0-9._-]` written as `%XX`, or `~<16 hex digits of the id's hash>` when that would exceed
//! `FILE_NAME_BYTES_MAX`. The group id itself is in the file's first record, so a shard that starts
//! with another shard count finds its groups by reading names (and, for hashed names, headers) and
//! hashing them with `router::shard_for_group`.
//!
//! File format: a sequence of records `[u32 payload length][u32 CRC-32C of payload][payload]`, all
//! big-endian. The payload starts with a kind byte:
//! - `1` header: `u16 format version (1)`, `string group id`, `u8 group type (0 classic, 1 consumer)`,
//!   `string protocol type`. The first record of every file; later headers update the type.
//! - `2` commit: `string topic`, `i32 partition`, `i64 offset`, `i32 leader epoch`,
//!   `i64 commit timestamp ms`, `i32 metadata length (-1 null)`, metadata bytes.
//! - `3` delete: `string topic`, `i32 partition`.
//!
//! Strings are `u16 length` + UTF-8. A record that is short or fails its CRC ends the file: replay
//! truncates there (a torn write from a crash), like the partition logs.
//!
//! Durability: appends are `write(2)` calls, so a commit is acknowledged once it is in the page cache,
//! as a produce is: it survives `kill -9`, not a power loss. Compaction writes a temporary file,
//! fsyncs it and renames it over the old one, so a crash leaves either file whole.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log::warn;

/// The longest file name we create; most file systems allow 255 bytes.
const FILE_NAME_BYTES_MAX: usize = 200;
/// A record's payload is at most a topic, a metadata string and a few integers; anything bigger in a
/// file is corruption, not a record.
const RECORD_BYTES_MAX: usize = 64 * 1024;
/// Compaction starts only past this size: below it, rewriting saves too little to be worth it.
const COMPACT_BYTES_MIN: u64 = 1024 * 1024;
/// ... and only when the file is this many times larger than its live records.
const COMPACT_GROWTH_FACTOR: u64 = 4;
/// Commit metadata we keep per partition: Kafka's offset.metadata.max.bytes default.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;
const FORMAT_VERSION: u16 = 1;

const KIND_HEADER: u8 = 1;
const KIND_COMMIT: u8 = 2;
const KIND_DELETE: u8 = 3;

/// Which protocol a stored group last used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredType {
    Classic,
    Consumer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetEntry {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp_ms: i64,
}

pub type Offsets = BTreeMap<(Arc<str>, i32), OffsetEntry>;

/// What replay found in one group's file.
#[derive(Debug)]
pub struct LoadedGroup {
    pub group_id: String,
    pub group_type: StoredType,
    pub protocol_type: String,
    pub offsets: Offsets,
}

/// One group's file: where it is and how large it has grown.
#[derive(Debug)]
pub struct GroupFile {
    path: PathBuf,
    size_bytes: u64,
    /// The size at which compaction is next considered; doubles after a check that found the file
    /// mostly live, so a group with many partitions does not re-measure on every commit.
    compact_check_bytes: u64,
}

/// The directory holding every group's file.
pub fn groups_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("groups")
}

/// The file name of a group (see the module comment).
pub fn file_name(group_id: &str) -> String {
    let mut name = String::with_capacity(group_id.len());
    for byte in group_id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    if name.len() > FILE_NAME_BYTES_MAX || name.is_empty() || name.starts_with('.') {
        return format!("~{:016x}", crate::router::group_hash(group_id));
    }
    name
}

/// The group id a file name stands for, when the name is not a hash (`None` then: read the header).
pub fn group_id_of(name: &str) -> Option<String> {
    if name.starts_with('~') || name.ends_with(".tmp") {
        return None;
    }
    let bytes = name.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let hex = name.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(byte);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

impl GroupFile {
    /// The file of a group that has none yet; nothing is written until the first record.
    pub fn new(data_dir: &Path, group_id: &str) -> GroupFile {
        GroupFile {
            path: groups_dir(data_dir).join(file_name(group_id)),
            size_bytes: 0,
            compact_check_bytes: COMPACT_BYTES_MIN,
        }
    }

    /// Appends records in one write: a header first when the file is new or the type changed.
    pub fn append(&mut self, records: &[Vec<u8>]) -> io::Result<()> {
        let mut buffer = Vec::new();
        for payload in records {
            frame(&mut buffer, payload);
        }
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&buffer)?;
        self.size_bytes += buffer.len() as u64;
        Ok(())
    }

    pub fn is_new(&self) -> bool {
        self.size_bytes == 0
    }

    /// Rewrites the file with only the live records when it has grown far past them.
    pub fn maybe_compact(&mut self, header: &[u8], offsets: &Offsets) -> io::Result<()> {
        if self.size_bytes < self.compact_check_bytes {
            return Ok(());
        }
        let mut live = Vec::new();
        frame(&mut live, header);
        for ((topic, partition), entry) in offsets {
            frame(&mut live, &commit_record(topic, *partition, entry));
        }
        if self.size_bytes < COMPACT_GROWTH_FACTOR * live.len() as u64 {
            self.compact_check_bytes = self.size_bytes * 2;
            return Ok(());
        }
        let temporary = self.path.with_extension("tmp");
        let mut file = File::create(&temporary)?;
        file.write_all(&live)?;
        file.sync_all()?;
        fs::rename(&temporary, &self.path)?;
        self.size_bytes = live.len() as u64;
        self.compact_check_bytes = COMPACT_BYTES_MIN.max(self.size_bytes * 2);
        Ok(())
    }

    /// Removes the file (DeleteGroups, or every offset expired).
    pub fn delete(&mut self) -> io::Result<()> {
        self.size_bytes = 0;
        match fs::remove_file(&self.path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

pub fn header_record(group_id: &str, group_type: StoredType, protocol_type: &str) -> Vec<u8> {
    let mut payload = vec![KIND_HEADER];
    payload.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    put_string(&mut payload, group_id);
    payload.push(match group_type {
        StoredType::Classic => 0,
        StoredType::Consumer => 1,
    });
    put_string(&mut payload, protocol_type);
    payload
}

pub fn commit_record(topic: &str, partition: i32, entry: &OffsetEntry) -> Vec<u8> {
    let mut payload = vec![KIND_COMMIT];
    put_string(&mut payload, topic);
    payload.extend_from_slice(&partition.to_be_bytes());
    payload.extend_from_slice(&entry.offset.to_be_bytes());
    payload.extend_from_slice(&entry.leader_epoch.to_be_bytes());
    payload.extend_from_slice(&entry.commit_timestamp_ms.to_be_bytes());
    match &entry.metadata {
        Some(metadata) => {
            payload.extend_from_slice(&(metadata.len() as i32).to_be_bytes());
            payload.extend_from_slice(metadata.as_bytes());
        }
        None => payload.extend_from_slice(&(-1i32).to_be_bytes()),
    }
    payload
}

pub fn delete_record(topic: &str, partition: i32) -> Vec<u8> {
    let mut payload = vec![KIND_DELETE];
    put_string(&mut payload, topic);
    payload.extend_from_slice(&partition.to_be_bytes());
    payload
}

fn put_string(payload: &mut Vec<u8>, text: &str) {
    // Group ids and topics come from decoded requests, whose strings are at most i16::MAX bytes.
    assert!(text.len() <= usize::from(u16::MAX));
    payload.extend_from_slice(&(text.len() as u16).to_be_bytes());
    payload.extend_from_slice(text.as_bytes());
}

fn frame(buffer: &mut Vec<u8>, payload: &[u8]) {
    assert!(payload.len() <= RECORD_BYTES_MAX);
    buffer.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buffer.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    buffer.extend_from_slice(payload);
}

/// Lists every group file with the group id it holds. Unreadable files are skipped with a warning.
pub fn scan(data_dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(groups_dir(data_dir)) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            // A compaction interrupted before its rename: the original file is still whole.
            let _ = fs::remove_file(entry.path());
            continue;
        }
        let group_id = match group_id_of(name) {
            Some(group_id) => group_id,
            None => match load(&entry.path()) {
                Ok((loaded, _)) => loaded.group_id,
                Err(error) => {
                    warn!("skipping group file {name}: {error}");
                    continue;
                }
            },
        };
        found.push((group_id, entry.path()));
    }
    found
}

/// Replays one group's file, truncating a torn tail, and returns its content and its open handle.
pub fn load(path: &Path) -> io::Result<(LoadedGroup, GroupFile)> {
    let bytes = fs::read(path)?;
    let mut cursor = Cursor {
        bytes: &bytes,
        position: 0,
    };
    let mut loaded: Option<LoadedGroup> = None;
    let mut good_end = 0;
    while let Some(payload) = cursor.record() {
        let Some(record) = parse(payload) else { break };
        match (record, &mut loaded) {
            (Record::Header(group_id, group_type, protocol_type), slot) => {
                let offsets = slot.take().map(|group| group.offsets).unwrap_or_default();
                *slot = Some(LoadedGroup {
                    group_id,
                    group_type,
                    protocol_type,
                    offsets,
                });
            }
            (Record::Commit(topic, partition, entry), Some(group)) => {
                group
                    .offsets
                    .insert((Arc::from(topic.as_str()), partition), entry);
            }
            (Record::Delete(topic, partition), Some(group)) => {
                group
                    .offsets
                    .remove(&(Arc::from(topic.as_str()), partition));
            }
            (_, None) => break,
        }
        good_end = cursor.position;
    }
    let Some(loaded) = loaded else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no header record",
        ));
    };
    if good_end < bytes.len() {
        warn!(
            "group {}: truncating a torn tail of {} bytes",
            loaded.group_id,
            bytes.len() - good_end
        );
        OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(good_end as u64)?;
    }
    let file = GroupFile {
        path: path.to_path_buf(),
        size_bytes: good_end as u64,
        compact_check_bytes: COMPACT_BYTES_MIN.max(good_end as u64 * 2),
    };
    Ok((loaded, file))
}

enum Record {
    Header(String, StoredType, String),
    Commit(String, i32, OffsetEntry),
    Delete(String, i32),
}

struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(length)?;
        let slice = self.bytes.get(self.position..end)?;
        self.position = end;
        Some(slice)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let length = usize::from(self.u16()?);
        String::from_utf8(self.take(length)?.to_vec()).ok()
    }

    /// The next whole record whose CRC matches, or `None` at the end or at a torn or corrupt record.
    fn record(&mut self) -> Option<&'a [u8]> {
        let length = u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize;
        let crc = u32::from_be_bytes(self.take(4)?.try_into().ok()?);
        if length > RECORD_BYTES_MAX {
            return None;
        }
        let payload = self.take(length)?;
        (crc32c::crc32c(payload) == crc).then_some(payload)
    }
}

fn parse(payload: &[u8]) -> Option<Record> {
    let mut cursor = Cursor {
        bytes: payload,
        position: 0,
    };
    let record = match cursor.u8()? {
        KIND_HEADER => {
            if cursor.u16()? != FORMAT_VERSION {
                return None;
            }
            let group_id = cursor.string()?;
            let group_type = match cursor.u8()? {
                0 => StoredType::Classic,
                1 => StoredType::Consumer,
                _ => return None,
            };
            Record::Header(group_id, group_type, cursor.string()?)
        }
        KIND_COMMIT => {
            let topic = cursor.string()?;
            let partition = cursor.i32()?;
            let offset = cursor.i64()?;
            let leader_epoch = cursor.i32()?;
            let commit_timestamp_ms = cursor.i64()?;
            let metadata = match cursor.i32()? {
                -1 => None,
                length => {
                    let length = usize::try_from(length).ok()?;
                    Some(String::from_utf8(cursor.take(length)?.to_vec()).ok()?)
                }
            };
            let entry = OffsetEntry {
                offset,
                leader_epoch,
                metadata,
                commit_timestamp_ms,
            };
            Record::Commit(topic, partition, entry)
        }
        KIND_DELETE => Record::Delete(cursor.string()?, cursor.i32()?),
        _ => return None,
    };
    Some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: i64, metadata: Option<&str>) -> OffsetEntry {
        OffsetEntry {
            offset,
            leader_epoch: 3,
            metadata: metadata.map(str::to_string),
            commit_timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn names_round_trip_and_long_ids_hash() {
        for id in ["orders", "a b/c", "ünï", "-x.y_z"] {
            assert_eq!(group_id_of(&file_name(id)).as_deref(), Some(id));
        }
        let long = "g".repeat(500);
        assert!(file_name(&long).starts_with('~'));
        assert_eq!(group_id_of(&file_name(&long)), None);
        assert!(file_name(".hidden").starts_with('~'));
        assert!(!file_name("a/b").contains('/'));
    }

    #[test]
    fn replay_applies_commits_and_deletes_and_truncates_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = GroupFile::new(dir.path(), "g 1");
        file.append(&[
            header_record("g 1", StoredType::Classic, "consumer"),
            commit_record("t", 0, &entry(5, Some("meta"))),
            commit_record("t", 1, &entry(7, None)),
        ])
        .unwrap();
        file.append(&[
            commit_record("t", 0, &entry(9, None)),
            delete_record("t", 1),
        ])
        .unwrap();
        let path = groups_dir(dir.path()).join(file_name("g 1"));
        let whole = fs::metadata(&path).unwrap().len();
        // A torn record at the end: a length and half a payload.
        let mut raw = OpenOptions::new().append(true).open(&path).unwrap();
        raw.write_all(&[0, 0, 0, 40, 1, 2, 3]).unwrap();
        let (loaded, reopened) = load(&path).unwrap();
        assert_eq!(loaded.group_id, "g 1");
        assert_eq!(loaded.group_type, StoredType::Classic);
        assert_eq!(loaded.protocol_type, "consumer");
        assert_eq!(loaded.offsets.len(), 1);
        assert_eq!(loaded.offsets[&(Arc::from("t"), 0)], entry(9, None));
        assert_eq!(reopened.size_bytes, whole);
        assert_eq!(fs::metadata(&path).unwrap().len(), whole);
        let scanned = scan(dir.path());
        assert_eq!(scanned.len(), 1);
        assert_eq!(scanned[0].0, "g 1");
    }

    #[test]
    fn a_flipped_byte_ends_replay_at_that_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = GroupFile::new(dir.path(), "g");
        file.append(&[
            header_record("g", StoredType::Consumer, "consumer"),
            commit_record("t", 0, &entry(1, None)),
            commit_record("t", 0, &entry(2, None)),
        ])
        .unwrap();
        let path = groups_dir(dir.path()).join("g");
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let (loaded, _) = load(&path).unwrap();
        assert_eq!(loaded.offsets[&(Arc::from("t"), 0)].offset, 1);
        assert_eq!(loaded.group_type, StoredType::Consumer);
    }

    #[test]
    fn compaction_keeps_only_live_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = GroupFile::new(dir.path(), "g");
        let header = header_record("g", StoredType::Classic, "consumer");
        file.append(std::slice::from_ref(&header)).unwrap();
        let mut offsets = Offsets::new();
        for offset in 0..40_000 {
            let latest = entry(offset, None);
            file.append(&[commit_record("t", 0, &latest)]).unwrap();
            offsets.insert((Arc::from("t"), 0), latest);
            file.maybe_compact(&header, &offsets).unwrap();
        }
        assert!(file.size_bytes < COMPACT_BYTES_MIN);
        let (loaded, _) = load(&groups_dir(dir.path()).join("g")).unwrap();
        assert_eq!(loaded.offsets, offsets);
    }
}
