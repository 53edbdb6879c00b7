//! DescribeConfigs (key 32), v1–4: a topic's configs (overrides and defaults), and this broker's
//! settings that clients commonly look at.

use bytes::BytesMut;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
};
use shards::catalog::ConfigEntry;

use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::describe_configs::{
    DescribeConfigsRequest, DescribeConfigsResource,
};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

pub fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = DescribeConfigsRequest::decode(reader, version)?;
    let results = request
        .resources
        .iter()
        .map(|resource| describe(context, resource, version))
        .collect();
    encode(
        &DescribeConfigsResponse::default().with_results(results),
        version,
        out,
    )
}

fn describe(
    context: &BrokerContext,
    resource: &DescribeConfigsResource,
    version: i16,
) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(str_bytes(&resource.resource_name));
    let (entries, source_override) = match resource.resource_type {
        RESOURCE_TOPIC => {
            let catalog = context.shard.catalog();
            let Some(topic) = catalog.topic(&resource.resource_name) else {
                return result
                    .with_error_code(errors::UNKNOWN_TOPIC_OR_PARTITION)
                    .with_error_message(Some(str_bytes("unknown topic")));
            };
            (
                topic.config.describe(context.shard.defaults()),
                SOURCE_DYNAMIC_TOPIC,
            )
        }
        RESOURCE_BROKER
            if resource.resource_name.is_empty()
                || resource.resource_name == context.node_id.to_string() =>
        {
            (broker_entries(context), SOURCE_STATIC_BROKER)
        }
        RESOURCE_BROKER => {
            return result
                .with_error_code(errors::INVALID_REQUEST)
                .with_error_message(Some(str_bytes("unexpected broker id")));
        }
        _ => {
            return result
                .with_error_code(errors::INVALID_REQUEST)
                .with_error_message(Some(str_bytes("unsupported resource type")));
        }
    };
    let wanted = |name: &str| {
        resource
            .configuration_keys
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|key| key == name))
    };
    let configs = entries
        .into_iter()
        .filter(|entry| wanted(entry.name))
        .map(|entry| {
            let source = if entry.is_default {
                SOURCE_DEFAULT
            } else {
                source_override
            };
            let mut config = DescribeConfigsResourceResult::default()
                .with_name(str_bytes(entry.name))
                .with_value(Some(str_bytes(&entry.value)))
                .with_read_only(entry.read_only)
                .with_config_source(source);
            if version >= 3 {
                config = config.with_config_type(config_type(entry.name));
            }
            config
        })
        .collect();
    result.with_configs(configs)
}

fn broker_entries(context: &BrokerContext) -> Vec<ConfigEntry> {
    let defaults = context.shard.defaults();
    let entry = |name: &'static str, value: String| ConfigEntry {
        name,
        value,
        is_default: false,
        read_only: true,
    };
    vec![
        entry(
            "auto.create.topics.enable",
            defaults.auto_create_topics.to_string(),
        ),
        entry("log.retention.ms", defaults.retention_ms.to_string()),
        entry("log.segment.bytes", defaults.segment_bytes.to_string()),
        entry("message.max.bytes", defaults.max_message_bytes.to_string()),
        entry("node.id", context.node_id.to_string()),
        entry("num.partitions", defaults.partitions.to_string()),
    ]
}

fn config_type(name: &str) -> i8 {
    match name {
        "cleanup.policy" => TYPE_LIST,
        "compression.type" | "message.timestamp.type" => TYPE_STRING,
        "auto.create.topics.enable" => TYPE_BOOLEAN,
        "retention.ms" | "retention.bytes" | "segment.ms" | "log.retention.ms" => TYPE_LONG,
        _ => TYPE_INT,
    }
}
