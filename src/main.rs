//! The `fluxmq` binary: parses the command line and hands over to `boot`.
//!
//! Owns: argument parsing, logging setup, the process exit code. Never: request logic.

use clap::Parser;
use fluxmq::{boot, config};

fn main() {
    abort_on_panic();
    let config = config::Config::parse();
    env_logger::Builder::new()
        .parse_filters(&config.log_level)
        .parse_env("FLUXMQ_LOG")
        .format_timestamp_millis()
        .init();
    if let Err(error) = config.validate() {
        log::error!("{error}");
        std::process::exit(2);
    }
    if let Err(error) = boot::run(config) {
        log::error!("{error:#}");
        std::process::exit(1);
    }
}

/// A panic in any shard stops the whole process: a broker with one dead core would keep accepting
/// connections for partitions nobody serves (the half-alive state Iggy's boot code warns about).
/// Release builds abort on panic anyway; this makes test and debug builds behave the same.
fn abort_on_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));
}
