//! DescribeCluster request (key 60), versions 0–2; flexible in every version.
//!
//! Owns: decoding the body. Never: authorization or the choice of endpoints, or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeClusterRequest {
    pub include_cluster_authorized_operations: bool,
    /// v1+; 1 (brokers) before.
    pub endpoint_type: i8,
    /// v2+; false before.
    pub include_fenced_brokers: bool,
}

impl DescribeClusterRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 2;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::DescribeCluster,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let include_cluster_authorized_operations = reader.boolean()?;
        let endpoint_type = if version >= 1 { reader.i8()? } else { 1 };
        let include_fenced_brokers = if version >= 2 {
            reader.boolean()?
        } else {
            false
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            include_cluster_authorized_operations,
            endpoint_type,
            include_fenced_brokers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::check_every_version;
    use bytes::Bytes;
    use kafka_protocol::messages::DescribeClusterRequest as Oracle;

    fn oracle(version: i16) -> Oracle {
        let mut request = Oracle::default()
            .with_include_cluster_authorized_operations(true)
            .with_unknown_tagged_field(6, Bytes::from_static(b"future field"));
        if version >= 1 {
            request = request.with_endpoint_type(2);
        }
        if version >= 2 {
            request = request.with_include_fenced_brokers(true);
        }
        request
    }

    fn assert_same(ours: &DescribeClusterRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(
            ours.include_cluster_authorized_operations,
            theirs.include_cluster_authorized_operations
        );
        assert_eq!(ours.endpoint_type, theirs.endpoint_type);
        assert_eq!(ours.include_fenced_brokers, theirs.include_fenced_brokers);
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = DescribeClusterRequest::VERSION_MIN..=DescribeClusterRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            DescribeClusterRequest::decode,
            assert_same,
        );
    }

    #[test]
    fn huge_tagged_field_count_fails_without_looping() {
        // Flags, then a tagged-field count of 0x7fff_ffff in an 8-byte body.
        let body = Bytes::from_static(&[1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x07]);
        let result = DescribeClusterRequest::decode(&mut Reader::new(body), 2);
        assert!(
            matches!(result, Err(DecodeError::LengthTooLarge { .. })),
            "{result:?}"
        );
    }
}
