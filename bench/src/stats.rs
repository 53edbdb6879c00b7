//! Measurements: counters and latency histograms shared by the worker threads, the once-a-second
//! progress line, the final summary, and the tool's own CPU time.
//!
//! Owns: `Stats`, `Monitor` (and joining the workers), `Summary`, the process clock. Never:
//! deciding what to send or read.
//!
//! Workers add to atomics and record latencies into a mutex-guarded interval histogram (one lock
//! per response, uncontended but for the once-a-second drain); the monitor drains the interval
//! histograms into run-long totals, so percentiles cover the whole run (within 0.1 %).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::limits::{LATENCY_SIGNIFICANT_DIGITS, LATENCY_US_MAX};

/// How often the progress line is printed.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the monitor checks whether the workers are done; the run's measured length is exact
/// to about this much.
const WATCH_POLL: Duration = Duration::from_millis(10);

/// The process-wide time origin: end-to-end stamps are nanoseconds since it, which is meaningful
/// because the producer and the consumer of a run live in this one process.
pub fn clock_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Nanoseconds from the process origin to `instant` (zero if before it).
pub fn clock_ns(instant: Instant) -> u64 {
    u64::try_from(instant.saturating_duration_since(clock_origin()).as_nanos()).unwrap_or(u64::MAX)
}

/// A histogram of microseconds, bounded by `LATENCY_US_MAX`.
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS) {
        Ok(histogram) => histogram,
        Err(error) => panic!("histogram bounds are constants and valid: {error}"),
    }
}

/// Microseconds in `duration`, clamped into the histogram's range.
pub fn duration_us(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, LATENCY_US_MAX)
}

/// What the workers of one role (producers or consumers) have done so far.
pub struct Stats {
    msgs: AtomicU64,
    bytes: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    latency_interval: Mutex<Histogram<u64>>,
    error_kinds: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn new() -> Arc<Stats> {
        Arc::new(Stats {
            msgs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_interval: Mutex::new(new_histogram()),
            error_kinds: Mutex::new(BTreeMap::new()),
        })
    }

    /// Records that were accepted (produce) or read (consume), and their bytes.
    pub fn add_records(&self, msgs: u64, bytes: u64) {
        self.msgs.fetch_add(msgs, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn add_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_latency(&self, latency: Duration) {
        lock(&self.latency_interval).saturating_record(duration_us(latency));
    }

    /// Adds a worker-local histogram (many samples per response, as in end-to-end mode).
    pub fn add_latencies(&self, local: &Histogram<u64>) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = lock(&self.latency_interval).add(local);
    }

    /// Counts one error under `kind`. Errors are reported, never dropped.
    pub fn add_error(&self, kind: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *lock(&self.error_kinds).entry(kind.to_string()).or_insert(0) += 1;
    }

    pub fn msgs(&self) -> u64 {
        self.msgs.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub fn error_kinds(&self) -> BTreeMap<String, u64> {
        lock(&self.error_kinds).clone()
    }

    /// Moves the latencies recorded since the last drain into `total` and returns them.
    fn drain_latencies(&self, total: &mut Histogram<u64>) -> Histogram<u64> {
        let mut interval = lock(&self.latency_interval);
        let drained = interval.clone();
        interval.reset();
        drop(interval);
        let _ = total.add(&drained);
        drained
    }
}

/// A poisoned lock only means another worker panicked, and with `panic = "abort"` that ends the
/// process anyway; the data inside stays valid counters, so keep using it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One role whose latencies the monitor follows, with the label it prints.
struct Tracked {
    label: &'static str,
    stats: Arc<Stats>,
    total: Histogram<u64>,
}

/// Prints progress once a second and accumulates the run-long histograms.
pub struct Monitor {
    throughput: Arc<Stats>,
    tracked: Vec<Tracked>,
    started: Instant,
    last_tick: Instant,
    msgs_last: u64,
    bytes_last: u64,
}

impl Monitor {
    /// `throughput` is the role whose msg/s and MB/s are printed; `latencies` are (label, role).
    pub fn new(throughput: Arc<Stats>, latencies: Vec<(&'static str, Arc<Stats>)>) -> Monitor {
        let now = Instant::now();
        Monitor {
            throughput,
            tracked: latencies
                .into_iter()
                .map(|(label, stats)| Tracked {
                    label,
                    stats,
                    total: new_histogram(),
                })
                .collect(),
            started: now,
            last_tick: now,
            msgs_last: 0,
            bytes_last: 0,
        }
    }

    /// Prints the progress line for the time since the last tick, e.g.
    /// `t=3s 512340 msg/s 51.2 MB/s p99=1.2ms errors=0`.
    pub fn tick(&mut self) {
        let now = Instant::now();
        let seconds = (now - self.last_tick).as_secs_f64().max(1e-9);
        let msgs = self.throughput.msgs();
        let bytes = self.throughput.bytes();
        let mut line = format!(
            "t={}s {:.0} msg/s {:.1} MB/s",
            (now - self.started).as_secs_f64().round(),
            (msgs - self.msgs_last) as f64 / seconds,
            (bytes - self.bytes_last) as f64 / seconds / 1e6,
        );
        let mut errors = 0;
        for (index, tracked) in self.tracked.iter_mut().enumerate() {
            let interval = tracked.stats.drain_latencies(&mut tracked.total);
            if !interval.is_empty() {
                let p99_ms = interval.value_at_quantile(0.99) as f64 / 1000.0;
                let prefix = if index == 0 {
                    String::new()
                } else {
                    format!("{}_", tracked.label)
                };
                let _ = write!(line, " {prefix}p99={p99_ms:.2}ms");
            }
            errors += tracked.stats.errors();
        }
        let _ = write!(line, " errors={errors}");
        eprintln!("{line}");
        self.last_tick = now;
        self.msgs_last = msgs;
        self.bytes_last = bytes;
    }

    /// Ticks once a second until every worker has finished; returns the seconds since the start.
    /// Workers bound their own running time (duration plus at most a response timeout to drain),
    /// so this loop ends when they do.
    pub fn watch(&mut self, workers: &[JoinHandle<()>]) -> f64 {
        let mut tick_next = self.started + PROGRESS_INTERVAL;
        while !workers.iter().all(JoinHandle::is_finished) {
            thread::sleep(WATCH_POLL);
            if Instant::now() >= tick_next {
                self.tick();
                tick_next += PROGRESS_INTERVAL;
            }
        }
        (Instant::now() - self.started).as_secs_f64()
    }

    /// Final drain; returns the run-long histograms by label.
    pub fn finish(mut self) -> Vec<(&'static str, Histogram<u64>)> {
        for tracked in &mut self.tracked {
            tracked.stats.drain_latencies(&mut tracked.total);
        }
        self.tracked
            .into_iter()
            .map(|tracked| (tracked.label, tracked.total))
            .collect()
    }
}

/// Waits for every worker; a worker that panicked has already aborted the process (the profiles
/// set panic = abort), so a join error can only come from a test build and is reported.
pub fn join(workers: Vec<JoinHandle<()>>) {
    for worker in workers {
        if worker.join().is_err() {
            eprintln!("a worker thread panicked");
        }
    }
}

/// User plus system CPU seconds this process has used (getrusage RUSAGE_SELF).
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass, which is sized for it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if status != 0 {
        return f64::NAN;
    }
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Everything the end of a run reports.
pub struct Summary {
    pub mode: &'static str,
    pub msgs: u64,
    pub bytes: u64,
    pub requests: u64,
    pub seconds: f64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    /// The histograms by label; the first is the run's headline latency (`latency_us`).
    pub latencies: Vec<(&'static str, Histogram<u64>)>,
    pub cpu_seconds: f64,
}

impl Summary {
    /// Human-readable lines, for the person at the terminal.
    pub fn human(&self) -> String {
        let mut text = String::new();
        let seconds = self.seconds.max(1e-9);
        let _ = writeln!(text, "mode:        {}", self.mode);
        let _ = writeln!(text, "duration:    {:.2} s", self.seconds);
        let _ = writeln!(
            text,
            "records:     {} ({} requests)",
            self.msgs, self.requests
        );
        let _ = writeln!(
            text,
            "throughput:  {:.0} msg/s, {:.2} MB/s (MB = 10^6 bytes)",
            self.msgs as f64 / seconds,
            self.bytes as f64 / seconds / 1e6
        );
        for (label, histogram) in &self.latencies {
            let _ = writeln!(text, "latency {label}: {}", latency_human(histogram));
        }
        let _ = writeln!(
            text,
            "tool cpu:    {:.2} s user+sys = {:.2} cores",
            self.cpu_seconds,
            self.cpu_seconds / seconds
        );
        let _ = writeln!(text, "errors:      {}", self.errors);
        for (kind, count) in &self.error_kinds {
            let _ = writeln!(text, "  {count} × {kind}");
        }
        text
    }

    /// One line of JSON for comparison runners.
    pub fn json(&self) -> String {
        let seconds = self.seconds.max(1e-9);
        let mut json = format!(
            "{{\"mode\":\"{}\",\"msgs\":{},\"bytes\":{},\"secs\":{:.3},\"msgs_per_sec\":{:.1},\
             \"mb_per_sec\":{:.3},\"requests\":{}",
            self.mode,
            self.msgs,
            self.bytes,
            self.seconds,
            self.msgs as f64 / seconds,
            self.bytes as f64 / seconds / 1e6,
            self.requests
        );
        for (index, (label, histogram)) in self.latencies.iter().enumerate() {
            let key = match index {
                0 => "latency_us".to_string(),
                _ => format!("{label}_latency_us"),
            };
            let _ = write!(json, ",\"{key}\":{}", latency_json(histogram));
        }
        let _ = write!(json, ",\"errors\":{},\"error_kinds\":{{", self.errors);
        for (index, (kind, count)) in self.error_kinds.iter().enumerate() {
            let separator = if index == 0 { "" } else { "," };
            let _ = write!(json, "{separator}\"{}\":{count}", json_escape(kind));
        }
        let _ = write!(
            json,
            "}},\"cpu_secs\":{:.3},\"cpu_cores\":{:.3}}}",
            self.cpu_seconds,
            self.cpu_seconds / seconds
        );
        json
    }
}

fn latency_human(histogram: &Histogram<u64>) -> String {
    if histogram.is_empty() {
        return "none measured".to_string();
    }
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    format!(
        "p50={:.3}ms p99={:.3}ms p99.9={:.3}ms max={:.3}ms ({} samples)",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0,
        histogram.len()
    )
}

fn latency_json(histogram: &Histogram<u64>) -> String {
    if histogram.is_empty() {
        return "null".to_string();
    }
    format!(
        "{{\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{},\"count\":{}}}",
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max(),
        histogram.len()
    )
}

fn json_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            control if (control as u32) < 0x20 => {
                let _ = write!(escaped, "\\u{:04x}", control as u32);
            }
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_json_has_the_fields_runners_parse() {
        let mut histogram = new_histogram();
        for value in 1..=1000 {
            histogram.saturating_record(value);
        }
        let summary = Summary {
            mode: "produce",
            msgs: 1000,
            bytes: 100_000,
            requests: 10,
            seconds: 2.0,
            errors: 1,
            error_kinds: BTreeMap::from([("say \"hi\"\n".to_string(), 1)]),
            latencies: vec![("ack", histogram), ("e2e", new_histogram())],
            cpu_seconds: 0.5,
        };
        let json = summary.json();
        assert!(json.starts_with("{\"mode\":\"produce\",\"msgs\":1000,\"bytes\":100000"));
        assert!(json.contains("\"msgs_per_sec\":500.0,\"mb_per_sec\":0.050"));
        assert!(json.contains("\"latency_us\":{\"p50\":500,\"p99\":990,\"p999\":999,\"max\":1000"));
        assert!(json.contains("\"e2e_latency_us\":null"));
        assert!(json.contains("\"error_kinds\":{\"say \\\"hi\\\"\\u000a\":1}"));
        assert!(json.ends_with("\"cpu_secs\":0.500,\"cpu_cores\":0.250}"));
        assert!(summary.human().contains("500 msg/s"));
    }

    #[test]
    fn latencies_are_clamped_into_the_histogram() {
        assert_eq!(duration_us(Duration::ZERO), 1);
        assert_eq!(duration_us(Duration::from_secs(10 * 3600)), LATENCY_US_MAX);
        assert_eq!(duration_us(Duration::from_micros(1500)), 1500);
    }

    #[test]
    fn cpu_time_is_measurable() {
        let seconds = cpu_seconds();
        assert!(seconds.is_finite() && seconds >= 0.0);
    }
}
