#!/usr/bin/env python3
"""The FluxMQ vs Apache Kafka comparison runner (Python 3.9+ standard library only).

Owns: starting each broker in turn on the same CPUs (taskset), driving both with the same clients and
workloads, measuring the broker from /proc (CPU seconds, resident memory), the loopback TCP limit, and
writing every number to results.json, then calling report.py for REPORT.md and the chart.
Never: building or downloading anything (scripts/compare does that first), tuning either broker, or
sending traffic anywhere but the bootstrap address it is given. It ends only the processes it started.

Run it through `scripts/compare`, which builds the Rust binaries and resolves the Kafka jars first:

    scripts/compare                                  # defaults for a 2-core machine, ~12 minutes
    scripts/compare --duration 3 --out /tmp/smoke    # a quick end-to-end check
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

# Bounds: every wait below ends by itself.
READY_TIMEOUT_SECS = 120  # Kafka on a loaded 2-core box can take 20-40 s to serve its first request.
STOP_TIMEOUT_SECS = 60  # Kafka flushes and closes every log on SIGTERM; then SIGKILL.
CLIENT_GRACE_SECS = 60  # A client may run this much past its duration before it is killed.
MEMORY_SAMPLE_SECS = 0.2
# A Java producer's default batch.size: the load generator packs its batches to the same size.
JAVA_BATCH_BYTES = 16384


def log(message):
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"[compare {stamp}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="scripts/compare",
        description="Run Apache Kafka 4.4.0 and FluxMQ in turn on the same cores with the same "
        "clients and workloads; write docs/perf/REPORT.md, chart.svg and results.json.",
    )
    cpus = sorted(os.sched_getaffinity(0))
    default_a = str(cpus[0])
    default_b = ",".join(str(cpu) for cpu in cpus[:2])
    parser.add_argument("--cores-a", default=default_a,
                        help="CPUs for the main runs and the small scaling point (default: %(default)s)")
    parser.add_argument("--cores-b", default=default_b,
                        help="CPUs for the large scaling point (default: %(default)s)")
    parser.add_argument("--client-cores", default=None,
                        help="CPUs for the clients (default: every CPU not in --cores-a, or all)")
    parser.add_argument("--listen", default="127.0.0.1", help="address the brokers bind")
    parser.add_argument("--bootstrap", default=None,
                        help="host:port the clients connect to and the brokers advertise "
                        "(default: LISTEN:PORT)")
    parser.add_argument("--port", type=int, default=9092, help="Kafka protocol port of both brokers")
    parser.add_argument("--controller-port", type=int, default=9093, help="Kafka's KRaft controller port")
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured workload")
    parser.add_argument("--warmup", type=int, default=10,
                        help="seconds of unmeasured produce on every fresh broker, for the JIT and caches")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of every test topic")
    parser.add_argument("--connections", type=int, default=2, help="load generator connections")
    parser.add_argument("--latency-rate", type=int, default=5000,
                        help="records/s of the fixed-rate latency workloads (default: %(default)s)")
    parser.add_argument("--latency-linger-ms", type=int, default=5,
                        help="batching of the fixed-rate workloads, as a Java producer's linger.ms "
                        "(default: %(default)s, the producer's default)")
    parser.add_argument("--brokers", default="kafka,fluxmq", help="which brokers, in run order")
    parser.add_argument("--out", default=str(ROOT / "docs" / "perf"),
                        help="where REPORT.md, chart.svg and results.json go")
    parser.add_argument("--work-dir", default=str(ROOT / "target" / "compare"),
                        help="data directories, logs and the resolved Kafka jars")
    parser.add_argument("--skip-java", action="store_true",
                        help="skip ProducerPerformance/ConsumerPerformance (load generator only)")
    parser.add_argument("--label", default="", help="a note printed at the top of the report")
    args = parser.parse_args(argv)
    args.cores_a = parse_cpu_list(args.cores_a)
    args.cores_b = parse_cpu_list(args.cores_b)
    if args.client_cores is None:
        rest = [cpu for cpu in cpus if cpu not in args.cores_a]
        args.client_cores = rest or cpus
    else:
        args.client_cores = parse_cpu_list(args.client_cores)
    if args.bootstrap is None:
        args.bootstrap = f"{args.listen}:{args.port}"
    host, _, port = args.bootstrap.rpartition(":")
    if not host or not port.isdigit():
        parser.error("--bootstrap must be host:port")
    args.advertised_host = host
    args.brokers = [name.strip() for name in args.brokers.split(",") if name.strip()]
    for name in args.brokers:
        if name not in ("kafka", "fluxmq"):
            parser.error(f"unknown broker {name!r}")
    if not 1 <= args.duration <= 3600:
        parser.error("--duration must be 1..3600")
    return args


def parse_cpu_list(text):
    """'0-3,6' -> [0, 1, 2, 3, 6]."""
    cpus = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, high = part.split("-", 1)
            cpus.extend(range(int(low), int(high) + 1))
        else:
            cpus.append(int(part))
    if not cpus:
        raise SystemExit(f"empty CPU list: {text!r}")
    return sorted(set(cpus))


def cpu_list_text(cpus):
    return ",".join(str(cpu) for cpu in cpus)


# --------------------------------------------------------------------------------------------------
# /proc


def process_cpu_seconds(pid):
    """User + system CPU seconds of every thread of `pid` so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    # Fields after the command name start at field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_memory(pid):
    """VmRSS, VmHWM, RssAnon, RssFile in bytes, from /proc/<pid>/status."""
    values = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def cpu_times(cpus):
    """(busy, total) clock ticks summed over `cpus`, from /proc/stat."""
    busy = total = 0
    wanted = {f"cpu{cpu}" for cpu in cpus}
    with open("/proc/stat") as handle:
        for line in handle:
            fields = line.split()
            if fields and fields[0] in wanted:
                values = [int(value) for value in fields[1:9]]
                idle = values[3] + values[4]  # idle + iowait
                total += sum(values)
                busy += sum(values) - idle
    return busy, total


def load_average():
    with open("/proc/loadavg") as handle:
        return [float(value) for value in handle.read().split()[:3]]


class MemorySampler:
    """Samples a process's memory every MEMORY_SAMPLE_SECS and keeps the peaks."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopped.wait(MEMORY_SAMPLE_SECS):
            self.sample()

    def sample(self):
        try:
            memory = process_memory(self.pid)
        except OSError:
            return
        for key, value in memory.items():
            self.peak[key] = max(self.peak.get(key, 0), value)

    def stop(self):
        self.sample()
        self.stopped.set()
        self.thread.join()
        return dict(self.peak)


# --------------------------------------------------------------------------------------------------
# A minimal Kafka client for the readiness probe: ApiVersions v0, then Metadata v1.


def kafka_request(sock, api_key, version, correlation_id, body):
    client_id = b"compare-probe"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    if not 0 < size < 16 * 1024 * 1024:
        raise OSError(f"bad response size {size}")
    response = recv_exact(sock, size)
    if struct.unpack(">i", response[:4])[0] != correlation_id:
        raise OSError("correlation id mismatch")
    return response[4:]


def recv_exact(sock, count):
    chunks = []
    while count > 0:
        chunk = sock.recv(count)
        if not chunk:
            raise OSError("connection closed")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def broker_ready(host, port):
    """True once the broker answers ApiVersions without error and Metadata lists a broker."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(2)
            versions = kafka_request(sock, 18, 0, 1, b"")
            if struct.unpack(">h", versions[:2])[0] != 0:
                return False
            # Metadata v1 with an empty topic list: brokers and controller only.
            metadata = kafka_request(sock, 3, 1, 2, struct.pack(">i", 0))
            return struct.unpack(">i", metadata[:4])[0] >= 1
    except (OSError, struct.error):
        return False


def kafka_string(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def topic_request(bootstrap, api_key, version, body, accepted_codes, what):
    """One CreateTopics or DeleteTopics request for one topic; both answers start with
    throttle_time_ms, a count, the topic name and its error code. Returns an error text or None."""
    host, port = bootstrap.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=65) as sock:
            sock.settimeout(65)
            response = kafka_request(sock, api_key, version, 3, body)
    except OSError as error:
        return f"{what} failed: {error}"
    name_length = struct.unpack(">h", response[8:10])[0]
    error_code = struct.unpack(">h", response[10 + name_length:12 + name_length])[0]
    if error_code not in accepted_codes:
        return f"{what} answered error {error_code}"
    return None


def create_topic(bootstrap, topic, partitions):
    """CreateTopics v4 (both brokers serve it); an existing topic (36) is fine."""
    body = (struct.pack(">i", 1) + kafka_string(topic) + struct.pack(">ihii", partitions, 1, 0, 0)
            + struct.pack(">i?", 30000, False))
    return topic_request(bootstrap, 19, 4, body, (0, 36), "CreateTopics")


def delete_topic(bootstrap, topic):
    """DeleteTopics v1 (both brokers serve it), so that a workload's data does not fill the disk once no
    later workload reads it."""
    body = struct.pack(">i", 1) + kafka_string(topic) + struct.pack(">i", 60000)
    return topic_request(bootstrap, 20, 1, body, (0,), "DeleteTopics")


# --------------------------------------------------------------------------------------------------
# Brokers


class Broker:
    """One broker process we started, pinned with taskset, with its memory sampler."""

    def __init__(self, kind, command, cpus, log_path, host, port, env=None):
        self.kind = kind
        self.cpus = cpus
        self.log_path = log_path
        self.log_file = open(log_path, "w")
        full = ["taskset", "-c", cpu_list_text(cpus)] + command
        log(f"start {kind} on CPUs {cpu_list_text(cpus)}: {' '.join(command[:3])} ...")
        started = time.monotonic()
        # taskset execs the broker, so this pid is the broker's own (the JVM for Kafka).
        self.process = subprocess.Popen(full, stdout=self.log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.pid = self.process.pid
        self.memory = MemorySampler(self.pid)
        deadline = started + READY_TIMEOUT_SECS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{kind} exited with {self.process.returncode} during start-up; "
                                   f"see {log_path}")
            if broker_ready(host, port):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{kind} did not answer within {READY_TIMEOUT_SECS} s; see {log_path}")
            time.sleep(0.005)
        self.startup_secs = time.monotonic() - started
        log(f"{kind} answered its first request after {self.startup_secs:.3f} s")

    def cpu_seconds(self):
        return process_cpu_seconds(self.pid)

    def stop(self):
        """SIGTERM, wait, SIGKILL if it does not stop; returns the memory peaks."""
        peaks = self.memory.stop()
        try:
            peaks.update({"VmHWM_final": process_memory(self.pid).get("VmHWM", 0)})
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECS)
            except subprocess.TimeoutExpired:
                log(f"{self.kind} ignored SIGTERM for {STOP_TIMEOUT_SECS} s; killing pid {self.pid}")
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        return peaks


def java_binary():
    return shutil.which("java") or "java"


def kafka_command(args, data_dir, port, controller_port):
    """Formats the KRaft log directory (not timed: a one-time step, like mkfs) and returns the
    command line of kafka-server-start.sh with its stock JVM settings."""
    server_lib = Path(args.work_dir) / "kafka-server"
    template = (ROOT / "compare" / "kraft-server.properties.template").read_text()
    properties = (template.replace("@LISTEN@", args.listen)
                  .replace("@ADVERTISED_HOST@", args.advertised_host)
                  .replace("@CONTROLLER_PORT@", str(controller_port))
                  .replace("@PORT@", str(port))
                  .replace("@LOG_DIRS@", str(data_dir / "logs")))
    config = data_dir / "server.properties"
    config.write_text(properties)
    classpath = f"{server_lib}/*"
    quiet = ["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]
    cluster_id = subprocess.run([java_binary(), *quiet, "-cp", classpath, "kafka.tools.StorageTool",
                                 "random-uuid"], check=True, capture_output=True, text=True,
                                timeout=120).stdout.strip()
    subprocess.run([java_binary(), *quiet, "-cp", classpath, "kafka.tools.StorageTool", "format",
                    "--standalone", "-t", cluster_id, "-c", str(config)], check=True,
                   capture_output=True, timeout=120)
    # kafka-server-start.sh: KAFKA_HEAP_OPTS="-Xmx1G -Xms1G"; kafka-run-class.sh:
    # KAFKA_JVM_PERFORMANCE_OPTS. Logging at INFO as the stock log4j2 config does.
    jvm = ["-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
           "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
           "-Djava.awt.headless=true", "-Dorg.slf4j.simpleLogger.defaultLogLevel=info"]
    return [java_binary(), *jvm, "-cp", classpath, "kafka.Kafka", str(config)]


def fluxmq_command(args, data_dir, port):
    # No --cores: FluxMQ runs one shard per CPU of its affinity mask, which taskset sets.
    return [str(ROOT / "target" / "release" / "fluxmq"), "--listen", args.listen, "--port", str(port),
            "--advertised-host", args.advertised_host, "--data-dir", str(data_dir),
            "--log-level", "warn"]


def start_broker(args, kind, cpus, run_dir, tag):
    data_dir = run_dir / f"{kind}-{tag}-data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    if kind == "kafka":
        command = kafka_command(args, data_dir, args.port, args.controller_port)
    else:
        command = fluxmq_command(args, data_dir, args.port)
    host, port = args.bootstrap.rsplit(":", 1)
    broker = Broker(kind, command, cpus, run_dir / f"{kind}-{tag}.log", host, int(port))
    broker.data_dir = data_dir
    return broker


def warm_up(args, broker, clients):
    """Unmeasured produce of both record sizes, so that Kafka's JIT has compiled the produce path (and
    both brokers have their buffers) before anything is measured."""
    if args.warmup <= 0:
        return
    for record_bytes in (100, 1000):
        clients.produce(broker, f"warmup-{record_bytes}b", record_bytes, 1,
                        duration=max(1, args.warmup // 2))
        drop_topic(args, broker, f"warmup-{record_bytes}b")


def drop_topic(args, broker, topic):
    """Deletes a topic no later workload reads: a fast broker writes tens of GB in one run."""
    problem = delete_topic(args.bootstrap, topic)
    if problem:
        log(f"{broker.kind} delete {topic}: {problem}")


def stop_broker(broker):
    peaks = broker.stop()
    shutil.rmtree(broker.data_dir, ignore_errors=True)
    return peaks


# --------------------------------------------------------------------------------------------------
# Clients


def run_client(command, cpus, timeout_secs, log_path):
    """Runs a client pinned to `cpus`; returns (exit code, stdout). Killed if it overruns."""
    full = ["taskset", "-c", cpu_list_text(cpus)] + command
    with open(log_path, "a") as stderr:
        stderr.write("$ " + " ".join(full) + "\n")
        stderr.flush()
        process = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=stderr,
                                   stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            stdout, _ = process.communicate(timeout=timeout_secs)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, _ = process.communicate()
            stderr.write(f"[compare] killed after {timeout_secs} s\n")
        stderr.write(stdout)
    return process.returncode, stdout


def run_client_for(command, cpus, run_secs, log_path):
    """Runs a client that has no duration flag for `run_secs`, then SIGTERMs it; returns stdout."""
    full = ["taskset", "-c", cpu_list_text(cpus)] + command
    with open(log_path, "a") as stderr:
        stderr.write("$ " + " ".join(full) + "\n")
        stderr.flush()
        process = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=stderr,
                                   stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            stdout, _ = process.communicate(timeout=run_secs)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            try:
                stdout, _ = process.communicate(timeout=CLIENT_GRACE_SECS)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, _ = process.communicate()
        stderr.write(stdout)
    return stdout


def last_json_line(stdout):
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def records_per_batch(record_bytes):
    """Records a Java producer fits in one default 16 KiB batch (about 8 bytes of framing each)."""
    return max(1, (JAVA_BATCH_BYTES - 61) // (record_bytes + 8))


def produce_request_bytes(args, record_bytes):
    """Bytes of one load-generator Produce request: a batch per partition of its connection."""
    per_connection = max(1, args.partitions // max(1, args.connections))
    batch = 61 + records_per_batch(record_bytes) * (record_bytes + 8)
    return per_connection * batch + 100


class Measured:
    """Broker CPU seconds and the wall-clock time around one client run."""

    def __init__(self, broker):
        self.broker = broker

    def __enter__(self):
        self.load_before = load_average()
        self.cpu_before = self.broker.cpu_seconds()
        self.cores_before = cpu_times(self.broker.cpus)
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.wall_secs = time.monotonic() - self.started
        self.broker_cpu_secs = self.broker.cpu_seconds() - self.cpu_before
        busy, total = cpu_times(self.broker.cpus)
        busy_before, total_before = self.cores_before
        # How busy the broker's CPUs were with anything (the broker, the kernel, other processes).
        self.cores_busy = (busy - busy_before) / max(total - total_before, 1)
        self.load_after = load_average()
        try:
            # What the broker holds once the workload is over (which workload leaves memory behind).
            self.memory_after = process_memory(self.broker.pid)
        except OSError:
            self.memory_after = {}
        return False

    def fields(self):
        return {"broker_cpu_secs": round(self.broker_cpu_secs, 3),
                "wall_secs": round(self.wall_secs, 3),
                "broker_cores_busy_fraction": round(self.cores_busy, 3),
                "broker_cores": self.broker.cpus,
                "loadavg_before": self.load_before, "loadavg_after": self.load_after,
                "broker_memory_after": self.memory_after}


class Clients:
    """The same client command lines for either broker."""

    def __init__(self, args, run_dir):
        self.args = args
        self.run_dir = run_dir
        self.bench = str(ROOT / "target" / "release" / "fluxmq-bench")
        self.tools = f"{Path(args.work_dir) / 'kafka-tools'}/*"

    def log_path(self, kind):
        return self.run_dir / f"{kind}-clients.log"

    def load_generator(self, broker, name, mode_args):
        args = self.args
        topic = mode_args[mode_args.index("--topic") + 1]
        problem = create_topic(args.bootstrap, topic, args.partitions)
        if problem:
            log(f"{broker.kind} {name}: {problem}")
        command = [self.bench, *mode_args, "--bootstrap", args.bootstrap,
                   "--partitions", str(args.partitions), "--connections", str(args.connections)]
        with Measured(broker) as measured:
            code, stdout = run_client(command, args.client_cores,
                                      args.duration + CLIENT_GRACE_SECS + 30, self.log_path(broker.kind))
        result = last_json_line(stdout) or {}
        result.update(measured.fields())
        result["exit_code"] = code
        result["command"] = " ".join(command)
        msgs = result.get("msgs", 0)
        if msgs:
            result["broker_cpu_secs_per_million_msgs"] = round(measured.broker_cpu_secs / msgs * 1e6, 4)
            result["msgs_per_broker_cpu_sec"] = round(msgs / max(measured.broker_cpu_secs, 1e-9), 1)
        log(f"{broker.kind} {name}: {result.get('msgs_per_sec', 0):,.0f} msg/s, "
            f"{result.get('mb_per_sec', 0):.1f} MB/s, broker CPU {measured.broker_cpu_secs:.2f} s, "
            f"errors {result.get('errors', '?')}")
        return result

    def produce(self, broker, topic, record_bytes, acks, rate=None, linger_ms=0, duration=None):
        mode = ["produce", "--topic", topic, "--create-topic", "--record-bytes", str(record_bytes),
                "--records-per-batch", str(records_per_batch(record_bytes)), "--acks", str(acks),
                "--duration-secs", str(duration or self.args.duration)]
        if rate:
            mode += ["--rate", str(rate), "--linger-ms", str(linger_ms)]
        return self.load_generator(broker, topic, mode)

    def consume(self, broker, topic):
        mode = ["consume", "--topic", topic, "--from-beginning", "--until-caught-up",
                "--duration-secs", str(self.args.duration * 4)]
        return self.load_generator(broker, f"consume {topic}", mode)

    def e2e(self, broker, topic, rate):
        # Batches as a producer with the same linger fills them at this rate (as the produce latency run).
        batch = max(1, rate * self.args.latency_linger_ms // 1000 // max(1, self.args.partitions))
        mode = ["e2e", "--topic", topic, "--create-topic", "--rate", str(rate), "--record-bytes", "100",
                "--records-per-batch", str(batch), "--duration-secs", str(self.args.duration)]
        return self.load_generator(broker, topic, mode)

    def java(self, main_class, arguments):
        return [java_binary(), "-Xmx512m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp", self.tools, main_class, *arguments]

    def producer_performance(self, broker, topic, record_bytes, acks, throughput=-1):
        """Kafka's ProducerPerformance with the Java producer's defaults (idempotence off: FluxMQ does
        not serve InitProducerId yet, and the same client must drive both brokers)."""
        problem = create_topic(self.args.bootstrap, topic, self.args.partitions)
        if problem:
            return {"error": problem}
        fixed_rate = throughput > 0
        # At a fixed rate, the first 3 s are the JVM's warm-up and are left out of the percentiles.
        warmup_records = throughput * 3 if fixed_rate else 0
        num_records = throughput * self.args.duration + warmup_records if fixed_rate else 10**10
        extra = ["--warmup-records", str(warmup_records)] if fixed_rate else []
        command = self.java("org.apache.kafka.tools.ProducerPerformance",
                            [*extra, "--topic", topic, "--num-records", str(num_records),
                             "--record-size", str(record_bytes), "--throughput", str(throughput),
                             "--reporting-interval", "1000", "--bootstrap-server", self.args.bootstrap,
                             "--command-property", f"acks={acks}", "enable.idempotence=false"])
        jvm_start_secs = 3
        # Flat out, the producer's JIT takes ~10 s on this class of machine to reach its steady rate
        # (40 K → 1 M records/s); those windows are run but left out of the throughput.
        jit_warmup_secs = 0 if fixed_rate else PRODUCER_JIT_WARMUP_SECS
        with Measured(broker) as measured:
            if fixed_rate:
                _, stdout = run_client(command, self.args.client_cores,
                                       self.args.duration + CLIENT_GRACE_SECS + 30, self.log_path(broker.kind))
            else:
                stdout = run_client_for(command, self.args.client_cores,
                                        self.args.duration + jvm_start_secs + jit_warmup_secs,
                                        self.log_path(broker.kind))
        result = parse_producer_performance(stdout, jit_warmup_secs)
        result.update(measured.fields())
        result["command"] = " ".join(command)
        log(f"{broker.kind} ProducerPerformance {topic}: {result.get('msgs_per_sec', 0):,.0f} msg/s "
            f"p99 {result.get('latency_ms', {}).get('p99', '-')} ms")
        return result

    def consumer_performance(self, broker, topic, records):
        command = self.java("org.apache.kafka.tools.ConsumerPerformance",
                            ["--bootstrap-server", self.args.bootstrap, "--topic", topic,
                             "--num-records", str(records), "--timeout", "10000", "--hide-header"])
        with Measured(broker) as measured:
            code, stdout = run_client(command, self.args.client_cores,
                                      self.args.duration * 4 + CLIENT_GRACE_SECS, self.log_path(broker.kind))
        result = parse_consumer_performance(stdout)
        result.update(measured.fields())
        result["exit_code"] = code
        result["command"] = " ".join(command)
        log(f"{broker.kind} ConsumerPerformance: {result.get('msgs_per_sec', 0):,.0f} msg/s "
            f"(exit {code}{', ' + result['error'] if 'error' in result else ''})")
        return result


WINDOW = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")
TOTAL = re.compile(r"^(\d+) (?:steady state )?records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                   r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


# Seconds of a flat-out ProducerPerformance run left out of its throughput: the JVM's JIT warm-up.
PRODUCER_JIT_WARMUP_SECS = 10


def parse_producer_performance(stdout, warmup_secs=0):
    """Throughput from the per-second windows after the first `warmup_secs` (JIT warm-up) and at
    least the first two (connection set-up); latency percentiles from the final line when the run
    ended by itself."""
    windows = []
    total = None
    for line in stdout.splitlines():
        line = line.strip()
        match = TOTAL.match(line)
        if match:
            # With --warmup-records the steady-state summary comes last and replaces the whole-run one.
            total = match
            continue
        match = WINDOW.match(line)
        if match:
            windows.append((int(match.group(1)), float(match.group(2)), float(match.group(3))))
    result = {"windows": len(windows), "warmup_secs": warmup_secs}
    elapsed = 0.0
    skipped = 0
    for count, rate, _ in windows:
        if skipped >= 2 and elapsed >= warmup_secs:
            break
        elapsed += count / rate if rate > 0 else 0
        skipped += 1
    steady = windows[skipped:] if len(windows) > skipped + 2 else windows[-3:]
    seconds = sum(count / rate for count, rate, _ in steady if rate > 0)
    if seconds > 0:
        result["msgs"] = sum(count for count, _, _ in steady)
        result["msgs_per_sec"] = round(result["msgs"] / seconds, 1)
        # ProducerPerformance's MB is 2^20 bytes; ours is 10^6.
        mib = sum(count / rate * mb for count, rate, mb in steady if rate > 0)
        result["mb_per_sec"] = round(mib / seconds * 1.048576, 3)
    if total:
        result["total_msgs_per_sec"] = float(total.group(2))
        result["latency_ms"] = {"avg": float(total.group(4)), "max": float(total.group(5)),
                                "p50": int(total.group(6)), "p95": int(total.group(7)),
                                "p99": int(total.group(8)), "p999": int(total.group(9))}
    if not windows and not total:
        result["error"] = "no output; see the clients log"
    return result


def parse_consumer_performance(stdout):
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    for line in reversed(stdout.strip().splitlines()):
        fields = [field.strip() for field in line.split(",")]
        if len(fields) >= 10:
            try:
                return {"msgs": int(float(fields[4])), "mb": float(fields[2]),
                        "msgs_per_sec": float(fields[9]), "mb_per_sec": round(float(fields[8]) * 1.048576, 3),
                        "rebalance_ms": float(fields[6]), "fetch_ms": float(fields[7])}
            except ValueError:
                continue
    return {"error": "no result line; see the clients log"}


# --------------------------------------------------------------------------------------------------
# Workloads


def main_runs(args, kind, run_dir, clients):
    """Everything measured on one broker instance pinned to --cores-a."""
    broker = start_broker(args, kind, args.cores_a, run_dir, "main")
    results = {"startup_secs": round(broker.startup_secs, 4), "cores": args.cores_a}
    try:
        warm_up(args, broker, clients)
        produce = {}
        for record_bytes in (100, 1000):
            for acks in ("1", "all"):
                name = f"lg-{record_bytes}b-acks{acks}"
                produce[name] = clients.produce(broker, name, record_bytes, -1 if acks == "all" else 1)
                if acks == "all":
                    drop_topic(args, broker, name)
        results["loadgen_produce"] = produce
        results["loadgen_consume"] = {}
        for record_bytes in (100, 1000):
            topic = f"lg-{record_bytes}b-acks1"
            results["loadgen_consume"][f"{record_bytes}b"] = clients.consume(broker, topic)
            if record_bytes == 100 or args.skip_java:
                drop_topic(args, broker, topic)
        results["latency"] = {
            "floor": latency_floor(args, run_dir),
            "produce": clients.produce(broker, "lat-produce", 100, 1, rate=args.latency_rate,
                                       linger_ms=args.latency_linger_ms),
            "e2e": clients.e2e(broker, "lat-e2e", args.latency_rate),
        }
        drop_topic(args, broker, "lat-produce")
        drop_topic(args, broker, "lat-e2e")
        if not args.skip_java:
            java = {}
            for record_bytes in (100, 1000):
                for acks in ("1", "all"):
                    name = f"pp-{record_bytes}b-acks{acks}"
                    java[name] = clients.producer_performance(broker, name, record_bytes, acks)
                    drop_topic(args, broker, name)
            results["producer_performance"] = java
            results["latency"]["producer_performance"] = clients.producer_performance(
                broker, "pp-latency", 100, "1", throughput=args.latency_rate)
            consumed = produce["lg-1000b-acks1"].get("msgs", 0)
            results["consumer_performance"] = clients.consumer_performance(broker, "lg-1000b-acks1",
                                                                           consumed)
            drop_topic(args, broker, "lg-1000b-acks1")
    finally:
        results["memory_peak_bytes"] = stop_broker(broker)
    return results


def scaling_runs(args, kind, run_dir, clients):
    """Flat-out 100-byte produce on --cores-a and on --cores-b: messages per broker CPU-second."""
    points = {}
    for tag, cpus in (("a", args.cores_a), ("b", args.cores_b)):
        broker = start_broker(args, kind, cpus, run_dir, f"scale-{tag}")
        try:
            warm_up(args, broker, clients)
            result = clients.produce(broker, "scale", 100, 1)
            result["cores"] = cpus
            points[tag] = result
        finally:
            stop_broker(broker)
    return points


def loopback_runs(args, run_dir):
    """The kernel's loopback TCP limit at the load generator's request sizes: sink on --cores-a (where
    the broker reads), source on --client-cores (where the clients write)."""
    probe = str(ROOT / "target" / "release" / "fluxmq-tcp-probe")
    address = f"{args.listen}:{args.port}"
    results = {}
    for record_bytes in (100, 1000):
        write_bytes = produce_request_bytes(args, record_bytes)
        server = ["sink", "--listen", address, "--connections", str(args.connections)]
        client = ["source", "--connect", address, "--connections", str(args.connections),
                  "--write-bytes", str(write_bytes), "--duration-secs", str(min(args.duration, 10))]
        source, sink = probe_pair(args, run_dir, probe, server, client)
        results[f"{record_bytes}b"] = {"write_bytes": write_bytes, "source": source, "sink": sink}
        log(f"loopback at {write_bytes}-byte writes: {source.get('mb_per_sec', 0):,.0f} MB/s")
    return results


def latency_floor(args, run_dir):
    """A bare request/reply over loopback TCP at the fixed-rate produce run's request rate and size,
    echo on --cores-a and pings from --client-cores: the machine's own latency. Taken right before each
    broker's latency runs (on another port, while that broker idles), since the floor moves with the
    host's load."""
    probe = str(ROOT / "target" / "release" / "fluxmq-tcp-probe")
    address = f"{args.listen}:{free_port(args.listen)}"
    request_bytes, requests_per_sec = latency_request_shape(args)
    server = ["echo", "--listen", address, "--connections", str(args.connections),
              "--reply-bytes", str(PRODUCE_REPLY_BYTES)]
    client = ["ping", "--connect", address, "--connections", str(args.connections),
              "--request-bytes", str(request_bytes), "--rate", f"{requests_per_sec:.1f}",
              "--duration-secs", str(args.duration)]
    ping, _ = probe_pair(args, run_dir, probe, server, client)
    log(f"loopback request/reply at {requests_per_sec:.0f}/s: p99 "
        f"{(ping.get('latency_us') or {}).get('p99')} µs")
    return ping


def free_port(host):
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


# A Produce response for the partitions of one load-generator connection, as the echo's reply size.
PRODUCE_REPLY_BYTES = 100


def latency_request_shape(args):
    """(bytes, requests per second) of the load generator's requests in the fixed-rate produce run:
    batches of what a producer with the configured linger fills, one per partition of a connection."""
    per_partition_rate = args.latency_rate / max(1, args.partitions)
    records = int(per_partition_rate * args.latency_linger_ms / 1000)
    records = max(1, min(records_per_batch(100), records))
    per_connection = max(1, args.partitions // max(1, args.connections))
    request_bytes = per_connection * (61 + records * (100 + 8)) + 100
    return request_bytes, args.latency_rate / (records * per_connection)


def probe_pair(args, run_dir, probe, server, client):
    """Runs the probe's server side on --cores-a and its client side on --client-cores; returns
    their JSON lines."""
    serving = subprocess.Popen(["taskset", "-c", cpu_list_text(args.cores_a), probe, *server,
                                "--timeout-secs", str(args.duration + 120)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    time.sleep(0.3)
    _, stdout = run_client([probe, *client], args.client_cores, args.duration + 60,
                           run_dir / "loopback.log")
    try:
        server_stdout, _ = serving.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        serving.kill()
        server_stdout, _ = serving.communicate()
    return last_json_line(stdout) or {}, last_json_line(server_stdout) or {}


# --------------------------------------------------------------------------------------------------
# Machine and install facts


def machine_facts(args):
    model = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        memory_kib = int(handle.readline().split()[1])
    java_version = subprocess.run([java_binary(), "-version"], capture_output=True, text=True).stderr
    return {
        "cpu_model": model,
        "online_cpus": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "java": java_version.splitlines()[0] if java_version else "",
        "hostname": socket.gethostname(),
        "cores_a": args.cores_a, "cores_b": args.cores_b, "client_cores": args.client_cores,
    }


def directory_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def install_sizes(args):
    binary = ROOT / "target" / "release" / "fluxmq"
    stripped = Path(args.work_dir) / "fluxmq-stripped"
    stripped_bytes = None
    if shutil.which("strip"):
        subprocess.run(["strip", "-o", str(stripped), str(binary)], check=False)
        if stripped.exists():
            stripped_bytes = stripped.stat().st_size
    java_home = Path(os.path.realpath(java_binary())).parent.parent
    return {
        "fluxmq_binary_bytes": binary.stat().st_size,
        "fluxmq_stripped_bytes": stripped_bytes,
        "kafka_jars_bytes": directory_bytes(Path(args.work_dir) / "kafka-server"),
        "jre_bytes": directory_bytes(java_home),
        "jre_path": str(java_home),
    }


# --------------------------------------------------------------------------------------------------


def check_port_free(host, port):
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex((host, port)) == 0:
            raise SystemExit(f"something already listens on {host}:{port}; stop it or pass --port")


def main(argv):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.work_dir) / f"run-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    host, port = args.bootstrap.rsplit(":", 1)
    check_port_free(host, int(port))
    log(f"run directory {run_dir}; broker CPUs {cpu_list_text(args.cores_a)} / "
        f"{cpu_list_text(args.cores_b)}, clients on {cpu_list_text(args.client_cores)}, "
        f"load average {load_average()}")
    results = {
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "label": args.label,
        "command": "scripts/compare " + " ".join(argv),
        "settings": {"duration_secs": args.duration, "warmup_secs": args.warmup, "partitions": args.partitions,
                     "connections": args.connections, "latency_rate": args.latency_rate,
                     "latency_linger_ms": args.latency_linger_ms,
                     "producer_jit_warmup_secs": PRODUCER_JIT_WARMUP_SECS,
                     "bootstrap": args.bootstrap,
                     "records_per_batch": {"100": records_per_batch(100), "1000": records_per_batch(1000)}},
        "machine": machine_facts(args),
        "loadavg_start": load_average(),
        "install": install_sizes(args),
        "loopback": loopback_runs(args, run_dir),
        "brokers": {},
    }
    clients = Clients(args, run_dir)
    for kind in args.brokers:
        log(f"=== {kind}")
        broker_results = main_runs(args, kind, run_dir, clients)
        broker_results["scaling"] = scaling_runs(args, kind, run_dir, clients)
        results["brokers"][kind] = broker_results
        (run_dir / "results.json").write_text(json.dumps(results, indent=1))
    results["loadavg_end"] = load_average()
    results["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    (run_dir / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    subprocess.run([sys.executable, str(ROOT / "compare" / "report.py"), str(out / "results.json"),
                    "--out", str(out)], check=True)
    log(f"wrote {out / 'REPORT.md'}")


if __name__ == "__main__":
    main(sys.argv[1:])
