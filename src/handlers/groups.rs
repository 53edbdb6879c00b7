//! What every group handler shares: reaching the shard that coordinates a group, and splitting a
//! request that names many groups by coordinating shard.
//!
//! Owns: the hop from the connection's shard to the group's shard (`Shard::call`), and turning a mesh
//! failure (only while stopping) into a group error the client retries. Never: group logic.

use std::collections::BTreeMap;

use shards::mesh::{GroupError, GroupRequest, GroupResponse, ShardRequest, ShardResponse};
use shards::ShardId;

use super::BrokerContext;

/// Sends one group request to the shard that coordinates `group_id`.
pub async fn call(
    context: &BrokerContext,
    group_id: &str,
    request: GroupRequest,
) -> Result<GroupResponse, GroupError> {
    let owner = context.shard.group_owner(group_id);
    call_shard(context, owner, request).await
}

pub async fn call_shard(
    context: &BrokerContext,
    owner: ShardId,
    request: GroupRequest,
) -> Result<GroupResponse, GroupError> {
    match context
        .shard
        .call(owner, ShardRequest::Group(Box::new(request)))
        .await
    {
        Ok(ShardResponse::Group(response)) => Ok(response),
        Ok(other) => unreachable!("a group request answered {other:?}"),
        Err(error) => Err(GroupError::CoordinatorNotAvailable(error.to_string())),
    }
}

/// Splits group ids by coordinating shard, keeping each id's position in the request.
pub fn by_owner(
    context: &BrokerContext,
    group_ids: &[String],
) -> BTreeMap<ShardId, Vec<(usize, String)>> {
    let mut owners: BTreeMap<ShardId, Vec<(usize, String)>> = BTreeMap::new();
    for (index, group_id) in group_ids.iter().enumerate() {
        owners
            .entry(context.shard.group_owner(group_id))
            .or_default()
            .push((index, group_id.clone()));
    }
    owners
}

/// Asks each coordinating shard about its groups (one call per shard) and puts the answers back in
/// request order. `ask` builds the request for a shard's ids; `answers` unpacks the response into one
/// item per id, in the order asked.
pub async fn per_group<T>(
    context: &BrokerContext,
    group_ids: &[String],
    ask: impl Fn(Vec<String>) -> GroupRequest,
    answers: impl Fn(GroupResponse) -> Option<Vec<T>>,
    failed: impl Fn(&GroupError) -> T,
) -> Vec<Option<T>> {
    let mut results: Vec<Option<T>> = (0..group_ids.len()).map(|_| None).collect();
    for (owner, items) in by_owner(context, group_ids) {
        let (slots, ids): (Vec<usize>, Vec<String>) = items.into_iter().unzip();
        let response = call_shard(context, owner, ask(ids)).await;
        match response.map(&answers) {
            Ok(Some(items)) => {
                for (slot, item) in slots.into_iter().zip(items) {
                    if let Some(result) = results.get_mut(slot) {
                        *result = Some(item);
                    }
                }
            }
            Ok(None) => unreachable!("a group request answered another kind"),
            Err(error) => {
                for slot in slots {
                    if let Some(result) = results.get_mut(slot) {
                        *result = Some(failed(&error));
                    }
                }
            }
        }
    }
    results
}

/// The topics of a consumer-protocol subscription (`ConsumerProtocolSubscription`, versions 0–3: an
/// int16 version, then a classic array of classic strings; later fields are not needed). `None` when
/// the bytes are not one.
pub fn subscription_topics(metadata: &bytes::Bytes) -> Option<Vec<String>> {
    use crate::protocol::reader::Reader;
    let mut reader = Reader::new(metadata.clone());
    let _version = reader.i16().ok()?;
    reader
        .array(false, crate::protocol::TOPICS_PER_REQUEST_MAX, |reader| {
            reader.string(false)
        })
        .ok()
}
