//! The producer: one thread per connection sending pre-built Produce requests, pipelined up to
//! `--max-in-flight`, flat out or paced open loop by `--rate`.
//!
//! Owns: the produce loops, the check of every partition's answer, and the `produce` subcommand.
//! Never: building batches or frames (`batch.rs`, `produce_request.rs`).
//!
//! A request carries one batch for each partition of its connection, so the broker gets as much
//! work per request as the connection can offer, and the sender's cost per request is a CRC and a
//! `write`. Latency is measured per request, from its due time (open loop) or its send time (flat
//! out) to its answer; with acks=0 there is no answer and only throughput is measured.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::{InitProducerIdRequest, ProduceResponse, ProducerId};

use crate::batch::BatchTemplate;
use crate::cli::ProduceArgs;
use crate::client::{discover, error_name, plan_connections, Assignment, Cluster, Versions};
use crate::error::{Error, Result};
use crate::limits::{POLL_TICK, RESPONSE_TIMEOUT};
use crate::pacing::{connection_rate, records_per_batch_with_linger, Schedule};
use crate::produce_request::ProduceTemplate;
use crate::stats::{clock_ns, cpu_seconds, join, Monitor, Stats, Summary};
use crate::wire::{decode_response, Connection};

/// What every producer thread of a run shares.
pub struct ProducerPlan {
    pub topic: String,
    pub versions: Versions,
    pub acks: i16,
    pub max_in_flight: usize,
    /// Records per second over the whole run; flat out when `None`.
    pub rate: Option<f64>,
    pub partitions_total: usize,
    pub batch: BatchTemplate,
    /// Write the due time into every value (end-to-end runs).
    pub stamp_values: bool,
    /// Idempotent producer: a producer id per connection and sequence numbers per partition.
    pub idempotent: bool,
}

/// Where one producer thread sends, and what it reports to.
pub struct ProducerJob {
    pub plan: Arc<ProducerPlan>,
    pub address: String,
    pub partitions: Vec<i32>,
    /// Position among the producer threads, to interleave their schedules.
    pub index: usize,
    pub count: usize,
    pub stats: Arc<Stats>,
    pub start: Arc<Barrier>,
    pub duration: Duration,
    /// Decremented when the thread ends, so end-to-end consumers know when the producers are done.
    pub running: Arc<AtomicUsize>,
}

/// Runs the `produce` subcommand.
pub fn run(args: &ProduceArgs) -> Result<Summary> {
    let target = &args.target;
    let cluster = discover(
        &target.bootstrap,
        &target.topic,
        target.partitions,
        args.create_topic,
    )?;
    if args.linger_ms > 0 && args.rate.is_none() {
        eprintln!("note: --linger-ms only shapes batches with --rate; flat out, batches are full");
    }
    let plan = Arc::new(producer_plan(args, &cluster)?);
    let stats = Stats::new();
    let (workers, start) = spawn_producers(
        &cluster,
        &plan,
        target.connections,
        &stats,
        target.duration_secs,
    )?;
    describe(
        &plan,
        &cluster,
        workers.len(),
        format!("{:?}", args.compression),
    );
    start.wait();
    let mut monitor = Monitor::new(stats.clone(), vec![("produce", stats.clone())]);
    let seconds = monitor.watch(&workers);
    join(workers);
    Ok(Summary {
        mode: "produce",
        msgs: stats.msgs(),
        bytes: stats.bytes(),
        requests: stats.requests(),
        seconds,
        errors: stats.errors(),
        error_kinds: stats.error_kinds(),
        latencies: monitor.finish(),
        cpu_seconds: cpu_seconds(),
    })
}

/// The batch is built here, once, for every thread: with `--rate`, `--linger-ms` may shrink it.
fn producer_plan(args: &ProduceArgs, cluster: &Cluster) -> Result<ProducerPlan> {
    let partitions = args.target.partitions;
    let rate = args.rate.map(|rate| rate as f64);
    let records_per_batch = match rate {
        Some(rate) => records_per_batch_with_linger(
            args.records_per_batch,
            rate / partitions as f64,
            args.linger_ms,
        ),
        None => args.records_per_batch,
    };
    let batch = BatchTemplate::build(
        records_per_batch,
        args.record_bytes,
        args.compression,
        false,
    )?;
    Ok(ProducerPlan {
        topic: args.target.topic.clone(),
        versions: cluster.versions,
        acks: args.acks,
        max_in_flight: args.max_in_flight,
        rate,
        partitions_total: partitions,
        batch,
        stamp_values: false,
        idempotent: args.idempotent,
    })
}

/// Starts one thread per planned connection. They connect and build their requests, then wait on
/// the returned barrier, which the caller releases by waiting on it too.
fn spawn_producers(
    cluster: &Cluster,
    plan: &Arc<ProducerPlan>,
    connections: usize,
    stats: &Arc<Stats>,
    duration_secs: u64,
) -> Result<(Vec<JoinHandle<()>>, Arc<Barrier>)> {
    let assignments = plan_connections(&cluster.layout.leaders, connections);
    let start = Arc::new(Barrier::new(assignments.len() + 1));
    let running = Arc::new(AtomicUsize::new(assignments.len()));
    spawn_producer_jobs(
        cluster,
        plan,
        assignments,
        stats,
        &start,
        &running,
        duration_secs,
    )
    .map(|workers| (workers, start))
}

/// As `spawn_producers`, with the assignments, barrier and running count supplied by the caller
/// (end-to-end runs share the barrier with their consumers).
pub fn spawn_producer_jobs(
    cluster: &Cluster,
    plan: &Arc<ProducerPlan>,
    assignments: Vec<Assignment>,
    stats: &Arc<Stats>,
    start: &Arc<Barrier>,
    running: &Arc<AtomicUsize>,
    duration_secs: u64,
) -> Result<Vec<JoinHandle<()>>> {
    let count = assignments.len();
    let mut workers = Vec::with_capacity(count);
    for (index, assignment) in assignments.into_iter().enumerate() {
        let job = ProducerJob {
            plan: plan.clone(),
            address: cluster.address_of(assignment.leader),
            partitions: assignment.partitions,
            index,
            count,
            stats: stats.clone(),
            start: start.clone(),
            duration: Duration::from_secs(duration_secs),
            running: running.clone(),
        };
        let worker = thread::Builder::new()
            .name(format!("producer-{index}"))
            .spawn(move || producer_thread(job))?;
        workers.push(worker);
    }
    Ok(workers)
}

fn describe(plan: &ProducerPlan, cluster: &Cluster, connections: usize, compression: String) {
    let pace = match plan.rate {
        Some(rate) => format!("{rate:.0} records/s open loop"),
        None => "flat out".to_string(),
    };
    eprintln!(
        "producing to {} ({} partitions) over {connections} connections, Produce v{}, acks={}, \
         batches of {} records ({} bytes, {compression}), {pace}, {} in flight, leaders at {:?}",
        plan.topic,
        plan.partitions_total,
        cluster.versions.produce,
        plan.acks,
        plan.batch.records(),
        plan.batch.bytes().len(),
        plan.max_in_flight,
        cluster.layout.brokers.values().collect::<Vec<_>>(),
    );
}

fn producer_thread(job: ProducerJob) {
    let setup = Connection::connect(&job.address).and_then(|mut connection| {
        let template = ProduceTemplate::build(
            job.plan.versions.produce,
            job.plan.acks,
            &job.plan.topic,
            &job.partitions,
            &job.plan.batch,
        )?;
        let idempotence = match job.plan.idempotent {
            true => Some(Idempotence::init(&mut connection, job.partitions.len())?),
            false => None,
        };
        Ok((connection, template, idempotence))
    });
    job.start.wait();
    let start = Instant::now();
    let result = setup.and_then(|(connection, template, idempotence)| {
        let mut sender = Sender {
            connection,
            template,
            idempotence,
            plan: &job.plan,
            stats: &job.stats,
            partitions: job.partitions.len(),
        };
        let schedule = job.plan.rate.map(|rate| {
            let rate = connection_rate(rate, job.partitions.len(), job.plan.partitions_total);
            let phase = job.index as f64 / job.count as f64;
            Schedule::new(start, sender.records_per_request(), rate, phase)
        });
        let deadline = start + job.duration;
        match job.plan.acks {
            0 => run_unacknowledged(&mut sender, schedule, deadline),
            _ => run_pipelined(&mut sender, schedule, deadline),
        }
    });
    if let Err(error) = result {
        job.stats
            .add_error(&format!("producer connection to {}: {error}", job.address));
    }
    job.running.fetch_sub(1, Ordering::SeqCst);
}

/// A request on the wire, waiting for its answer.
struct InFlight {
    correlation_id: i32,
    /// When it was due (open loop) or sent (flat out): latency counts from here.
    due: Instant,
    sent: Instant,
}

/// An idempotent producer's identity and the next sequence number of each of its partitions.
struct Idempotence {
    producer_id: i64,
    producer_epoch: i16,
    next_sequences: Vec<i32>,
}

impl Idempotence {
    /// InitProducerId v4 without a transactional id, as a default Java producer sends it.
    fn init(connection: &mut Connection, partitions: usize) -> Result<Idempotence> {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let response = connection.call(4, &request)?;
        if response.error_code != 0 {
            return Err(Error::new(format!(
                "InitProducerId: {}",
                error_name(response.error_code)
            )));
        }
        Ok(Idempotence {
            producer_id: response.producer_id.0,
            producer_epoch: response.producer_epoch,
            next_sequences: vec![0; partitions],
        })
    }

    /// Stamps every batch of the request with its partition's next sequence and advances it;
    /// sequences wrap at 2^31 as Kafka's do.
    fn stamp(&mut self, template: &mut ProduceTemplate, records: usize) {
        for (index, sequence) in self.next_sequences.iter_mut().enumerate() {
            template.set_producer(index, self.producer_id, self.producer_epoch, *sequence);
            *sequence = ((i64::from(*sequence) + records as i64) % (1i64 << 31)) as i32;
        }
    }
}

/// One connection's producing state.
struct Sender<'a> {
    connection: Connection,
    template: ProduceTemplate,
    idempotence: Option<Idempotence>,
    plan: &'a ProducerPlan,
    stats: &'a Stats,
    partitions: usize,
}

impl Sender<'_> {
    fn records_per_request(&self) -> usize {
        self.plan.batch.records() * self.partitions
    }

    fn send(&mut self, due: Instant) -> Result<i32> {
        let correlation_id = self.connection.next_correlation_id();
        let value_stamp = self.plan.stamp_values.then(|| clock_ns(due));
        self.template.prepare(
            &self.plan.batch,
            correlation_id,
            wall_clock_ms(),
            value_stamp,
        );
        if let Some(idempotence) = self.idempotence.as_mut() {
            idempotence.stamp(&mut self.template, self.plan.batch.records());
        }
        self.connection.write_all(self.template.frame())?;
        self.stats.add_request();
        Ok(correlation_id)
    }

    /// Checks every partition's answer: accepted batches count as records, refused ones as errors.
    fn handle_response(&mut self, frame: Bytes, request: InFlight) -> Result<()> {
        let response: ProduceResponse =
            decode_response(frame, self.plan.versions.produce, request.correlation_id)?;
        self.stats
            .record_latency(Instant::now().saturating_duration_since(request.due));
        let records = self.plan.batch.records() as u64;
        let payload_bytes = self.plan.batch.payload_bytes() as u64;
        let mut answered = 0;
        for partition in response
            .responses
            .iter()
            .flat_map(|topic| &topic.partition_responses)
        {
            answered += 1;
            match partition.error_code {
                0 => self.stats.add_records(records, payload_bytes),
                code => self
                    .stats
                    .add_error(&format!("produce: {}", error_name(code))),
            }
        }
        for _ in answered..self.partitions {
            self.stats
                .add_error("produce: a partition is missing from the answer");
        }
        Ok(())
    }
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as i64)
        .unwrap_or(0)
}

/// acks 1 or -1: keeps up to `max_in_flight` requests on the wire, reading answers in order.
fn run_pipelined(
    sender: &mut Sender,
    mut schedule: Option<Schedule>,
    deadline: Instant,
) -> Result<()> {
    let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(sender.plan.max_in_flight);
    loop {
        let now = Instant::now();
        let sending = now < deadline;
        if !sending && in_flight.is_empty() {
            return Ok(());
        }
        let due_next = schedule.as_ref().map(Schedule::due_next);
        let room = in_flight.len() < sender.plan.max_in_flight;
        if sending && room && due_next.is_none_or(|due| due <= now) {
            let due = schedule.as_mut().map_or(now, Schedule::take_next);
            let correlation_id = sender.send(due)?;
            in_flight.push_back(InFlight {
                correlation_id,
                due,
                sent: now,
            });
            continue;
        }
        // Nothing to send now: wait for an answer, but no longer than until the next due time.
        let wake = match due_next {
            Some(due) if sending && room => due.min(deadline),
            _ => now + POLL_TICK,
        };
        let wait = wake.saturating_duration_since(now).min(POLL_TICK);
        if in_flight.is_empty() {
            thread::sleep(wait);
            continue;
        }
        sender.connection.set_wait(wait)?;
        match sender.connection.poll_frame()? {
            Some(frame) => {
                let Some(request) = in_flight.pop_front() else {
                    return Err(Error::new("an answer arrived for no request"));
                };
                sender.handle_response(frame, request)?;
            }
            None => check_stalled(in_flight.front(), now)?,
        }
    }
}

fn check_stalled(oldest: Option<&InFlight>, now: Instant) -> Result<()> {
    match oldest {
        Some(request) if now.saturating_duration_since(request.sent) > RESPONSE_TIMEOUT => {
            Err(Error::new(format!(
                "no answer to a Produce request within {} s",
                RESPONSE_TIMEOUT.as_secs()
            )))
        }
        _ => Ok(()),
    }
}

/// acks 0: the broker never answers, so records count as done once written.
fn run_unacknowledged(
    sender: &mut Sender,
    mut schedule: Option<Schedule>,
    deadline: Instant,
) -> Result<()> {
    let records = sender.records_per_request() as u64;
    let payload_bytes = (sender.plan.batch.payload_bytes() * sender.partitions) as u64;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        let due = match schedule.as_mut() {
            Some(schedule) if schedule.due_next() > now => {
                thread::sleep(schedule.due_next().min(deadline) - now);
                continue;
            }
            Some(schedule) => schedule.take_next(),
            None => now,
        };
        sender.send(due)?;
        sender.stats.add_records(records, payload_bytes);
    }
}
