//! The `e2e` subcommand: a producer at a fixed rate stamping every value with its due time, and
//! consumers long-polling the same partitions, in one process so that both read one clock.
//!
//! Owns: wiring producers and consumers together and the end-to-end summary. Never: the loops
//! themselves (`produce.rs`, `consume.rs`).
//!
//! Order of events: consumers connect and look up the latest offsets, producers connect and build
//! their requests, then all start together. Producers stop after `--duration-secs`; consumers stop
//! once they have read every record the producers had acknowledged, or `E2E_DRAIN_GRACE` later.
//! Latency is measured from the due time stamped into the value to the moment the fetch answer
//! holding the record has been read, so it includes any lag of the sender (open loop).

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::batch::{BatchTemplate, Compression};
use crate::cli::E2eArgs;
use crate::client::{discover, plan_connections, Cluster, OFFSET_LATEST};
use crate::consume::{spawn_consumers, ConsumerPlan, EndToEnd};
use crate::error::Result;
use crate::limits::{E2E_DRAIN_GRACE, FETCH_MAX_BYTES_MAX};
use crate::produce::{spawn_producer_jobs, ProducerPlan};
use crate::stats::{cpu_seconds, join, Monitor, Stats, Summary};

/// Per-partition fetch size for end-to-end runs: small batches at a fixed rate never need more.
const E2E_PARTITION_MAX_BYTES: usize = 1024 * 1024;

pub fn run(args: &E2eArgs) -> Result<Summary> {
    let target = &args.target;
    let cluster = discover(
        &target.bootstrap,
        &target.topic,
        target.partitions,
        args.create_topic,
    )?;
    let produced = Stats::new();
    let consumed = Stats::new();
    let workers = spawn_all(args, &cluster, &produced, &consumed)?;
    let mut monitor = Monitor::new(
        consumed.clone(),
        vec![("e2e", consumed.clone()), ("produce", produced.clone())],
    );
    let seconds = monitor.watch(&workers);
    join(workers);
    let mut error_kinds = produced.error_kinds();
    for (kind, count) in consumed.error_kinds() {
        *error_kinds.entry(kind).or_insert(0) += count;
    }
    Ok(Summary {
        mode: "e2e",
        msgs: consumed.msgs(),
        bytes: consumed.bytes(),
        requests: produced.requests() + consumed.requests(),
        seconds,
        errors: produced.errors() + consumed.errors(),
        error_kinds,
        latencies: monitor.finish(),
        cpu_seconds: cpu_seconds(),
    })
}

/// Starts consumers and producers and releases them together; returns once they are running.
fn spawn_all(
    args: &E2eArgs,
    cluster: &Cluster,
    produced: &Arc<Stats>,
    consumed: &Arc<Stats>,
) -> Result<Vec<JoinHandle<()>>> {
    let target = &args.target;
    let producer_assignments = plan_connections(&cluster.layout.leaders, target.connections);
    let consumer_assignments = plan_connections(&cluster.layout.leaders, target.connections);
    let producers_running = Arc::new(AtomicUsize::new(producer_assignments.len()));
    let start = Arc::new(Barrier::new(
        producer_assignments.len() + consumer_assignments.len() + 1,
    ));
    eprintln!(
        "end to end on {} ({} partitions): {} records/s in batches of {}, {} producer and {} \
         consumer connections, Produce v{}, Fetch v{}",
        target.topic,
        target.partitions,
        args.rate,
        args.records_per_batch,
        producer_assignments.len(),
        consumer_assignments.len(),
        cluster.versions.produce,
        cluster.versions.fetch,
    );
    let end_to_end = Arc::new(EndToEnd {
        producers_running: producers_running.clone(),
        produced: produced.clone(),
        consumed: consumed.clone(),
    });
    // Built before any thread starts: a failure here must not leave threads waiting on `start`.
    let producer_plan = Arc::new(producer_plan(args, cluster)?);
    let consumer_plan = Arc::new(consumer_plan(args, cluster, end_to_end));
    let duration = Duration::from_secs(target.duration_secs);
    let mut workers = spawn_consumers(
        cluster,
        &consumer_plan,
        consumer_assignments,
        consumed,
        &start,
        duration + E2E_DRAIN_GRACE,
    )?;
    workers.extend(spawn_producer_jobs(
        cluster,
        &producer_plan,
        producer_assignments,
        produced,
        &start,
        &producers_running,
        target.duration_secs,
    )?);
    start.wait();
    Ok(workers)
}

fn producer_plan(args: &E2eArgs, cluster: &Cluster) -> Result<ProducerPlan> {
    let batch = BatchTemplate::build(
        args.records_per_batch,
        args.record_bytes,
        Compression::None,
        true,
    )?;
    Ok(ProducerPlan {
        topic: args.target.topic.clone(),
        versions: cluster.versions,
        acks: args.acks,
        max_in_flight: args.max_in_flight,
        rate: Some(args.rate as f64),
        partitions_total: args.target.partitions,
        batch,
        stamp_values: true,
        idempotent: false,
    })
}

fn consumer_plan(args: &E2eArgs, cluster: &Cluster, end_to_end: Arc<EndToEnd>) -> ConsumerPlan {
    ConsumerPlan {
        topic: args.target.topic.clone(),
        versions: cluster.versions,
        max_bytes: FETCH_MAX_BYTES_MAX / 2,
        partition_max_bytes: E2E_PARTITION_MAX_BYTES,
        start_at: OFFSET_LATEST,
        until_caught_up: false,
        end_to_end: Some(end_to_end),
    }
}
