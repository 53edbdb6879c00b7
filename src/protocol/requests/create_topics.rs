//! CreateTopics request (key 19), versions 2–7; flexible from v5.
//!
//! Owns: decoding the body. Never: validating names, partition counts, replication factors or config keys (the
//! handler answers those per topic), or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{
    CONFIGS_PER_TOPIC_MAX, PARTITIONS_PER_TOPIC_MAX, REPLICAS_PER_PARTITION_MAX,
    TOPICS_PER_REQUEST_MAX,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicsRequest {
    pub topics: Vec<CreatableTopic>,
    pub timeout_ms: i32,
    pub validate_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableTopic {
    pub name: String,
    /// -1 = the broker default (when `assignments` is empty).
    pub num_partitions: i32,
    /// -1 = the broker default (when `assignments` is empty).
    pub replication_factor: i16,
    pub assignments: Vec<CreatableReplicaAssignment>,
    pub configs: Vec<CreatableTopicConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableReplicaAssignment {
    pub partition_index: i32,
    pub broker_ids: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableTopicConfig {
    pub name: String,
    pub value: Option<String>,
}

impl CreateTopicsRequest {
    pub const VERSION_MIN: i16 = 2;
    pub const VERSION_MAX: i16 = 7;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::CreateTopics,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let topics = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
            CreatableTopic::decode(reader, flexible)
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

impl CreatableTopic {
    fn decode(reader: &mut Reader, flexible: bool) -> Result<Self, DecodeError> {
        let name = reader.string(flexible)?;
        let num_partitions = reader.i32()?;
        let replication_factor = reader.i16()?;
        let assignments = reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, |reader| {
            CreatableReplicaAssignment::decode(reader, flexible)
        })?;
        let configs = reader.array(flexible, CONFIGS_PER_TOPIC_MAX, |reader| {
            CreatableTopicConfig::decode(reader, flexible)
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            name,
            num_partitions,
            replication_factor,
            assignments,
            configs,
        })
    }
}

impl CreatableReplicaAssignment {
    fn decode(reader: &mut Reader, flexible: bool) -> Result<Self, DecodeError> {
        let partition_index = reader.i32()?;
        let broker_ids = reader.array(flexible, REPLICAS_PER_PARTITION_MAX, Reader::i32)?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            partition_index,
            broker_ids,
        })
    }
}

impl CreatableTopicConfig {
    fn decode(reader: &mut Reader, flexible: bool) -> Result<Self, DecodeError> {
        let name = reader.string(flexible)?;
        let value = reader.nullable_string(flexible)?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self { name, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{assert_count_rejected, check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment as OracleAssignment, CreatableTopic as OracleTopic,
        CreatableTopicConfig as OracleConfig,
    };
    use kafka_protocol::messages::{BrokerId, CreateTopicsRequest as Oracle, TopicName};

    fn tagged<T>(version: i16, value: T, tag: impl FnOnce(T) -> T) -> T {
        if version >= 5 {
            tag(value)
        } else {
            value
        }
    }

    fn oracle_topic(version: i16, seed: u8) -> OracleTopic {
        let assignments = (0..2)
            .map(|index| {
                let broker_ids = vec![BrokerId(1), BrokerId(2 + index), BrokerId(3)];
                let assignment = OracleAssignment::default()
                    .with_partition_index(index)
                    .with_broker_ids(broker_ids);
                tagged(version, assignment, |a| {
                    a.with_unknown_tagged_field(1, Bytes::from_static(b"a"))
                })
            })
            .collect();
        let configs = [("cleanup.policy", Some("compact")), ("retention.ms", None)]
            .into_iter()
            .map(|(name, value)| {
                let config = OracleConfig::default()
                    .with_name(text(name))
                    .with_value(value.map(text));
                tagged(version, config, |c| {
                    c.with_unknown_tagged_field(2, Bytes::from_static(b"c"))
                })
            })
            .collect();
        let topic = OracleTopic::default()
            .with_name(TopicName(text(&format!("new-topic-{seed}"))))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(assignments)
            .with_configs(configs);
        tagged(version, topic, |t| {
            t.with_unknown_tagged_field(3, Bytes::from_static(b"t"))
        })
    }

    fn oracle(version: i16) -> Oracle {
        let request = Oracle::default()
            .with_topics((0..2).map(|seed| oracle_topic(version, seed)).collect())
            .with_timeout_ms(60_000)
            .with_validate_only(true);
        tagged(version, request, |r| {
            r.with_unknown_tagged_field(4, Bytes::from_static(b"r"))
        })
    }

    fn assert_same(ours: &CreateTopicsRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.timeout_ms, theirs.timeout_ms);
        assert_eq!(ours.validate_only, theirs.validate_only);
        assert_eq!(ours.topics.len(), theirs.topics.len());
        for (ours, theirs) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(ours.name, theirs.name.0.as_str());
            assert_eq!(ours.num_partitions, theirs.num_partitions);
            assert_eq!(ours.replication_factor, theirs.replication_factor);
            assert_eq!(ours.assignments.len(), theirs.assignments.len());
            for (ours, theirs) in ours.assignments.iter().zip(&theirs.assignments) {
                assert_eq!(ours.partition_index, theirs.partition_index);
                let their_ids: Vec<i32> = theirs.broker_ids.iter().map(|id| id.0).collect();
                assert_eq!(ours.broker_ids, their_ids);
            }
            assert_eq!(ours.configs.len(), theirs.configs.len());
            for (ours, theirs) in ours.configs.iter().zip(&theirs.configs) {
                assert_eq!(ours.name, theirs.name.as_str());
                assert_eq!(
                    ours.value.as_deref(),
                    theirs.value.as_ref().map(|value| value.as_str())
                );
            }
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = CreateTopicsRequest::VERSION_MIN..=CreateTopicsRequest::VERSION_MAX;
        check_every_version(versions, oracle, CreateTopicsRequest::decode, assert_same);
    }

    #[test]
    fn huge_array_count_fails_without_allocating() {
        let body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_count_rejected(
            CreateTopicsRequest::decode(&mut Reader::new(body), 2),
            0x7fff_ffff,
        );
    }
}
