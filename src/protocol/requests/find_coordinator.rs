//! FindCoordinator request (key 10), versions 0–6; flexible from v3. Versions 0–3 ask for one `key`;
//! versions 4–6 batch `coordinator_keys`. `key_type` (v1+) is 0 for groups, 1 for transactions.
//!
//! Owns: decoding the body. Never: deciding who coordinates, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::COORDINATOR_KEYS_PER_REQUEST_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindCoordinatorRequest {
    /// v0–3; empty from v4.
    pub key: String,
    /// v1+; 0 (group) before.
    pub key_type: i8,
    /// v4+; empty before.
    pub coordinator_keys: Vec<String>,
}

impl FindCoordinatorRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 6;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::FindCoordinator,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let key = if version <= 3 {
            reader.string(flexible)?
        } else {
            String::new()
        };
        let key_type = if version >= 1 { reader.i8()? } else { 0 };
        let coordinator_keys = if version >= 4 {
            reader.array(flexible, COORDINATOR_KEYS_PER_REQUEST_MAX, |reader| {
                reader.string(flexible)
            })?
        } else {
            Vec::new()
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            key,
            key_type,
            coordinator_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{assert_count_rejected, check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::FindCoordinatorRequest as Oracle;

    fn oracle(version: i16) -> Oracle {
        let mut request = Oracle::default();
        if version <= 3 {
            request = request.with_key(text("my-group"));
        } else {
            request = request.with_coordinator_keys(vec![text("g1"), text("ünï-g2")]);
        }
        if version >= 1 {
            request = request.with_key_type(1);
        }
        if version >= 3 {
            request = request.with_unknown_tagged_field(3, Bytes::from_static(b"x"));
        }
        request
    }

    fn assert_same(ours: &FindCoordinatorRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.key, theirs.key.as_str());
        assert_eq!(ours.key_type, theirs.key_type);
        let keys: Vec<&str> = theirs.coordinator_keys.iter().map(|k| k.as_str()).collect();
        assert_eq!(ours.coordinator_keys, keys);
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = FindCoordinatorRequest::VERSION_MIN..=FindCoordinatorRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            FindCoordinatorRequest::decode,
            assert_same,
        );
    }

    #[test]
    fn huge_key_count_fails_without_allocating() {
        let body = Bytes::from_static(&[0, 0x80, 0x80, 0x80, 0x80, 0x08, 0]);
        assert_count_rejected(
            FindCoordinatorRequest::decode(&mut Reader::new(body), 4),
            0x7fff_ffff,
        );
    }
}
