//! DeleteTopics (key 20), v1–6: by name, or by topic id from v6. The controller (shard 0) removes the
//! topics from the catalog, and each shard deletes the partitions it owned.

use bytes::BytesMut;
use kafka_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use shards::mesh::{ControllerError, ControllerOp, ShardRequest, ShardResponse};
use shards::ShardId;

use super::{encode, str_bytes, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::delete_topics::DeleteTopicsRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = DeleteTopicsRequest::decode(reader, version)?;
    let catalog = context.shard.catalog();
    // Each requested topic as (name if known, id, early error).
    let requested: Vec<(Option<String>, [u8; 16], Option<i16>)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|topic| match &topic.name {
                Some(name) => (
                    Some(name.clone()),
                    catalog.topic(name).map_or([0; 16], |info| info.id),
                    None,
                ),
                None => match catalog.topic_by_id(&topic.topic_id) {
                    Some(info) => (Some(info.name.to_string()), topic.topic_id, None),
                    None => (None, topic.topic_id, Some(errors::UNKNOWN_TOPIC_ID)),
                },
            })
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|name| (Some(name.clone()), [0; 16], None))
            .collect()
    };
    let names: Vec<String> = requested
        .iter()
        .filter(|(_, _, early)| early.is_none())
        .filter_map(|(name, _, _)| name.clone())
        .collect();
    let mut outcomes = delete(context, names).await.into_iter();
    let responses = requested
        .into_iter()
        .map(|(name, id, early)| {
            let (code, message) = match early {
                Some(code) => (code, None),
                None => match outcomes.next() {
                    Some(Ok(())) => (errors::NONE, None),
                    Some(Err(error)) => (
                        errors::controller_error_code(&error),
                        Some(error.to_string()),
                    ),
                    None => (errors::UNKNOWN_SERVER_ERROR, None),
                },
            };
            let mut result = DeletableTopicResult::default()
                .with_error_code(code)
                .with_name(name.as_deref().map(topic_name));
            if version >= 5 {
                result = result.with_error_message(message.as_deref().map(str_bytes));
            }
            if version >= 6 {
                result = result.with_topic_id(uuid::Uuid::from_bytes(id));
            }
            result
        })
        .collect();
    encode(
        &DeleteTopicsResponse::default().with_responses(responses),
        version,
        out,
    )
}

async fn delete(context: &BrokerContext, names: Vec<String>) -> Vec<Result<(), ControllerError>> {
    if names.is_empty() {
        return Vec::new();
    }
    let count = names.len();
    match context
        .shard
        .call(
            ShardId(0),
            ShardRequest::Controller(ControllerOp::DeleteTopics { names }),
        )
        .await
    {
        Ok(ShardResponse::Controller(results)) => results,
        Ok(other) => unreachable!("controller answered {other:?}"),
        Err(error) => vec![Err(ControllerError::Storage(error.to_string())); count],
    }
}
