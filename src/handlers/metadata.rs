//! Metadata (key 3), v0–13: this broker, and the topics asked for (or all), auto-creating unknown ones.

use bytes::BytesMut;
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::BrokerId;
use shards::catalog::{valid_topic_name, Catalog};

use super::{create_topics, encode, str_bytes, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::metadata::MetadataRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = MetadataRequest::decode(reader, version)?;
    let mut catalog = context.shard.catalog();
    // v0 uses an empty list for "all topics"; later versions use null.
    let all_topics = request.topics.is_none()
        || (version == 0 && request.topics.as_ref().is_some_and(Vec::is_empty));
    let mut wanted: Vec<Wanted> = Vec::new();
    if !all_topics {
        for topic in request.topics.iter().flatten() {
            wanted.push(match &topic.name {
                Some(name) => Wanted::Name(name.clone()),
                None => Wanted::Id(topic.topic_id),
            });
        }
        let missing: Vec<String> = wanted
            .iter()
            .filter_map(|wanted| match wanted {
                Wanted::Name(name) if valid_topic_name(name) && catalog.topic(name).is_none() => {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect();
        if !missing.is_empty() && request.allow_auto_topic_creation {
            create_topics::auto_create(context, missing).await;
            catalog = context.shard.catalog();
        }
    }
    let topics = if all_topics {
        catalog
            .topics()
            .keys()
            .map(|name| describe_topic(context, &catalog, &Wanted::Name(name.to_string()), version))
            .collect()
    } else {
        wanted
            .iter()
            .map(|wanted| describe_topic(context, &catalog, wanted, version))
            .collect()
    };
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(context.node_id))
        .with_host(str_bytes(&context.advertised_host))
        .with_port(context.port);
    let mut response = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(Some(str_bytes(&catalog.cluster_id)))
        .with_controller_id(BrokerId(context.node_id))
        .with_topics(topics);
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        // Authorization is not implemented: report "all operations" is not true, so report none known.
        response = response.with_cluster_authorized_operations(0);
    }
    encode(&response, version, out)
}

enum Wanted {
    Name(String),
    Id([u8; 16]),
}

fn describe_topic(
    context: &BrokerContext,
    catalog: &Catalog,
    wanted: &Wanted,
    version: i16,
) -> MetadataResponseTopic {
    let info = match wanted {
        Wanted::Name(name) => catalog.topic(name),
        Wanted::Id(id) => catalog.topic_by_id(id),
    };
    let Some(info) = info else {
        let (code, name, id) = match wanted {
            Wanted::Name(name) if !valid_topic_name(name) => (
                errors::INVALID_TOPIC_EXCEPTION,
                Some(name.as_str()),
                [0; 16],
            ),
            Wanted::Name(name) => (
                errors::UNKNOWN_TOPIC_OR_PARTITION,
                Some(name.as_str()),
                [0; 16],
            ),
            Wanted::Id(id) => (errors::UNKNOWN_TOPIC_ID, None, *id),
        };
        let mut topic = MetadataResponseTopic::default()
            .with_error_code(code)
            .with_name(name.map(topic_name));
        if version >= 10 {
            topic = topic.with_topic_id(uuid::Uuid::from_bytes(id));
        }
        return topic;
    };
    let node = BrokerId(context.node_id);
    let partitions = (0..info.partitions)
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    let mut topic = MetadataResponseTopic::default()
        .with_name(Some(topic_name(&info.name)))
        .with_partitions(partitions);
    if version >= 10 {
        topic = topic.with_topic_id(uuid::Uuid::from_bytes(info.id));
    }
    topic
}
