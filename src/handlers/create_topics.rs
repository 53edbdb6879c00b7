//! CreateTopics (key 19), v2–7, and the auto-creation Metadata and Produce use.
//!
//! Topic creation is a catalog change, so it goes to shard 0 (the catalog's single writer), which
//! persists the new catalog and has every shard open the partitions it owns before answering.

use std::collections::HashSet;

use bytes::BytesMut;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicResult, CreateTopicsResponse,
};
use shards::catalog::TopicConfig;
use shards::mesh::{ControllerError, ControllerOp, NewTopic, ShardRequest, ShardResponse};
use shards::ShardId;

use super::{encode, str_bytes, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::create_topics::{CreatableTopic, CreateTopicsRequest};

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = CreateTopicsRequest::decode(reader, version)?;
    // Kafka answers INVALID_REQUEST for every occurrence of a name given twice.
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|topic| !seen.insert(topic.name.clone()))
        .map(|topic| topic.name.clone())
        .collect();
    let mut results: Vec<Option<(i16, Option<String>)>> = Vec::with_capacity(request.topics.len());
    let mut new_topics = Vec::new();
    for topic in &request.topics {
        if duplicates.contains(&topic.name) {
            results.push(Some((
                errors::INVALID_REQUEST,
                Some("duplicate topic name in request".into()),
            )));
            continue;
        }
        match new_topic(topic) {
            Ok(new) => {
                results.push(None);
                new_topics.push(new);
            }
            Err(failure) => results.push(Some(failure)),
        }
    }
    let mut outcomes = create(context, new_topics, request.validate_only)
        .await
        .into_iter();
    let catalog = context.shard.catalog();
    let topics = request
        .topics
        .iter()
        .zip(results)
        .map(|(topic, early)| {
            let (code, message) = early.unwrap_or_else(|| match outcomes.next() {
                Some(Ok(())) => (errors::NONE, None),
                Some(Err(error)) => (
                    errors::controller_error_code(&error),
                    Some(error.to_string()),
                ),
                None => (errors::UNKNOWN_SERVER_ERROR, None),
            });
            let mut result = CreatableTopicResult::default()
                .with_name(topic_name(&topic.name))
                .with_error_code(code)
                .with_error_message(message.as_deref().map(str_bytes));
            if version >= 5 && code == errors::NONE {
                let partitions = if topic.num_partitions == -1 {
                    context.shard.defaults().partitions
                } else {
                    topic.num_partitions
                };
                result = result
                    .with_num_partitions(partitions)
                    .with_replication_factor(1);
                if let Some(info) = catalog.topic(&topic.name).filter(|_| version >= 7) {
                    result = result.with_topic_id(uuid::Uuid::from_bytes(info.id));
                }
            }
            result
        })
        .collect();
    encode(
        &CreateTopicsResponse::default().with_topics(topics),
        version,
        out,
    )
}

fn new_topic(topic: &CreatableTopic) -> Result<NewTopic, (i16, Option<String>)> {
    if !topic.assignments.is_empty() {
        let single_node = topic
            .assignments
            .iter()
            .all(|assignment| assignment.broker_ids.len() == 1);
        if !single_node || topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err((
                errors::INVALID_REPLICA_ASSIGNMENT,
                Some("this broker is a single node".into()),
            ));
        }
    }
    let pairs = topic
        .configs
        .iter()
        .map(|config| (config.name.as_str(), config.value.as_deref()));
    let config = TopicConfig::from_pairs(pairs)
        .map_err(|error| (errors::INVALID_CONFIG, Some(error.to_string())))?;
    let partitions = if topic.assignments.is_empty() {
        topic.num_partitions
    } else {
        topic.assignments.len() as i32
    };
    Ok(NewTopic {
        name: topic.name.clone(),
        partitions,
        replication_factor: topic.replication_factor,
        config,
    })
}

/// Asks the controller (shard 0) to create topics; one result per topic, in order.
pub async fn create(
    context: &BrokerContext,
    topics: Vec<NewTopic>,
    validate_only: bool,
) -> Vec<Result<(), ControllerError>> {
    if topics.is_empty() {
        return Vec::new();
    }
    let count = topics.len();
    let request = ShardRequest::Controller(ControllerOp::CreateTopics {
        topics,
        validate_only,
    });
    match context.shard.call(ShardId(0), request).await {
        Ok(ShardResponse::Controller(results)) => results,
        Ok(other) => unreachable!("controller answered {other:?}"),
        Err(error) => vec![Err(ControllerError::Storage(error.to_string())); count],
    }
}

/// Creates the named topics with the broker defaults, if auto-creation is on; errors are ignored (a
/// racing creation by another client is fine, and the caller re-reads the catalog either way).
pub async fn auto_create(context: &BrokerContext, names: Vec<String>) {
    if names.is_empty() || !context.shard.defaults().auto_create_topics {
        return;
    }
    let topics = names
        .into_iter()
        .map(|name| NewTopic {
            name,
            partitions: -1,
            replication_factor: -1,
            config: TopicConfig::default(),
        })
        .collect();
    create(context, topics, false).await;
}
