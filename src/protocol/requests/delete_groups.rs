//! DeleteGroups request (key 42), versions 0–2; flexible from v2.
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::GROUPS_PER_REQUEST_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteGroupsRequest {
    pub groups_names: Vec<String>,
}

impl DeleteGroupsRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 2;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::DeleteGroups,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let groups_names = reader.array(flexible, GROUPS_PER_REQUEST_MAX, |reader| {
            reader.string(flexible)
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self { groups_names })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use kafka_protocol::messages::{DeleteGroupsRequest as Oracle, GroupId};

    fn oracle(_version: i16) -> Oracle {
        Oracle::default().with_groups_names(vec![GroupId(text("a")), GroupId(text("bb"))])
    }

    fn assert_same(ours: &DeleteGroupsRequest, theirs: &Oracle, _version: i16) {
        let names: Vec<&str> = theirs.groups_names.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(ours.groups_names, names);
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = DeleteGroupsRequest::VERSION_MIN..=DeleteGroupsRequest::VERSION_MAX;
        check_every_version(versions, oracle, DeleteGroupsRequest::decode, assert_same);
    }
}
