//! DeleteTopics request (key 20), versions 1–6; flexible from v4. Versions 1–5 name topics in `topic_names`;
//! version 6 lists `topics`, each by name or by topic id.
//!
//! Owns: decoding the body. Never: deciding which of name and id wins, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::TOPICS_PER_REQUEST_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTopicsRequest {
    /// v6+; empty before.
    pub topics: Vec<DeleteTopicState>,
    /// v1–5; empty from v6.
    pub topic_names: Vec<String>,
    pub timeout_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTopicState {
    /// Null when the topic is named by id.
    pub name: Option<String>,
    /// All zeroes when the topic is named by name.
    pub topic_id: [u8; 16],
}

impl DeleteTopicsRequest {
    pub const VERSION_MIN: i16 = 1;
    pub const VERSION_MAX: i16 = 6;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::DeleteTopics,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let (topics, topic_names) = if version >= 6 {
            let topics = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
                DeleteTopicState::decode(reader, flexible)
            })?;
            (topics, Vec::new())
        } else {
            let names = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
                reader.string(flexible)
            })?;
            (Vec::new(), names)
        };
        let timeout_ms = reader.i32()?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            topics,
            topic_names,
            timeout_ms,
        })
    }
}

impl DeleteTopicState {
    fn decode(reader: &mut Reader, flexible: bool) -> Result<Self, DecodeError> {
        let name = reader.nullable_string(flexible)?;
        let topic_id = reader.uuid()?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self { name, topic_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{assert_count_rejected, check_every_version, text, uuid};
    use bytes::Bytes;
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState as OracleState;
    use kafka_protocol::messages::{DeleteTopicsRequest as Oracle, TopicName};

    fn oracle(version: i16) -> Oracle {
        let mut request = Oracle::default().with_timeout_ms(30_000);
        if version >= 6 {
            let by_name = OracleState::default().with_name(Some(TopicName(text("doomed"))));
            let by_id = OracleState::default()
                .with_topic_id(uuid(4))
                .with_unknown_tagged_field(1, Bytes::from_static(b"i"));
            request = request.with_topics(vec![by_name, by_id]);
        } else {
            let names = ["a", "topic-b", "ünïcode"]
                .into_iter()
                .map(|name| TopicName(text(name)))
                .collect();
            request = request.with_topic_names(names);
        }
        if version >= 4 {
            request = request.with_unknown_tagged_field(0, Bytes::from_static(b"r"));
        }
        request
    }

    fn assert_same(ours: &DeleteTopicsRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.timeout_ms, theirs.timeout_ms);
        let their_names: Vec<&str> = theirs
            .topic_names
            .iter()
            .map(|name| name.0.as_str())
            .collect();
        assert_eq!(ours.topic_names, their_names);
        assert_eq!(ours.topics.len(), theirs.topics.len());
        for (ours, theirs) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(
                ours.name.as_deref(),
                theirs.name.as_ref().map(|name| name.0.as_str())
            );
            assert_eq!(ours.topic_id, *theirs.topic_id.as_bytes());
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = DeleteTopicsRequest::VERSION_MIN..=DeleteTopicsRequest::VERSION_MAX;
        check_every_version(versions, oracle, DeleteTopicsRequest::decode, assert_same);
    }

    #[test]
    fn huge_array_count_fails_without_allocating() {
        let body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_count_rejected(
            DeleteTopicsRequest::decode(&mut Reader::new(body), 1),
            0x7fff_ffff,
        );
        let body = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0]);
        assert_count_rejected(
            DeleteTopicsRequest::decode(&mut Reader::new(body), 6),
            0x7fff_ffff,
        );
    }
}
