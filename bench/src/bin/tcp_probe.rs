//! fluxmq-tcp-probe: the physical limit next to a broker. A sink accepts connections and discards
//! everything it reads; a source streams fixed-size writes into them for a while. Pinned like the broker
//! (sink) and the load generator (source), it shows how many bytes per second the kernel's loopback TCP
//! path moves at the write sizes the load generator uses, with no protocol, storage or acks at all.
//!
//! Owns: its own flags, sockets and JSON line. Never: anything Kafka.
//!
//! ```sh
//! taskset -c 0 fluxmq-tcp-probe sink --listen 127.0.0.1:19999 --connections 2 &
//! taskset -c 1 fluxmq-tcp-probe source --connect 127.0.0.1:19999 --connections 2 --write-bytes 32768
//! ```
//!
//! Each prints one JSON line on stdout: bytes moved, seconds, MB/s (10^6 bytes) and its own CPU seconds.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

/// More connections than this would measure thread scheduling, not TCP.
const CONNECTIONS_MAX: usize = 256;
/// One write may not exceed this; the load generator's largest requests are far smaller.
const WRITE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Read buffer of each sink connection: large enough that one read drains a full socket buffer.
const READ_BUFFER_BYTES: usize = 1024 * 1024;
/// A run may last at most this long; the sink gives up waiting for its sources after it.
const DURATION_SECS_MAX: u64 = 3600;

#[derive(Parser)]
#[command(name = "fluxmq-tcp-probe", version)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Accept --connections connections, read and discard until each closes, then report.
    Sink {
        #[arg(long, default_value = "127.0.0.1:19999")]
        listen: String,
        #[arg(long, default_value_t = 1)]
        connections: usize,
        /// Exit with an error if the sources have not finished by then.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Open --connections connections and write --write-bytes at a time on each, flat out.
    Source {
        #[arg(long, default_value = "127.0.0.1:19999")]
        connect: String,
        #[arg(long, default_value_t = 1)]
        connections: usize,
        #[arg(long, default_value_t = 32 * 1024)]
        write_bytes: usize,
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().role {
        Role::Sink {
            listen,
            connections,
            timeout_secs,
        } => sink(&listen, connections, timeout_secs),
        Role::Source {
            connect,
            connections,
            write_bytes,
            duration_secs,
        } => source(&connect, connections, write_bytes, duration_secs),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("fluxmq-tcp-probe: {message}");
            ExitCode::FAILURE
        }
    }
}

fn check_connections(connections: usize) -> Result<(), String> {
    match connections {
        1..=CONNECTIONS_MAX => Ok(()),
        _ => Err(format!("--connections must be 1..={CONNECTIONS_MAX}")),
    }
}

fn sink(listen: &str, connections: usize, timeout_secs: u64) -> Result<String, String> {
    check_connections(connections)?;
    let timeout_secs = timeout_secs.clamp(1, DURATION_SECS_MAX);
    let listener = TcpListener::bind(listen).map_err(|error| format!("bind {listen}: {error}"))?;
    eprintln!("fluxmq-tcp-probe: sink listening on {listen}");
    // The watchdog bounds the whole run: a source that never connects or never closes ends it.
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(timeout_secs));
        eprintln!("fluxmq-tcp-probe: sink timed out after {timeout_secs} s");
        std::process::exit(1);
    });
    let mut readers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (stream, _) = listener
            .accept()
            .map_err(|error| format!("accept: {error}"))?;
        readers.push(thread::spawn(move || drain(stream)));
    }
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    for reader in readers {
        let drained = reader
            .join()
            .map_err(|_| "a reader thread panicked".to_string())??;
        bytes += drained.bytes;
        first = [first, drained.first].into_iter().flatten().min();
        last = [last, drained.last].into_iter().flatten().max();
    }
    let seconds = match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    Ok(report("sink", bytes, seconds, None))
}

struct Drained {
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

fn drain(mut stream: TcpStream) -> Result<Drained, String> {
    let mut buffer = vec![0u8; READ_BUFFER_BYTES];
    let mut drained = Drained {
        bytes: 0,
        first: None,
        last: None,
    };
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(drained),
            Ok(read) => {
                let now = Instant::now();
                drained.first.get_or_insert(now);
                drained.last = Some(now);
                drained.bytes += read as u64;
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(format!("read: {error}")),
        }
    }
}

fn source(
    connect: &str,
    connections: usize,
    write_bytes: usize,
    duration_secs: u64,
) -> Result<String, String> {
    check_connections(connections)?;
    if !(1..=WRITE_BYTES_MAX).contains(&write_bytes) {
        return Err(format!("--write-bytes must be 1..={WRITE_BYTES_MAX}"));
    }
    let duration = Duration::from_secs(duration_secs.clamp(1, DURATION_SECS_MAX));
    let mut streams = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream =
            TcpStream::connect(connect).map_err(|error| format!("connect {connect}: {error}"))?;
        stream
            .set_nodelay(true)
            .map_err(|error| format!("TCP_NODELAY: {error}"))?;
        streams.push(stream);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let writers: Vec<_> = streams
        .into_iter()
        .map(|stream| thread::spawn(move || stream_until(stream, write_bytes, deadline)))
        .collect();
    let mut bytes = 0u64;
    let mut writes = 0u64;
    for writer in writers {
        let (written, count) = writer
            .join()
            .map_err(|_| "a writer thread panicked".to_string())??;
        bytes += written;
        writes += count;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(report(
        "source",
        bytes,
        seconds,
        Some((writes, write_bytes)),
    ))
}

fn stream_until(
    mut stream: TcpStream,
    write_bytes: usize,
    deadline: Instant,
) -> Result<(u64, u64), String> {
    let buffer: Vec<u8> = (0..write_bytes).map(|index| (index % 251) as u8).collect();
    let (mut bytes, mut writes) = (0u64, 0u64);
    while Instant::now() < deadline {
        stream
            .write_all(&buffer)
            .map_err(|error| format!("write: {error}"))?;
        bytes += write_bytes as u64;
        writes += 1;
    }
    Ok((bytes, writes))
}

fn report(role: &str, bytes: u64, seconds: f64, writes: Option<(u64, usize)>) -> String {
    let rate = |count: f64| match seconds > 0.0 {
        true => count / seconds,
        false => 0.0,
    };
    let writes_json = match writes {
        Some((count, size)) => format!(
            ",\"writes\":{count},\"write_bytes\":{size},\"writes_per_sec\":{:.1}",
            rate(count as f64)
        ),
        None => String::new(),
    };
    format!(
        "{{\"role\":\"{role}\",\"bytes\":{bytes},\"secs\":{seconds:.3},\"mb_per_sec\":{:.3}{writes_json},\"cpu_secs\":{:.3}}}",
        rate(bytes as f64) / 1e6,
        cpu_seconds()
    )
}

/// User plus system CPU seconds this process has used (getrusage RUSAGE_SELF).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass, which is sized for it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if status != 0 {
        return f64::NAN;
    }
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
