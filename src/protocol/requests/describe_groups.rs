//! DescribeGroups request (key 15), versions 0–6; flexible from v5. `include_authorized_operations`
//! from v3.
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::GROUPS_PER_REQUEST_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupsRequest {
    pub groups: Vec<String>,
    /// v3+; false before.
    pub include_authorized_operations: bool,
}

impl DescribeGroupsRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 6;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::DescribeGroups,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let groups = reader.array(flexible, GROUPS_PER_REQUEST_MAX, |reader| {
            reader.string(flexible)
        })?;
        let include_authorized_operations = if version >= 3 {
            reader.boolean()?
        } else {
            false
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            groups,
            include_authorized_operations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use kafka_protocol::messages::{DescribeGroupsRequest as Oracle, GroupId};

    fn oracle(version: i16) -> Oracle {
        let request = Oracle::default().with_groups(vec![GroupId(text("a")), GroupId(text("b-2"))]);
        if version >= 3 {
            request.with_include_authorized_operations(true)
        } else {
            request
        }
    }

    fn assert_same(ours: &DescribeGroupsRequest, theirs: &Oracle, _version: i16) {
        let groups: Vec<&str> = theirs.groups.iter().map(|group| group.0.as_str()).collect();
        assert_eq!(ours.groups, groups);
        assert_eq!(
            ours.include_authorized_operations,
            theirs.include_authorized_operations
        );
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = DescribeGroupsRequest::VERSION_MIN..=DescribeGroupsRequest::VERSION_MAX;
        check_every_version(versions, oracle, DescribeGroupsRequest::decode, assert_same);
    }
}
