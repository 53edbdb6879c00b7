//! TxnOffsetCommit request (key 28), versions 0–5; flexible from v3. Version 2 adds the leader epoch of each
//! offset; version 3 the group generation, member id and group instance id (KIP-447).
//!
//! Owns: decoding the body. Never: group or transaction state, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{PARTITIONS_PER_TOPIC_MAX, TOPICS_PER_REQUEST_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest {
    pub transactional_id: String,
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// v3+; -1 before.
    pub generation_id: i32,
    /// v3+; empty before.
    pub member_id: String,
    /// v3+; null before.
    pub group_instance_id: Option<String>,
    pub topics: Vec<TxnOffsetCommitTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<TxnOffsetCommitPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// v2+; -1 before.
    pub committed_leader_epoch: i32,
    pub committed_metadata: Option<String>,
}

impl TxnOffsetCommitRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 5;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::TxnOffsetCommit,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let transactional_id = reader.string(flexible)?;
        let group_id = reader.string(flexible)?;
        let producer_id = reader.i64()?;
        let producer_epoch = reader.i16()?;
        let (generation_id, member_id, group_instance_id) = if version >= 3 {
            let generation_id = reader.i32()?;
            let member_id = reader.string(flexible)?;
            (generation_id, member_id, reader.nullable_string(flexible)?)
        } else {
            (-1, String::new(), None)
        };
        let topics = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
            let name = reader.string(flexible)?;
            let partitions = reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, |reader| {
                TxnOffsetCommitPartition::decode(reader, version, flexible)
            })?;
            if flexible {
                reader.skip_tagged_fields()?;
            }
            Ok(TxnOffsetCommitTopic { name, partitions })
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            transactional_id,
            group_id,
            producer_id,
            producer_epoch,
            generation_id,
            member_id,
            group_instance_id,
            topics,
        })
    }
}

impl TxnOffsetCommitPartition {
    fn decode(reader: &mut Reader, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        let partition_index = reader.i32()?;
        let committed_offset = reader.i64()?;
        let committed_leader_epoch = if version >= 2 { reader.i32()? } else { -1 };
        let committed_metadata = reader.nullable_string(flexible)?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            partition_index,
            committed_offset,
            committed_leader_epoch,
            committed_metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition as OraclePartition,
        TxnOffsetCommitRequestTopic as OracleTopic,
    };
    use kafka_protocol::messages::{
        GroupId, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest as Oracle,
    };

    fn oracle(version: i16) -> Oracle {
        let topics = (0..2)
            .map(|seed| {
                let partitions = (0..3)
                    .map(|index| {
                        let mut partition = OraclePartition::default()
                            .with_partition_index(index)
                            .with_committed_offset(i64::from(index) * 1_000 + 7)
                            .with_committed_metadata((index != 1).then(|| text("meta-ü")));
                        if version >= 2 {
                            partition = partition.with_committed_leader_epoch(index + 3);
                        }
                        if version >= 3 {
                            partition =
                                partition.with_unknown_tagged_field(2, Bytes::from_static(b"p"));
                        }
                        partition
                    })
                    .collect();
                OracleTopic::default()
                    .with_name(TopicName(text(&format!("t{seed}"))))
                    .with_partitions(partitions)
            })
            .collect();
        let mut request = Oracle::default()
            .with_transactional_id(TransactionalId(text("tx")))
            .with_group_id(GroupId(text("group")))
            .with_producer_id(ProducerId(55))
            .with_producer_epoch(4)
            .with_topics(topics);
        if version >= 3 {
            request = request
                .with_generation_id(9)
                .with_member_id(text("member-1"))
                .with_group_instance_id(Some(text("static-1")))
                .with_unknown_tagged_field(0, Bytes::from_static(b"r"));
        }
        request
    }

    fn assert_same(ours: &TxnOffsetCommitRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.transactional_id, theirs.transactional_id.0.as_str());
        assert_eq!(ours.group_id, theirs.group_id.0.as_str());
        assert_eq!(ours.producer_id, theirs.producer_id.0);
        assert_eq!(ours.producer_epoch, theirs.producer_epoch);
        assert_eq!(ours.generation_id, theirs.generation_id);
        assert_eq!(ours.member_id, theirs.member_id.as_str());
        let instance = theirs.group_instance_id.as_ref().map(|id| id.as_str());
        assert_eq!(ours.group_instance_id.as_deref(), instance);
        assert_eq!(ours.topics.len(), theirs.topics.len());
        for (ours, theirs) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(ours.name, theirs.name.0.as_str());
            assert_eq!(ours.partitions.len(), theirs.partitions.len());
            for (ours, theirs) in ours.partitions.iter().zip(&theirs.partitions) {
                assert_eq!(ours.partition_index, theirs.partition_index);
                assert_eq!(ours.committed_offset, theirs.committed_offset);
                assert_eq!(ours.committed_leader_epoch, theirs.committed_leader_epoch);
                let metadata = theirs.committed_metadata.as_ref().map(|m| m.as_str());
                assert_eq!(ours.committed_metadata.as_deref(), metadata);
            }
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = TxnOffsetCommitRequest::VERSION_MIN..=TxnOffsetCommitRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            TxnOffsetCommitRequest::decode,
            assert_same,
        );
    }
}
