//! The command line: subcommands, flags, defaults and their validation against `limits.rs`.
//!
//! Owns: `Cli` and the argument structs. Never: running anything. Every flag is checked once here,
//! so the workers can rely on the bounds.

use clap::{Args, Parser, Subcommand};

use crate::batch::{Compression, VALUE_STAMP_BYTES};
use crate::limits::{
    BATCH_BYTES_MAX, CONNECTIONS_MAX, DURATION_SECS_MAX, FETCH_MAX_BYTES_MAX, IN_FLIGHT_MAX,
    PARTITIONS_MAX, RATE_MAX,
};

/// A Kafka load generator that speaks the Kafka protocol itself.
///
/// Prints a progress line to stderr every second and a summary to stdout whose last line is JSON.
/// Exits with status 1 if any error was counted (the summary is still printed).
#[derive(Parser, Debug)]
#[command(name = "fluxmq-bench", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Produce as fast as possible, or at --rate (open loop: latency counts from the due time).
    Produce(ProduceArgs),
    /// Fetch from every partition and count what arrives.
    Consume(ConsumeArgs),
    /// Produce at a fixed rate and consume it, measuring send-to-receive latency per record.
    E2e(E2eArgs),
}

/// Where to connect and what to load, common to every mode.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// A broker to bootstrap from (host:port); partition leaders are found through Metadata.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    #[arg(long)]
    pub topic: String,
    /// Partitions 0..N of the topic to use.
    #[arg(long, default_value_t = 1)]
    pub partitions: usize,
    /// TCP connections (one thread each); partitions are dealt out among them.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    #[arg(long, default_value_t = 30)]
    pub duration_secs: u64,
}

#[derive(Args, Debug, Clone)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Value bytes per record (keys are null).
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,
    /// Records per batch; each request carries one batch per partition of its connection.
    #[arg(long, default_value_t = 100)]
    pub records_per_batch: usize,
    /// 0 (no answer), 1 (leader) or -1/all (all in-sync replicas).
    #[arg(long, default_value = "1", value_parser = parse_acks, allow_hyphen_values = true)]
    pub acks: i16,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// With --rate: a batch closes when its first record has waited this long, so it holds about
    /// rate-per-partition × linger records (at most --records-per-batch). 0: always full batches.
    #[arg(long, default_value_t = 0)]
    pub linger_ms: u64,
    /// Target records per second over the whole run (open loop); flat out when absent.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Unanswered requests allowed per connection.
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    /// Produce as an idempotent producer, as Kafka clients do by default: one InitProducerId per
    /// connection, and every batch carries that producer id and epoch and its partition's next
    /// sequence number (so the broker checks and records sequences). Use with --acks -1.
    #[arg(long)]
    pub idempotent: bool,
    /// Create the topic with --partitions partitions first (an existing topic is fine).
    #[arg(long)]
    pub create_topic: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Start at the earliest offset instead of the latest.
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop once every partition has been read up to the end it had at the start.
    #[arg(long)]
    pub until_caught_up: bool,
    /// Bytes one Fetch answer may carry.
    #[arg(long, default_value_t = 52_428_800)]
    pub max_bytes: usize,
    /// Bytes one partition may contribute to a Fetch answer.
    #[arg(long, default_value_t = 1_048_576)]
    pub partition_max_bytes: usize,
}

#[derive(Args, Debug, Clone)]
pub struct E2eArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Records per second the producer sends.
    #[arg(long)]
    pub rate: u64,
    /// Value bytes per record; the first 8 carry the send time.
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,
    /// Records per batch.
    #[arg(long, default_value_t = 1)]
    pub records_per_batch: usize,
    #[arg(long, default_value = "1", value_parser = parse_acks, allow_hyphen_values = true)]
    pub acks: i16,
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    #[arg(long)]
    pub create_topic: bool,
}

fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "0" => Ok(0),
        "1" => Ok(1),
        "-1" | "all" => Ok(-1),
        other => Err(format!("acks must be 0, 1, -1 or all, not {other}")),
    }
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    match condition {
        true => Ok(()),
        false => Err(message()),
    }
}

impl TargetArgs {
    pub fn validate(&self) -> Result<(), String> {
        check(!self.topic.is_empty() && self.topic.len() <= 249, || {
            "topic names have 1 to 249 characters".to_string()
        })?;
        check((1..=PARTITIONS_MAX).contains(&self.partitions), || {
            format!("--partitions must be 1..={PARTITIONS_MAX}")
        })?;
        check((1..=CONNECTIONS_MAX).contains(&self.connections), || {
            format!("--connections must be 1..={CONNECTIONS_MAX}")
        })?;
        check(
            (1..=DURATION_SECS_MAX).contains(&self.duration_secs),
            || format!("--duration-secs must be 1..={DURATION_SECS_MAX}"),
        )
    }
}

fn validate_producer(
    record_bytes: usize,
    records_per_batch: usize,
    max_in_flight: usize,
) -> Result<(), String> {
    check(record_bytes <= BATCH_BYTES_MAX, || {
        format!("--record-bytes must be at most {BATCH_BYTES_MAX}")
    })?;
    check((1..=BATCH_BYTES_MAX).contains(&records_per_batch), || {
        "--records-per-batch must be at least 1".to_string()
    })?;
    check((1..=IN_FLIGHT_MAX).contains(&max_in_flight), || {
        format!("--max-in-flight must be 1..={IN_FLIGHT_MAX}")
    })
}

fn validate_rate(rate: u64) -> Result<(), String> {
    check((1..=RATE_MAX).contains(&rate), || {
        format!("--rate must be 1..={RATE_MAX}")
    })
}

impl ProduceArgs {
    pub fn validate(&self) -> Result<(), String> {
        self.target.validate()?;
        validate_producer(
            self.record_bytes,
            self.records_per_batch,
            self.max_in_flight,
        )?;
        if let Some(rate) = self.rate {
            validate_rate(rate)?;
        }
        check(self.linger_ms <= 60_000, || {
            "--linger-ms must be at most 60000".to_string()
        })
    }
}

impl ConsumeArgs {
    pub fn validate(&self) -> Result<(), String> {
        self.target.validate()?;
        check((1..=FETCH_MAX_BYTES_MAX).contains(&self.max_bytes), || {
            format!("--max-bytes must be 1..={FETCH_MAX_BYTES_MAX}")
        })?;
        check(
            (1..=FETCH_MAX_BYTES_MAX).contains(&self.partition_max_bytes),
            || format!("--partition-max-bytes must be 1..={FETCH_MAX_BYTES_MAX}"),
        )
    }
}

impl E2eArgs {
    pub fn validate(&self) -> Result<(), String> {
        self.target.validate()?;
        validate_producer(
            self.record_bytes,
            self.records_per_batch,
            self.max_in_flight,
        )?;
        validate_rate(self.rate)?;
        check(self.record_bytes >= VALUE_STAMP_BYTES, || {
            format!("--record-bytes must be at least {VALUE_STAMP_BYTES} to carry the send time")
        })?;
        check(self.acks != 0, || {
            "e2e needs acks 1 or -1 to know how many records to wait for".to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(line.split_whitespace())
    }

    fn produce(line: &str) -> ProduceArgs {
        match parse(line).expect("parses").command {
            Command::Produce(args) => args,
            other => panic!("expected produce, got {other:?}"),
        }
    }

    #[test]
    fn produce_flags_parse_with_defaults() {
        let args = produce("fluxmq-bench produce --topic t");
        assert_eq!(args.target.bootstrap, "127.0.0.1:9092");
        assert_eq!(args.target.partitions, 1);
        assert_eq!(args.target.duration_secs, 30);
        assert_eq!(args.record_bytes, 100);
        assert_eq!(args.records_per_batch, 100);
        assert_eq!(args.acks, 1);
        assert_eq!(args.compression, Compression::None);
        assert_eq!(args.rate, None);
        assert_eq!(args.max_in_flight, 5);
        assert!(!args.create_topic);
        args.validate().expect("defaults are valid");
    }

    #[test]
    fn produce_flags_parse_when_given() {
        let args = produce(
            "fluxmq-bench produce --bootstrap 127.0.0.1:19092 --topic t --partitions 8 \
             --connections 2 --record-bytes 512 --records-per-batch 50 --acks -1 \
             --compression zstd --linger-ms 5 --duration-secs 10 --rate 10000 \
             --max-in-flight 3 --create-topic",
        );
        assert_eq!(args.target.partitions, 8);
        assert_eq!(args.target.connections, 2);
        assert_eq!(args.acks, -1);
        assert_eq!(args.compression, Compression::Zstd);
        assert_eq!(args.rate, Some(10_000));
        assert_eq!(args.linger_ms, 5);
        assert!(args.create_topic);
        args.validate().expect("valid");
        assert_eq!(
            produce("fluxmq-bench produce --topic t --acks all").acks,
            -1
        );
        assert_eq!(produce("fluxmq-bench produce --topic t --acks 0").acks, 0);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse("fluxmq-bench produce --topic t --acks 2").is_err());
        assert!(parse("fluxmq-bench produce --topic t --compression gzip").is_err());
        assert!(parse("fluxmq-bench produce").is_err());
        assert!(produce("fluxmq-bench produce --topic t --connections 0")
            .validate()
            .is_err());
        assert!(
            produce("fluxmq-bench produce --topic t --max-in-flight 1000")
                .validate()
                .is_err()
        );
        assert!(produce("fluxmq-bench produce --topic t --rate 0")
            .validate()
            .is_err());
        assert!(
            produce("fluxmq-bench produce --topic t --partitions 100000")
                .validate()
                .is_err()
        );
    }

    #[test]
    fn consume_and_e2e_parse_and_validate() {
        let Command::Consume(consume) = parse(
            "fluxmq-bench consume --topic t --partitions 4 --from-beginning --until-caught-up",
        )
        .expect("parses")
        .command
        else {
            panic!("expected consume");
        };
        assert!(consume.from_beginning && consume.until_caught_up);
        assert_eq!(consume.max_bytes, 52_428_800);
        assert_eq!(consume.partition_max_bytes, 1_048_576);
        consume.validate().expect("valid");
        assert!(
            parse("fluxmq-bench e2e --topic t").is_err(),
            "e2e needs --rate"
        );
        let Command::E2e(e2e) = parse("fluxmq-bench e2e --topic t --rate 1000")
            .expect("parses")
            .command
        else {
            panic!("expected e2e");
        };
        assert_eq!(e2e.records_per_batch, 1);
        e2e.validate().expect("valid");
        let Command::E2e(small) = parse("fluxmq-bench e2e --topic t --rate 10 --record-bytes 4")
            .expect("parses")
            .command
        else {
            panic!("expected e2e");
        };
        assert!(
            small.validate().is_err(),
            "values must hold the 8-byte stamp"
        );
    }
}
