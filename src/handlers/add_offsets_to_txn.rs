//! AddOffsetsToTxn (key 25), v0–4: records that the transaction will commit offsets for a group, so
//! EndTxn tells that group's coordinator to make them visible (commit) or drop them (abort).

use bytes::BytesMut;
use kafka_protocol::messages::AddOffsetsToTxnResponse;
use shards::mesh::TxnRequest;

use super::{encode, txn_coordinator, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::add_offsets_to_txn::AddOffsetsToTxnRequest;

/// The first version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = AddOffsetsToTxnRequest::decode(reader, version)?;
    let work = TxnRequest::AddOffsets {
        transactional_id: request.transactional_id.clone(),
        producer_id: request.producer_id,
        producer_epoch: request.producer_epoch,
        group_id: request.group_id,
    };
    let result = txn_coordinator::call_done(context, &request.transactional_id, work).await;
    let code = match result {
        Ok(()) => errors::NONE,
        Err(error) => errors::txn_error_code(&error, version, PRODUCER_FENCED_SINCE),
    };
    encode(
        &AddOffsetsToTxnResponse::default().with_error_code(code),
        version,
        out,
    )
}
