//! OffsetCommit request (key 8), versions 2–10; flexible from v8. `retention_time_ms` only in v2–4,
//! `group_instance_id` from v7, `committed_leader_epoch` from v6. From v9 the generation field carries
//! the KIP-848 member epoch for consumer-protocol groups; v10 names topics by topic id instead of name.
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{PARTITIONS_PER_TOPIC_MAX, TOPICS_PER_REQUEST_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    pub generation_id_or_member_epoch: i32,
    pub member_id: String,
    /// v7+; null before.
    pub group_instance_id: Option<String>,
    /// v2–4; -1 (broker default) otherwise.
    pub retention_time_ms: i64,
    pub topics: Vec<OffsetCommitTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitTopic {
    /// v2–9; empty from v10.
    pub name: String,
    /// v10+; all zeroes before.
    pub topic_id: [u8; 16],
    pub partitions: Vec<OffsetCommitPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// v6+; -1 before.
    pub committed_leader_epoch: i32,
    pub committed_metadata: Option<String>,
}

impl OffsetCommitRequest {
    pub const VERSION_MIN: i16 = 2;
    pub const VERSION_MAX: i16 = 10;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::OffsetCommit,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let group_id = reader.string(flexible)?;
        let generation_id_or_member_epoch = reader.i32()?;
        let member_id = reader.string(flexible)?;
        let group_instance_id = if version >= 7 {
            reader.nullable_string(flexible)?
        } else {
            None
        };
        let retention_time_ms = if version <= 4 { reader.i64()? } else { -1 };
        let topics = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
            let (name, topic_id) = if version >= 10 {
                (String::new(), reader.uuid()?)
            } else {
                (reader.string(flexible)?, [0; 16])
            };
            let partitions = reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, |reader| {
                let partition_index = reader.i32()?;
                let committed_offset = reader.i64()?;
                let committed_leader_epoch = if version >= 6 { reader.i32()? } else { -1 };
                let committed_metadata = reader.nullable_string(flexible)?;
                if flexible {
                    reader.skip_tagged_fields()?;
                }
                Ok(OffsetCommitPartition {
                    partition_index,
                    committed_offset,
                    committed_leader_epoch,
                    committed_metadata,
                })
            })?;
            if flexible {
                reader.skip_tagged_fields()?;
            }
            Ok(OffsetCommitTopic {
                name,
                topic_id,
                partitions,
            })
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            group_id,
            generation_id_or_member_epoch,
            member_id,
            group_instance_id,
            retention_time_ms,
            topics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{
        assert_count_rejected, check_every_version, check_golden, text, uuid_bytes,
    };
    use bytes::Bytes;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, OffsetCommitRequest as Oracle, TopicName};

    fn oracle(version: i16) -> Oracle {
        let mut first = OffsetCommitRequestPartition::default()
            .with_partition_index(0)
            .with_committed_offset(42)
            .with_committed_metadata(Some(text("meta")));
        let second = OffsetCommitRequestPartition::default()
            .with_partition_index(5)
            .with_committed_offset(i64::MAX)
            .with_committed_metadata(None);
        if version >= 6 {
            first = first.with_committed_leader_epoch(9);
        }
        let topic = OffsetCommitRequestTopic::default()
            .with_name(TopicName(text("orders")))
            .with_partitions(vec![first, second]);
        let mut request = Oracle::default()
            .with_group_id(GroupId(text("g")))
            .with_generation_id_or_member_epoch(4)
            .with_member_id(text("m1"))
            .with_topics(vec![topic]);
        if version <= 4 {
            request = request.with_retention_time_ms(86_400_000);
        }
        if version >= 7 {
            request = request.with_group_instance_id(Some(text("i1")));
        }
        if version >= 8 {
            request = request.with_unknown_tagged_field(1, Bytes::from_static(b"z"));
        }
        request
    }

    fn assert_same(ours: &OffsetCommitRequest, theirs: &Oracle, version: i16) {
        assert_eq!(ours.group_id, theirs.group_id.0.as_str());
        assert_eq!(
            ours.generation_id_or_member_epoch,
            theirs.generation_id_or_member_epoch
        );
        assert_eq!(ours.member_id, theirs.member_id.as_str());
        assert_eq!(
            ours.group_instance_id.as_deref(),
            theirs.group_instance_id.as_ref().map(|id| id.as_str())
        );
        if version <= 4 {
            assert_eq!(ours.retention_time_ms, theirs.retention_time_ms);
        }
        assert_eq!(ours.topics.len(), theirs.topics.len());
        for (ours, theirs) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(ours.name, theirs.name.0.as_str());
            assert_eq!(ours.partitions.len(), theirs.partitions.len());
            for (ours, theirs) in ours.partitions.iter().zip(&theirs.partitions) {
                assert_eq!(ours.partition_index, theirs.partition_index);
                assert_eq!(ours.committed_offset, theirs.committed_offset);
                assert_eq!(ours.committed_leader_epoch, theirs.committed_leader_epoch);
                assert_eq!(
                    ours.committed_metadata.as_deref(),
                    theirs.committed_metadata.as_ref().map(|m| m.as_str())
                );
            }
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        // The oracle's request side stops at v9; v10 is checked against kafka-clients below.
        let versions = OffsetCommitRequest::VERSION_MIN..=9;
        check_every_version(versions, oracle, OffsetCommitRequest::decode, assert_same);
    }

    /// kafka-clients 4.4.0's `OffsetCommitRequestData` at v10 (`MessageUtil.toByteBufferAccessor`): group "g",
    /// generation 4, member "m1", instance "i1", one topic with id `uuid_bytes(7)` and partitions
    /// {0, offset 42, epoch 9, "meta"} and {5, i64::MAX, epoch -1, null}, and an unknown top-level tag 1 = "z".
    const V10: &str =
        "026700000004036d3103693102d9dadbdcdddedfe0e1e2e3e4e5e6e7e803000000000000000000\
                       00002a00000009056d65746100000000057fffffffffffffffffffffff0000000101017a";

    #[test]
    fn decodes_v10_by_topic_id_like_kafka_clients() {
        let ours = check_golden(10, V10, OffsetCommitRequest::decode);
        let expected = OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: 4,
            member_id: "m1".into(),
            group_instance_id: Some("i1".into()),
            retention_time_ms: -1,
            topics: vec![OffsetCommitTopic {
                name: String::new(),
                topic_id: uuid_bytes(7),
                partitions: vec![
                    OffsetCommitPartition {
                        partition_index: 0,
                        committed_offset: 42,
                        committed_leader_epoch: 9,
                        committed_metadata: Some("meta".into()),
                    },
                    OffsetCommitPartition {
                        partition_index: 5,
                        committed_offset: i64::MAX,
                        committed_leader_epoch: -1,
                        committed_metadata: None,
                    },
                ],
            }],
        };
        assert_eq!(ours, expected);
    }

    #[test]
    fn huge_v10_counts_fail_without_allocating() {
        // Group "g", generation 4, member "m1", null instance, then a topics count of 2^31 - 1.
        let head: &[u8] = &[0x02, b'g', 0, 0, 0, 4, 0x03, b'm', b'1', 0x00];
        let lying = [0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0];
        let body = Bytes::from([head, lying.as_slice()].concat());
        assert_count_rejected(
            OffsetCommitRequest::decode(&mut Reader::new(body), 10),
            0x7fff_ffff,
        );
        // One topic (its id), then a partitions count of 2^31 - 1.
        let body = Bytes::from([head, &[0x02], &uuid_bytes(7), lying.as_slice()].concat());
        assert_count_rejected(
            OffsetCommitRequest::decode(&mut Reader::new(body), 10),
            0x7fff_ffff,
        );
    }
}
