//! DescribeProducers request (key 61), version 0; flexible.
//!
//! Owns: decoding the body. Never: producer state, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{PARTITIONS_PER_TOPIC_MAX, TOPICS_PER_REQUEST_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeProducersRequest {
    pub topics: Vec<DescribeProducersTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeProducersTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}

impl DescribeProducersRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 0;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::DescribeProducers,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let topics = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
            let name = reader.string(flexible)?;
            let partition_indexes =
                reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, Reader::i32)?;
            if flexible {
                reader.skip_tagged_fields()?;
            }
            Ok(DescribeProducersTopic {
                name,
                partition_indexes,
            })
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self { topics })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{DescribeProducersRequest as Oracle, TopicName};

    fn oracle(_version: i16) -> Oracle {
        let topics = (0..2)
            .map(|seed| {
                TopicRequest::default()
                    .with_name(TopicName(text(&format!("t{seed}"))))
                    .with_partition_indexes(vec![0, seed, 9])
                    .with_unknown_tagged_field(1, Bytes::from_static(b"p"))
            })
            .collect();
        Oracle::default()
            .with_topics(topics)
            .with_unknown_tagged_field(0, Bytes::from_static(b"r"))
    }

    fn assert_same(ours: &DescribeProducersRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.topics.len(), theirs.topics.len());
        for (ours, theirs) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(ours.name, theirs.name.0.as_str());
            assert_eq!(ours.partition_indexes, theirs.partition_indexes);
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions =
            DescribeProducersRequest::VERSION_MIN..=DescribeProducersRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            DescribeProducersRequest::decode,
            assert_same,
        );
    }
}
