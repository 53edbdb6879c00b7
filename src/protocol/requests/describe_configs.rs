//! DescribeConfigs request (key 32), versions 1–4; flexible from v4.
//!
//! Owns: decoding the body. Never: resource-type semantics (2 = topic, 4 = broker, ...), or panics on input.

use super::check_version;
use crate::protocol::api_key::ApiKey;
use crate::protocol::reader::{DecodeError, Reader};
use crate::protocol::{CONFIG_KEYS_PER_RESOURCE_MAX, CONFIG_RESOURCES_PER_REQUEST_MAX};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConfigsRequest {
    pub resources: Vec<DescribeConfigsResource>,
    pub include_synonyms: bool,
    /// v3+; false before.
    pub include_documentation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConfigsResource {
    pub resource_type: i8,
    pub resource_name: String,
    /// Null = every config of the resource.
    pub configuration_keys: Option<Vec<String>>,
}

impl DescribeConfigsRequest {
    pub const VERSION_MIN: i16 = 1;
    pub const VERSION_MAX: i16 = 4;

    pub fn decode(reader: &mut Reader, version: i16) -> Result<Self, DecodeError> {
        let flexible = check_version(
            ApiKey::DescribeConfigs,
            version,
            Self::VERSION_MIN,
            Self::VERSION_MAX,
        )?;
        let resources = reader.array(flexible, CONFIG_RESOURCES_PER_REQUEST_MAX, |reader| {
            DescribeConfigsResource::decode(reader, flexible)
        })?;
        let include_synonyms = reader.boolean()?;
        let include_documentation = if version >= 3 {
            reader.boolean()?
        } else {
            false
        };
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            resources,
            include_synonyms,
            include_documentation,
        })
    }
}

impl DescribeConfigsResource {
    fn decode(reader: &mut Reader, flexible: bool) -> Result<Self, DecodeError> {
        let resource_type = reader.i8()?;
        let resource_name = reader.string(flexible)?;
        let configuration_keys =
            reader.nullable_array(flexible, CONFIG_KEYS_PER_RESOURCE_MAX, |reader| {
                reader.string(flexible)
            })?;
        if flexible {
            reader.skip_tagged_fields()?;
        }
        Ok(Self {
            resource_type,
            resource_name,
            configuration_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{assert_count_rejected, check_every_version, text};
    use bytes::Bytes;
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource as OracleResource;
    use kafka_protocol::messages::DescribeConfigsRequest as Oracle;

    fn oracle(version: i16) -> Oracle {
        let topic = OracleResource::default()
            .with_resource_type(2)
            .with_resource_name(text("payments"))
            .with_configuration_keys(Some(vec![text("retention.ms"), text("cleanup.policy")]));
        let broker = OracleResource::default()
            .with_resource_type(4)
            .with_resource_name(text("1"))
            .with_configuration_keys(None);
        let mut resources = vec![topic, broker];
        if version >= 4 {
            resources = resources
                .into_iter()
                .map(|resource| resource.with_unknown_tagged_field(1, Bytes::from_static(b"res")))
                .collect();
        }
        let mut request = Oracle::default()
            .with_resources(resources)
            .with_include_synonyms(true);
        if version >= 3 {
            request = request.with_include_documentation(true);
        }
        if version >= 4 {
            request = request.with_unknown_tagged_field(2, Bytes::from_static(b"req"));
        }
        request
    }

    fn assert_same(ours: &DescribeConfigsRequest, theirs: &Oracle, _version: i16) {
        assert_eq!(ours.include_synonyms, theirs.include_synonyms);
        assert_eq!(ours.include_documentation, theirs.include_documentation);
        assert_eq!(ours.resources.len(), theirs.resources.len());
        for (ours, theirs) in ours.resources.iter().zip(&theirs.resources) {
            assert_eq!(ours.resource_type, theirs.resource_type);
            assert_eq!(ours.resource_name, theirs.resource_name.as_str());
            let their_keys: Option<Vec<&str>> = theirs
                .configuration_keys
                .as_ref()
                .map(|keys| keys.iter().map(|key| key.as_str()).collect());
            let our_keys: Option<Vec<&str>> = ours
                .configuration_keys
                .as_ref()
                .map(|keys| keys.iter().map(String::as_str).collect());
            assert_eq!(our_keys, their_keys);
        }
    }

    #[test]
    fn matches_the_oracle_in_every_version() {
        let versions = DescribeConfigsRequest::VERSION_MIN..=DescribeConfigsRequest::VERSION_MAX;
        check_every_version(
            versions,
            oracle,
            DescribeConfigsRequest::decode,
            assert_same,
        );
    }

    #[test]
    fn huge_array_count_fails_without_allocating() {
        let body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_count_rejected(
            DescribeConfigsRequest::decode(&mut Reader::new(body), 1),
            0x7fff_ffff,
        );
        // One resource whose key count (500) passes its limit but not the bytes remaining.
        let body = Bytes::from_static(&[0, 0, 0, 1, 2, 0, 1, b't', 0, 0, 0x01, 0xf4, 0]);
        assert_count_rejected(
            DescribeConfigsRequest::decode(&mut Reader::new(body), 1),
            500,
        );
    }
}
