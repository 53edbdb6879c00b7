//! CreatePartitions request (key 37), versions 0–3; flexible from v2.
//!
//! Owns: decoding the body. Never: checking that `count` grows the topic or that assignments fit it, or panics.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{
    PARTITIONS_PER_TOPIC_MAX, REPLICAS_PER_PARTITION_MAX, TOPICS_PER_REQUEST_MAX,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePartitionsRequest {
    pub topics: Vec<CreatePartitionsTopic>,
    pub timeout_ms: i32,
    pub validate_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePartitionsTopic {
    pub name: String,
    /// The new total partition count.
    pub count: i32,
    /// One entry per new partition, or null to let the broker place them.
    pub assignments: Option<Vec<CreatePartitionsAssignment>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePartitionsAssignment {
    pub broker_ids: Vec<i32>,
}

impl CreatePartitionsRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 3;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::CreatePartitions,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let topics = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
            CreatePartitionsTopic::decode(reader, flexible)
        })?;
        let timeout_ms = reader.i32()?;
        let validate_only = reader.boolean()?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            topics,
            timeout_ms,
            validate_only,
        })
    }
}

impl CreatePartitionsTopic {
    fn decode(reader: &mut Reader, flexible: bool) -> Result<Self, DecodeError> {
        let name = reader.string(flexible)?;
        let count = reader.i32()?;
        let assignments = reader.nullable_array(flexible, PARTITIONS_PER_TOPIC_MAX, |reader| {
            CreatePartitionsAssignment::decode(reader, flexible)
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            name,
            count,
            assignments,
        })
    }
}

impl CreatePartitionsAssignment {
    fn decode(reader: &mut Reader, flexible: bool) -> Result<Self, DecodeError> {
        let broker_ids = reader.array(flexible, REPLICAS_PER_PARTITION_MAX, Reader::i32)?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self { broker_ids })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{assert_count_rejected, check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsAssignment as OracleAssignment, CreatePartitionsTopic as OracleTopic,
    };
    use kafka_protocol::messages::{BrokerId, CreatePartitionsRequest as Oracle, TopicName};

    fn oracle_topic(version: i16, seed: u8) -> OracleTopic {
        let assignments = (seed == 0).then(|| {
            (0..3)
                .map(|index| {
                    let assignment = OracleAssignment::default()
                        .with_broker_ids(vec![BrokerId(index), BrokerId(9)]);
                    if version >= 2 {
                        return assignment.with_unknown_tagged_field(1, Bytes::from_static(b"a"));
                    }
                    assignment
                })
                .collect()
        });
        let topic = OracleTopic::default()
            .with_name(TopicName(text(&format!("grow-{seed}"))))
            .with_count(12)
            .with_assignments(assignments);
        if version >= 2 {
            return topic.with_unknown_tagged_field(2, Bytes::from_static(b"t"));
        }
        topic
    }

    fn oracle(version: i16) -> Oracle {
        let request = Oracle::default()
            .with_topics((0..2).map(|seed| oracle_topic(version, seed)).collect())
            .with_timeout_ms(25_000)
            .with_validate_only(true);
        if version >= 2 {
            return request.with_unknown_tagged_field(3, Bytes::from_static(b"r"));
        }
        request
    }

    fn assert_same(ours: &CreatePartitionsRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.timeout_ms, theirs.timeout_ms);
        assert_eq!(ours.validate_only, theirs.validate_only);
        assert_eq!(ours.topics.len(), theirs.topics.len());
        for (ours, theirs) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(ours.name, theirs.name.0.as_str());
            assert_eq!(ours.count, theirs.count);
            let their_assignments: Option<Vec<Vec<i32>>> =
                theirs.assignments.as_ref().map(|assignments| {
                    assignments
                        .iter()
                        .map(|a| a.broker_ids.iter().map(|id| id.0).collect())
                        .collect()
                });
            let our_assignments: Option<Vec<Vec<i32>>> = ours
                .assignments
                .as_ref()
                .map(|assignments| assignments.iter().map(|a| a.broker_ids.clone()).collect());
            assert_eq!(our_assignments, their_assignments);
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = CreatePartitionsRequest::VERSION_MIN..=CreatePartitionsRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            CreatePartitionsRequest::decode,
            assert_same,
        );
    }

    #[test]
    fn huge_array_count_fails_without_allocating() {
        let body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_count_rejected(
            CreatePartitionsRequest::decode(&mut Reader::new(body), 0),
            0x7fff_ffff,
        );
    }
}
