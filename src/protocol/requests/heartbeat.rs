//! Heartbeat request (key 12), versions 0–4; flexible from v4. `group_instance_id` from v3.
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    /// v3+; null before.
    pub group_instance_id: Option<String>,
}

impl HeartbeatRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 4;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::Heartbeat,
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
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            group_id,
            generation_id,
            member_id,
            group_instance_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::{GroupId, HeartbeatRequest as Oracle};

    fn oracle(version: i16) -> Oracle {
        let mut request = Oracle::default()
            .with_group_id(GroupId(text("g")))
            .with_generation_id(7)
            .with_member_id(text("member-1"));
        if version >= 3 {
            request = request.with_group_instance_id(Some(text("instance-a")));
        }
        if version >= 4 {
            request = request.with_unknown_tagged_field(2, Bytes::from_static(b"t"));
        }
        request
    }

    fn assert_same(ours: &HeartbeatRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.group_id, theirs.group_id.0.as_str());
        assert_eq!(ours.generation_id, theirs.generation_id);
        assert_eq!(ours.member_id, theirs.member_id.as_str());
        assert_eq!(
            ours.group_instance_id.as_deref(),
            theirs.group_instance_id.as_ref().map(|id| id.as_str())
        );
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = HeartbeatRequest::VERSION_MIN..=HeartbeatRequest::VERSION_MAX;
        check_every_version(versions, oracle, HeartbeatRequest::decode, assert_same);
    }
}
