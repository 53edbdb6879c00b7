//! ApiVersions (key 18), v0–4: the versions of every API we serve.
//!
//! The response header is always v0 (KIP-511), and a request of a version we do not know is answered
//! in v0 with UNSUPPORTED_VERSION and our ranges, so the client can retry with one we do.

use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

use super::{encode, BrokerContext, HandlerError, Outcome, APIS};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::api_versions::ApiVersionsRequest;

pub fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    // The client's software name and version are informational; decoding still checks the frame.
    let _request = ApiVersionsRequest::decode(reader, version)?;
    encode(&response(context, errors::NONE), version, out)
}

pub fn unsupported_version(context: &BrokerContext, out: &mut BytesMut) -> Outcome {
    match encode(&response(context, errors::UNSUPPORTED_VERSION), 0, out) {
        Ok(outcome) => outcome,
        Err(error) => Outcome::Close(format!("cannot encode ApiVersions v0: {error:?}")),
    }
}

fn response(context: &BrokerContext, error_code: i16) -> ApiVersionsResponse {
    let api_keys = APIS
        .iter()
        .filter(|api| context.serves(api))
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key as i16)
                .with_min_version(api.advertised_min)
                .with_max_version(api.max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}
