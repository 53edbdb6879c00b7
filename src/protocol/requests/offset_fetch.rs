//! OffsetFetch request (key 9), versions 1–9; flexible from v6. Versions 1–7 ask one `group_id` for
//! `topics` (null = every committed offset, from v2); versions 8–9 batch `groups`, and v9 adds the
//! KIP-848 `member_id` and `member_epoch`. `require_stable` from v7. (v10 names topics by id; see
//! `offset_commit.rs` for why v9 is our maximum.)
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{GROUPS_PER_REQUEST_MAX, PARTITIONS_PER_TOPIC_MAX, TOPICS_PER_REQUEST_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchRequest {
    /// One entry for v1–7 (from `group_id` and `topics`), the `groups` array from v8.
    pub groups: Vec<OffsetFetchGroup>,
    /// v7+; false before.
    pub require_stable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchGroup {
    pub group_id: String,
    /// v9+; null before.
    pub member_id: Option<String>,
    /// v9+; -1 before.
    pub member_epoch: i32,
    /// Null asks for every committed offset.
    pub topics: Option<Vec<OffsetFetchTopic>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}

impl OffsetFetchRequest {
    pub const VERSION_MIN: i16 = 1;
    pub const VERSION_MAX: i16 = 9;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::OffsetFetch,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let groups = if version <= 7 {
            let group_id = reader.string(flexible)?;
            let topics = if version >= 2 {
                reader.nullable_array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
                    decode_topic(reader, flexible)
                })?
            } else {
                Some(reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
                    decode_topic(reader, flexible)
                })?)
            };
            vec![OffsetFetchGroup {
                group_id,
                member_id: None,
                member_epoch: -1,
                topics,
            }]
        } else {
            reader.array(flexible, GROUPS_PER_REQUEST_MAX, |reader| {
                let group_id = reader.string(flexible)?;
                let (member_id, member_epoch) = if version >= 9 {
                    (reader.nullable_string(flexible)?, reader.i32()?)
                } else {
                    (None, -1)
                };
                let topics = reader.nullable_array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
                    decode_topic(reader, flexible)
                })?;
                if flexible {
                    reader.skip_tagged_fields()?;
                }
                Ok(OffsetFetchGroup {
                    group_id,
                    member_id,
                    member_epoch,
                    topics,
                })
            })?
        };
        let require_stable = if version >= 7 {
            reader.boolean()?
        } else {
            false
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            groups,
            require_stable,
        })
    }
}

fn decode_topic(reader: &mut Reader, flexible: bool) -> Result<OffsetFetchTopic, DecodeError> {
    let name = reader.string(flexible)?;
    let partition_indexes =
        reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, |reader| reader.i32())?;
    if flexible {
        reader.skip_tagged_fields()?;
    }
    Ok(OffsetFetchTopic {
        name,
        partition_indexes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::{GroupId, OffsetFetchRequest as Oracle, TopicName};

    fn oracle(version: i16) -> Oracle {
        let mut request = Oracle::default();
        if version <= 7 {
            let topic = OffsetFetchRequestTopic::default()
                .with_name(TopicName(text("orders")))
                .with_partition_indexes(vec![0, 3, 5]);
            request = request
                .with_group_id(GroupId(text("g")))
                .with_topics(Some(vec![topic]));
        } else {
            let topic = OffsetFetchRequestTopics::default()
                .with_name(TopicName(text("orders")))
                .with_partition_indexes(vec![1]);
            let mut with_topics = OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(text("g1")))
                .with_topics(Some(vec![topic]));
            let mut all = OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(text("g2")))
                .with_topics(None);
            if version >= 9 {
                with_topics = with_topics
                    .with_member_id(Some(text("m1")))
                    .with_member_epoch(12);
                all = all.with_member_id(None).with_member_epoch(-1);
            }
            request = request.with_groups(vec![with_topics, all]);
        }
        if version >= 7 {
            request = request.with_require_stable(true);
        }
        request
    }

    fn assert_same(ours: &OffsetFetchRequest, theirs: &Oracle, version: i16) {
        assert_eq!(ours.require_stable, theirs.require_stable);
        if version <= 7 {
            assert_eq!(ours.groups.len(), 1);
            let group = &ours.groups[0];
            assert_eq!(group.group_id, theirs.group_id.0.as_str());
            let topics = group.topics.as_ref().unwrap();
            let their_topics = theirs.topics.as_ref().unwrap();
            assert_eq!(topics.len(), their_topics.len());
            for (ours, theirs) in topics.iter().zip(their_topics) {
                assert_eq!(ours.name, theirs.name.0.as_str());
                assert_eq!(ours.partition_indexes, theirs.partition_indexes);
            }
            return;
        }
        assert_eq!(ours.groups.len(), theirs.groups.len());
        for (ours, theirs) in ours.groups.iter().zip(&theirs.groups) {
            assert_eq!(ours.group_id, theirs.group_id.0.as_str());
            assert_eq!(
                ours.member_id.as_deref(),
                theirs.member_id.as_ref().map(|id| id.as_str())
            );
            assert_eq!(ours.member_epoch, theirs.member_epoch);
            assert_eq!(ours.topics.is_some(), theirs.topics.is_some());
            if let (Some(ours), Some(theirs)) = (&ours.topics, &theirs.topics) {
                for (ours, theirs) in ours.iter().zip(theirs) {
                    assert_eq!(ours.name, theirs.name.0.as_str());
                    assert_eq!(ours.partition_indexes, theirs.partition_indexes);
                }
            }
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = OffsetFetchRequest::VERSION_MIN..=OffsetFetchRequest::VERSION_MAX;
        check_every_version(versions, oracle, OffsetFetchRequest::decode, assert_same);
    }
}
