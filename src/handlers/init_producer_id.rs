//! InitProducerId (key 22), v0–5: a producer id and epoch for an idempotent producer (from shard 0's
//! allocator) or for a transactional one (from the coordinator of its transactional id, which bumps
//! the epoch, fences the previous holder and aborts its open transaction).

use bytes::BytesMut;
use kafka_protocol::messages::{InitProducerIdResponse, ProducerId};
use shards::mesh::{ShardRequest, ShardResponse, TxnError, TxnRequest, TxnResponse};
use shards::ShardId;

use super::{encode, txn_coordinator, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::init_producer_id::InitProducerIdRequest;

/// The first version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 4;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = InitProducerIdRequest::decode(reader, version)?;
    let result = match request.transactional_id {
        None => allocate(context).await.map(|producer_id| (producer_id, 0)),
        Some(id) if id.is_empty() => Err(None),
        Some(id) => {
            let work = TxnRequest::InitProducerId {
                transactional_id: id.clone(),
                timeout_ms: request.transaction_timeout_ms,
                producer_id: request.producer_id,
                producer_epoch: request.producer_epoch,
            };
            match txn_coordinator::call(context, &id, work).await {
                Ok(TxnResponse::InitProducerId(result)) => result.map_err(Some),
                Ok(other) => unreachable!("InitProducerId answered with {other:?}"),
                Err(error) => Err(Some(error)),
            }
        }
    };
    let response = match result {
        Ok((producer_id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
        Err(error) => {
            let code = match error {
                Some(error) => errors::txn_error_code(&error, version, PRODUCER_FENCED_SINCE),
                // Kafka refuses an empty transactional id the same way.
                None => errors::INVALID_REQUEST,
            };
            InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    };
    encode(&response, version, out)
}

async fn allocate(context: &BrokerContext) -> Result<i64, Option<TxnError>> {
    match context
        .shard
        .call(ShardId(0), ShardRequest::AllocateProducerId)
        .await
    {
        Ok(ShardResponse::ProducerId(result)) => result.map_err(Some),
        Ok(other) => unreachable!("AllocateProducerId answered with {other:?}"),
        Err(error) => Err(Some(TxnError::Storage(error.to_string()))),
    }
}
