//! ListTransactions request (key 66), versions 0–1; flexible. Version 1 adds the duration filter
//! (KIP-994). Version 2's transactional id pattern (a regular expression) is not served.
//!
//! Owns: decoding the body. Never: transaction state, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::IDS_PER_REQUEST_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTransactionsRequest {
    pub state_filters: Vec<String>,
    pub producer_id_filters: Vec<i64>,
    /// v1+; -1 (no filter) before.
    pub duration_filter: i64,
}

impl ListTransactionsRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 1;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::ListTransactions,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let state_filters = reader.array(flexible, IDS_PER_REQUEST_MAX, |reader| {
            reader.string(flexible)
        })?;
        let producer_id_filters = reader.array(flexible, IDS_PER_REQUEST_MAX, Reader::i64)?;
        let duration_filter = if version >= 1 { reader.i64()? } else { -1 };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            state_filters,
            producer_id_filters,
            duration_filter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::{ListTransactionsRequest as Oracle, ProducerId};

    fn oracle(version: i16) -> Oracle {
        let request = Oracle::default()
            .with_state_filters(vec![text("Ongoing"), text("PrepareAbort")])
            .with_producer_id_filters(vec![ProducerId(3), ProducerId(-9)])
            .with_unknown_tagged_field(0, Bytes::from_static(b"r"));
        if version >= 1 {
            return request.with_duration_filter(60_000);
        }
        request
    }

    fn assert_same(ours: &ListTransactionsRequest, theirs: &Oracle, _version: i16) {
        let states: Vec<&str> = theirs
            .state_filters
            .iter()
            .map(|state| state.as_str())
            .collect();
        assert_eq!(ours.state_filters, states);
        let producers: Vec<i64> = theirs.producer_id_filters.iter().map(|id| id.0).collect();
        assert_eq!(ours.producer_id_filters, producers);
        assert_eq!(ours.duration_filter, theirs.duration_filter);
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = ListTransactionsRequest::VERSION_MIN..=ListTransactionsRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            ListTransactionsRequest::decode,
            assert_same,
        );
    }
}
