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
//!
//! The latency floor: an echo server answers each length-prefixed request with a fixed-size reply, and
//! a pinger sends requests open loop at a fixed rate, measuring each round trip from its due time (as
//! the load generator does). With no protocol or storage, its percentiles are what the machine itself
//! adds to every request at that rate (wake-ups of idle CPUs, scheduling, loopback TCP):
//!
//! ```sh
//! taskset -c 0 fluxmq-tcp-probe echo --listen 127.0.0.1:19999 --connections 2 --reply-bytes 100 &
//! taskset -c 1 fluxmq-tcp-probe ping --connect 127.0.0.1:19999 --connections 2 --request-bytes 1500 --rate 400
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;

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
    /// Accept --connections connections; answer every length-prefixed request with --reply-bytes.
    Echo {
        #[arg(long, default_value = "127.0.0.1:19999")]
        listen: String,
        #[arg(long, default_value_t = 1)]
        connections: usize,
        #[arg(long, default_value_t = 100)]
        reply_bytes: usize,
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Send --rate requests per second in all over --connections connections, open loop, one in
    /// flight per connection; report round-trip percentiles measured from each request's due time.
    Ping {
        #[arg(long, default_value = "127.0.0.1:19999")]
        connect: String,
        #[arg(long, default_value_t = 1)]
        connections: usize,
        #[arg(long, default_value_t = 1500)]
        request_bytes: usize,
        #[arg(long, default_value_t = 400.0)]
        rate: f64,
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
        Role::Echo {
            listen,
            connections,
            reply_bytes,
            timeout_secs,
        } => echo(&listen, connections, reply_bytes, timeout_secs),
        Role::Ping {
            connect,
            connections,
            request_bytes,
            rate,
            duration_secs,
        } => ping(&connect, connections, request_bytes, rate, duration_secs),
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

/// Accepts `connections` connections on `listen` and serves each on a thread of its own with `serve`;
/// returns what each returned once all have finished. A watchdog ends the process after `timeout_secs`,
/// so a client that never connects or never closes cannot hold the run.
fn serve_all<T: Send + 'static>(
    role: &str,
    listen: &str,
    connections: usize,
    timeout_secs: u64,
    serve: impl Fn(TcpStream) -> Result<T, String> + Send + Clone + 'static,
) -> Result<Vec<T>, String> {
    check_connections(connections)?;
    let timeout_secs = timeout_secs.clamp(1, DURATION_SECS_MAX);
    let listener = TcpListener::bind(listen).map_err(|error| format!("bind {listen}: {error}"))?;
    eprintln!("fluxmq-tcp-probe: {role} listening on {listen}");
    let watched = role.to_string();
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(timeout_secs));
        eprintln!("fluxmq-tcp-probe: {watched} timed out after {timeout_secs} s");
        std::process::exit(1);
    });
    let mut servers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (stream, _) = listener
            .accept()
            .map_err(|error| format!("accept: {error}"))?;
        let serve = serve.clone();
        servers.push(thread::spawn(move || serve(stream)));
    }
    servers
        .into_iter()
        .map(|server| {
            server
                .join()
                .map_err(|_| format!("a {role} thread panicked"))?
        })
        .collect()
}

/// Opens `connections` connections to `connect`, each with TCP_NODELAY.
fn connect_all(connect: &str, connections: usize) -> Result<Vec<TcpStream>, String> {
    check_connections(connections)?;
    (0..connections)
        .map(|_| {
            let stream = TcpStream::connect(connect)
                .map_err(|error| format!("connect {connect}: {error}"))?;
            stream
                .set_nodelay(true)
                .map_err(|error| format!("TCP_NODELAY: {error}"))?;
            Ok(stream)
        })
        .collect()
}

fn sink(listen: &str, connections: usize, timeout_secs: u64) -> Result<String, String> {
    let drained_all = serve_all("sink", listen, connections, timeout_secs, drain)?;
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    for drained in drained_all {
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
    if !(1..=WRITE_BYTES_MAX).contains(&write_bytes) {
        return Err(format!("--write-bytes must be 1..={WRITE_BYTES_MAX}"));
    }
    let duration = Duration::from_secs(duration_secs.clamp(1, DURATION_SECS_MAX));
    let streams = connect_all(connect, connections)?;
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

fn check_frame_bytes(bytes: usize, flag: &str) -> Result<(), String> {
    match bytes {
        4..=WRITE_BYTES_MAX => Ok(()),
        _ => Err(format!("{flag} must be 4..={WRITE_BYTES_MAX}")),
    }
}

fn echo(
    listen: &str,
    connections: usize,
    reply_bytes: usize,
    timeout_secs: u64,
) -> Result<String, String> {
    check_frame_bytes(reply_bytes, "--reply-bytes")?;
    let answered = serve_all("echo", listen, connections, timeout_secs, move |stream| {
        answer(stream, reply_bytes)
    })?;
    let requests: u64 = answered.into_iter().sum();
    Ok(format!(
        "{{\"role\":\"echo\",\"requests\":{requests},\"cpu_secs\":{:.3}}}",
        cpu_seconds()
    ))
}

/// Reads length-prefixed frames and answers each with `reply_bytes` (its own length prefix included)
/// until the peer closes; returns how many it answered.
fn answer(mut stream: TcpStream, reply_bytes: usize) -> Result<u64, String> {
    stream
        .set_nodelay(true)
        .map_err(|error| format!("TCP_NODELAY: {error}"))?;
    let mut reply = vec![0u8; reply_bytes];
    reply[..4].copy_from_slice(&((reply_bytes - 4) as u32).to_be_bytes());
    let mut request = Vec::new();
    let mut answered = 0u64;
    while read_frame(&mut stream, &mut request, "request")? {
        stream
            .write_all(&reply)
            .map_err(|error| format!("write: {error}"))?;
        answered += 1;
    }
    Ok(answered)
}

/// Reads one length-prefixed frame's body into `body`; `Ok(false)` when the peer closed before it.
fn read_frame(stream: &mut TcpStream, body: &mut Vec<u8>, what: &str) -> Result<bool, String> {
    let mut prefix = [0u8; 4];
    match stream.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(error) => return Err(format!("read: {error}")),
    }
    let size = u32::from_be_bytes(prefix) as usize;
    if size > WRITE_BYTES_MAX {
        return Err(format!("a {size}-byte {what}"));
    }
    body.resize(size, 0);
    stream
        .read_exact(body)
        .map_err(|error| format!("read: {error}"))?;
    Ok(true)
}

fn ping(
    connect: &str,
    connections: usize,
    request_bytes: usize,
    rate: f64,
    duration_secs: u64,
) -> Result<String, String> {
    check_frame_bytes(request_bytes, "--request-bytes")?;
    if !(rate > 0.0 && rate <= 1e7) {
        return Err("--rate must be in (0, 10000000]".to_string());
    }
    let duration = Duration::from_secs(duration_secs.clamp(1, DURATION_SECS_MAX));
    let streams = connect_all(connect, connections)?;
    let started = Instant::now();
    let interval = Duration::from_secs_f64(connections as f64 / rate);
    let pingers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(index, stream)| {
            // Connections interleave instead of sending together.
            let first = started + interval.mul_f64(index as f64 / connections as f64);
            let deadline = started + duration;
            thread::spawn(move || ping_until(stream, request_bytes, first, interval, deadline))
        })
        .collect();
    let mut latencies = latency_histogram();
    for pinger in pingers {
        let measured = pinger
            .join()
            .map_err(|_| "a ping thread panicked".to_string())??;
        latencies
            .add(&measured)
            .map_err(|error| format!("histogram: {error}"))?;
    }
    let percentile = |quantile: f64| latencies.value_at_quantile(quantile);
    Ok(format!(
        "{{\"role\":\"ping\",\"requests\":{},\"secs\":{:.3},\"request_bytes\":{request_bytes},\"rate\":{rate},\"latency_us\":{{\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{},\"count\":{}}},\"cpu_secs\":{:.3}}}",
        latencies.len(),
        started.elapsed().as_secs_f64(),
        percentile(0.5),
        percentile(0.99),
        percentile(0.999),
        latencies.max(),
        latencies.len(),
        cpu_seconds()
    ))
}

/// Microseconds from 1 µs to 60 s at three significant digits, as the load generator keeps them.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Sends one request at each due time (or at once when late), waits for its reply, and records the
/// time from the due time to the reply.
fn ping_until(
    mut stream: TcpStream,
    request_bytes: usize,
    first: Instant,
    interval: Duration,
    deadline: Instant,
) -> Result<Histogram<u64>, String> {
    let mut request: Vec<u8> = (0..request_bytes)
        .map(|index| (index % 251) as u8)
        .collect();
    request[..4].copy_from_slice(&((request_bytes - 4) as u32).to_be_bytes());
    let mut reply = Vec::new();
    let mut latencies = latency_histogram();
    let mut due = first;
    while due < deadline {
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        stream
            .write_all(&request)
            .map_err(|error| format!("write: {error}"))?;
        if !read_frame(&mut stream, &mut reply, "reply")? {
            return Err("the echo server closed the connection".to_string());
        }
        let micros = Instant::now().saturating_duration_since(due).as_micros();
        latencies.saturating_record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
        due += interval;
    }
    Ok(latencies)
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
