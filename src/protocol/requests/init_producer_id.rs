//! InitProducerId request (key 22), versions 0–5; flexible from v2. The producer id and epoch (v3+) let a
//! client bump the epoch of the id it already holds (KIP-360).
//!
//! Owns: decoding the body. Never: validating the timeout or the transactional id, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    pub transactional_id: Option<String>,
    pub transaction_timeout_ms: i32,
    /// v3+; -1 before.
    pub producer_id: i64,
    /// v3+; -1 before.
    pub producer_epoch: i16,
}

impl InitProducerIdRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 5;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::InitProducerId,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let transactional_id = reader.nullable_string(flexible)?;
        let transaction_timeout_ms = reader.i32()?;
        let (producer_id, producer_epoch) = if version >= 3 {
            (reader.i64()?, reader.i16()?)
        } else {
            (-1, -1)
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            transactional_id,
            transaction_timeout_ms,
            producer_id,
            producer_epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::{InitProducerIdRequest as Oracle, ProducerId, TransactionalId};

    fn oracle(version: i16) -> Oracle {
        let transactional_id = (version % 2 == 0).then(|| TransactionalId(text("tx-ß")));
        let mut request = Oracle::default()
            .with_transactional_id(transactional_id)
            .with_transaction_timeout_ms(60_000);
        if version >= 3 {
            request = request
                .with_producer_id(ProducerId(1234))
                .with_producer_epoch(7);
        }
        if version >= 2 {
            request = request.with_unknown_tagged_field(3, Bytes::from_static(b"t"));
        }
        request
    }

    fn assert_same(ours: &InitProducerIdRequest, theirs: &Oracle, _version: i16) {
        let their_id = theirs.transactional_id.as_ref().map(|id| id.0.as_str());
        assert_eq!(ours.transactional_id.as_deref(), their_id);
        assert_eq!(ours.transaction_timeout_ms, theirs.transaction_timeout_ms);
        assert_eq!(ours.producer_id, theirs.producer_id.0);
        assert_eq!(ours.producer_epoch, theirs.producer_epoch);
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = InitProducerIdRequest::VERSION_MIN..=InitProducerIdRequest::VERSION_MAX;
        check_every_version(versions, oracle, InitProducerIdRequest::decode, assert_same);
    }
}
