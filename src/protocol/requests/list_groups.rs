//! ListGroups request (key 16), versions 0–5; flexible from v3. `states_filter` from v4,
//! `types_filter` from v5. Version 0–2 bodies are empty.
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::GROUP_FILTERS_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsRequest {
    /// v4+; empty (no filter) before.
    pub states_filter: Vec<String>,
    /// v5+; empty (no filter) before.
    pub types_filter: Vec<String>,
}

impl ListGroupsRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 5;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::ListGroups,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let states_filter = if version >= 4 {
            reader.array(flexible, GROUP_FILTERS_MAX, |reader| {
                reader.string(flexible)
            })?
        } else {
            Vec::new()
        };
        let types_filter = if version >= 5 {
            reader.array(flexible, GROUP_FILTERS_MAX, |reader| {
                reader.string(flexible)
            })?
        } else {
            Vec::new()
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            states_filter,
            types_filter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use kafka_protocol::messages::ListGroupsRequest as Oracle;

    fn oracle(version: i16) -> Oracle {
        let mut request = Oracle::default();
        if version >= 4 {
            request = request.with_states_filter(vec![text("Stable"), text("Empty")]);
        }
        if version >= 5 {
            request = request.with_types_filter(vec![text("consumer")]);
        }
        request
    }

    fn assert_same(ours: &ListGroupsRequest, theirs: &Oracle, _version: i16) {
        let states: Vec<&str> = theirs.states_filter.iter().map(|s| s.as_str()).collect();
        let types: Vec<&str> = theirs.types_filter.iter().map(|s| s.as_str()).collect();
        assert_eq!(ours.states_filter, states);
        assert_eq!(ours.types_filter, types);
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        // v0–2 have empty bodies, so there is no truncation to sweep; the sweep skips them.
        let versions = ListGroupsRequest::VERSION_MIN..=ListGroupsRequest::VERSION_MAX;
        check_every_version(versions, oracle, ListGroupsRequest::decode, assert_same);
    }
}
