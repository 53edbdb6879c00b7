//! The route from a transactional API handler to the transaction coordinator of one transactional id:
//! the shard `router::shard_for_transactional_id` names, over the mesh like any other shard work.
//!
//! Owns: that routing and the answer when the coordinator shard cannot be reached. Never: state.

use shards::mesh::{ShardRequest, ShardResponse, TxnError, TxnRequest, TxnResponse};
use shards::router::shard_for_transactional_id;

use super::BrokerContext;

/// Sends `request` to the coordinator of `transactional_id`. A shard that is gone (the broker is
/// stopping) answers a retriable storage error, never success.
pub async fn call(
    context: &BrokerContext,
    transactional_id: &str,
    request: TxnRequest,
) -> Result<TxnResponse, TxnError> {
    let target = shard_for_transactional_id(transactional_id, context.shard.shard_count());
    match context
        .shard
        .call(target, ShardRequest::Transaction(request))
        .await
    {
        Ok(ShardResponse::Transaction(response)) => Ok(response),
        Ok(other) => unreachable!("a transaction request answered with {other:?}"),
        Err(error) => Err(TxnError::Storage(error.to_string())),
    }
}

/// The single-result answers (AddOffsetsToTxn, EndTxn).
pub async fn call_done(
    context: &BrokerContext,
    transactional_id: &str,
    request: TxnRequest,
) -> Result<(), TxnError> {
    match call(context, transactional_id, request).await? {
        TxnResponse::Done(result) => result,
        other => unreachable!("expected a single result, got {other:?}"),
    }
}
