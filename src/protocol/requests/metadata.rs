//! Metadata request (key 3), versions 0–13; flexible from v9.
//!
//! Owns: decoding the body, including the one normalisation handlers need: `topics == None` always means "all
//! topics" (a null array in v1+, an empty array in v0, which had no null; a null in v0 is rejected, as Kafka does).
//! Never: topic-name validation, auto-creation policy, or panics on input.

use super::{check_version, string_nullable_from};
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::TOPICS_PER_REQUEST_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    /// `None` = all topics. `Some(empty)` (v1+) = no topics: the admin client's bootstrap request.
    pub topics: Option<Vec<MetadataRequestTopic>>,
    /// v4+; true before.
    pub allow_auto_topic_creation: bool,
    /// v8–10; false otherwise (v11+ moved it to DescribeCluster).
    pub include_cluster_authorized_operations: bool,
    /// v8+; false before.
    pub include_topic_authorized_operations: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequestTopic {
    /// v10+; all zeroes before.
    pub topic_id: [u8; 16],
    /// Always `Some` before v10; v10+ clients may ask by id alone with a null name.
    pub name: Option<String>,
}

impl MetadataRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 13;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::Metadata,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let topics = if version >= 1 {
            reader.nullable_array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
                MetadataRequestTopic::decode(reader, version, flexible)
            })?
        } else {
            let topics = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
                MetadataRequestTopic::decode(reader, version, flexible)
            })?;
            // Version 0 has no null array: an empty list asks for all topics.
            Some(topics).filter(|topics| !topics.is_empty())
        };
        let allow_auto_topic_creation = if version >= 4 {
            reader.boolean()?
        } else {
            true
        };
        let include_cluster_authorized_operations = if (8..=10).contains(&version) {
            reader.boolean()?
        } else {
            false
        };
        let include_topic_authorized_operations = if version >= 8 {
            reader.boolean()?
        } else {
            false
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            topics,
            allow_auto_topic_creation,
            include_cluster_authorized_operations,
            include_topic_authorized_operations,
        })
    }
}

impl MetadataRequestTopic {
    fn decode(reader: &mut Reader, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        let topic_id = if version >= 10 {
            reader.uuid()?
        } else {
            [0; 16]
        };
        let name = string_nullable_from(reader, flexible, version >= 10)?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self { topic_id, name })
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{
        assert_count_rejected, check_every_version, encode, text, uuid,
    };
    use bytes::Bytes;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic as OracleTopic;
    use kafka_protocol::messages::{MetadataRequest as Oracle, TopicName};

    fn oracle_topic(version: i16, index: u8) -> OracleTopic {
        let mut topic =
            OracleTopic::default().with_name(Some(TopicName(text(&format!("orders-{index}-é")))));
        if version >= 10 {
            topic = topic.with_topic_id(uuid(index));
            if index == 2 {
                topic = topic.with_name(None);
            }
        }
        if version >= 9 {
            topic = topic.with_unknown_tagged_field(3, Bytes::from_static(b"x"));
        }
        topic
    }

    fn oracle(version: i16) -> Oracle {
        let mut request = Oracle::default().with_topics(Some(
            (0..3).map(|index| oracle_topic(version, index)).collect(),
        ));
        if version >= 4 {
            request = request.with_allow_auto_topic_creation(false);
        }
        if (8..=10).contains(&version) {
            request = request.with_include_cluster_authorized_operations(true);
        }
        if version >= 8 {
            request = request.with_include_topic_authorized_operations(true);
        }
        if version >= 9 {
            request = request.with_unknown_tagged_field(0, Bytes::from_static(b"tagged"));
        }
        request
    }

    fn assert_same(ours: &MetadataRequest, theirs: &Oracle, _version: i16) {
        let (Some(ours_topics), Some(their_topics)) = (&ours.topics, &theirs.topics) else {
            panic!("both sides list topics");
        };
        assert_eq!(ours_topics.len(), their_topics.len());
        for (ours, theirs) in ours_topics.iter().zip(their_topics) {
            assert_eq!(ours.topic_id, *theirs.topic_id.as_bytes());
            assert_eq!(
                ours.name.as_deref(),
                theirs.name.as_ref().map(|name| name.0.as_str())
            );
        }
        assert_eq!(
            ours.allow_auto_topic_creation,
            theirs.allow_auto_topic_creation
        );
        assert_eq!(
            ours.include_cluster_authorized_operations,
            theirs.include_cluster_authorized_operations
        );
        assert_eq!(
            ours.include_topic_authorized_operations,
            theirs.include_topic_authorized_operations
        );
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = MetadataRequest::VERSION_MIN..=MetadataRequest::VERSION_MAX;
        check_every_version(versions, oracle, MetadataRequest::decode, assert_same);
    }

    #[test]
    fn all_topics_is_none_in_every_version() {
        for version in MetadataRequest::VERSION_MIN..=MetadataRequest::VERSION_MAX {
            let all = if version == 0 {
                Oracle::default().with_topics(Some(vec![]))
            } else {
                Oracle::default().with_topics(None)
            };
            let decoded = MetadataRequest::decode(&mut Reader::new(encode(&all, version)), version);
            assert_eq!(
                decoded.map(|request| request.topics),
                Ok(None),
                "v{version}"
            );
        }
        for version in 1..=MetadataRequest::VERSION_MAX {
            let none = Oracle::default().with_topics(Some(vec![]));
            let decoded =
                MetadataRequest::decode(&mut Reader::new(encode(&none, version)), version);
            assert_eq!(
                decoded.map(|request| request.topics),
                Ok(Some(vec![])),
                "v{version}"
            );
        }
    }

    #[test]
    fn null_names_before_v10_are_rejected() {
        // One topic with a null name (int16 length -1), then allow_auto_topic_creation.
        let body = Bytes::from_static(&[0, 0, 0, 1, 0xff, 0xff, 1]);
        let result = MetadataRequest::decode(&mut Reader::new(body), 4);
        assert_eq!(result, Err(DecodeError::UnexpectedNull { what: "string" }));
    }

    #[test]
    fn huge_array_count_fails_without_allocating() {
        let classic = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_count_rejected(
            MetadataRequest::decode(&mut Reader::new(classic), 1),
            0x7fff_ffff,
        );
        // Compact count 0x7fff_ffff is written as 0x8000_0000 = varint 80 80 80 80 08.
        let compact = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0]);
        assert_count_rejected(
            MetadataRequest::decode(&mut Reader::new(compact), 12),
            0x7fff_ffff,
        );
    }
}
