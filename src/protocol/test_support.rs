//! Test helpers for the decoders: the `kafka-protocol` crate as the encoding oracle, truncation sweeps and a
//! deterministic byte-flipping loop.
//!
//! Owns: test-only code, compiled under `cfg(test)`. Never: anything the broker runs.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::fmt::Debug;
use std::ops::RangeInclusive;
use std::str::FromStr;

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::reader::{DecodeError, Reader};

/// Encodes a request body with the oracle.
pub fn encode<R: Encodable>(request: &R, version: i16) -> Bytes {
    let mut body = BytesMut::new();
    request
        .encode(&mut body, version)
        .expect("the oracle encodes its own request");
    body.freeze()
}

pub fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// A UUID for the oracle, built through `FromStr` so the tests need no direct dependency on the `uuid` crate.
pub fn uuid<T: FromStr>(seed: u8) -> T
where
    T::Err: Debug,
{
    let hex: String = uuid_bytes(seed)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    hex.parse().expect("32 hex digits parse as a UUID")
}

/// The raw bytes `uuid(seed)` stands for.
pub fn uuid_bytes(seed: u8) -> [u8; 16] {
    std::array::from_fn(|index| seed.wrapping_mul(31).wrapping_add(index as u8))
}

/// For every version: encode the oracle's request, decode it with ours, check that the whole body was consumed and
/// that every field matches, then sweep truncations and random corruption over the same encoding.
pub fn check_every_version<O: Encodable, T: Debug>(
    versions: RangeInclusive<i16>,
    oracle: impl Fn(i16) -> O,
    decode: impl Fn(&mut Reader, i16) -> Result<T, DecodeError>,
    assert_same: impl Fn(&T, &O, i16),
) {
    for version in versions {
        let theirs = oracle(version);
        let body = encode(&theirs, version);
        let mut reader = Reader::new(body.clone());
        let ours =
            decode(&mut reader, version).unwrap_or_else(|error| panic!("v{version}: {error}"));
        assert_eq!(reader.remaining(), 0, "v{version}: body not fully consumed");
        assert_same(&ours, &theirs, version);
        assert_every_truncation_fails(&body, |prefix| decode(&mut Reader::new(prefix), version));
        assert_random_flips_never_panic(&body, version, |mutated| {
            decode(&mut Reader::new(mutated), version)
        });
    }
}

/// Every strict prefix of a valid encoding must decode to an error: all fields of a version are mandatory.
pub fn assert_every_truncation_fails<T: Debug>(
    encoded: &Bytes,
    decode: impl Fn(Bytes) -> Result<T, DecodeError>,
) {
    for length in 0..encoded.len() {
        let result = decode(encoded.slice(..length));
        assert!(
            result.is_err(),
            "prefix of {length}/{} bytes decoded: {result:?}",
            encoded.len()
        );
    }
}

/// Flips a few random bytes of a valid encoding, many times over, with a fixed seed. Any result is fine as long as
/// the decoder returns.
pub fn assert_random_flips_never_panic<T>(
    encoded: &Bytes,
    seed: i16,
    decode: impl Fn(Bytes) -> Result<T, DecodeError>,
) {
    const ITERATIONS: usize = 1_000;
    if encoded.is_empty() {
        return;
    }
    let mut random = XorShift::new(0x9e37_79b9_7f4a_7c15 ^ (seed as u64));
    for _ in 0..ITERATIONS {
        let mut mutated = encoded.to_vec();
        let flips = 1 + random.below(3);
        for _ in 0..flips {
            let position = random.below(mutated.len());
            mutated[position] ^= (random.next_u64() as u8) | 1;
        }
        // Sometimes cut the tail too, so corrupted lengths meet short input.
        if random.below(4) == 0 {
            let length = random.below(mutated.len());
            mutated.truncate(length);
        }
        let _ = decode(Bytes::from(mutated));
    }
}

/// A tiny deterministic generator (xorshift64), so the corruption loop needs no dependency and always replays.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

/// A lying count must be rejected by the count check itself, before any element is allocated: the error names
/// the count.
pub fn assert_count_rejected<T: Debug>(result: Result<T, DecodeError>, count: usize) {
    let rejected = match &result {
        Err(DecodeError::Truncated { needed, .. }) => *needed == count,
        Err(DecodeError::LengthTooLarge { length, .. }) => *length == count,
        _ => false,
    };
    assert!(rejected, "count {count}: {result:?}");
}

/// Bytes from hex digits: golden encodings taken from kafka-clients for versions the oracle crate cannot encode.
pub fn from_hex(text: &str) -> Bytes {
    assert!(text.len() % 2 == 0, "odd number of hex digits");
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).expect("hex digits"))
        .collect::<Vec<u8>>()
        .into()
}

/// `check_every_version` for one golden encoding: decode it whole, then sweep truncations and random corruption
/// over it. Returns what was decoded, for the caller to compare field by field.
pub fn check_golden<T: Debug>(
    version: i16,
    encoded: &str,
    decode: impl Fn(&mut Reader, i16) -> Result<T, DecodeError>,
) -> T {
    let body = from_hex(encoded);
    let mut reader = Reader::new(body.clone());
    let ours = decode(&mut reader, version).unwrap_or_else(|error| panic!("v{version}: {error}"));
    assert_eq!(reader.remaining(), 0, "v{version}: body not fully consumed");
    assert_every_truncation_fails(&body, |prefix| decode(&mut Reader::new(prefix), version));
    assert_random_flips_never_panic(&body, version, |mutated| {
        decode(&mut Reader::new(mutated), version)
    });
    ours
}
