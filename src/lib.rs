//! The broker as a library: everything `main.rs` runs, exposed so benchmarks and tests can call the
//! codec and handlers directly. The binary is a thin wrapper over [`boot::run`].
//!
//! Architecture Invariant: only `protocol` and `handlers` know the Kafka wire format.

pub mod boot;
pub mod config;
pub mod errors;
pub mod handlers;
pub mod limits;
pub mod net;
pub mod numa;
pub mod protocol;
