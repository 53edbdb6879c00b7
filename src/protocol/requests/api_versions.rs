//! ApiVersions request (key 18), versions 0–4; flexible from v3. Versions 0–2 have an empty body.
//!
//! Owns: decoding the body. Never: checking the client software strings (the handler answers INVALID_REQUEST for
//! names Kafka's pattern rejects) or choosing the response's header version (always v0 for ApiVersions).

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsRequest {
    /// v3+; empty before.
    pub client_software_name: String,
    /// v3+; empty before.
    pub client_software_version: String,
}

impl ApiVersionsRequest {
    pub const VERSION_MIN: i16 = 0;
    pub const VERSION_MAX: i16 = 4;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::ApiVersions,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        if !flexible {
            return Ok(Self {
                client_software_name: String::new(),
                client_software_version: String::new(),
            });
        }
        let client_software_name = reader.string(flexible)?;
        let client_software_version = reader.string(flexible)?;
        reader.skip_tagged_fields()?;
        Ok(Self {
            client_software_name,
            client_software_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::ApiVersionsRequest as Oracle;

    fn oracle(version: i16) -> Oracle {
        let request = Oracle::default();
        if version < 3 {
            return request;
        }
        request
            .with_client_software_name(text("apache-kafka-java"))
            .with_client_software_version(text("4.1.0-ü"))
            .with_unknown_tagged_field(5, Bytes::from_static(b"future"))
    }

    fn assert_same(ours: &ApiVersionsRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(
            ours.client_software_name,
            theirs.client_software_name.as_str()
        );
        assert_eq!(
            ours.client_software_version,
            theirs.client_software_version.as_str()
        );
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = ApiVersionsRequest::VERSION_MIN..=ApiVersionsRequest::VERSION_MAX;
        check_every_version(versions, oracle, ApiVersionsRequest::decode, assert_same);
    }

    #[test]
    fn huge_string_length_fails_without_allocating() {
        // Compact length 0xffff_ffff (varint ff ff ff ff 0f) in an 8-byte body.
        let body = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0]);
        let result = ApiVersionsRequest::decode(&mut Reader::new(body), 3);
        assert!(
            matches!(result, Err(DecodeError::LengthTooLarge { .. })),
            "{result:?}"
        );
    }
}
