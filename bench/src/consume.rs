//! The consumer: one thread per connection running a Fetch loop over its partitions, moving each
//! partition's offset by the batch headers it receives.
//!
//! Owns: the fetch loop, offset tracking, the `consume` subcommand, and (for end-to-end runs) the
//! per-record latency read from stamped values. Never: producing.
//!
//! One Fetch is in flight per connection, as Kafka's consumer does: the next fetch's offsets depend
//! on this one's answer. Only batch headers are parsed (base offset, last offset delta, records
//! count); records are decoded only in end-to-end mode. MB/s counts record batch bytes as stored,
//! that is compressed bytes when batches are compressed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::batch::{for_each_batch, for_each_value, BatchHeader, VALUE_STAMP_BYTES};
use crate::cli::ConsumeArgs;
use crate::client::{
    discover, error_name, list_offsets, plan_connections, Assignment, Cluster, Versions,
    OFFSET_EARLIEST, OFFSET_LATEST,
};
use crate::error::{Error, Result};
use crate::limits::{FETCH_MAX_WAIT_MS, RESPONSE_TIMEOUT, RETRY_BACKOFF};
use crate::stats::{clock_ns, cpu_seconds, join, new_histogram, Monitor, Stats, Summary};
use crate::wire::{decode_response, encode_request, Connection};

const OFFSET_OUT_OF_RANGE: i16 = 1;

/// What every consumer thread of a run shares.
pub struct ConsumerPlan {
    pub topic: String,
    pub versions: Versions,
    pub max_bytes: usize,
    pub partition_max_bytes: usize,
    /// `OFFSET_EARLIEST` or `OFFSET_LATEST`: where reading starts.
    pub start_at: i64,
    /// Stop once every partition reached the end offset it had when the thread started.
    pub until_caught_up: bool,
    /// Decode records and measure end-to-end latency from their stamps (end-to-end runs); the
    /// fetch round trip is measured otherwise.
    pub end_to_end: Option<Arc<EndToEnd>>,
}

/// How the consumers of an end-to-end run know they are done: the producers have stopped and
/// everything they had acknowledged has been read.
pub struct EndToEnd {
    pub producers_running: Arc<AtomicUsize>,
    pub produced: Arc<Stats>,
    pub consumed: Arc<Stats>,
}

impl EndToEnd {
    fn done(&self) -> bool {
        self.producers_running.load(Ordering::SeqCst) == 0
            && self.consumed.msgs() >= self.produced.msgs()
    }
}

/// Runs the `consume` subcommand.
pub fn run(args: &ConsumeArgs) -> Result<Summary> {
    let target = &args.target;
    let cluster = discover(&target.bootstrap, &target.topic, target.partitions, false)?;
    let plan = Arc::new(ConsumerPlan {
        topic: target.topic.clone(),
        versions: cluster.versions,
        max_bytes: args.max_bytes,
        partition_max_bytes: args.partition_max_bytes,
        start_at: if args.from_beginning {
            OFFSET_EARLIEST
        } else {
            OFFSET_LATEST
        },
        until_caught_up: args.until_caught_up,
        end_to_end: None,
    });
    let assignments = plan_connections(&cluster.layout.leaders, target.connections);
    let start = Arc::new(Barrier::new(assignments.len() + 1));
    let stats = Stats::new();
    let duration = Duration::from_secs(target.duration_secs);
    eprintln!(
        "consuming {} ({} partitions) over {} connections, Fetch v{}, from the {}",
        plan.topic,
        target.partitions,
        assignments.len(),
        plan.versions.fetch,
        if args.from_beginning {
            "earliest offsets"
        } else {
            "latest offsets"
        },
    );
    let workers = spawn_consumers(&cluster, &plan, assignments, &stats, &start, duration)?;
    start.wait();
    let mut monitor = Monitor::new(stats.clone(), vec![("fetch", stats.clone())]);
    let seconds = monitor.watch(&workers);
    join(workers);
    Ok(Summary {
        mode: "consume",
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

/// Starts one consumer thread per assignment. Each connects and looks up its start offsets, then
/// waits on `start`; it reads for `duration` after that.
pub fn spawn_consumers(
    cluster: &Cluster,
    plan: &Arc<ConsumerPlan>,
    assignments: Vec<Assignment>,
    stats: &Arc<Stats>,
    start: &Arc<Barrier>,
    duration: Duration,
) -> Result<Vec<JoinHandle<()>>> {
    let mut workers = Vec::with_capacity(assignments.len());
    for (index, assignment) in assignments.into_iter().enumerate() {
        let plan = plan.clone();
        let address = cluster.address_of(assignment.leader);
        let stats = stats.clone();
        let start = start.clone();
        let worker = thread::Builder::new()
            .name(format!("consumer-{index}"))
            .spawn(move || {
                let setup = Consumer::connect(&plan, &address, &assignment.partitions, &stats);
                start.wait();
                let deadline = Instant::now() + duration;
                if let Err(error) = setup.and_then(|mut consumer| consumer.run(deadline)) {
                    stats.add_error(&format!("consumer connection to {address}: {error}"));
                }
            })?;
        workers.push(worker);
    }
    Ok(workers)
}

/// Where one partition is being read.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    partition: i32,
    offset: i64,
    /// The end offset at the start (for `until_caught_up`).
    end: i64,
}

/// One connection's consuming state.
struct Consumer<'a> {
    connection: Connection,
    plan: &'a ConsumerPlan,
    stats: &'a Stats,
    cursors: Vec<Cursor>,
    /// Partition to its index in `cursors`.
    index_of: HashMap<i32, usize>,
    /// End-to-end latencies of the current answer, added to `stats` in one lock.
    latencies: Histogram<u64>,
}

impl<'a> Consumer<'a> {
    fn connect(
        plan: &'a ConsumerPlan,
        address: &str,
        partitions: &[i32],
        stats: &'a Stats,
    ) -> Result<Consumer<'a>> {
        let mut connection = Connection::connect(address)?;
        let versions = &plan.versions;
        let starts = list_offsets(
            &mut connection,
            versions,
            &plan.topic,
            partitions,
            plan.start_at,
        )?;
        let ends = list_offsets(
            &mut connection,
            versions,
            &plan.topic,
            partitions,
            OFFSET_LATEST,
        )?;
        let cursors: Vec<Cursor> = partitions
            .iter()
            .zip(starts.iter().zip(&ends))
            .map(|(&partition, (&offset, &end))| Cursor {
                partition,
                offset,
                end,
            })
            .collect();
        let index_of = cursors
            .iter()
            .enumerate()
            .map(|(index, cursor)| (cursor.partition, index))
            .collect();
        Ok(Consumer {
            connection,
            plan,
            stats,
            cursors,
            index_of,
            latencies: new_histogram(),
        })
    }

    fn finished(&self, deadline: Instant) -> bool {
        if Instant::now() >= deadline {
            return true;
        }
        if self.plan.until_caught_up
            && self
                .cursors
                .iter()
                .all(|cursor| cursor.offset >= cursor.end)
        {
            return true;
        }
        self.plan
            .end_to_end
            .as_ref()
            .is_some_and(|end_to_end| end_to_end.done())
    }

    fn run(&mut self, deadline: Instant) -> Result<()> {
        while !self.finished(deadline) {
            let correlation_id = self.connection.next_correlation_id();
            let frame = encode_request(
                self.plan.versions.fetch,
                correlation_id,
                &self.fetch_request(),
            )?;
            let sent = Instant::now();
            self.connection.write_all(&frame)?;
            let wait = Duration::from_millis(FETCH_MAX_WAIT_MS as u64) + RESPONSE_TIMEOUT;
            let answer = self.connection.wait_frame(sent + wait)?;
            let response: FetchResponse =
                decode_response(answer, self.plan.versions.fetch, correlation_id)?;
            self.stats.add_request();
            if self.plan.end_to_end.is_none() {
                self.stats.record_latency(sent.elapsed());
            }
            let (had_records, had_errors) = self.apply(&response)?;
            if had_errors && !had_records {
                thread::sleep(RETRY_BACKOFF);
            }
        }
        Ok(())
    }

    fn fetch_request(&self) -> FetchRequest {
        let partitions = self
            .cursors
            .iter()
            .map(|cursor| {
                FetchPartition::default()
                    .with_partition(cursor.partition)
                    .with_fetch_offset(cursor.offset)
                    .with_partition_max_bytes(self.plan.partition_max_bytes as i32)
            })
            .collect();
        let topic = FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(self.plan.topic.clone())))
            .with_partitions(partitions);
        // Session id 0 with epoch -1: a full fetch outside any fetch session.
        FetchRequest::default()
            .with_max_wait_ms(FETCH_MAX_WAIT_MS)
            .with_min_bytes(1)
            .with_max_bytes(self.plan.max_bytes as i32)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![topic])
    }

    /// Applies one answer; returns whether it carried records and whether it carried errors.
    fn apply(&mut self, response: &FetchResponse) -> Result<(bool, bool)> {
        if response.error_code != 0 {
            self.stats
                .add_error(&format!("fetch: {}", error_name(response.error_code)));
            return Ok((false, true));
        }
        let now_ns = clock_ns(Instant::now());
        let (mut had_records, mut had_errors) = (false, false);
        let mut out_of_range = Vec::new();
        for data in response
            .responses
            .iter()
            .flat_map(|topic| &topic.partitions)
        {
            let Some(&index) = self.index_of.get(&data.partition_index) else {
                self.stats
                    .add_error("fetch: answer for a partition not asked for");
                had_errors = true;
                continue;
            };
            if data.error_code != 0 {
                self.stats
                    .add_error(&format!("fetch: {}", error_name(data.error_code)));
                had_errors = true;
                if data.error_code == OFFSET_OUT_OF_RANGE {
                    out_of_range.push(data.partition_index);
                }
                continue;
            }
            if let Some(records) = &data.records {
                had_records |= self.apply_records(index, records, now_ns)?;
            }
        }
        self.flush_latencies();
        self.reset(&out_of_range)?;
        Ok((had_records, had_errors))
    }

    /// Moves one partition's offset past the whole batches in `records`.
    fn apply_records(&mut self, index: usize, records: &Bytes, now_ns: u64) -> Result<bool> {
        let mut cursor = self.cursors[index];
        let mut any = false;
        for_each_batch(records, |header, batch| {
            // A compressed batch is returned whole even when the fetch offset is inside it.
            if header.last_offset() < cursor.offset {
                return Ok(());
            }
            let first = header.base_offset.max(cursor.offset);
            let records = match header.base_offset >= cursor.offset {
                true => header.records_count as u64,
                false => (header.last_offset() - cursor.offset + 1) as u64,
            };
            self.stats.add_records(records, batch.len() as u64);
            if self.plan.end_to_end.is_some() {
                self.record_stamps(batch, header, first, now_ns);
            }
            cursor.offset = header.last_offset() + 1;
            any = true;
            Ok(())
        })?;
        self.cursors[index] = cursor;
        Ok(any)
    }

    /// End-to-end latency of every record at or after `first`, from the stamp in its value.
    fn record_stamps(&mut self, batch: &[u8], header: &BatchHeader, first: i64, now_ns: u64) {
        let latencies = &mut self.latencies;
        let decoded = for_each_value(batch, header, |offset, value| {
            if offset < first || value.len() < VALUE_STAMP_BYTES {
                return;
            }
            let mut stamp = [0u8; VALUE_STAMP_BYTES];
            stamp.copy_from_slice(&value[..VALUE_STAMP_BYTES]);
            let latency_ns = now_ns.saturating_sub(u64::from_be_bytes(stamp));
            latencies.saturating_record((latency_ns / 1000).max(1));
        });
        if let Err(error) = decoded {
            self.stats.add_error(&format!("e2e decode: {error}"));
        }
    }

    fn flush_latencies(&mut self) {
        if !self.latencies.is_empty() {
            self.stats.add_latencies(&self.latencies);
            self.latencies.reset();
        }
    }

    /// Restarts partitions whose offset fell out of the log (retention) at the configured start.
    fn reset(&mut self, partitions: &[i32]) -> Result<()> {
        if partitions.is_empty() {
            return Ok(());
        }
        let offsets = list_offsets(
            &mut self.connection,
            &self.plan.versions,
            &self.plan.topic,
            partitions,
            self.plan.start_at,
        )?;
        for (partition, offset) in partitions.iter().zip(offsets) {
            let index = self
                .index_of
                .get(partition)
                .copied()
                .ok_or_else(|| Error::new("reset of a partition not assigned"))?;
            self.cursors[index].offset = offset;
        }
        Ok(())
    }
}
