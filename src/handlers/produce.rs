//! Produce (key 0), served v3–13 (advertised from v0, as Kafka 4 does).
//!
//! Record batches travel as slices of the request frame (`Bytes`, no copy) to the shard that owns each
//! partition, which validates them (framing, magic, CRC-32C, size) and appends them. One message per
//! owning shard; results are merged back in request order. Transactional writes are first verified
//! with the producer's transaction coordinator (see `verify_transactional`).

use std::collections::{BTreeMap, HashMap};

use bytes::BytesMut;
use kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use shards::mesh::{
    AppendResult, PartitionError, ProducePart, ShardRequest, ShardResponse, TxnError, TxnRequest,
    TxnResponse,
};
use shards::storage::batch::BatchHeader;
use shards::{ShardId, TopicPartition};

use super::{
    create_topics, encode, str_bytes, topic_name, txn_coordinator, BrokerContext, HandlerError,
    Outcome,
};
use crate::errors;
use crate::net::affinity::Affinity;
use crate::protocol::reader::Reader;
use crate::protocol::requests::produce::ProduceRequest;

/// Where one partition of the request stands before its result is known.
enum Slot {
    Failed(i16, Option<String>),
    Sent { shard: ShardId, index: usize },
}

pub async fn handle(
    context: &BrokerContext,
    affinity: &Affinity,
    reader: &mut Reader,
    version: i16,
    out: &mut BytesMut,
) -> Result<Outcome, HandlerError> {
    let request = ProduceRequest::decode(reader, version)?;
    let acks = request.acks;
    let valid_acks = matches!(acks, -1..=1);
    if version < 13 && valid_acks {
        let catalog = context.shard.catalog();
        let missing: Vec<String> = request
            .topic_data
            .iter()
            .filter(|topic| {
                catalog.topic(&topic.name).is_none()
                    && shards::catalog::valid_topic_name(&topic.name)
            })
            .map(|topic| topic.name.clone())
            .collect();
        create_topics::auto_create(context, missing).await;
    }
    let unverified = verify_transactional(context, &request, version).await;
    let catalog = context.shard.catalog();
    let mut by_shard: BTreeMap<ShardId, Vec<ProducePart>> = BTreeMap::new();
    let mut slots: Vec<Vec<Slot>> = Vec::with_capacity(request.topic_data.len());
    let mut names: Vec<(String, [u8; 16])> = Vec::with_capacity(request.topic_data.len());
    for topic in &request.topic_data {
        let info = if version >= 13 {
            catalog.topic_by_id(&topic.topic_id)
        } else {
            catalog.topic(&topic.name)
        };
        names.push((
            info.map_or_else(|| topic.name.clone(), |info| info.name.to_string()),
            topic.topic_id,
        ));
        let unknown_code = if version >= 13 {
            errors::UNKNOWN_TOPIC_ID
        } else {
            errors::UNKNOWN_TOPIC_OR_PARTITION
        };
        let topic_slots = topic
            .partition_data
            .iter()
            .map(|partition| {
                if !valid_acks {
                    return Slot::Failed(errors::INVALID_REQUIRED_ACKS, None);
                }
                let Some(info) =
                    info.filter(|info| (0..info.partitions).contains(&partition.index))
                else {
                    return Slot::Failed(unknown_code, None);
                };
                let records = match &partition.records {
                    Some(records) if !records.is_empty() => records.clone(),
                    _ => {
                        return Slot::Failed(
                            errors::CORRUPT_MESSAGE,
                            Some("no record batches".into()),
                        )
                    }
                };
                let name = TopicPartition {
                    topic: info.name.clone(),
                    partition: partition.index,
                };
                if let Some(&code) = unverified.get(&name) {
                    return Slot::Failed(
                        code,
                        Some("not verified by the transaction coordinator".into()),
                    );
                }
                let shard = context.shard.owner(&name);
                let parts = by_shard.entry(shard).or_default();
                parts.push(ProducePart {
                    partition: name,
                    records,
                });
                Slot::Sent {
                    shard,
                    index: parts.len() - 1,
                }
            })
            .collect();
        slots.push(topic_slots);
    }
    affinity.note(by_shard.keys().copied());
    let results = fan_out(context, by_shard).await;
    if acks == 0 {
        return Ok(Outcome::NoResponse);
    }
    let responses = slots
        .into_iter()
        .zip(&request.topic_data)
        .zip(names)
        .map(|((topic_slots, topic), (name, topic_id))| {
            let partitions = topic_slots
                .into_iter()
                .zip(&topic.partition_data)
                .map(|(slot, partition)| {
                    partition_response(partition.index, slot, &results, version)
                })
                .collect();
            let mut response = TopicProduceResponse::default().with_partition_responses(partitions);
            response = if version >= 13 {
                response.with_topic_id(uuid::Uuid::from_bytes(topic_id))
            } else {
                response.with_name(topic_name(&name))
            };
            response
        })
        .collect();
    encode(
        &ProduceResponse::default().with_responses(responses),
        version,
        out,
    )
}

/// Transactional writes are checked with the producer's transaction coordinator first (KIP-890 part 1,
/// Kafka's `transaction.partition.verification.enable`): each partition must be in the producer's
/// open transaction, at its current epoch. Without this, a write that arrives after its transaction
/// was completed (a fenced producer, a late retry) would open a transaction no marker ever closes,
/// and `read_committed` consumers would stop at it forever. Answers the failed partitions' codes.
async fn verify_transactional(
    context: &BrokerContext,
    request: &ProduceRequest,
    version: i16,
) -> HashMap<TopicPartition, i16> {
    let mut failed = HashMap::new();
    let Some(transactional_id) = request
        .transactional_id
        .as_deref()
        .filter(|id| !id.is_empty())
    else {
        return failed;
    };
    let catalog = context.shard.catalog();
    let mut partitions = Vec::new();
    let mut producer = None;
    for topic in &request.topic_data {
        let info = match version >= 13 {
            true => catalog.topic_by_id(&topic.topic_id),
            false => catalog.topic(&topic.name),
        };
        let Some(info) = info else { continue };
        for partition in &topic.partition_data {
            let header = partition
                .records
                .as_deref()
                .and_then(|records| BatchHeader::parse(records).ok());
            // Malformed batches are refused by the owner; plain batches need no transaction.
            let Some(header) = header.filter(BatchHeader::is_transactional) else {
                continue;
            };
            producer.get_or_insert((header.producer_id, header.producer_epoch));
            partitions.push(TopicPartition {
                topic: info.name.clone(),
                partition: partition.index,
            });
        }
    }
    let Some((producer_id, producer_epoch)) = producer else {
        return failed;
    };
    let count = partitions.len();
    let work = TxnRequest::AddPartitions {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        partitions: partitions.clone(),
        verify_only: true,
    };
    let results = match txn_coordinator::call(context, transactional_id, work).await {
        Ok(TxnResponse::AddPartitions(results)) => results,
        Ok(other) => unreachable!("AddPartitions answered with {other:?}"),
        Err(error) => vec![Err(error); count],
    };
    for (partition, result) in partitions.into_iter().zip(results) {
        let code = match result {
            Ok(()) => continue,
            Err(TxnError::ProducerFenced) => errors::INVALID_PRODUCER_EPOCH,
            // Retriable: the client tries again once the coordinator answers.
            Err(TxnError::Storage(_) | TxnError::ConcurrentTransactions) => {
                errors::NOT_ENOUGH_REPLICAS
            }
            Err(_) => errors::INVALID_TXN_STATE,
        };
        failed.insert(partition, code);
    }
    failed
}

type ShardResults = BTreeMap<ShardId, Vec<Result<AppendResult, PartitionError>>>;

/// Sends each shard its parts, all at once, and collects the answers.
async fn fan_out(
    context: &BrokerContext,
    by_shard: BTreeMap<ShardId, Vec<ProducePart>>,
) -> ShardResults {
    let tasks: Vec<_> = by_shard
        .into_iter()
        .map(|(target, parts)| {
            let shard = context.shard.clone();
            let count = parts.len();
            let task = glommio::spawn_local(async move {
                match shard.call(target, ShardRequest::Produce(parts)).await {
                    Ok(ShardResponse::Produce(results)) => results,
                    Ok(other) => unreachable!("produce answered with {other:?}"),
                    Err(error) => vec![Err(PartitionError::Storage(error.to_string())); count],
                }
            });
            (target, task)
        })
        .collect();
    let mut results = BTreeMap::new();
    for (target, task) in tasks {
        results.insert(target, task.await);
    }
    results
}

fn partition_response(
    index: i32,
    slot: Slot,
    results: &ShardResults,
    version: i16,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index);
    let outcome = match slot {
        Slot::Failed(code, message) => Err((code, message)),
        Slot::Sent { shard, index } => match results
            .get(&shard)
            .and_then(|results| results.get(index))
        {
            Some(Ok(append)) => Ok(*append),
            Some(Err(error)) => Err((errors::partition_error_code(error), Some(error.to_string()))),
            None => Err((errors::UNKNOWN_SERVER_ERROR, None)),
        },
    };
    match outcome {
        Ok(append) => response
            .with_base_offset(append.base_offset)
            .with_log_append_time_ms(append.log_append_time_ms)
            .with_log_start_offset(if version >= 5 {
                append.log_start_offset
            } else {
                -1
            }),
        Err((code, message)) => {
            let response = response.with_error_code(code).with_base_offset(-1);
            if version >= 8 {
                response.with_error_message(message.as_deref().map(str_bytes))
            } else {
                response
            }
        }
    }
}
