//! ConsumerGroupDescribe (key 69), v0–1: KIP-848 groups with their epochs, members, subscriptions,
//! current and target assignments (topic ids resolved to names from the catalog). A classic group
//! answers GROUP_ID_NOT_FOUND, which makes the admin client fall back to DescribeGroups.

use bytes::BytesMut;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, ConsumerGroupDescribeResponse, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::GroupId;
use shards::catalog::Catalog;
use shards::mesh::{GroupError, GroupRequest, GroupResponse, TopicIdPartitions};

use super::groups::per_group;
use super::{encode, str_bytes, topic_name, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::consumer_group_describe::ConsumerGroupDescribeRequest;

/// Kafka's value for "authorized operations were not requested".
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// KIP-1099 member type (v1): 1 = consumer protocol.
const MEMBER_TYPE_CONSUMER: i8 = 1;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = ConsumerGroupDescribeRequest::decode(reader, version)?;
    let catalog = context.shard.catalog();
    let answers = per_group(
        context,
        &request.group_ids,
        GroupRequest::ConsumerDescribe,
        |response| match response {
            GroupResponse::ConsumerDescribe(descriptions) => Some(descriptions),
            _ => None,
        },
        |error: &GroupError| Err(error.clone()),
    )
    .await;
    let groups = request
        .group_ids
        .iter()
        .zip(answers)
        .map(|(group_id, answer)| {
            let described = DescribedGroup::default()
                .with_group_id(GroupId(str_bytes(group_id)))
                .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
            match answer {
                Some(Ok(description)) => {
                    let members = description
                        .members
                        .into_iter()
                        .map(|member| {
                            let response = Member::default()
                                .with_member_id(str_bytes(&member.member_id))
                                .with_instance_id(member.instance_id.as_deref().map(str_bytes))
                                .with_rack_id(member.rack_id.as_deref().map(str_bytes))
                                .with_member_epoch(member.member_epoch)
                                .with_client_id(str_bytes(&member.client_id))
                                .with_client_host(str_bytes(&member.client_host))
                                .with_subscribed_topic_names(
                                    member
                                        .subscribed_topic_names
                                        .iter()
                                        .map(|name| topic_name(name))
                                        .collect(),
                                )
                                .with_subscribed_topic_regex(
                                    member.subscribed_topic_regex.as_deref().map(str_bytes),
                                )
                                .with_assignment(assignment(&catalog, &member.assignment))
                                .with_target_assignment(assignment(
                                    &catalog,
                                    &member.target_assignment,
                                ));
                            if version >= 1 {
                                response.with_member_type(MEMBER_TYPE_CONSUMER)
                            } else {
                                response
                            }
                        })
                        .collect();
                    described
                        .with_group_state(str_bytes(&description.state))
                        .with_group_epoch(description.group_epoch)
                        .with_assignment_epoch(description.assignment_epoch)
                        .with_assignor_name(str_bytes(&description.assignor))
                        .with_members(members)
                }
                Some(Err(error)) => described
                    .with_error_code(errors::group_error_code(&error))
                    .with_error_message(Some(str_bytes(&error.to_string()))),
                None => described.with_error_code(errors::UNKNOWN_SERVER_ERROR),
            }
        })
        .collect();
    encode(
        &ConsumerGroupDescribeResponse::default().with_groups(groups),
        version,
        out,
    )
}

fn assignment(catalog: &Catalog, partitions: &TopicIdPartitions) -> Assignment {
    let topics = partitions
        .iter()
        .map(|(topic_id, partitions)| {
            let name = catalog
                .topic_by_id(topic_id)
                .map(|topic| topic.name.to_string())
                .unwrap_or_default();
            TopicPartitions::default()
                .with_topic_id(uuid::Uuid::from_bytes(*topic_id))
                .with_topic_name(topic_name(&name))
                .with_partitions(partitions.clone())
        })
        .collect();
    Assignment::default().with_topic_partitions(topics)
}
