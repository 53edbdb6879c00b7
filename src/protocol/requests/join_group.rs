//! JoinGroup request (key 11), versions 0–9; flexible from v6. `rebalance_timeout_ms` from v1 (v0 uses
//! the session timeout), `group_instance_id` from v5, `reason` from v8.
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use bytes::Bytes;

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::PROTOCOLS_PER_MEMBER_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// v1+; the session timeout in v0, as Kafka does.
    pub rebalance_timeout_ms: i32,
    pub member_id: String,
    /// v5+; null before.
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// v8+; null before.
    pub reason: Option<String>,
}

impl JoinGroupRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 9;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::JoinGroup,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let group_id = reader.string(flexible)?;
        let session_timeout_ms = reader.i32()?;
        let rebalance_timeout_ms = if version >= 1 {
            reader.i32()?
        } else {
            session_timeout_ms
        };
        let member_id = reader.string(flexible)?;
        let group_instance_id = if version >= 5 {
            reader.nullable_string(flexible)?
        } else {
            None
        };
        let protocol_type = reader.string(flexible)?;
        let protocols = reader.array(flexible, PROTOCOLS_PER_MEMBER_MAX, |reader| {
            let name = reader.string(flexible)?;
            let metadata = reader.bytes(flexible)?;
            if flexible {
                reader.skip_tagged_fields()?;
            }
            Ok((name, metadata))
        })?;
        let reason = if version >= 8 {
            reader.nullable_string(flexible)?
        } else {
            None
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            group_id,
            session_timeout_ms,
            rebalance_timeout_ms,
            member_id,
            group_instance_id,
            protocol_type,
            protocols,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{assert_count_rejected, check_every_version, text};
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::{GroupId, JoinGroupRequest as Oracle};

    fn oracle(version: i16) -> Oracle {
        let protocols = vec![
            JoinGroupRequestProtocol::default()
                .with_name(text("cooperative-sticky"))
                .with_metadata(Bytes::from_static(b"\x00\x03meta")),
            JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(Bytes::new()),
        ];
        let mut request = Oracle::default()
            .with_group_id(GroupId(text("g")))
            .with_session_timeout_ms(45_000)
            .with_member_id(text("member-1"))
            .with_protocol_type(text("consumer"))
            .with_protocols(protocols);
        if version >= 1 {
            request = request.with_rebalance_timeout_ms(300_000);
        }
        if version >= 5 {
            request = request.with_group_instance_id(Some(text("instance-1")));
        }
        if version >= 8 {
            request = request.with_reason(Some(text("rejoin: metadata changed")));
        }
        if version >= 6 {
            request = request.with_unknown_tagged_field(5, Bytes::from_static(b"u"));
        }
        request
    }

    fn assert_same(ours: &JoinGroupRequest, theirs: &Oracle, version: i16) {
        assert_eq!(ours.group_id, theirs.group_id.0.as_str());
        assert_eq!(ours.session_timeout_ms, theirs.session_timeout_ms);
        if version >= 1 {
            assert_eq!(ours.rebalance_timeout_ms, theirs.rebalance_timeout_ms);
        } else {
            assert_eq!(ours.rebalance_timeout_ms, theirs.session_timeout_ms);
        }
        assert_eq!(ours.member_id, theirs.member_id.as_str());
        assert_eq!(
            ours.group_instance_id.as_deref(),
            theirs.group_instance_id.as_ref().map(|id| id.as_str())
        );
        assert_eq!(ours.protocol_type, theirs.protocol_type.as_str());
        assert_eq!(ours.protocols.len(), theirs.protocols.len());
        for (ours, theirs) in ours.protocols.iter().zip(&theirs.protocols) {
            assert_eq!(ours.0, theirs.name.as_str());
            assert_eq!(ours.1, theirs.metadata);
        }
        assert_eq!(
            ours.reason.as_deref(),
            theirs.reason.as_ref().map(|reason| reason.as_str())
        );
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = JoinGroupRequest::VERSION_MIN..=JoinGroupRequest::VERSION_MAX;
        check_every_version(versions, oracle, JoinGroupRequest::decode, assert_same);
    }

    #[test]
    fn huge_protocol_count_fails_without_allocating() {
        // group "g", session timeout, member "", protocol type "c", then a lying count.
        let body = Bytes::from_static(&[
            0, 1, b'g', 0, 0, 0, 1, 0, 0, 0, 1, b'c', 0x7f, 0xff, 0xff, 0xff,
        ]);
        assert_count_rejected(
            JoinGroupRequest::decode(&mut Reader::new(body), 0),
            0x7fff_ffff,
        );
    }
}
