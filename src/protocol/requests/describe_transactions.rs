//! DescribeTransactions request (key 65), version 0; flexible.
//!
//! Owns: decoding the body. Never: transaction state, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::IDS_PER_REQUEST_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTransactionsRequest {
    pub transactional_ids: Vec<String>,
}

impl DescribeTransactionsRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 0;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::DescribeTransactions,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let transactional_ids = reader.array(flexible, IDS_PER_REQUEST_MAX, |reader| {
            reader.string(flexible)
        })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self { transactional_ids })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::{DescribeTransactionsRequest as Oracle, TransactionalId};

    fn oracle(_version: i16) -> Oracle {
        Oracle::default()
            .with_transactional_ids(vec![TransactionalId(text("a")), TransactionalId(text("ß"))])
            .with_unknown_tagged_field(0, Bytes::from_static(b"r"))
    }

    fn assert_same(ours: &DescribeTransactionsRequest, theirs: &Oracle, _version: i16) {
        let theirs: Vec<&str> = theirs
            .transactional_ids
            .iter()
            .map(|id| id.0.as_str())
            .collect();
        assert_eq!(ours.transactional_ids, theirs);
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions =
            DescribeTransactionsRequest::VERSION_MIN..=DescribeTransactionsRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            DescribeTransactionsRequest::decode,
            assert_same,
        );
    }
}
