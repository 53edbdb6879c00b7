//! OffsetFetch (key 9), v1–9: committed offsets of one group (v1–7) or of many (v8+, split by
//! coordinating shard), for the named partitions or, with null topics, all of them. v9 carries the
//! KIP-848 member id and epoch, which the coordinator checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use shards::mesh::{FetchedOffset, GroupError, GroupRequest, GroupResponse, OffsetFetchWork};

use super::groups::call;
use super::{encode, str_bytes, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::offset_fetch::{OffsetFetchGroup, OffsetFetchRequest};

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = OffsetFetchRequest::decode(reader, version)?;
    let mut answers = Vec::with_capacity(request.groups.len());
    for group in &request.groups {
        answers.push(fetch(context, group).await);
    }
    if version <= 7 {
        let answer = answers.into_iter().next().unwrap_or(Ok(Vec::new()));
        return encode(&single_group_response(answer, version), version, out);
    }
    let groups = request
        .groups
        .iter()
        .zip(answers)
        .map(|(group, answer)| {
            let response = OffsetFetchResponseGroup::default().with_group_id(
                kafka_protocol::messages::GroupId(str_bytes(&group.group_id)),
            );
            match answer {
                Ok(offsets) => response.with_topics(
                    by_topic(offsets)
                        .into_iter()
                        .map(|(topic, offsets)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(topic_name(&topic))
                                .with_partitions(offsets.iter().map(partitions_v8).collect())
                        })
                        .collect(),
                ),
                Err(error) => response.with_error_code(errors::group_error_code(&error)),
            }
        })
        .collect();
    encode(
        &OffsetFetchResponse::default().with_groups(groups),
        version,
        out,
    )
}

async fn fetch(
    context: &BrokerContext,
    group: &OffsetFetchGroup,
) -> Result<Vec<FetchedOffset>, GroupError> {
    let partitions = group.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|topic| {
                let name: Arc<str> = Arc::from(topic.name.as_str());
                topic
                    .partition_indexes
                    .iter()
                    .map(move |partition| (name.clone(), *partition))
            })
            .collect()
    });
    let work = OffsetFetchWork {
        group_id: group.group_id.clone(),
        member_id: group.member_id.clone(),
        member_epoch: group.member_epoch,
        partitions,
    };
    match call(context, &group.group_id, GroupRequest::OffsetFetch(work)).await {
        Ok(GroupResponse::OffsetFetch(result)) => result,
        Ok(other) => unreachable!("offset fetch answered {other:?}"),
        Err(error) => Err(error),
    }
}

/// Offsets grouped by topic, topics in first-seen order (the request's order when it named them).
fn by_topic(offsets: Vec<FetchedOffset>) -> Vec<(Arc<str>, Vec<FetchedOffset>)> {
    let mut order: Vec<Arc<str>> = Vec::new();
    let mut grouped: BTreeMap<Arc<str>, Vec<FetchedOffset>> = BTreeMap::new();
    for offset in offsets {
        if !grouped.contains_key(&offset.topic) {
            order.push(offset.topic.clone());
        }
        grouped
            .entry(offset.topic.clone())
            .or_default()
            .push(offset);
    }
    order
        .into_iter()
        .map(|topic| {
            let offsets = grouped.remove(&topic).unwrap_or_default();
            (topic, offsets)
        })
        .collect()
}

fn single_group_response(
    answer: Result<Vec<FetchedOffset>, GroupError>,
    version: i16,
) -> OffsetFetchResponse {
    match answer {
        Ok(offsets) => {
            let topics = by_topic(offsets)
                .into_iter()
                .map(|(topic, offsets)| {
                    let partitions = offsets
                        .iter()
                        .map(|offset| {
                            let partition = OffsetFetchResponsePartition::default()
                                .with_partition_index(offset.partition)
                                .with_committed_offset(offset.offset)
                                .with_metadata(Some(str_bytes(
                                    offset.metadata.as_deref().unwrap_or(""),
                                )));
                            if version >= 5 {
                                partition.with_committed_leader_epoch(offset.leader_epoch)
                            } else {
                                partition
                            }
                        })
                        .collect();
                    OffsetFetchResponseTopic::default()
                        .with_name(topic_name(&topic))
                        .with_partitions(partitions)
                })
                .collect();
            OffsetFetchResponse::default().with_topics(topics)
        }
        Err(error) if version >= 2 => {
            OffsetFetchResponse::default().with_error_code(errors::group_error_code(&error))
        }
        Err(_) => OffsetFetchResponse::default(),
    }
}

fn partitions_v8(offset: &FetchedOffset) -> OffsetFetchResponsePartitions {
    OffsetFetchResponsePartitions::default()
        .with_partition_index(offset.partition)
        .with_committed_offset(offset.offset)
        .with_committed_leader_epoch(offset.leader_epoch)
        .with_metadata(Some(str_bytes(offset.metadata.as_deref().unwrap_or(""))))
}
