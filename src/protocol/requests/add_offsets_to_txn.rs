//! AddOffsetsToTxn request (key 25), versions 0–4; flexible from v3.
//!
//! Owns: decoding the body. Never: transaction or group state, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOffsetsToTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub group_id: String,
}

impl AddOffsetsToTxnRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 4;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::AddOffsetsToTxn,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let transactional_id = reader.string(flexible)?;
        let producer_id = reader.i64()?;
        let producer_epoch = reader.i16()?;
        let group_id = reader.string(flexible)?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            transactional_id,
            producer_id,
            producer_epoch,
            group_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::{
        AddOffsetsToTxnRequest as Oracle, GroupId, ProducerId, TransactionalId,
    };

    fn oracle(version: i16) -> Oracle {
        let request = Oracle::default()
            .with_transactional_id(TransactionalId(text("tx-1")))
            .with_producer_id(ProducerId(99))
            .with_producer_epoch(3)
            .with_group_id(GroupId(text("group-ü")));
        if version >= 3 {
            return request.with_unknown_tagged_field(2, Bytes::from_static(b"o"));
        }
        request
    }

    fn assert_same(ours: &AddOffsetsToTxnRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.transactional_id, theirs.transactional_id.0.as_str());
        assert_eq!(ours.producer_id, theirs.producer_id.0);
        assert_eq!(ours.producer_epoch, theirs.producer_epoch);
        assert_eq!(ours.group_id, theirs.group_id.0.as_str());
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = AddOffsetsToTxnRequest::VERSION_MIN..=AddOffsetsToTxnRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            AddOffsetsToTxnRequest::decode,
            assert_same,
        );
    }
}
