//! Test-only helpers shared by the storage unit tests: a builder that writes real v2 record batches
//! (optionally compressed, with a correct CRC-32C), a small deterministic pseudo-random generator, and
//! syncers for logs (one that works, one held up on purpose).
//!
//! Owns: nothing that ships. Must not touch: production code paths; it is compiled only for tests.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::batch::BATCH_HEADER_BYTES;
use super::index::SegmentIndex;
use super::syncer::{SealJob, Syncer};

/// How the builder encodes the records section; snappy comes in both framings clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    None,
    Gzip,
    SnappyXerial,
    SnappyRaw,
    Lz4,
    Zstd,
}

impl Codec {
    fn attribute_bits(self) -> i16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::SnappyXerial | Codec::SnappyRaw => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }
}

/// A batch of records with timestamps `base_timestamp + deltas[i]` and offset deltas `0..n`.
pub(crate) fn build_batch(
    base_timestamp: i64,
    timestamp_deltas: &[i64],
    value_bytes: usize,
    codec: Codec,
) -> Vec<u8> {
    assert!(!timestamp_deltas.is_empty());
    let mut records = Vec::new();
    for (index, delta) in timestamp_deltas.iter().enumerate() {
        let value: Vec<u8> = (0..value_bytes)
            .map(|byte| (byte + index * 7) as u8)
            .collect();
        encode_record(&mut records, *delta, index as i32, &value);
    }
    let payload = compress(&records, codec);
    let count = timestamp_deltas.len() as i32;
    let max_delta = timestamp_deltas.iter().copied().max().unwrap_or(0);
    let mut batch = Vec::with_capacity(BATCH_HEADER_BYTES + payload.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&((BATCH_HEADER_BYTES - 12 + payload.len()) as i32).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.push(2);
    batch.extend_from_slice(&0u32.to_be_bytes());
    batch.extend_from_slice(&codec.attribute_bits().to_be_bytes());
    batch.extend_from_slice(&(count - 1).to_be_bytes());
    batch.extend_from_slice(&base_timestamp.to_be_bytes());
    batch.extend_from_slice(&(base_timestamp + max_delta).to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes());
    batch.extend_from_slice(&(-1i16).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.extend_from_slice(&count.to_be_bytes());
    assert_eq!(batch.len(), BATCH_HEADER_BYTES);
    batch.extend_from_slice(&payload);
    fix_crc(&mut batch);
    batch
}

/// An uncompressed batch of `records_count` records, all at `base_timestamp + index`.
pub(crate) fn simple_batch(
    records_count: usize,
    value_bytes: usize,
    base_timestamp: i64,
) -> Vec<u8> {
    let deltas: Vec<i64> = (0..records_count as i64).collect();
    build_batch(base_timestamp, &deltas, value_bytes, Codec::None)
}

/// Recomputes the CRC-32C after a test edits covered bytes.
pub(crate) fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn encode_record(out: &mut Vec<u8>, timestamp_delta: i64, offset_delta: i32, value: &[u8]) {
    let mut body = vec![0u8]; // Attributes.
    put_varlong(&mut body, timestamp_delta);
    put_varlong(&mut body, i64::from(offset_delta));
    put_varlong(&mut body, -1); // Null key.
    put_varlong(&mut body, value.len() as i64);
    body.extend_from_slice(value);
    put_varlong(&mut body, 0); // No headers.
    put_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

pub(crate) fn compress(records: &[u8], codec: Codec) -> Vec<u8> {
    match codec {
        Codec::None => records.to_vec(),
        Codec::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(records).unwrap();
            encoder.finish().unwrap()
        }
        Codec::SnappyRaw => snap::raw::Encoder::new().compress_vec(records).unwrap(),
        Codec::SnappyXerial => {
            let mut out = vec![
                0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
            ];
            // Two blocks, so the block loop is exercised.
            let (first, second) = records.split_at(records.len() / 2);
            for block in [first, second] {
                let compressed = snap::raw::Encoder::new().compress_vec(block).unwrap();
                out.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            out
        }
        Codec::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(records).unwrap();
            encoder.finish().unwrap()
        }
        Codec::Zstd => zstd::encode_all(records, 3).unwrap(),
    }
}

/// Xorshift64: deterministic, so a failing test replays exactly.
pub(crate) struct Random(u64);

impl Random {
    pub(crate) fn new(seed: u64) -> Random {
        Random(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    pub(crate) fn fill(&mut self, bytes: &mut [u8]) {
        for byte in bytes {
            *byte = self.next() as u8;
        }
    }
}

/// A config with small sizes so tests roll often and run in milliseconds.
pub(crate) fn small_config(segment_bytes: u64) -> super::log::LogConfig {
    super::log::LogConfig {
        segment_bytes,
        segment_ms: i64::MAX / 4,
        index_interval_bytes: 512,
        log_append_time: false,
        max_batch_bytes: 4096.min(segment_bytes as usize),
        retention_ms: -1,
        retention_bytes: -1,
    }
}

/// What the log stores for `batch` appended at `base_offset`: the offset and leader epoch stamped in.
pub(crate) fn stored_copy(batch: &[u8], base_offset: i64) -> Vec<u8> {
    let mut stored = batch.to_vec();
    super::batch::set_base_offset(&mut stored, base_offset);
    super::batch::set_partition_leader_epoch(&mut stored, 0);
    stored
}

/// A syncer of its own for one test's logs, with a page-cache budget that never drops a segment.
pub(crate) fn syncer() -> std::rc::Rc<super::syncer::Syncer> {
    syncer_with_budget(u64::MAX)
}

/// A syncer of its own for one test's logs that keeps `page_cache_bytes` of sealed segments cached.
pub(crate) fn syncer_with_budget(page_cache_bytes: u64) -> std::rc::Rc<super::syncer::Syncer> {
    std::rc::Rc::new(super::syncer::Syncer::start("syncer-test", page_cache_bytes).unwrap())
}

/// Holds the syncer's thread until dropped: a seal job whose index goes to a named pipe blocks in
/// `open` until a reader opens the pipe.
pub(crate) struct BlockedSyncer {
    pipe: PathBuf,
    _dir: tempfile::TempDir,
}

impl BlockedSyncer {
    pub(crate) fn new(syncer: &Syncer) -> BlockedSyncer {
        let dir = tempfile::tempdir().unwrap();
        let data_path = dir.path().join("data");
        std::fs::write(&data_path, b"x").unwrap();
        let pipe = dir.path().join("00000000000000000000.index.tmp");
        let pipe_name = std::ffi::CString::new(pipe.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo touches no memory of ours.
        assert_eq!(unsafe { libc::mkfifo(pipe_name.as_ptr(), 0o600) }, 0);
        let mut index = SegmentIndex::new(0, 4096);
        index.on_batch(0, 0, 100, 0);
        syncer.submit(SealJob {
            data: Arc::new(File::open(&data_path).unwrap()),
            data_path,
            dir: dir.path().to_path_buf(),
            index,
            failed: Arc::new(AtomicBool::new(false)),
            evicted: Arc::new(AtomicBool::new(false)),
        });
        BlockedSyncer { pipe, _dir: dir }
    }
}

impl Drop for BlockedSyncer {
    fn drop(&mut self) {
        use std::io::Read;
        let mut bytes = Vec::new();
        File::open(&self.pipe)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
    }
}

/// Pages of `bytes` present in this process's page tables, from `/proc/self/pagemap` (bit 63 of
/// each page's 8-byte entry; readable without privileges, which only hide the frame numbers).
pub(crate) fn mapped_pages(bytes: &[u8]) -> usize {
    use std::io::{Read, Seek, SeekFrom};
    const PAGE: usize = 4096;
    let first = bytes.as_ptr() as usize / PAGE;
    let count = bytes.len().div_ceil(PAGE);
    let mut pagemap = File::open("/proc/self/pagemap").unwrap();
    pagemap.seek(SeekFrom::Start((first * 8) as u64)).unwrap();
    let mut entries = vec![0u8; count * 8];
    pagemap.read_exact(&mut entries).unwrap();
    entries
        .chunks_exact(8)
        .filter(|entry| u64::from_le_bytes((*entry).try_into().unwrap()) >> 63 == 1)
        .count()
}

/// Pages of the file at `path` that are in the page cache, from `mincore` on a fresh mapping of it
/// (the mapping only asks; it touches no page).
pub(crate) fn cached_pages(path: &std::path::Path) -> usize {
    let file = File::open(path).unwrap();
    let len = file.metadata().unwrap().len() as usize;
    if len == 0 {
        return 0;
    }
    // SAFETY: a read-only mapping of a file nobody truncates while the test holds it; only its
    // addresses are used, never its bytes.
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let mut residency = vec![0u8; len.div_ceil(4096)];
    // SAFETY: the range is the whole mapping, and `residency` has one byte per page of it.
    let result = unsafe {
        libc::mincore(
            map.as_ptr() as *mut libc::c_void,
            len,
            residency.as_mut_ptr(),
        )
    };
    assert_eq!(result, 0);
    residency.iter().filter(|status| **status & 1 == 1).count()
}

/// A temporary directory on a disk-backed file system: the page-cache budget tests need pages the
/// kernel can drop, which tmpfs pages are not. The workspace's target directory is one.
pub(crate) fn disk_tempdir() -> tempfile::TempDir {
    let parent = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-tmp");
    std::fs::create_dir_all(&parent).unwrap();
    tempfile::tempdir_in(parent).unwrap()
}
