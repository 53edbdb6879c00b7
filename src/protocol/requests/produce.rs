//! Produce request (key 0), versions 3–13; flexible from v9. Topics are named up to v12 and identified by topic id
//! from v13.
//!
//! Owns: decoding the body; records stay an undecoded, zero-copy slice of the frame.
//! Never: parsing or validating record batches (CRC, sizes, sequence numbers), acks semantics, or panics on input.

use bytes::Bytes;

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{PARTITIONS_PER_TOPIC_MAX, TOPICS_PER_REQUEST_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRequest {
    pub transactional_id: Option<String>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topic_data: Vec<TopicProduceData>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicProduceData {
    /// v3–12; empty from v13.
    pub name: String,
    /// v13+; all zeroes before.
    pub topic_id: [u8; 16],
    pub partition_data: Vec<PartitionProduceData>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProduceData {
    pub index: i32,
    /// The record batches, a slice of the request frame.
    pub records: Option<Bytes>,
}

impl ProduceRequest {
    pub const VERSION_MIN: i16 = 3;
    pub const VERSION_MAX: i16 = 13;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::Produce,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let transactional_id = reader.nullable_string(flexible)?;
        let acks = reader.i16()?;
        let timeout_ms = reader.i32()?;
        let topic_data = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
            TopicProduceData::decode(reader, version, flexible)
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            transactional_id,
            acks,
            timeout_ms,
            topic_data,
        })
    }
}

impl TopicProduceData {
    fn decode(reader: &mut Reader, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        let name = if version <= 12 {
            reader.string(flexible)?
        } else {
            String::new()
        };
        let topic_id = if version >= 13 {
            reader.uuid()?
        } else {
            [0; 16]
        };
        let partition_data = reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, |reader| {
            PartitionProduceData::decode(reader, flexible)
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            name,
            topic_id,
            partition_data,
        })
    }
}

impl PartitionProduceData {
    fn decode(reader: &mut Reader, flexible: bool) -> Result<Self, DecodeError> {
        let index = reader.i32()?;
        let records = reader.nullable_bytes(flexible)?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self { index, records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{assert_count_rejected, check_every_version, text, uuid};
    use kafka_protocol::messages::produce_request::{
        PartitionProduceData as OraclePartition, TopicProduceData as OracleTopic,
    };
    use kafka_protocol::messages::{ProduceRequest as Oracle, TopicName, TransactionalId};

    fn oracle_partition(version: i16, index: i32) -> OraclePartition {
        let records = match index {
            1 => None,
            2 => Some(Bytes::new()),
            _ => Some(Bytes::from(vec![index as u8; 40 + index as usize])),
        };
        let partition = OraclePartition::default()
            .with_index(index)
            .with_records(records);
        if version >= 9 {
            return partition.with_unknown_tagged_field(9, Bytes::from_static(b"p"));
        }
        partition
    }

    fn oracle_topic(version: i16, seed: u8) -> OracleTopic {
        let partitions = (0..4)
            .map(|index| oracle_partition(version, index + i32::from(seed)))
            .collect();
        let topic = OracleTopic::default().with_partition_data(partitions);
        if version >= 13 {
            topic.with_topic_id(uuid(seed))
        } else {
            topic.with_name(TopicName(text(&format!("events.{seed}"))))
        }
    }

    fn oracle(version: i16) -> Oracle {
        let request = Oracle::default()
            .with_transactional_id(Some(TransactionalId(text("txn-ß"))))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data((0..3).map(|seed| oracle_topic(version, seed)).collect());
        if version >= 9 {
            return request.with_unknown_tagged_field(1, Bytes::from_static(b"top"));
        }
        request
    }

    fn assert_same(ours: &ProduceRequest, theirs: &Oracle, _version: i16) {
        let their_transactional_id = theirs.transactional_id.as_ref().map(|id| id.0.as_str());
        assert_eq!(ours.transactional_id.as_deref(), their_transactional_id);
        assert_eq!(ours.acks, theirs.acks);
        assert_eq!(ours.timeout_ms, theirs.timeout_ms);
        assert_eq!(ours.topic_data.len(), theirs.topic_data.len());
        for (ours, theirs) in ours.topic_data.iter().zip(&theirs.topic_data) {
            assert_eq!(ours.name, theirs.name.0.as_str());
            assert_eq!(ours.topic_id, *theirs.topic_id.as_bytes());
            assert_eq!(ours.partition_data.len(), theirs.partition_data.len());
            for (ours, theirs) in ours.partition_data.iter().zip(&theirs.partition_data) {
                assert_eq!(ours.index, theirs.index);
                assert_eq!(ours.records, theirs.records);
            }
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = ProduceRequest::VERSION_MIN..=ProduceRequest::VERSION_MAX;
        check_every_version(versions, oracle, ProduceRequest::decode, assert_same);
    }

    #[test]
    fn records_are_a_slice_of_the_frame() {
        let body = crate::protocol::test_support::encode(&oracle(8), 8);
        let request = ProduceRequest::decode(&mut Reader::new(body.clone()), 8);
        let records = request
            .ok()
            .and_then(|request| request.topic_data.into_iter().next());
        let records = records
            .and_then(|topic| topic.partition_data.into_iter().next())
            .and_then(|p| p.records);
        let records = records.unwrap_or_default();
        let frame = body.as_ptr_range();
        assert!(!records.is_empty());
        assert!(frame.contains(&records.as_ptr()));
    }

    #[test]
    fn huge_array_count_fails_without_allocating() {
        // Null transactional id, acks, then a topic count of 0x7fff_ffff with nothing after it.
        let body =
            Bytes::from_static(&[0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30, 0x7f, 0xff, 0xff, 0xff]);
        assert_count_rejected(
            ProduceRequest::decode(&mut Reader::new(body), 3),
            0x7fff_ffff,
        );
        // Null transactional id, acks and timeout, then an 8-byte tail holding a partition count of 0x7fff_ffff.
        let body = Bytes::from_static(&[
            0, 0, 1, 0, 0, 0x75, 0x30, 2, 2, b'a', 0x80, 0x80, 0x80, 0x80, 0x08, 0,
        ]);
        assert_count_rejected(
            ProduceRequest::decode(&mut Reader::new(body), 9),
            0x7fff_ffff,
        );
    }
}
