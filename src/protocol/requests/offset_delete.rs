//! OffsetDelete request (key 47), version 0; never flexible.
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{PARTITIONS_PER_TOPIC_MAX, TOPICS_PER_REQUEST_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteRequest {
    pub group_id: String,
    /// (topic name, partition indexes).
    pub topics: Vec<(String, Vec<i32>)>,
}

impl OffsetDeleteRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 0;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::OffsetDelete,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let group_id = reader.string(flexible)?;
        let topics = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
            let name = reader.string(flexible)?;
            let partitions =
                reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, |reader| reader.i32())?;
            Ok((name, partitions))
        })?;
        Ok(Self { group_id, topics })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, OffsetDeleteRequest as Oracle, TopicName};

    fn oracle(_version: i16) -> Oracle {
        let partitions = [0, 4]
            .into_iter()
            .map(|index| OffsetDeleteRequestPartition::default().with_partition_index(index))
            .collect();
        let topic = OffsetDeleteRequestTopic::default()
            .with_name(TopicName(text("orders")))
            .with_partitions(partitions);
        Oracle::default()
            .with_group_id(GroupId(text("g")))
            .with_topics(vec![topic])
    }

    fn assert_same(ours: &OffsetDeleteRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.group_id, theirs.group_id.0.as_str());
        assert_eq!(ours.topics.len(), theirs.topics.len());
        for (ours, theirs) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(ours.0, theirs.name.0.as_str());
            let indexes: Vec<i32> = theirs
                .partitions
                .iter()
                .map(|p| p.partition_index)
                .collect();
            assert_eq!(ours.1, indexes);
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        check_every_version(0..=0, oracle, OffsetDeleteRequest::decode, assert_same);
    }
}
