//! OffsetDelete (key 47), v0: removes committed offsets of a group, refused for topics the group is
//! still subscribed to (GROUP_SUBSCRIBED_TO_TOPIC).

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use shards::mesh::{GroupRequest, GroupResponse, OffsetDeleteWork};

use super::groups::call;
use super::{encode, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::offset_delete::OffsetDeleteRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = OffsetDeleteRequest::decode(reader, version)?;
    let partitions: Vec<(Arc<str>, i32)> = request
        .topics
        .iter()
        .flat_map(|(topic, partitions)| {
            let name: Arc<str> = Arc::from(topic.as_str());
            partitions
                .iter()
                .map(move |partition| (name.clone(), *partition))
        })
        .collect();
    let work = OffsetDeleteWork {
        group_id: request.group_id.clone(),
        partitions,
    };
    let result = match call(context, &request.group_id, GroupRequest::OffsetDelete(work)).await {
        Ok(GroupResponse::OffsetDelete(result)) => result,
        Ok(other) => unreachable!("offset delete answered {other:?}"),
        Err(error) => Err(error),
    };
    let response = match result {
        Err(error) => {
            OffsetDeleteResponse::default().with_error_code(errors::group_error_code(&error))
        }
        Ok(results) => {
            let mut results = results.into_iter();
            let topics = request
                .topics
                .iter()
                .map(|(topic, partitions)| {
                    let partitions = partitions
                        .iter()
                        .map(|partition| {
                            let code = match results.next() {
                                Some(result) => errors::group_result_code(result.err().as_ref()),
                                None => errors::UNKNOWN_SERVER_ERROR,
                            };
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(*partition)
                                .with_error_code(code)
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(partitions)
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    };
    encode(&response, version, out)
}
