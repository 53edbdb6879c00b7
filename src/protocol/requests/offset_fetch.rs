//! OffsetFetch request (key 9), versions 1–10; flexible from v6. Versions 1–7 ask one `group_id` for
//! `topics` (null = every committed offset, from v2); versions 8–10 batch `groups`, v9 adds the
//! KIP-848 `member_id` and `member_epoch`, and v10 names topics by topic id instead of name.
//! `require_stable` from v7.
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
    /// v1–9; empty from v10.
    pub name: String,
    /// v10+; all zeroes before.
    pub topic_id: [u8; 16],
    pub partition_indexes: Vec<i32>,
}

impl OffsetFetchRequest {
    pub const VERSION_MIN: i16 = 1;
    pub const VERSION_MAX: i16 = 10;

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
                    decode_topic(reader, version, flexible)
                })?
            } else {
                Some(reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
                    decode_topic(reader, version, flexible)
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
                    decode_topic(reader, version, flexible)
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

fn decode_topic(
    reader: &mut Reader,
    version: i16,
    flexible: bool,
) -> Result<OffsetFetchTopic, DecodeError> {
    let (name, topic_id) = if version >= 10 {
        (String::new(), reader.uuid()?)
    } else {
        (reader.string(flexible)?, [0; 16])
    };
    let partition_indexes =
        reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, |reader| reader.i32())?;
    if flexible {
        reader.skip_tagged_fields()?;
    }
    Ok(OffsetFetchTopic {
        name,
        topic_id,
        partition_indexes,
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{
        assert_count_rejected, check_every_version, check_golden, text, uuid_bytes,
    };
    use bytes::Bytes;
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
        // The oracle's request side stops at v9; v10 is checked against kafka-clients below.
        let versions = OffsetFetchRequest::VERSION_MIN..=9;
        check_every_version(versions, oracle, OffsetFetchRequest::decode, assert_same);
    }

    /// kafka-clients 4.4.0's `OffsetFetchRequestData` at v10 (`MessageUtil.toByteBufferAccessor`): group "g1"
    /// (member "m1", epoch 12) asking topic id `uuid_bytes(7)` partitions 1 and 3, group "g2" (null member, epoch
    /// -1) asking every offset (null topics), require_stable true.
    const V10: &str =
        "03036731036d310000000c02d9dadbdcdddedfe0e1e2e3e4e5e6e7e8030000000100000003000003\
                       673200ffffffff00000100";

    #[test]
    fn decodes_v10_by_topic_id_like_kafka_clients() {
        let ours = check_golden(10, V10, OffsetFetchRequest::decode);
        let expected = OffsetFetchRequest {
            groups: vec![
                OffsetFetchGroup {
                    group_id: "g1".into(),
                    member_id: Some("m1".into()),
                    member_epoch: 12,
                    topics: Some(vec![OffsetFetchTopic {
                        name: String::new(),
                        topic_id: uuid_bytes(7),
                        partition_indexes: vec![1, 3],
                    }]),
                },
                OffsetFetchGroup {
                    group_id: "g2".into(),
                    member_id: None,
                    member_epoch: -1,
                    topics: None,
                },
            ],
            require_stable: true,
        };
        assert_eq!(ours, expected);
    }

    #[test]
    fn huge_v10_counts_fail_without_allocating() {
        // One group "g", null member, epoch -1, then a topics count of 2^31 - 1.
        let head: &[u8] = &[0x02, 0x02, b'g', 0x00, 0xff, 0xff, 0xff, 0xff];
        let lying = [0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0];
        let body = Bytes::from([head, lying.as_slice()].concat());
        assert_count_rejected(
            OffsetFetchRequest::decode(&mut Reader::new(body), 10),
            0x7fff_ffff,
        );
        // One topic (its id), then a partition count of 2^31 - 1.
        let body = Bytes::from([head, &[0x02], &uuid_bytes(7), lying.as_slice()].concat());
        assert_count_rejected(
            OffsetFetchRequest::decode(&mut Reader::new(body), 10),
            0x7fff_ffff,
        );
    }
}
