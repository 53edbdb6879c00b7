//! DescribeTransactions (key 65), v0: each transactional id's state, asked of its coordinator shard.

use bytes::BytesMut;
use kafka_protocol::messages::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState,
};
use kafka_protocol::messages::{ProducerId, TransactionalId};
use shards::mesh::{TxnDescription, TxnRequest, TxnResponse};

use super::{encode, str_bytes, topic_name, txn_coordinator, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::describe_transactions::DescribeTransactionsRequest;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = DescribeTransactionsRequest::decode(reader, version)?;
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in request.transactional_ids {
        let work = TxnRequest::Describe(vec![id.clone()]);
        let description = match txn_coordinator::call(context, &id, work).await {
            Ok(TxnResponse::Describe(mut found)) => found.pop(),
            Ok(other) => unreachable!("Describe answered with {other:?}"),
            Err(_) => None,
        };
        states.push(state(&id, description));
    }
    encode(
        &DescribeTransactionsResponse::default().with_transaction_states(states),
        version,
        out,
    )
}

fn state(id: &str, description: Option<TxnDescription>) -> TransactionState {
    let state = TransactionState::default().with_transactional_id(TransactionalId(str_bytes(id)));
    let Some(summary) = description.and_then(|description| description.state) else {
        return state
            .with_error_code(errors::TRANSACTIONAL_ID_NOT_FOUND)
            .with_transaction_state(str_bytes(""))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1);
    };
    let mut topics: Vec<TopicData> = Vec::new();
    for partition in &summary.partitions {
        match topics.last_mut() {
            Some(topic) if topic.topic.0.as_str() == &*partition.topic => {
                topic.partitions.push(partition.partition)
            }
            _ => topics.push(
                TopicData::default()
                    .with_topic(topic_name(&partition.topic))
                    .with_partitions(vec![partition.partition]),
            ),
        }
    }
    state
        .with_transaction_state(str_bytes(summary.state))
        .with_transaction_timeout_ms(summary.timeout_ms)
        .with_transaction_start_time_ms(summary.start_time_ms)
        .with_producer_id(ProducerId(summary.producer_id))
        .with_producer_epoch(summary.producer_epoch)
        .with_topics(topics)
}
