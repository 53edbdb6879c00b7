//! CreatePartitions (key 37), v0–3: grow a topic's partition count (never shrink), optionally only
//! validating. New partitions open on the shards that own them before the answer is sent.

use bytes::BytesMut;
use kafka_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use shards::mesh::{ControllerError, ControllerOp, ShardRequest, ShardResponse};
use shards::ShardId;

use super::{encode, str_bytes, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::create_partitions::CreatePartitionsRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = CreatePartitionsRequest::decode(reader, version)?;
    let mut early: Vec<Option<(i16, String)>> = Vec::with_capacity(request.topics.len());
    let mut changes = Vec::new();
    for topic in &request.topics {
        let single_node = topic
            .assignments
            .iter()
            .flatten()
            .all(|assignment| assignment.broker_ids.len() == 1);
        if !single_node {
            early.push(Some((
                errors::INVALID_REPLICA_ASSIGNMENT,
                "this broker is a single node".into(),
            )));
        } else {
            early.push(None);
            changes.push((topic.name.clone(), topic.count));
        }
    }
    let operation = ControllerOp::CreatePartitions {
        topics: changes,
        validate_only: request.validate_only,
    };
    let count = early.iter().filter(|item| item.is_none()).count();
    let mut outcomes = if count == 0 {
        Vec::new().into_iter()
    } else {
        match context
            .shard
            .call(ShardId(0), ShardRequest::Controller(operation))
            .await
        {
            Ok(ShardResponse::Controller(results)) => results.into_iter(),
            Ok(other) => unreachable!("controller answered {other:?}"),
            Err(error) => vec![Err(ControllerError::Storage(error.to_string())); count].into_iter(),
        }
    };
    let results = request
        .topics
        .iter()
        .zip(early)
        .map(|(topic, early)| {
            let (code, message) = match early {
                Some((code, message)) => (code, Some(message)),
                None => match outcomes.next() {
                    Some(Ok(())) => (errors::NONE, None),
                    Some(Err(error)) => (
                        errors::controller_error_code(&error),
                        Some(error.to_string()),
                    ),
                    None => (errors::UNKNOWN_SERVER_ERROR, None),
                },
            };
            CreatePartitionsTopicResult::default()
                .with_name(topic_name(&topic.name))
                .with_error_code(code)
                .with_error_message(message.as_deref().map(str_bytes))
        })
        .collect();
    encode(
        &CreatePartitionsResponse::default().with_results(results),
        version,
        out,
    )
}
