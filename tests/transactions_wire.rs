//! Transactions over the wire against the real broker: the last stable offset and `read_committed`
//! fetches with aborted transactions, the timeout abort that fences the producer, transaction state
//! surviving a restart, transactional offsets reaching the group only on commit, and the operator APIs (DescribeProducers, DescribeTransactions,
//! ListTransactions).

mod common;

use std::time::Duration;

use common::*;
use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use kafka_protocol::messages::describe_producers_request::{
    DescribeProducersRequest, TopicRequest,
};
use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::fetch_response::FetchResponse;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestTopic};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, ProducerId, TransactionalId};

const INVALID_TXN_STATE: i16 = 48;
const PRODUCER_FENCED: i16 = 90;
const READ_COMMITTED: i8 = 1;
const TRANSACTIONAL: i16 = 1 << 4;
const CONTROL: i16 = 1 << 5;

struct Producer {
    transactional_id: String,
    producer_id: i64,
    epoch: i16,
    next_sequence: i32,
}

impl Producer {
    fn init(client: &mut Client, transactional_id: &str, timeout_ms: i32) -> Producer {
        let mut request = InitProducerIdRequest::default();
        request.transactional_id = Some(TransactionalId(sb(transactional_id)));
        request.transaction_timeout_ms = timeout_ms;
        request.producer_id = ProducerId(-1);
        request.producer_epoch = -1;
        let response = client.send(&request, 4);
        assert_eq!(response.error_code, NONE, "InitProducerId");
        Producer {
            transactional_id: transactional_id.to_string(),
            producer_id: response.producer_id.0,
            epoch: response.producer_epoch,
            next_sequence: 0,
        }
    }

    fn add_partitions(&self, client: &mut Client, topic: &str, partitions: &[i32]) -> Vec<i16> {
        let mut add_topic = AddPartitionsToTxnTopic::default();
        add_topic.name = topic_name(topic);
        add_topic.partitions = partitions.to_vec();
        let mut request = AddPartitionsToTxnRequest::default();
        request.v3_and_below_transactional_id = TransactionalId(sb(&self.transactional_id));
        request.v3_and_below_producer_id = ProducerId(self.producer_id);
        request.v3_and_below_producer_epoch = self.epoch;
        request.v3_and_below_topics = vec![add_topic];
        let response = client.send(&request, 3);
        response.results_by_topic_v3_and_below[0]
            .results_by_partition
            .iter()
            .map(|result| result.partition_error_code)
            .collect()
    }

    /// A transactional batch of `count` records for one partition (one sequence space per test).
    fn batch(&mut self, count: usize, label: &str) -> Vec<u8> {
        let records: Vec<TestRecord> = (0..count)
            .map(|index| {
                let value = format!("{label}-{index}");
                TestRecord::new(1_000, None, Some(value.as_bytes()))
            })
            .collect();
        let options = BatchOptions {
            producer_id: self.producer_id,
            producer_epoch: self.epoch,
            base_sequence: self.next_sequence,
            attributes: TRANSACTIONAL,
            ..BatchOptions::default()
        };
        self.next_sequence += count as i32;
        build_batch_with(&records, &options)
    }

    fn end(&self, client: &mut Client, commit: bool) -> i16 {
        let mut request = EndTxnRequest::default();
        request.transactional_id = TransactionalId(sb(&self.transactional_id));
        request.producer_id = ProducerId(self.producer_id);
        request.producer_epoch = self.epoch;
        request.committed = commit;
        client.send(&request, 3).error_code
    }
}

/// (high watermark, last stable offset, data record count, aborted transactions).
type Isolated = (i64, i64, usize, Option<Vec<(i64, i64)>>);

/// One read_committed (or read_uncommitted) fetch of partition 0 from `offset`: (high watermark,
/// last stable offset, data record count, aborted transactions as (producer id, first offset)).
fn fetch_isolated(
    client: &mut Client,
    topic: &TopicInfo,
    offset: i64,
    isolation_level: i8,
) -> Isolated {
    let params = FetchParams {
        isolation_level,
        ..FetchParams::default()
    };
    let request = fetch_request(topic, 12, &[(0, offset)], &params);
    let response: FetchResponse = client.send(&request, 12);
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, NONE, "fetch error");
    let records = partition
        .records
        .as_ref()
        .map(|r| r.to_vec())
        .unwrap_or_default();
    let (batches, _) = parse_batches(&records).expect("parsable records");
    // Data records only: the control batches (markers) are not the client's records.
    let count = batches
        .iter()
        .filter(|batch| batch.attributes & CONTROL == 0)
        .map(|batch| batch.records.len())
        .sum();
    let aborted = partition.aborted_transactions.as_ref().map(|list| {
        list.iter()
            .map(|txn| (txn.producer_id.0, txn.first_offset))
            .collect()
    });
    (
        partition.high_watermark,
        partition.last_stable_offset,
        count,
        aborted,
    )
}

fn setup(broker: &Broker, name: &str) -> (Client, TopicInfo) {
    let mut client = broker.client();
    assert_eq!(create_topic(&mut client, name, 1), NONE);
    let topic = topic_info(&mut client, name);
    (client, topic)
}

#[test]
fn read_committed_stops_at_the_lso_and_reports_aborts() {
    let broker = Broker::start(BrokerOpts::default());
    let (mut client, topic) = setup(&broker, "lso");
    let mut producer = Producer::init(&mut client, "lso-tx", 60_000);
    assert_eq!(
        producer.add_partitions(&mut client, "lso", &[0]),
        vec![NONE]
    );
    let batch = producer.batch(3, "aborted");
    assert_eq!(
        produce(&mut client, 9, &topic, -1, &[(0, batch)])[0].error_code,
        NONE
    );
    // Open transaction: nothing is stable yet.
    assert_eq!(
        fetch_isolated(&mut client, &topic, 0, READ_COMMITTED),
        (3, 0, 0, Some(vec![]))
    );
    let (high_watermark, _, uncommitted, aborted) = fetch_isolated(&mut client, &topic, 0, 0);
    assert_eq!((high_watermark, uncommitted, aborted), (3, 3, None));
    assert_eq!(producer.end(&mut client, false), NONE);
    // Abort marker at 3: stable, and the aborted range is reported.
    let expected_abort = Some(vec![(producer.producer_id, 0)]);
    assert_eq!(
        fetch_isolated(&mut client, &topic, 0, READ_COMMITTED),
        (4, 4, 3, expected_abort)
    );
    // A second transaction, committed: no abort overlaps it.
    assert_eq!(
        producer.add_partitions(&mut client, "lso", &[0]),
        vec![NONE]
    );
    let batch = producer.batch(2, "committed");
    assert_eq!(
        produce(&mut client, 9, &topic, -1, &[(0, batch)])[0].base_offset,
        4
    );
    assert_eq!(
        fetch_isolated(&mut client, &topic, 4, READ_COMMITTED),
        (6, 4, 0, Some(vec![]))
    );
    assert_eq!(producer.end(&mut client, true), NONE);
    assert_eq!(
        fetch_isolated(&mut client, &topic, 4, READ_COMMITTED),
        (7, 7, 2, Some(vec![]))
    );
    // EndTxn with no open transaction is refused; a retried commit is not.
    assert_eq!(producer.end(&mut client, false), INVALID_TXN_STATE);
    assert_eq!(producer.end(&mut client, true), NONE);
}

#[test]
fn an_expired_transaction_is_aborted_and_its_producer_fenced() {
    let broker = Broker::start(BrokerOpts::default());
    let (mut client, topic) = setup(&broker, "expiry");
    let mut producer = Producer::init(&mut client, "expiry-tx", 500);
    assert_eq!(
        producer.add_partitions(&mut client, "expiry", &[0]),
        vec![NONE]
    );
    let batch = producer.batch(2, "late");
    assert_eq!(
        produce(&mut client, 9, &topic, -1, &[(0, batch)])[0].error_code,
        NONE
    );
    std::thread::sleep(Duration::from_millis(1_500));
    let (high_watermark, stable, count, aborted) =
        fetch_isolated(&mut client, &topic, 0, READ_COMMITTED);
    assert_eq!((high_watermark, stable, count), (3, 3, 2));
    assert_eq!(aborted, Some(vec![(producer.producer_id, 0)]));
    assert_eq!(producer.end(&mut client, true), PRODUCER_FENCED);
}

#[test]
fn an_open_transaction_survives_a_restart() {
    let mut broker = Broker::start(BrokerOpts::default());
    let (mut client, topic) = setup(&broker, "durable");
    let mut producer = Producer::init(&mut client, "durable-tx", 60_000);
    assert_eq!(
        producer.add_partitions(&mut client, "durable", &[0]),
        vec![NONE]
    );
    let batch = producer.batch(4, "kept");
    assert_eq!(
        produce(&mut client, 9, &topic, -1, &[(0, batch)])[0].error_code,
        NONE
    );
    drop(client);
    broker.kill9();
    let restarted = broker.restart_same_dir();
    let mut client = restarted.client();
    let topic = topic_info(&mut client, "durable");
    // The open transaction still holds the LSO back, and its producer can still commit it.
    assert_eq!(fetch_isolated(&mut client, &topic, 0, READ_COMMITTED).1, 0);
    assert_eq!(producer.end(&mut client, true), NONE);
    assert_eq!(
        fetch_isolated(&mut client, &topic, 0, READ_COMMITTED),
        (5, 5, 4, Some(vec![]))
    );
}

#[test]
fn operators_can_see_open_transactions_and_producers() {
    let broker = Broker::start(BrokerOpts::default());
    let (mut client, topic) = setup(&broker, "ops");
    let mut producer = Producer::init(&mut client, "ops-tx", 60_000);
    assert_eq!(
        producer.add_partitions(&mut client, "ops", &[0]),
        vec![NONE]
    );
    let batch = producer.batch(2, "open");
    assert_eq!(
        produce(&mut client, 9, &topic, -1, &[(0, batch)])[0].error_code,
        NONE
    );

    let mut describe = DescribeTransactionsRequest::default();
    describe.transactional_ids = vec![TransactionalId(sb("ops-tx")), TransactionalId(sb("nope"))];
    let response = client.send(&describe, 0);
    let state = &response.transaction_states[0];
    assert_eq!(state.error_code, NONE);
    assert_eq!(state.transaction_state.as_str(), "Ongoing");
    assert_eq!(state.producer_id.0, producer.producer_id);
    assert_eq!(state.topics[0].partitions, vec![0]);
    assert_eq!(response.transaction_states[1].error_code, 105);

    let mut list = ListTransactionsRequest::default();
    list.state_filters = vec![sb("Ongoing"), sb("Bogus")];
    let response = client.send(&list, 1);
    let listed: Vec<&str> = response
        .transaction_states
        .iter()
        .map(|state| state.transactional_id.0.as_str())
        .collect();
    assert_eq!(listed, vec!["ops-tx"]);
    assert_eq!(response.unknown_state_filters.len(), 1);

    let mut topic_request = TopicRequest::default();
    topic_request.name = topic_name("ops");
    topic_request.partition_indexes = vec![0];
    let mut producers = DescribeProducersRequest::default();
    producers.topics = vec![topic_request];
    let response = client.send(&producers, 0);
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, NONE);
    let active = &partition.active_producers[0];
    assert_eq!(active.producer_id.0, producer.producer_id);
    assert_eq!(active.last_sequence, 1);
    assert_eq!(active.current_txn_start_offset, 0);
    assert_eq!(topic.name, "ops");
}

/// Produce naming the transactional id, as clients do, so the broker verifies it with the
/// coordinator; returns the partition's error code.
fn produce_transactional(
    client: &mut Client,
    topic: &TopicInfo,
    producer: &mut Producer,
    label: &str,
) -> i16 {
    let batch = producer.batch(1, label);
    let mut request = produce_request(topic, 9, -1, &[(0, batch)]);
    request.transactional_id = Some(TransactionalId(sb(&producer.transactional_id)));
    let response = client.send(&request, 9);
    response.responses[0].partition_responses[0].error_code
}

#[test]
fn transactional_writes_are_verified_with_the_coordinator() {
    const INVALID_PRODUCER_EPOCH: i16 = 47;
    let broker = Broker::start(BrokerOpts::default());
    let (mut client, topic) = setup(&broker, "verified");
    let mut producer = Producer::init(&mut client, "verified-tx", 60_000);
    // Not added to the transaction: refused, nothing written, no transaction left open.
    assert_eq!(
        produce_transactional(&mut client, &topic, &mut producer, "early"),
        INVALID_TXN_STATE
    );
    assert_eq!(end_offset(&mut client, "verified", 0), 0);
    producer.next_sequence = 0;
    assert_eq!(
        producer.add_partitions(&mut client, "verified", &[0]),
        vec![NONE]
    );
    assert_eq!(
        produce_transactional(&mut client, &topic, &mut producer, "ok"),
        NONE
    );
    assert_eq!(producer.end(&mut client, true), NONE);
    // After the commit, a late write of the same producer would open a transaction nobody closes.
    assert_eq!(
        produce_transactional(&mut client, &topic, &mut producer, "late"),
        INVALID_TXN_STATE
    );
    // A fenced producer is told so.
    let _successor = Producer::init(&mut client, "verified-tx", 60_000);
    assert_eq!(
        produce_transactional(&mut client, &topic, &mut producer, "zombie"),
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        fetch_isolated(&mut client, &topic, 0, READ_COMMITTED),
        (2, 2, 1, Some(vec![]))
    );
}

fn add_offsets(client: &mut Client, producer: &Producer, group: &str) -> i16 {
    let mut request = AddOffsetsToTxnRequest::default();
    request.transactional_id = TransactionalId(sb(&producer.transactional_id));
    request.producer_id = ProducerId(producer.producer_id);
    request.producer_epoch = producer.epoch;
    request.group_id = GroupId(sb(group));
    client.send(&request, 3).error_code
}

fn txn_offset_commit(
    client: &mut Client,
    producer: &Producer,
    group: &str,
    topic: &str,
    offset: i64,
) -> i16 {
    let mut partition = TxnOffsetCommitRequestPartition::default();
    partition.partition_index = 0;
    partition.committed_offset = offset;
    partition.committed_leader_epoch = -1;
    let mut commit_topic = TxnOffsetCommitRequestTopic::default();
    commit_topic.name = topic_name(topic);
    commit_topic.partitions = vec![partition];
    let mut request = TxnOffsetCommitRequest::default();
    request.transactional_id = TransactionalId(sb(&producer.transactional_id));
    request.group_id = GroupId(sb(group));
    request.producer_id = ProducerId(producer.producer_id);
    request.producer_epoch = producer.epoch;
    request.generation_id = -1;
    request.topics = vec![commit_topic];
    let response = client.send(&request, 3);
    response.topics[0].partitions[0].error_code
}

fn committed_offset(client: &mut Client, group: &str, topic: &str) -> i64 {
    let mut fetch_topic = OffsetFetchRequestTopic::default();
    fetch_topic.name = topic_name(topic);
    fetch_topic.partition_indexes = vec![0];
    let mut request = OffsetFetchRequest::default();
    request.group_id = GroupId(sb(group));
    request.topics = Some(vec![fetch_topic]);
    let response = client.send(&request, 7);
    assert_eq!(response.error_code, NONE, "OffsetFetch");
    response.topics[0].partitions[0].committed_offset
}

#[test]
fn transactional_offsets_reach_the_group_only_on_commit() {
    let broker = Broker::start(BrokerOpts::default());
    let (mut client, _topic) = setup(&broker, "consumed");
    let producer = Producer::init(&mut client, "offsets-tx", 60_000);
    assert_eq!(add_offsets(&mut client, &producer, "eos-group"), NONE);
    assert_eq!(
        txn_offset_commit(&mut client, &producer, "eos-group", "consumed", 42),
        NONE
    );
    assert_eq!(committed_offset(&mut client, "eos-group", "consumed"), -1);
    assert_eq!(producer.end(&mut client, true), NONE);
    assert_eq!(committed_offset(&mut client, "eos-group", "consumed"), 42);
    // An aborted transaction's offsets never reach the group.
    assert_eq!(add_offsets(&mut client, &producer, "eos-group"), NONE);
    assert_eq!(
        txn_offset_commit(&mut client, &producer, "eos-group", "consumed", 99),
        NONE
    );
    assert_eq!(producer.end(&mut client, false), NONE);
    assert_eq!(committed_offset(&mut client, "eos-group", "consumed"), 42);
    // Without AddOffsetsToTxn first, there is no open transaction to hold them.
    assert_eq!(
        txn_offset_commit(&mut client, &producer, "eos-group", "consumed", 7),
        INVALID_TXN_STATE
    );
}
