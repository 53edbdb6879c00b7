//! SyncGroup request (key 14), versions 0–5; flexible from v4. `group_instance_id` from v3,
//! `protocol_type` and `protocol_name` from v5. The leader sends every member's assignment.
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use bytes::Bytes;

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::MEMBERS_PER_REQUEST_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    /// v3+; null before.
    pub group_instance_id: Option<String>,
    /// v5+; null before.
    pub protocol_type: Option<String>,
    /// v5+; null before.
    pub protocol_name: Option<String>,
    /// (member id, assignment bytes).
    pub assignments: Vec<(String, Bytes)>,
}

impl SyncGroupRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 5;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::SyncGroup,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let group_id = reader.string(flexible)?;
        let generation_id = reader.i32()?;
        let member_id = reader.string(flexible)?;
        let group_instance_id = if version >= 3 {
            reader.nullable_string(flexible)?
        } else {
            None
        };
        let (protocol_type, protocol_name) = if version >= 5 {
            (
                reader.nullable_string(flexible)?,
                reader.nullable_string(flexible)?,
            )
        } else {
            (None, None)
        };
        let assignments = reader.array(flexible, MEMBERS_PER_REQUEST_MAX, |reader| {
            let member_id = reader.string(flexible)?;
            let assignment = reader.bytes(flexible)?;
            if flexible {
                reader.skip_tagged_fields()?;
            }
            Ok((member_id, assignment))
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            group_id,
            generation_id,
            member_id,
            group_instance_id,
            protocol_type,
            protocol_name,
            assignments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::{GroupId, SyncGroupRequest as Oracle};

    fn oracle(version: i16) -> Oracle {
        let assignments = vec![
            SyncGroupRequestAssignment::default()
                .with_member_id(text("m1"))
                .with_assignment(Bytes::from_static(b"\x00\x01abc")),
            SyncGroupRequestAssignment::default()
                .with_member_id(text("m2"))
                .with_assignment(Bytes::new()),
        ];
        let mut request = Oracle::default()
            .with_group_id(GroupId(text("g")))
            .with_generation_id(3)
            .with_member_id(text("m1"))
            .with_assignments(assignments);
        if version >= 3 {
            request = request.with_group_instance_id(Some(text("i1")));
        }
        if version >= 5 {
            request = request
                .with_protocol_type(Some(text("consumer")))
                .with_protocol_name(Some(text("range")));
        }
        request
    }

    fn assert_same(ours: &SyncGroupRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.group_id, theirs.group_id.0.as_str());
        assert_eq!(ours.generation_id, theirs.generation_id);
        assert_eq!(ours.member_id, theirs.member_id.as_str());
        assert_eq!(
            ours.group_instance_id.as_deref(),
            theirs.group_instance_id.as_ref().map(|id| id.as_str())
        );
        assert_eq!(
            ours.protocol_type.as_deref(),
            theirs.protocol_type.as_ref().map(|id| id.as_str())
        );
        assert_eq!(
            ours.protocol_name.as_deref(),
            theirs.protocol_name.as_ref().map(|id| id.as_str())
        );
        assert_eq!(ours.assignments.len(), theirs.assignments.len());
        for (ours, theirs) in ours.assignments.iter().zip(&theirs.assignments) {
            assert_eq!(ours.0, theirs.member_id.as_str());
            assert_eq!(ours.1, theirs.assignment);
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = SyncGroupRequest::VERSION_MIN..=SyncGroupRequest::VERSION_MAX;
        check_every_version(versions, oracle, SyncGroupRequest::decode, assert_same);
    }
}
