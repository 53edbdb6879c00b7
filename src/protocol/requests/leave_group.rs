//! LeaveGroup request (key 13), versions 0–5; flexible from v4. Versions 0–2 name one `member_id`;
//! versions 3–5 batch `members` (with `group_instance_id`, and a `reason` from v5).
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::MEMBERS_PER_REQUEST_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    /// v0–2; empty from v3.
    pub member_id: String,
    /// v3+; empty before.
    pub members: Vec<MemberIdentity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIdentity {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+; null before.
    pub reason: Option<String>,
}

impl LeaveGroupRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 5;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::LeaveGroup,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let group_id = reader.string(flexible)?;
        let (member_id, members) = if version <= 2 {
            (reader.string(flexible)?, Vec::new())
        } else {
            let members = reader.array(flexible, MEMBERS_PER_REQUEST_MAX, |reader| {
                let member_id = reader.string(flexible)?;
                let group_instance_id = reader.nullable_string(flexible)?;
                let reason = if version >= 5 {
                    reader.nullable_string(flexible)?
                } else {
                    None
                };
                if flexible {
                    reader.skip_tagged_fields()?;
                }
                Ok(MemberIdentity {
                    member_id,
                    group_instance_id,
                    reason,
                })
            })?;
            (String::new(), members)
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            group_id,
            member_id,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use kafka_protocol::messages::leave_group_request::MemberIdentity as OracleMember;
    use kafka_protocol::messages::{GroupId, LeaveGroupRequest as Oracle};

    fn oracle(version: i16) -> Oracle {
        let mut request = Oracle::default().with_group_id(GroupId(text("g")));
        if version <= 2 {
            request = request.with_member_id(text("m1"));
        } else {
            let mut dynamic = OracleMember::default().with_member_id(text("m1"));
            let mut fixed = OracleMember::default()
                .with_member_id(text(""))
                .with_group_instance_id(Some(text("i1")));
            if version >= 5 {
                dynamic = dynamic.with_reason(Some(text("the consumer is being closed")));
                fixed = fixed.with_reason(None);
            }
            request = request.with_members(vec![dynamic, fixed]);
        }
        request
    }

    fn assert_same(ours: &LeaveGroupRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.group_id, theirs.group_id.0.as_str());
        assert_eq!(ours.member_id, theirs.member_id.as_str());
        assert_eq!(ours.members.len(), theirs.members.len());
        for (ours, theirs) in ours.members.iter().zip(&theirs.members) {
            assert_eq!(ours.member_id, theirs.member_id.as_str());
            assert_eq!(
                ours.group_instance_id.as_deref(),
                theirs.group_instance_id.as_ref().map(|id| id.as_str())
            );
            assert_eq!(
                ours.reason.as_deref(),
                theirs.reason.as_ref().map(|id| id.as_str())
            );
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = LeaveGroupRequest::VERSION_MIN..=LeaveGroupRequest::VERSION_MAX;
        check_every_version(versions, oracle, LeaveGroupRequest::decode, assert_same);
    }
}
