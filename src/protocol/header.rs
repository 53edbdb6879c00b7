//! Request and response headers: framing what precedes every request body and every response body.
//!
//! Request header v1 is api_key (int16), api_version (int16), correlation_id (int32) and client_id as a nullable
//! string with an int16 length. Header v2 (flexible requests) keeps client_id in that classic form and adds a
//! tagged-field section. Response header v0 is the correlation id; v1 adds an (empty) tagged-field section.
//!
//! Owns: header decode and encode, and which header version a request or response uses.
//! Never: I/O, the frame's size prefix (net strips it), dispatch, or panics on input.

use bytes::{BufMut, Bytes, BytesMut};

use super::api_key::ApiKey;
use super::reader::{DecodeError, Reader};

/// The decoded request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// Reads api key, api version and correlation id from the front of a frame, without allocating, so the caller
/// can pick the header version (and answer errors with the right correlation id) before decoding the rest.
pub fn peek_api(frame: &[u8]) -> Result<(i16, i16, i32), DecodeError> {
    let Some(prefix) = frame.first_chunk::<8>() else {
        return Err(DecodeError::Truncated {
            needed: 8,
            remaining: frame.len(),
        });
    };
    let [key_high, key_low, version_high, version_low, id_0, id_1, id_2, id_3] = *prefix;
    let api_key = i16::from_be_bytes([key_high, key_low]);
    let api_version = i16::from_be_bytes([version_high, version_low]);
    let correlation_id = i32::from_be_bytes([id_0, id_1, id_2, id_3]);
    Ok((api_key, api_version, correlation_id))
}

/// Decodes the request header (v2 when `flexible`, else v1) and returns it with the body, a zero-copy slice of
/// `frame`.
pub fn decode_request_header(
    frame: &Bytes,
    flexible: bool,
) -> Result<(RequestHeader, Bytes), DecodeError> {
    let mut reader = Reader::new(frame.clone());
    let api_key = reader.i16()?;
    let api_version = reader.i16()?;
    let correlation_id = reader.i32()?;
    // The client id keeps its classic int16 length even in header v2.
    let client_id = reader.nullable_string(false)?;
    if flexible {
        reader.skip_tagged_fields()?;
    }
    let header = RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id,
    };
    Ok((header, reader.into_remaining()))
}

/// Whether a request uses the flexible encoding and request header v2. Unknown keys answer false (header v1): the
/// broker only needs their correlation id, to answer UNSUPPORTED_VERSION.
pub fn request_is_flexible(api_key: i16, version: i16) -> bool {
    match ApiKey::from_i16(api_key) {
        Some(key) => key.request_is_flexible(version),
        None => false,
    }
}

/// Whether a response uses response header v1. ApiVersions responses never do.
pub fn response_is_flexible(api_key: i16, version: i16) -> bool {
    match ApiKey::from_i16(api_key) {
        Some(key) => key.response_is_flexible(version),
        None => false,
    }
}

/// Appends a response header: v0 (correlation id) or, when `flexible`, v1 (plus an empty tagged-field section).
/// Pass `response_is_flexible(..)`, not `request_is_flexible(..)`: they differ for ApiVersions.
pub fn encode_response_header(out: &mut BytesMut, correlation_id: i32, flexible: bool) {
    out.put_i32(correlation_id);
    if flexible {
        // Zero tagged fields. Kafka omits tagged fields that hold their default, and librdkafka < 2.1 misparses
        // non-empty ones, so we never write any.
        out.put_u8(0);
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::protocol::test_support::assert_every_truncation_fails;
    use kafka_protocol::messages::{
        RequestHeader as OracleHeader, ResponseHeader as OracleResponseHeader,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn oracle_frame(header: &OracleHeader, header_version: i16, body: &[u8]) -> Bytes {
        let mut frame = BytesMut::new();
        header
            .encode(&mut frame, header_version)
            .expect("oracle encodes");
        frame.extend_from_slice(body);
        frame.freeze()
    }

    fn oracle_header(client_id: Option<&str>) -> OracleHeader {
        OracleHeader::default()
            .with_request_api_key(1)
            .with_request_api_version(17)
            .with_correlation_id(-123_456)
            .with_client_id(client_id.map(|id| StrBytes::from_string(id.to_owned())))
    }

    #[test]
    fn decodes_header_v1_and_v2_from_the_oracle() {
        let body = [9u8, 8, 7];
        for header_version in [1i16, 2] {
            for client_id in [Some("consumer-1 ✓"), Some(""), None] {
                let mut header = oracle_header(client_id);
                if header_version == 2 {
                    header = header.with_unknown_tagged_field(7, Bytes::from_static(b"tag"));
                }
                let frame = oracle_frame(&header, header_version, &body);
                let flexible = header_version == 2;
                let (ours, rest) = decode_request_header(&frame, flexible).expect("decodes");
                assert_eq!(ours.api_key, 1);
                assert_eq!(ours.api_version, 17);
                assert_eq!(ours.correlation_id, -123_456);
                assert_eq!(ours.client_id.as_deref(), client_id);
                assert_eq!(rest.as_ref(), &body);
                assert_eq!(peek_api(&frame), Ok((1, 17, -123_456)));
            }
        }
    }

    #[test]
    fn header_truncations_fail() {
        for header_version in [1i16, 2] {
            let frame = oracle_frame(&oracle_header(Some("client")), header_version, &[]);
            let flexible = header_version == 2;
            assert_every_truncation_fails(&frame, |prefix| {
                decode_request_header(&prefix, flexible).map(|_| ())
            });
            assert!(peek_api(frame.get(..7).expect("long enough")).is_err());
        }
    }

    #[test]
    fn client_id_longer_than_the_frame_fails() {
        let frame = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, b'a']);
        let result = decode_request_header(&frame, false);
        assert!(
            matches!(result, Err(DecodeError::Truncated { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn encodes_response_headers_like_the_oracle() {
        for (header_version, flexible) in [(0i16, false), (1, true)] {
            let mut oracle = BytesMut::new();
            let header = OracleResponseHeader::default().with_correlation_id(0x0102_0304);
            header
                .encode(&mut oracle, header_version)
                .expect("oracle encodes");
            let mut ours = BytesMut::new();
            encode_response_header(&mut ours, 0x0102_0304, flexible);
            assert_eq!(ours, oracle);
        }
    }

    #[test]
    fn flexibility_by_raw_key() {
        assert!(request_is_flexible(18, 3));
        assert!(!response_is_flexible(18, 3));
        assert!(request_is_flexible(0, 9));
        assert!(response_is_flexible(0, 9));
        assert!(!request_is_flexible(0, 8));
        assert!(!request_is_flexible(-1, 0));
        assert!(!request_is_flexible(1000, 5));
    }
}
