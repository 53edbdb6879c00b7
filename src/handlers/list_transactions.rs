//! ListTransactions (key 66), v0–1: every shard's coordinator is asked for the transactional ids it
//! owns that match the filters (states, producer ids, open longer than a duration).

use bytes::BytesMut;
use kafka_protocol::messages::list_transactions_response::{
    ListTransactionsResponse, TransactionState,
};
use kafka_protocol::messages::{ProducerId, TransactionalId};
use shards::mesh::{ShardRequest, ShardResponse, TxnRequest, TxnResponse};
use shards::ShardId;

use super::{encode, str_bytes, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::list_transactions::ListTransactionsRequest;

/// Kafka's state names; a filter naming another one is reported back as unknown.
const STATES: [&str; 6] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
];

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = ListTransactionsRequest::decode(reader, version)?;
    let (known, unknown): (Vec<String>, Vec<String>) = request
        .state_filters
        .into_iter()
        .partition(|state| STATES.contains(&state.as_str()));
    let mut listed = Vec::new();
    // Only unknown state filters: nothing can match.
    let skip = known.is_empty() && !unknown.is_empty();
    for target in 0..context.shard.shard_count() {
        if skip {
            break;
        }
        let work = TxnRequest::List {
            states: known.clone(),
            producer_ids: request.producer_id_filters.clone(),
            duration_ms: request.duration_filter,
        };
        let target = ShardId(target as u16);
        match context
            .shard
            .call(target, ShardRequest::Transaction(work))
            .await
        {
            Ok(ShardResponse::Transaction(TxnResponse::List(found))) => listed.extend(found),
            Ok(other) => unreachable!("List answered with {other:?}"),
            Err(_) => {
                let response = ListTransactionsResponse::default()
                    .with_error_code(errors::COORDINATOR_NOT_AVAILABLE);
                return encode(&response, version, out);
            }
        }
    }
    let states = listed
        .into_iter()
        .map(|listing| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(&listing.transactional_id)))
                .with_producer_id(ProducerId(listing.producer_id))
                .with_transaction_state(str_bytes(listing.state))
        })
        .collect();
    let response = ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown.iter().map(|state| str_bytes(state)).collect())
        .with_transaction_states(states);
    encode(&response, version, out)
}
