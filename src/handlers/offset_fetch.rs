//! OffsetFetch (key 9), v1–10: committed offsets of one group (v1–7) or of many (v8+, split by
//! coordinating shard), for the named partitions or, with null topics, all of them. v9 carries the
//! KIP-848 member id and epoch, which the coordinator checks. v10 names topics by topic id: each id
//! is resolved against the catalog (offsets are stored by name), an unknown id answers its partitions
//! UNKNOWN_TOPIC_ID, and with null topics the committed offsets of topics that no longer exist are
//! left out, as Kafka does when it cannot give a topic an id.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use shards::catalog::Catalog;
use shards::mesh::{FetchedOffset, GroupError, GroupRequest, GroupResponse, OffsetFetchWork};

use super::groups::call;
use super::{encode, str_bytes, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::offset_fetch::{
    OffsetFetchGroup, OffsetFetchRequest, OffsetFetchTopic,
};

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = OffsetFetchRequest::decode(reader, version)?;
    let catalog = context.shard.catalog();
    let names: Vec<Option<Names>> = request
        .groups
        .iter()
        .map(|group| resolve(group, version, &catalog))
        .collect();
    let mut answers = Vec::with_capacity(request.groups.len());
    for (group, names) in request.groups.iter().zip(&names) {
        answers.push(fetch(context, group, names.as_deref()).await);
    }
    if version <= 7 {
        let answer = answers.into_iter().next().unwrap_or(Ok(Vec::new()));
        return encode(&single_group_response(answer, version), version, out);
    }
    let groups = request
        .groups
        .iter()
        .zip(&names)
        .zip(answers)
        .map(|((group, names), answer)| {
            let response = OffsetFetchResponseGroup::default().with_group_id(
                kafka_protocol::messages::GroupId(str_bytes(&group.group_id)),
            );
            match answer {
                Ok(offsets) if version >= 10 => {
                    response.with_topics(topics_by_id(group, names.as_deref(), offsets, &catalog))
                }
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

/// Per requested topic, the name its offsets are stored under: the request's (v1–9) or its id's topic
/// (v10; None for an id the catalog does not hold).
type Names = Vec<Option<Arc<str>>>;

/// The names of the topics a group asks for; None when it asks for every offset.
fn resolve(group: &OffsetFetchGroup, version: i16, catalog: &Catalog) -> Option<Names> {
    let topics = group.topics.as_ref()?;
    let name = |topic: &OffsetFetchTopic| {
        if version >= 10 {
            let info = catalog.topic_by_id(&topic.topic_id)?;
            Some(Arc::clone(&info.name))
        } else {
            Some(Arc::from(topic.name.as_str()))
        }
    };
    Some(topics.iter().map(name).collect())
}

/// Asks the group's coordinator for the requested partitions of the topics `names` resolved (an
/// unknown topic id is not asked), or for every offset when the group names no topics.
async fn fetch(
    context: &BrokerContext,
    group: &OffsetFetchGroup,
    names: Option<&[Option<Arc<str>>]>,
) -> Result<Vec<FetchedOffset>, GroupError> {
    let partitions = group.topics.as_ref().zip(names).map(|(topics, names)| {
        topics
            .iter()
            .zip(names)
            .filter_map(|(topic, name)| Some((topic, name.clone()?)))
            .flat_map(|(topic, name)| {
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

/// v10's topics, named by id. Requested topics come back in request order, the coordinator having
/// answered one offset per asked partition in that order; an unknown id answers UNKNOWN_TOPIC_ID for
/// each of its partitions. With null topics, every committed offset of a topic the catalog still holds.
fn topics_by_id(
    group: &OffsetFetchGroup,
    names: Option<&[Option<Arc<str>>]>,
    offsets: Vec<FetchedOffset>,
    catalog: &Catalog,
) -> Vec<OffsetFetchResponseTopics> {
    let topic = |id: [u8; 16], partitions| {
        OffsetFetchResponseTopics::default()
            .with_topic_id(uuid::Uuid::from_bytes(id))
            .with_partitions(partitions)
    };
    let (Some(topics), Some(names)) = (&group.topics, names) else {
        return by_topic(offsets)
            .into_iter()
            .filter_map(|(name, offsets)| {
                let info = catalog.topic(&name)?;
                Some(topic(info.id, offsets.iter().map(partitions_v8).collect()))
            })
            .collect();
    };
    let mut offsets = offsets.iter();
    topics
        .iter()
        .zip(names)
        .map(|(requested, name)| {
            let partitions = requested
                .partition_indexes
                .iter()
                .map(|&partition| match name {
                    Some(_) => offsets.next().map_or_else(
                        || unanswered(partition, errors::UNKNOWN_SERVER_ERROR),
                        partitions_v8,
                    ),
                    None => unanswered(partition, errors::UNKNOWN_TOPIC_ID),
                })
                .collect();
            topic(requested.topic_id, partitions)
        })
        .collect()
}

/// A partition the coordinator was not asked about, with no offset and `code`.
fn unanswered(partition: i32, code: i16) -> OffsetFetchResponsePartitions {
    OffsetFetchResponsePartitions::default()
        .with_partition_index(partition)
        .with_committed_offset(-1)
        .with_committed_leader_epoch(-1)
        .with_metadata(Some(str_bytes("")))
        .with_error_code(code)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::test_support::{from_hex, uuid_bytes};
    use shards::catalog::TopicInfo;

    /// kafka-clients 4.4.0's `OffsetFetchResponseData` at v10 (`MessageUtil.toByteBufferAccessor`): group "g1"
    /// with topic id `uuid_bytes(7)` (partition 1: offset 42, epoch 9, "meta") and topic id `uuid_bytes(8)`
    /// (partition 3: -1, -1, "", UNKNOWN_TOPIC_ID), then group "g2" with COORDINATOR_NOT_AVAILABLE (16).
    const V10: &str = "000000000303673103d9dadbdcdddedfe0e1e2e3e4e5e6e7e80200000001000000000000002a000000\
                       09056d65746100000000f8f9fafbfcfdfeff00010203040506070200000003ffffffffffffffffffff\
                       ffff01006400000000000367320100100000";

    #[test]
    fn v10_response_is_encoded_like_kafka_clients() {
        let name: Arc<str> = Arc::from("orders");
        let info = TopicInfo {
            name: name.clone(),
            id: uuid_bytes(7),
            partitions: 4,
            config: Default::default(),
        };
        let catalog = Catalog::new(1, String::new(), [(name.clone(), Arc::new(info))].into());
        let requested = |seed, partition| OffsetFetchTopic {
            name: String::new(),
            topic_id: uuid_bytes(seed),
            partition_indexes: vec![partition],
        };
        let group = OffsetFetchGroup {
            group_id: "g1".into(),
            member_id: None,
            member_epoch: -1,
            topics: Some(vec![requested(7, 1), requested(8, 3)]),
        };
        let names = [Some(name.clone()), None];
        let committed = FetchedOffset {
            topic: name,
            partition: 1,
            offset: 42,
            leader_epoch: 9,
            metadata: Some("meta".into()),
        };
        let topics = topics_by_id(&group, Some(&names), vec![committed], &catalog);
        let groups = vec![
            OffsetFetchResponseGroup::default()
                .with_group_id(kafka_protocol::messages::GroupId(str_bytes("g1")))
                .with_topics(topics),
            OffsetFetchResponseGroup::default()
                .with_group_id(kafka_protocol::messages::GroupId(str_bytes("g2")))
                .with_error_code(16),
        ];
        let mut out = BytesMut::new();
        let response = OffsetFetchResponse::default().with_groups(groups);
        assert!(encode(&response, 10, &mut out).is_ok());
        assert_eq!(out.freeze(), from_hex(V10));
    }

    #[test]
    fn v10_all_topics_skips_topics_the_catalog_no_longer_holds() {
        let name: Arc<str> = Arc::from("orders");
        let info = TopicInfo {
            name: name.clone(),
            id: uuid_bytes(7),
            partitions: 1,
            config: Default::default(),
        };
        let catalog = Catalog::new(1, String::new(), [(name.clone(), Arc::new(info))].into());
        let offset = |topic: &Arc<str>| FetchedOffset {
            topic: topic.clone(),
            partition: 0,
            offset: 5,
            leader_epoch: -1,
            metadata: None,
        };
        let group = OffsetFetchGroup {
            group_id: "g".into(),
            member_id: None,
            member_epoch: -1,
            topics: None,
        };
        let deleted: Arc<str> = Arc::from("deleted");
        let topics = topics_by_id(
            &group,
            None,
            vec![offset(&deleted), offset(&name)],
            &catalog,
        );
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].topic_id, uuid::Uuid::from_bytes(uuid_bytes(7)));
        assert_eq!(topics[0].partitions.len(), 1);
        assert_eq!(topics[0].partitions[0].committed_offset, 5);
    }
}
