//! Fetch request (key 1), versions 4–18; flexible from v12. Topics are named up to v12 and identified by topic id
//! from v13.
//!
//! Owns: decoding the body. The tagged fields only followers send (cluster_id tag 0 and replica_state tag 1 at the
//! top level, replica_directory_id tag 0 and high_watermark tag 1 per partition) are skipped with the unknown ones.
//! Never: fetch sessions, long-poll logic, isolation semantics, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{PARTITIONS_PER_TOPIC_MAX, TOPICS_PER_REQUEST_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// v4–14; -1 (a consumer) from v15, where followers moved it into the skipped replica_state tag.
    pub replica_id: i32,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub isolation_level: i8,
    /// v7+; 0 before.
    pub session_id: i32,
    /// v7+; -1 before.
    pub session_epoch: i32,
    pub topics: Vec<FetchTopic>,
    /// v7+; empty before.
    pub forgotten_topics_data: Vec<ForgottenTopic>,
    /// v11+; empty before.
    pub rack_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTopic {
    /// v4–12; empty from v13.
    pub topic: String,
    /// v13+; all zeroes before.
    pub topic_id: [u8; 16],
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    pub partition: i32,
    /// v9+; -1 before.
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    /// v12+; -1 before.
    pub last_fetched_epoch: i32,
    /// v5+; -1 before.
    pub log_start_offset: i64,
    pub partition_max_bytes: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgottenTopic {
    /// v7–12; empty from v13.
    pub topic: String,
    /// v13+; all zeroes before.
    pub topic_id: [u8; 16],
    pub partitions: Vec<i32>,
}

impl FetchRequest {
    pub const VERSION_MIN: i16 = 4;
    pub const VERSION_MAX: i16 = 18;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(ApiKey::Fetch, version, Self::VERSION_MIN, Self::VERSION_MAX)?;
        let replica_id = if version <= 14 { reader.i32()? } else { -1 };
        let max_wait_ms = reader.i32()?;
        let min_bytes = reader.i32()?;
        let max_bytes = reader.i32()?;
        let isolation_level = reader.i8()?;
        let (session_id, session_epoch) = if version >= 7 {
            (reader.i32()?, reader.i32()?)
        } else {
            (0, -1)
        };
        let topics = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
            FetchTopic::decode(reader, version, flexible)
        })?;
        let forgotten_topics_data = if version >= 7 {
            reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
                ForgottenTopic::decode(reader, version, flexible)
            })?
        } else {
            Vec::new()
        };
        let rack_id = if version >= 11 {
            reader.string(flexible)?
        } else {
            String::new()
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            replica_id,
            max_wait_ms,
            min_bytes,
            max_bytes,
            isolation_level,
            session_id,
            session_epoch,
            topics,
            forgotten_topics_data,
            rack_id,
        })
    }
}

/// Topic name up to v12, topic id from v13: shared by fetched and forgotten topics.
fn topic_name_or_id(
    reader: &mut Reader,
    version: i16,
    flexible: bool,
) -> Result<(String, [u8; 16]), DecodeError> {
    if version >= 13 {
        Ok((String::new(), reader.uuid()?))
    } else {
        Ok((reader.string(flexible)?, [0; 16]))
    }
}

impl FetchTopic {
    fn decode(reader: &mut Reader, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        let (topic, topic_id) = topic_name_or_id(reader, version, flexible)?;
        let partitions = reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, |reader| {
            FetchPartition::decode(reader, version, flexible)
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            topic,
            topic_id,
            partitions,
        })
    }
}

impl FetchPartition {
    fn decode(reader: &mut Reader, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        let partition = reader.i32()?;
        let current_leader_epoch = if version >= 9 { reader.i32()? } else { -1 };
        let fetch_offset = reader.i64()?;
        let last_fetched_epoch = if version >= 12 { reader.i32()? } else { -1 };
        let log_start_offset = if version >= 5 { reader.i64()? } else { -1 };
        let partition_max_bytes = reader.i32()?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            partition,
            current_leader_epoch,
            fetch_offset,
            last_fetched_epoch,
            log_start_offset,
            partition_max_bytes,
        })
    }
}

impl ForgottenTopic {
    fn decode(reader: &mut Reader, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        let (topic, topic_id) = topic_name_or_id(reader, version, flexible)?;
        let partitions = reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, Reader::i32)?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            topic,
            topic_id,
            partitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{assert_count_rejected, check_every_version, text, uuid};
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_request::{
        FetchPartition as OraclePartition, FetchTopic as OracleTopic,
        ForgottenTopic as OracleForgotten, ReplicaState,
    };
    use kafka_protocol::messages::{BrokerId, FetchRequest as Oracle, TopicName};

    fn oracle_partition(version: i16, index: i32) -> OraclePartition {
        let mut partition = OraclePartition::default()
            .with_partition(index)
            .with_fetch_offset(1_000_000_007 * i64::from(index + 1))
            .with_partition_max_bytes(1_048_576 + index);
        if version >= 9 {
            partition = partition.with_current_leader_epoch(7 + index);
        }
        if version >= 12 {
            partition = partition
                .with_last_fetched_epoch(6)
                .with_unknown_tagged_field(5, Bytes::from_static(b"?"));
        }
        if version >= 5 {
            partition = partition.with_log_start_offset(42);
        }
        if version >= 17 {
            partition = partition.with_replica_directory_id(uuid(99));
        }
        if version >= 18 {
            partition = partition.with_high_watermark(123_456);
        }
        partition
    }

    fn oracle_topic(version: i16, seed: u8) -> OracleTopic {
        let partitions = (0..3)
            .map(|index| oracle_partition(version, index + i32::from(seed)))
            .collect();
        let topic = OracleTopic::default().with_partitions(partitions);
        if version >= 13 {
            topic.with_topic_id(uuid(seed))
        } else {
            topic.with_topic(TopicName(text(&format!("clicks-{seed}"))))
        }
    }

    fn oracle_forgotten(version: i16, seed: u8) -> OracleForgotten {
        let forgotten = OracleForgotten::default().with_partitions(vec![0, 5, i32::from(seed)]);
        if version >= 13 {
            forgotten.with_topic_id(uuid(seed + 100))
        } else {
            forgotten.with_topic(TopicName(text(&format!("old-{seed}"))))
        }
    }

    fn oracle(version: i16) -> Oracle {
        let mut request = Oracle::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(52_428_800)
            .with_isolation_level(1)
            .with_topics((0..3).map(|seed| oracle_topic(version, seed)).collect());
        if version <= 14 {
            request = request.with_replica_id(BrokerId(-1));
        }
        if version >= 7 {
            request = request.with_session_id(77).with_session_epoch(3);
            request = request.with_forgotten_topics_data(
                (0..2).map(|seed| oracle_forgotten(version, seed)).collect(),
            );
        }
        if version >= 11 {
            request = request.with_rack_id(text("rack-a"));
        }
        if version >= 12 {
            request = request
                .with_cluster_id(Some(text("cluster-1")))
                .with_unknown_tagged_field(4, Bytes::from_static(b"u"));
        }
        if version >= 15 {
            request = request.with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(3))
                    .with_replica_epoch(9),
            );
        }
        request
    }

    fn assert_same(ours: &FetchRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.replica_id, theirs.replica_id.0);
        assert_eq!(ours.max_wait_ms, theirs.max_wait_ms);
        assert_eq!(ours.min_bytes, theirs.min_bytes);
        assert_eq!(ours.max_bytes, theirs.max_bytes);
        assert_eq!(ours.isolation_level, theirs.isolation_level);
        assert_eq!(ours.session_id, theirs.session_id);
        assert_eq!(ours.session_epoch, theirs.session_epoch);
        assert_eq!(ours.rack_id, theirs.rack_id.as_str());
        assert_eq!(ours.topics.len(), theirs.topics.len());
        for (ours, theirs) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(ours.topic, theirs.topic.0.as_str());
            assert_eq!(ours.topic_id, *theirs.topic_id.as_bytes());
            assert_eq!(ours.partitions.len(), theirs.partitions.len());
            for (ours, theirs) in ours.partitions.iter().zip(&theirs.partitions) {
                assert_eq!(ours.partition, theirs.partition);
                assert_eq!(ours.current_leader_epoch, theirs.current_leader_epoch);
                assert_eq!(ours.fetch_offset, theirs.fetch_offset);
                assert_eq!(ours.last_fetched_epoch, theirs.last_fetched_epoch);
                assert_eq!(ours.log_start_offset, theirs.log_start_offset);
                assert_eq!(ours.partition_max_bytes, theirs.partition_max_bytes);
            }
        }
        assert_eq!(
            ours.forgotten_topics_data.len(),
            theirs.forgotten_topics_data.len()
        );
        for (ours, theirs) in ours
            .forgotten_topics_data
            .iter()
            .zip(&theirs.forgotten_topics_data)
        {
            assert_eq!(ours.topic, theirs.topic.0.as_str());
            assert_eq!(ours.topic_id, *theirs.topic_id.as_bytes());
            assert_eq!(ours.partitions, theirs.partitions);
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = FetchRequest::VERSION_MIN..=FetchRequest::VERSION_MAX;
        check_every_version(versions, oracle, FetchRequest::decode, assert_same);
    }

    #[test]
    fn huge_array_count_fails_without_allocating() {
        // v4: replica id, max wait, min bytes, max bytes, isolation level, then a topic count of 0x7fff_ffff.
        let mut body = vec![
            0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0xf4, 0, 0, 0, 1, 0, 0, 1, 0, 0,
        ];
        body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_count_rejected(
            FetchRequest::decode(&mut Reader::new(Bytes::from(body)), 4),
            0x7fff_ffff,
        );
    }
}
