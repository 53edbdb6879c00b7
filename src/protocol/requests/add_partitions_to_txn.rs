//! AddPartitionsToTxn request (key 24), versions 0–5; flexible from v3. Versions 0–3 (clients) carry one
//! transaction at the top level; versions 4–5 (KIP-890, brokers verifying for each other) carry a
//! list of transactions, each possibly `verify_only`. Both decode to the list form.
//!
//! Owns: decoding the body. Never: transaction state, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{IDS_PER_REQUEST_MAX, PARTITIONS_PER_TOPIC_MAX, TOPICS_PER_REQUEST_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnRequest {
    /// One element for v0–3.
    pub transactions: Vec<AddPartitionsToTxnTransaction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnTransaction {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// v4+; false before.
    pub verify_only: bool,
    pub topics: Vec<AddPartitionsToTxnTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnTopic {
    pub name: String,
    pub partitions: Vec<i32>,
}

impl AddPartitionsToTxnRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 5;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::AddPartitionsToTxn,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let transactions = if version >= 4 {
            reader.array(flexible, IDS_PER_REQUEST_MAX, |reader| {
                AddPartitionsToTxnTransaction::decode(reader, flexible, true)
            })?
        } else {
            vec![AddPartitionsToTxnTransaction::decode(
                reader, flexible, false,
            )?]
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self { transactions })
    }
}

impl AddPartitionsToTxnTransaction {
    /// `nested`: v4+ form, with `verify_only` and its own tagged fields.
    fn decode(reader: &mut Reader, flexible: bool, nested: bool) -> Result<Self, DecodeError> {
        let transactional_id = reader.string(flexible)?;
        let producer_id = reader.i64()?;
        let producer_epoch = reader.i16()?;
        let verify_only = if nested { reader.boolean()? } else { false };
        let topics = reader.array(flexible, TOPICS_PER_REQUEST_MAX, |reader| {
            AddPartitionsToTxnTopic::decode(reader, flexible)
        })?;
        if nested && flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            transactional_id,
            producer_id,
            producer_epoch,
            verify_only,
            topics,
        })
    }
}

impl AddPartitionsToTxnTopic {
    fn decode(reader: &mut Reader, flexible: bool) -> Result<Self, DecodeError> {
        let name = reader.string(flexible)?;
        let partitions = reader.array(flexible, PARTITIONS_PER_TOPIC_MAX, Reader::i32)?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self { name, partitions })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{assert_count_rejected, check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic as OracleTopic, AddPartitionsToTxnTransaction as OracleTransaction,
    };
    use kafka_protocol::messages::{
        AddPartitionsToTxnRequest as Oracle, ProducerId, TopicName, TransactionalId,
    };

    fn topics(version: i16) -> Vec<OracleTopic> {
        (0..2)
            .map(|seed| {
                let topic = OracleTopic::default()
                    .with_name(TopicName(text(&format!("t{seed}"))))
                    .with_partitions(vec![seed, seed + 5, 7]);
                if version >= 3 {
                    return topic.with_unknown_tagged_field(1, Bytes::from_static(b"x"));
                }
                topic
            })
            .collect()
    }

    fn oracle(version: i16) -> Oracle {
        let mut request = Oracle::default();
        if version >= 4 {
            let transactions = (0..2)
                .map(|seed| {
                    OracleTransaction::default()
                        .with_transactional_id(TransactionalId(text(&format!("tx{seed}"))))
                        .with_producer_id(ProducerId(i64::from(seed) + 40))
                        .with_producer_epoch(seed as i16)
                        .with_verify_only(seed == 1)
                        .with_topics(topics(version))
                        .with_unknown_tagged_field(5, Bytes::from_static(b"y"))
                })
                .collect();
            request = request.with_transactions(transactions);
        } else {
            request = request
                .with_v3_and_below_transactional_id(TransactionalId(text("tx-ß")))
                .with_v3_and_below_producer_id(ProducerId(77))
                .with_v3_and_below_producer_epoch(2)
                .with_v3_and_below_topics(topics(version));
        }
        if version >= 3 {
            request = request.with_unknown_tagged_field(0, Bytes::from_static(b"r"));
        }
        request
    }

    fn assert_same_topics(ours: &[AddPartitionsToTxnTopic], theirs: &[OracleTopic]) {
        assert_eq!(ours.len(), theirs.len());
        for (ours, theirs) in ours.iter().zip(theirs) {
            assert_eq!(ours.name, theirs.name.0.as_str());
            assert_eq!(ours.partitions, theirs.partitions);
        }
    }

    fn assert_same(ours: &AddPartitionsToTxnRequest, theirs: &Oracle, version: i16) {
        if version >= 4 {
            assert_eq!(ours.transactions.len(), theirs.transactions.len());
            for (ours, theirs) in ours.transactions.iter().zip(&theirs.transactions) {
                assert_eq!(ours.transactional_id, theirs.transactional_id.0.as_str());
                assert_eq!(ours.producer_id, theirs.producer_id.0);
                assert_eq!(ours.producer_epoch, theirs.producer_epoch);
                assert_eq!(ours.verify_only, theirs.verify_only);
                assert_same_topics(&ours.topics, &theirs.topics);
            }
            return;
        }
        assert_eq!(ours.transactions.len(), 1, "v{version}: one transaction");
        let ours = &ours.transactions[0];
        assert_eq!(
            ours.transactional_id,
            theirs.v3_and_below_transactional_id.0.as_str()
        );
        assert_eq!(ours.producer_id, theirs.v3_and_below_producer_id.0);
        assert_eq!(ours.producer_epoch, theirs.v3_and_below_producer_epoch);
        assert!(!ours.verify_only);
        assert_same_topics(&ours.topics, &theirs.v3_and_below_topics);
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions =
            AddPartitionsToTxnRequest::VERSION_MIN..=AddPartitionsToTxnRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            AddPartitionsToTxnRequest::decode,
            assert_same,
        );
    }

    #[test]
    fn huge_array_count_fails_without_allocating() {
        // v0: transactional id "a", producer id, epoch, then a topic count of 0x7fff_ffff.
        let body = Bytes::from_static(&[
            0, 1, b'a', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff,
        ]);
        assert_count_rejected(
            AddPartitionsToTxnRequest::decode(&mut Reader::new(body), 0),
            0x7fff_ffff,
        );
    }
}
