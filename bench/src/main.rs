//! fluxmq-bench: a Kafka load generator that speaks the Kafka protocol itself.
//!
//! Owns: the entry point: parse and validate flags, run one subcommand, print its summary (human
//! lines, then one line of JSON) and choose the exit status. Never: protocol or measurement logic.
//!
//! Code map: `cli` (flags), `client` (control requests, connection plan), `wire` (framing),
//! `batch` (record batches), `produce_request` (Produce frames), `produce` / `consume` / `e2e`
//! (the modes), `pacing` (open-loop schedule), `stats` (counters, histograms, report), `limits`.

mod batch;
mod cli;
mod client;
mod consume;
mod e2e;
mod error;
mod limits;
mod pacing;
mod produce;
mod produce_request;
mod stats;
mod wire;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Start the clock that end-to-end stamps are measured against before any worker exists.
    stats::clock_origin();
    let validated = match &cli.command {
        Command::Produce(args) => args.validate(),
        Command::Consume(args) => args.validate(),
        Command::E2e(args) => args.validate(),
    };
    if let Err(message) = validated {
        eprintln!("fluxmq-bench: {message}");
        return ExitCode::from(2);
    }
    let outcome = match &cli.command {
        Command::Produce(args) => produce::run(args),
        Command::Consume(args) => consume::run(args),
        Command::E2e(args) => e2e::run(args),
    };
    match outcome {
        Ok(summary) => {
            print!("{}", summary.human());
            println!("{}", summary.json());
            match summary.errors {
                0 => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            }
        }
        Err(error) => {
            eprintln!("fluxmq-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
