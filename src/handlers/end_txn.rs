//! EndTxn (key 26), v0–5: commit or abort, decided by the transaction coordinator, which writes the
//! markers to every partition of the transaction before answering.

use bytes::BytesMut;
use kafka_protocol::messages::EndTxnResponse;
use shards::mesh::TxnRequest;

use super::{encode, txn_coordinator, BrokerContext, HandlerError, Outcome};
use crate::errors;
use crate::protocol::reader::Reader;
use crate::protocol::requests::end_txn::EndTxnRequest;

/// The first version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

pub async fn handle(
    context: &BrokerContext,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = EndTxnRequest::decode(reader, version)?;
    let work = TxnRequest::EndTxn {
        transactional_id: request.transactional_id.clone(),
        producer_id: request.producer_id,
        producer_epoch: request.producer_epoch,
        commit: request.committed,
    };
    let result = txn_coordinator::call_done(context, &request.transactional_id, work).await;
    let code = match result {
        Ok(()) => errors::NONE,
        Err(error) => errors::txn_error_code(&error, version, PRODUCER_FENCED_SINCE),
    };
    // v5's producer id and epoch belong to transaction version 2, which we do not advertise.
    let response = EndTxnResponse::default()
        .with_error_code(code)
        .with_producer_id(kafka_protocol::messages::ProducerId(-1))
        .with_producer_epoch(-1);
    encode(&response, version, out)
}
