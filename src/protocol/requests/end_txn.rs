//! EndTxn request (key 26), versions 0–5; flexible from v3.
//!
//! Owns: decoding the body. Never: transaction state, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// True to commit, false to abort.
    pub committed: bool,
}

impl EndTxnRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 5;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::EndTxn,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let transactional_id = reader.string(flexible)?;
        let producer_id = reader.i64()?;
        let producer_epoch = reader.i16()?;
        let committed = reader.boolean()?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            transactional_id,
            producer_id,
            producer_epoch,
            committed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::{EndTxnRequest as Oracle, ProducerId, TransactionalId};

    fn oracle(version: i16) -> Oracle {
        let request = Oracle::default()
            .with_transactional_id(TransactionalId(text("tx-1")))
            .with_producer_id(ProducerId(99))
            .with_producer_epoch(3)
            .with_committed(version % 2 == 0);
        if version >= 3 {
            return request.with_unknown_tagged_field(2, Bytes::from_static(b"e"));
        }
        request
    }

    fn assert_same(ours: &EndTxnRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.transactional_id, theirs.transactional_id.0.as_str());
        assert_eq!(ours.producer_id, theirs.producer_id.0);
        assert_eq!(ours.producer_epoch, theirs.producer_epoch);
        assert_eq!(ours.committed, theirs.committed);
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = EndTxnRequest::VERSION_MIN..=EndTxnRequest::VERSION_MAX;
        check_every_version(versions, oracle, EndTxnRequest::decode, assert_same);
    }
}
