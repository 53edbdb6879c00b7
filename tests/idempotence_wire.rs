//! Idempotent produce over the wire against the real broker: InitProducerId, duplicates answered with
//! their original offsets, sequence gaps, epoch fencing, and deduplication across a restart (clean and
//! `kill -9`) between a batch and its retry.

mod common;

use common::*;
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::{ProducerId, TransactionalId};

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const PRODUCER_FENCED: i16 = 90;

/// InitProducerId v4 (what Kafka 4 clients use); returns (error, producer id, epoch).
fn init_producer_id(
    client: &mut Client,
    transactional_id: Option<&str>,
    timeout_ms: i32,
) -> (i16, i64, i16) {
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = transactional_id.map(|id| TransactionalId(sb(id)));
    request.transaction_timeout_ms = timeout_ms;
    request.producer_id = ProducerId(-1);
    request.producer_epoch = -1;
    let response = client.send(&request, 4);
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

fn idempotent_batch(
    producer_id: i64,
    epoch: i16,
    sequence: i32,
    count: usize,
    seed: u64,
) -> Vec<u8> {
    let records: Vec<TestRecord> = (0..count)
        .map(|index| {
            let value = format!("value-{seed}-{index}");
            TestRecord::new(1_000 + index as i64, None, Some(value.as_bytes()))
        })
        .collect();
    let options = BatchOptions {
        producer_id,
        producer_epoch: epoch,
        base_sequence: sequence,
        ..BatchOptions::default()
    };
    build_batch_with(&records, &options)
}

fn produce_acks_all(client: &mut Client, topic: &TopicInfo, batch: &[u8]) -> (i16, i64) {
    let results = produce(client, 9, topic, -1, &[(0, batch.to_vec())]);
    (results[0].error_code, results[0].base_offset)
}

fn setup(broker: &Broker, name: &str) -> (Client, TopicInfo) {
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, name, 1), NONE);
    let topic = topic_info(&mut client, name);
    (client, topic)
}

#[test]
fn producer_ids_are_unique_and_survive_restarts() {
    let broker = Broker::start(BrokerOpts::default());
    let mut client = broker.client();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let (error, producer_id, epoch) = init_producer_id(&mut client, None, 60_000);
        assert_eq!(error, NONE);
        assert_eq!(epoch, 0);
        assert!(
            seen.insert(producer_id),
            "producer id {producer_id} handed out twice"
        );
    }
    let mut broker = broker;
    broker.stop();
    let restarted = broker.restart_same_dir();
    let mut client = restarted.client();
    for _ in 0..5 {
        let (error, producer_id, _) = init_producer_id(&mut client, None, 60_000);
        assert_eq!(error, NONE);
        assert!(
            seen.insert(producer_id),
            "producer id {producer_id} repeated after a restart"
        );
    }
}

#[test]
fn duplicates_get_original_offsets_and_gaps_are_refused() {
    let broker = Broker::start(BrokerOpts::default());
    let (mut client, topic) = setup(&broker, "idempotent");
    let (error, producer_id, epoch) = init_producer_id(&mut client, None, 60_000);
    assert_eq!(error, NONE);
    let first = idempotent_batch(producer_id, epoch, 0, 3, 1);
    let second = idempotent_batch(producer_id, epoch, 3, 2, 2);
    assert_eq!(produce_acks_all(&mut client, &topic, &first), (NONE, 0));
    assert_eq!(produce_acks_all(&mut client, &topic, &second), (NONE, 3));
    // Retries of either batch: success with the original offsets, nothing written.
    assert_eq!(produce_acks_all(&mut client, &topic, &first), (NONE, 0));
    assert_eq!(produce_acks_all(&mut client, &topic, &second), (NONE, 3));
    assert_eq!(end_offset(&mut client, "idempotent", 0), 5);
    // A gap (sequence 6 after 4) is refused and writes nothing.
    let gap = idempotent_batch(producer_id, epoch, 6, 1, 3);
    let (error, _) = produce_acks_all(&mut client, &topic, &gap);
    assert_eq!(error, OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_eq!(end_offset(&mut client, "idempotent", 0), 5);
    let next = idempotent_batch(producer_id, epoch, 5, 1, 4);
    assert_eq!(produce_acks_all(&mut client, &topic, &next), (NONE, 5));
    let (batches, high_watermark) = fetch_all(&mut client, 12, &topic, 0, 0);
    assert_eq!(high_watermark, 6);
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(ParsedBatch::crc_ok));
}

#[test]
fn a_new_epoch_fences_the_old_one() {
    let broker = Broker::start(BrokerOpts::default());
    let (mut client, topic) = setup(&broker, "fenced");
    let (error, producer_id, epoch) = init_producer_id(&mut client, Some("fencing-tx"), 60_000);
    assert_eq!((error, epoch), (NONE, 0));
    let batch = idempotent_batch(producer_id, 0, 0, 2, 1);
    assert_eq!(produce_acks_all(&mut client, &topic, &batch), (NONE, 0));
    // A second producer with the same transactional id gets the same id with epoch 1.
    let (error, same_id, bumped) = init_producer_id(&mut client, Some("fencing-tx"), 60_000);
    assert_eq!((error, same_id, bumped), (NONE, producer_id, 1));
    let new_epoch = idempotent_batch(producer_id, 1, 0, 1, 2);
    assert_eq!(produce_acks_all(&mut client, &topic, &new_epoch), (NONE, 2));
    // The zombie's next batch is refused: Kafka 4 answers INVALID_PRODUCER_EPOCH to Produce...
    let zombie = idempotent_batch(producer_id, 0, 2, 1, 3);
    let (error, _) = produce_acks_all(&mut client, &topic, &zombie);
    assert_eq!(error, INVALID_PRODUCER_EPOCH);
    // ...and PRODUCER_FENCED to the coordinator (EndTxn v3).
    let mut end = EndTxnRequest::default();
    end.transactional_id = TransactionalId(sb("fencing-tx"));
    end.producer_id = ProducerId(producer_id);
    end.producer_epoch = 0;
    end.committed = true;
    let response = client.send(&end, 3);
    assert_eq!(response.error_code, PRODUCER_FENCED);
    // A new epoch must start at sequence 0.
    let (_, _, epoch_two) = init_producer_id(&mut client, Some("fencing-tx"), 60_000);
    let bad_start = idempotent_batch(producer_id, epoch_two, 7, 1, 4);
    let (error, _) = produce_acks_all(&mut client, &topic, &bad_start);
    assert_eq!(error, OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_eq!(end_offset(&mut client, "fenced", 0), 3);
}

#[test]
fn transaction_timeout_is_validated() {
    let broker = Broker::start(BrokerOpts::default());
    let mut client = broker.client();
    let (error, _, _) = init_producer_id(&mut client, Some("too-long"), 900_001);
    assert_eq!(error, INVALID_TRANSACTION_TIMEOUT);
    let (error, _, _) = init_producer_id(&mut client, Some("zero"), 0);
    assert_eq!(error, INVALID_TRANSACTION_TIMEOUT);
    let (error, _, _) = init_producer_id(&mut client, Some("fine"), 900_000);
    assert_eq!(error, NONE);
}

/// A batch, a restart, then its retry: still answered with the original offset and not written
/// again, whether the broker stopped cleanly (snapshot) or was killed (rebuilt from the log).
#[test]
fn a_retry_after_a_restart_is_still_deduplicated() {
    for kill in [false, true] {
        let mut broker = Broker::start(BrokerOpts::default());
        let (mut client, topic) = setup(&broker, "restart");
        let (_, producer_id, epoch) = init_producer_id(&mut client, None, 60_000);
        let mut expected_end = 0;
        for sequence in 0..4 {
            let batch = idempotent_batch(producer_id, epoch, sequence * 2, 2, sequence as u64);
            assert_eq!(
                produce_acks_all(&mut client, &topic, &batch),
                (NONE, expected_end)
            );
            expected_end += 2;
        }
        let last = idempotent_batch(producer_id, epoch, 8, 3, 99);
        assert_eq!(produce_acks_all(&mut client, &topic, &last), (NONE, 8));
        drop(client);
        match kill {
            true => broker.kill9(),
            false => {
                broker.stop();
            }
        }
        let restarted = broker.restart_same_dir();
        let mut client = restarted.client();
        let topic = topic_info(&mut client, "restart");
        assert_eq!(
            produce_acks_all(&mut client, &topic, &last),
            (NONE, 8),
            "kill: {kill}"
        );
        let older = idempotent_batch(producer_id, epoch, 6, 2, 3);
        assert_eq!(
            produce_acks_all(&mut client, &topic, &older),
            (NONE, 6),
            "kill: {kill}"
        );
        assert_eq!(end_offset(&mut client, "restart", 0), 11, "kill: {kill}");
        let gap = idempotent_batch(producer_id, epoch, 12, 1, 5);
        let (error, _) = produce_acks_all(&mut client, &topic, &gap);
        assert_eq!(error, OUT_OF_ORDER_SEQUENCE_NUMBER, "kill: {kill}");
        let next = idempotent_batch(producer_id, epoch, 11, 1, 6);
        assert_eq!(
            produce_acks_all(&mut client, &topic, &next),
            (NONE, 11),
            "kill: {kill}"
        );
    }
}
