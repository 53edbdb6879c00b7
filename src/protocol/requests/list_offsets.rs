//! ListOffsets request (key 2), versions 1–10; flexible from v6.
//!
//! Owns: decoding the body. Never: offset lookup semantics (timestamps -1 latest, -2 earliest, ...), or panics
//! on input — a short ListOffsets frame is a known way to crash other brokers.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{PARTITIONS_PER_TOPIC_MAX, TOPICS_PER_REQUEST_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsRequest {
    pub replica_id: i32,
    /// v2+; 0 (read uncommitted) before.
    pub isolation_level: i8,
    pub topics: Vec<ListOffsetsTopic>,
    /// v10+; 0 before.
    pub timeout_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsTopic {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsPartition {
    pub partition_index: i32,
    /// v4+; -1 before.
    pub current_leader_epoch: i32,
    pub timestamp: i64,
}

impl ListOffsetsRequest {
    pub const VERSION_MIN: i16 = 1;
    pub const VERSION_MAX: i16 = 10;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::ListOffsets,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let replica_id = reader.i32()?;
        let isolation_level = if version >= 2 { reader.i8()? } else { 0 };
        let topics = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
            ListOffsetsTopic::decode(reader, version, flexible)
        })?;
        let timeout_ms = if version >= 10 { reader.i32()? } else { 0 };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            replica_id,
            isolation_level,
            topics,
            timeout_ms,
        })
    }
}

impl ListOffsetsTopic {
    fn decode(reader: &mut Reader, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        let name = reader.string(flexible)?;
        let partitions = reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, |reader| {
            ListOffsetsPartition::decode(reader, version, flexible)
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self { name, partitions })
    }
}

impl ListOffsetsPartition {
    fn decode(reader: &mut Reader, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        let partition_index = reader.i32()?;
        let current_leader_epoch = if version >= 4 { reader.i32()? } else { -1 };
        let timestamp = reader.i64()?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            partition_index,
            current_leader_epoch,
            timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{assert_count_rejected, check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::list_offsets_request::{
        ListOffsetsPartition as OraclePartition, ListOffsetsTopic as OracleTopic,
    };
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest as Oracle, TopicName};

    fn oracle_partition(version: i16, index: i32) -> OraclePartition {
        let timestamp = match index % 3 {
            0 => -1,
            1 => -2,
            _ => 1_700_000_000_000,
        };
        let partition = OraclePartition::default()
            .with_partition_index(index)
            .with_timestamp(timestamp);
        let partition = if version >= 4 {
            partition.with_current_leader_epoch(index * 2)
        } else {
            partition
        };
        if version >= 6 {
            return partition.with_unknown_tagged_field(2, Bytes::from_static(b"pt"));
        }
        partition
    }

    fn oracle_topic(version: i16, seed: u8) -> OracleTopic {
        let partitions = (0..4)
            .map(|index| oracle_partition(version, index))
            .collect();
        OracleTopic::default()
            .with_name(TopicName(text(&format!("ledger-{seed}"))))
            .with_partitions(partitions)
    }

    fn oracle(version: i16) -> Oracle {
        let mut request = Oracle::default()
            .with_replica_id(BrokerId(-1))
            .with_topics((0..2).map(|seed| oracle_topic(version, seed)).collect());
        if version >= 2 {
            request = request.with_isolation_level(1);
        }
        if version >= 10 {
            request = request.with_timeout_ms(15_000);
        }
        if version >= 6 {
            request = request.with_unknown_tagged_field(8, Bytes::from_static(b"req"));
        }
        request
    }

    fn assert_same(ours: &ListOffsetsRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.replica_id, theirs.replica_id.0);
        assert_eq!(ours.isolation_level, theirs.isolation_level);
        assert_eq!(ours.timeout_ms, theirs.timeout_ms);
        assert_eq!(ours.topics.len(), theirs.topics.len());
        for (ours, theirs) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(ours.name, theirs.name.0.as_str());
            assert_eq!(ours.partitions.len(), theirs.partitions.len());
            for (ours, theirs) in ours.partitions.iter().zip(&theirs.partitions) {
                assert_eq!(ours.partition_index, theirs.partition_index);
                assert_eq!(ours.current_leader_epoch, theirs.current_leader_epoch);
                assert_eq!(ours.timestamp, theirs.timestamp);
            }
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = ListOffsetsRequest::VERSION_MIN..=ListOffsetsRequest::VERSION_MAX;
        check_every_version(versions, oracle, ListOffsetsRequest::decode, assert_same);
    }

    #[test]
    fn huge_array_count_fails_without_allocating() {
        // v1: replica id, then a topic count of 0x7fff_ffff in an 8-byte tail.
        let body =
            Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_count_rejected(
            ListOffsetsRequest::decode(&mut Reader::new(body), 1),
            0x7fff_ffff,
        );
    }
}
