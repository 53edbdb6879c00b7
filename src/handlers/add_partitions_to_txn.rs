//! AddPartitionsToTxn (key 24), v0–5: adds partitions to a producer's transaction at its coordinator
//! before the producer writes to them. v0–3 carry one transaction (clients); v4–5 a list, possibly
//! `verify_only` (brokers checking for each other, KIP-890), answered per transaction.
//!
//! Unknown partitions fail the whole transaction's request, as in Kafka: they get
//! UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED.

use bytes::BytesMut;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnResponse, TransactionalId};
use shards::mesh::{TxnError, TxnRequest, TxnResponse};
use shards::TopicPartition;

use super::{encode, str_bytes, topic_name, txn_coordinator, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::add_partitions_to_txn::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTransaction,
};

/// The first version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = AddPartitionsToTxnRequest::decode(reader, version)?;
    let mut results = Vec::with_capacity(request.transactions.len());
    for transaction in &request.transactions {
        let codes = add(context, transaction, version).await;
        results.push(topic_results(transaction, codes));
    }
    let mut response = AddPartitionsToTxnResponse::default();
    if version >= 4 {
        response.results_by_transaction = request
            .transactions
            .iter()
            .zip(results)
            .map(|(transaction, topic_results)| {
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(TransactionalId(str_bytes(
                        &transaction.transactional_id,
                    )))
                    .with_topic_results(topic_results)
            })
            .collect();
    } else {
        response.results_by_topic_v3_and_below = results.into_iter().next().unwrap_or_default();
    }
    encode(&response, version, out)
}

/// One error code per partition of `transaction`, in request order.
async fn add(
    context: &BrokerContext,
    transaction: &AddPartitionsToTxnTransaction,
    version: i16,
) -> Vec<i16> {
    let catalog = context.shard.catalog();
    let mut partitions = Vec::new();
    let mut known = Vec::new();
    for topic in &transaction.topics {
        let info = catalog.topic(&topic.name);
        for &index in &topic.partitions {
            let exists = info.is_some_and(|info| (0..info.partitions).contains(&index));
            known.push(exists);
            if let (true, Some(info)) = (exists, info) {
                partitions.push(TopicPartition {
                    topic: info.name.clone(),
                    partition: index,
                });
            }
        }
    }
    if known.iter().any(|exists| !exists) {
        return known
            .iter()
            .map(|&exists| match exists {
                true => errors::OPERATION_NOT_ATTEMPTED,
                false => errors::UNKNOWN_TOPIC_OR_PARTITION,
            })
            .collect();
    }
    let count = partitions.len();
    let work = TxnRequest::AddPartitions {
        transactional_id: transaction.transactional_id.clone(),
        producer_id: transaction.producer_id,
        producer_epoch: transaction.producer_epoch,
        partitions,
        verify_only: transaction.verify_only,
    };
    let results: Vec<Result<(), TxnError>> =
        match txn_coordinator::call(context, &transaction.transactional_id, work).await {
            Ok(TxnResponse::AddPartitions(results)) => results,
            Ok(other) => unreachable!("AddPartitions answered with {other:?}"),
            Err(error) => vec![Err(error); count],
        };
    results
        .iter()
        .map(|result| match result {
            Ok(()) => errors::NONE,
            Err(error) => errors::txn_error_code(error, version, PRODUCER_FENCED_SINCE),
        })
        .collect()
}

fn topic_results(
    transaction: &AddPartitionsToTxnTransaction,
    codes: Vec<i16>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut codes = codes.into_iter();
    transaction
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|&index| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(index)
                        .with_partition_error_code(
                            codes.next().unwrap_or(errors::UNKNOWN_SERVER_ERROR),
                        )
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic_name(&topic.name))
                .with_results_by_partition(partitions)
        })
        .collect()
}
