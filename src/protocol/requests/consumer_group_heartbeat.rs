//! ConsumerGroupHeartbeat request (key 68, KIP-848), versions 0–1; always flexible. v1 adds
//! `subscribed_topic_regex`. Null fields mean "unchanged since the last heartbeat".
//!
//! Owns: decoding the body. Never: group logic, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{PARTITIONS_PER_TOPIC_MAX, TOPICS_PER_REQUEST_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupHeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    /// v1+; null before.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// (topic id, partitions) the member owns; null when unchanged.
    pub topic_partitions: Option<Vec<([u8; 16], Vec<i32>)>>,
}

impl ConsumerGroupHeartbeatRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 1;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::ConsumerGroupHeartbeat,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let group_id = reader.string(flexible)?;
        let member_id = reader.string(flexible)?;
        let member_epoch = reader.i32()?;
        let instance_id = reader.nullable_string(flexible)?;
        let rack_id = reader.nullable_string(flexible)?;
        let rebalance_timeout_ms = reader.i32()?;
        let subscribed_topic_names =
            reader.nullable_array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
                reader.string(flexible)
            })?;
        let subscribed_topic_regex = if version >= 1 {
            reader.nullable_string(flexible)?
        } else {
            None
        };
        let server_assignor = reader.nullable_string(flexible)?;
        let topic_partitions =
            reader.nullable_array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
                let topic_id = reader.uuid()?;
                let partitions =
                    reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, |reader| reader.i32())?;
                reader.skip_tagged_fields()?;
                Ok((topic_id, partitions))
            })?;
        reader.skip_tagged_fields()?;
        Ok(Self {
            group_id,
            member_id,
            member_epoch,
            instance_id,
            rack_id,
            rebalance_timeout_ms,
            subscribed_topic_names,
            subscribed_topic_regex,
            server_assignor,
            topic_partitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text, uuid, uuid_bytes};
    use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
    use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest as Oracle, GroupId, TopicName};

    fn oracle(version: i16) -> Oracle {
        let owned = TopicPartitions::default()
            .with_topic_id(uuid(7))
            .with_partitions(vec![0, 2]);
        let request = Oracle::default()
            .with_group_id(GroupId(text("g")))
            .with_member_id(text("m-uuid"))
            .with_member_epoch(3)
            .with_instance_id(Some(text("i1")))
            .with_rack_id(None)
            .with_rebalance_timeout_ms(300_000)
            .with_subscribed_topic_names(Some(vec![TopicName(text("orders"))]))
            .with_server_assignor(Some(text("uniform")))
            .with_topic_partitions(Some(vec![owned]));
        if version >= 1 {
            request.with_subscribed_topic_regex(Some(text("ord.*")))
        } else {
            request
        }
    }

    fn assert_same(ours: &ConsumerGroupHeartbeatRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.group_id, theirs.group_id.0.as_str());
        assert_eq!(ours.member_id, theirs.member_id.as_str());
        assert_eq!(ours.member_epoch, theirs.member_epoch);
        assert_eq!(
            ours.instance_id.as_deref(),
            theirs.instance_id.as_ref().map(|s| s.as_str())
        );
        assert_eq!(ours.rack_id, None);
        assert_eq!(ours.rebalance_timeout_ms, theirs.rebalance_timeout_ms);
        assert_eq!(
            ours.subscribed_topic_names,
            Some(vec!["orders".to_string()])
        );
        assert_eq!(
            ours.subscribed_topic_regex.as_deref(),
            theirs.subscribed_topic_regex.as_ref().map(|s| s.as_str())
        );
        assert_eq!(ours.server_assignor.as_deref(), Some("uniform"));
        assert_eq!(
            ours.topic_partitions,
            Some(vec![(uuid_bytes(7), vec![0, 2])])
        );
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions =
            ConsumerGroupHeartbeatRequest::VERSION_MIN..=ConsumerGroupHeartbeatRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            ConsumerGroupHeartbeatRequest::decode,
            assert_same,
        );
    }
}
