//! ConsumerGroupDescribe request (key 69, KIP-848), versions 0–1; always flexible.
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::GROUPS_PER_REQUEST_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescribeRequest {
    pub group_ids: Vec<String>,
    pub include_authorized_operations: bool,
}

impl ConsumerGroupDescribeRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 1;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::ConsumerGroupDescribe,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let group_ids = reader.array(flexible, GROUPS_PER_REQUEST_MAX, |reader| {
            reader.string(flexible)
        })?;
        let include_authorized_operations = reader.boolean()?;
        reader.skip_tagged_fields()?;
        Ok(Self {
            group_ids,
            include_authorized_operations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use kafka_protocol::messages::{ConsumerGroupDescribeRequest as Oracle, GroupId};

    fn oracle(_version: i16) -> Oracle {
        Oracle::default()
            .with_group_ids(vec![GroupId(text("g1")), GroupId(text("g2"))])
            .with_include_authorized_operations(true)
    }

    fn assert_same(ours: &ConsumerGroupDescribeRequest, theirs: &Oracle, _version: i16) {
        let ids: Vec<&str> = theirs.group_ids.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(ours.group_ids, ids);
        assert!(ours.include_authorized_operations);
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions =
            ConsumerGroupDescribeRequest::VERSION_MIN..=ConsumerGroupDescribeRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            ConsumerGroupDescribeRequest::decode,
            assert_same,
        );
    }
}
