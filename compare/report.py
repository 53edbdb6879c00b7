#!/usr/bin/env python3
"""Turns a comparison run's results.json into REPORT.md and chart.svg (Python 3.9+ standard library).

Owns: the arithmetic of ratios (always FluxMQ / Kafka from the same run), the targets of issue 3, the
heuristics that say what bounded a missed target, and the hand-drawn SVG chart.
Never: running anything. `python3 compare/report.py docs/perf/results.json --out docs/perf` re-renders.
"""

import argparse
import json
import math
from pathlib import Path

# A 1-minute load average above this at any measured point marks the report as taken on a loaded machine.
QUIET_LOAD_MAX = 0.7
# Framing bytes per record (length, attributes, deltas, key and value lengths, headers count) and per
# batch (the 61-byte header), to turn record payload into bytes on the wire.
RECORD_FRAMING_BYTES = 8
BATCH_HEADER_BYTES = 61


def fmt_count(value):
    if value is None:
        return "–"
    return f"{value:,.0f}"


def fmt_float(value, digits=2):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def fmt_bytes(value):
    if value is None:
        return "–"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value} B"


def fmt_ratio(value):
    if value is None:
        return "–"
    if value >= 10:
        return f"{value:,.1f}×"
    if value >= 0.1:
        return f"{value:.2f}×"
    return f"{value:.3f}×"


def ratio(fluxmq, kafka):
    if fluxmq is None or kafka is None or not kafka:
        return None
    return fluxmq / kafka


def get(data, *path):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


class Report:
    def __init__(self, results):
        self.results = results
        self.kafka = results["brokers"].get("kafka", {})
        self.fluxmq = results["brokers"].get("fluxmq", {})
        self.lines = []
        self.chart_rows = []  # (label, ratio, higher_is_better, target)
        self.targets = []  # (name, ratio, target, higher_is_better, bound)

    def add(self, text=""):
        self.lines.append(text)

    def table(self, header, rows):
        self.add("| " + " | ".join(header) + " |")
        self.add("|" + "|".join(" --- " for _ in header) + "|")
        for row in rows:
            self.add("| " + " | ".join(str(cell) for cell in row) + " |")
        self.add()

    # ----------------------------------------------------------------------------------------------

    def loaded(self):
        loads = [self.results.get("loadavg_start", [0])[0], self.results.get("loadavg_end", [0])[0]]
        for broker in self.results["brokers"].values():
            for run in walk_runs(broker):
                loads.extend(value[0] for value in (run.get("loadavg_before"), run.get("loadavg_after"))
                             if value)
        return max(loads) if loads else 0.0

    def bound(self, kind, run, record_bytes=None):
        """What most likely limited one run: the broker's CPU, other processes on its CPUs, the
        client's CPU, the loopback limit, or (none of these) the request round trips."""
        if not run:
            return "no data"
        machine = self.results["machine"]
        broker_cores = len(run.get("broker_cores") or run.get("cores") or machine["cores_a"])
        reasons = []
        wall = run.get("wall_secs") or run.get("secs") or 0
        busy_fraction = run.get("broker_cores_busy_fraction")
        if wall:
            broker_share = run.get("broker_cpu_secs", 0) / wall / broker_cores
            if broker_share >= 0.85:
                reasons.append(f"broker CPU-bound ({broker_share:.0%} of its {broker_cores} CPU(s))")
            elif busy_fraction is not None and busy_fraction >= 0.9:
                reasons.append(f"its CPU(s) were {busy_fraction:.0%} busy but the broker got "
                               f"{broker_share:.0%}: other processes took the rest")
            else:
                reasons.append(f"broker used {broker_share:.0%} of its {broker_cores} CPU(s)"
                               + (f" ({busy_fraction:.0%} busy overall)" if busy_fraction is not None else ""))
        client_cores = run.get("cpu_cores")
        if client_cores is not None and client_cores >= 0.85 * len(machine["client_cores"]):
            reasons.append(f"client CPU-bound ({client_cores:.2f} cores)")
        if record_bytes:
            limit = get(self.results, "loopback", f"{record_bytes}b", "source", "mb_per_sec")
            wire = wire_mb_per_sec(run, record_bytes, self.results)
            if limit and wire and wire >= 0.7 * limit:
                reasons.append(f"near the loopback TCP limit ({wire / limit:.0%})")
        if len(reasons) == 1 and reasons[0].startswith("broker used"):
            reasons.append("no CPU saturated: request round trips (in-flight window) bound it")
        return "; ".join(reasons)

    # ----------------------------------------------------------------------------------------------

    def header(self):
        results = self.results
        machine = results["machine"]
        settings = results["settings"]
        self.add("# FluxMQ vs Apache Kafka 4.4.0")
        self.add()
        load = self.loaded()
        if load > QUIET_LOAD_MAX:
            self.add(f"> **Taken on a loaded machine** (1-minute load average up to {load:.2f} during the "
                     f"run; other work shared the CPUs). Ratios from one run are still like for like, "
                     f"but absolute numbers and tail latencies are noisy. Regenerate on a quiet machine.")
            self.add()
        if results.get("label"):
            self.add(f"> {results['label']}")
            self.add()
        self.add(f"Run {results['started']} → {results.get('finished', '(unfinished)')}, "
                 f"`{results['command']}`.")
        self.add()
        self.add(f"- Machine: {machine['cpu_model']}, {machine['online_cpus']} CPUs, "
                 f"{machine['memory_gib']} GiB, Linux {machine['kernel']}, {machine['java']}.")
        self.add(f"- Brokers on CPUs {cpus(machine['cores_a'])} (scaling: {cpus(machine['cores_a'])} vs "
                 f"{cpus(machine['cores_b'])}), clients on CPUs {cpus(machine['client_cores'])}, "
                 f"each broker in turn, pinned with `taskset`.")
        self.add(f"- Kafka: single-node KRaft from Maven Central jars, stock `server.properties`, "
                 f"`-Xmx1G -Xms1G` and the stock G1 flags of `kafka-server-start.sh`. "
                 f"FluxMQ: release build, default flags.")
        self.add(f"- Workloads: {settings['duration_secs']} s each, topics of {settings['partitions']} "
                 f"partitions, load generator with {settings['connections']} connections, "
                 f"{settings['records_per_batch']['100']} × 100 B or {settings['records_per_batch']['1000']} "
                 f"× 1000 B records per batch (a Java producer's 16 KiB batch), up to 5 requests in flight. "
                 f"Kafka's ProducerPerformance with the producer's defaults (idempotence off), flat out "
                 f"for {settings['duration_secs']} s after its first {settings.get('producer_jit_warmup_secs', 2)} s "
                 f"(the client JVM's JIT warm-up), whose windows are left out. "
                 f"Latency at a fixed {settings['latency_rate']:,} records/s.")
        self.add(f"- Every ratio is FluxMQ / Kafka from this run. MB = 10^6 bytes.")
        self.add()

    def targets_section(self):
        self.add("## Targets (issue 3)")
        self.add()
        rows = []
        for name, value, target, higher, bound in self.targets:
            if value is None:
                verdict = "no data"
            elif (value >= target) if higher else (value <= target):
                verdict = "**met**"
            else:
                verdict = "missed"
            comparison = "≥" if higher else "≤"
            # The bound matters where a target is missed; where it is met it only adds noise.
            shown = bound if verdict == "missed" else ""
            rows.append([name, fmt_ratio(value), f"{comparison} {target}×", verdict, shown or ""])
        self.table(["target", "ratio", "goal", "", "what bounds it"], rows)

    def produce_section(self):
        self.add("## Produce throughput")
        self.add()
        rows = []
        loopback = self.results.get("loopback", {})
        for record_bytes in (100, 1000):
            for acks in ("1", "all"):
                name = f"lg-{record_bytes}b-acks{acks}"
                kafka = get(self.kafka, "loadgen_produce", name)
                fluxmq = get(self.fluxmq, "loadgen_produce", name)
                value = ratio(get(fluxmq, "msgs_per_sec"), get(kafka, "msgs_per_sec"))
                limit = get(loopback, f"{record_bytes}b", "source", "mb_per_sec")
                rows.append([f"load generator, {record_bytes} B, acks={acks}",
                             fmt_count(get(kafka, "msgs_per_sec")), fmt_float(get(kafka, "mb_per_sec"), 1),
                             fmt_count(get(fluxmq, "msgs_per_sec")), fmt_float(get(fluxmq, "mb_per_sec"), 1),
                             fmt_ratio(value),
                             percent(wire_mb_per_sec(kafka, record_bytes, self.results), limit),
                             percent(wire_mb_per_sec(fluxmq, record_bytes, self.results), limit)])
                self.chart_rows.append((f"produce {record_bytes} B acks={acks} (load generator)", value,
                                        True, 3 if record_bytes == 100 else 2))
        for record_bytes in (100, 1000):
            for acks in ("1", "all"):
                name = f"pp-{record_bytes}b-acks{acks}"
                kafka = get(self.kafka, "producer_performance", name)
                fluxmq = get(self.fluxmq, "producer_performance", name)
                if kafka is None and fluxmq is None:
                    continue
                value = ratio(get(fluxmq, "msgs_per_sec"), get(kafka, "msgs_per_sec"))
                rows.append([f"ProducerPerformance, {record_bytes} B, acks={acks}",
                             fmt_count(get(kafka, "msgs_per_sec")), fmt_float(get(kafka, "mb_per_sec"), 1),
                             fmt_count(get(fluxmq, "msgs_per_sec")), fmt_float(get(fluxmq, "mb_per_sec"), 1),
                             fmt_ratio(value), "", ""])
                self.chart_rows.append((f"produce {record_bytes} B acks={acks} (ProducerPerformance)",
                                        value, True, None))
        self.table(["workload", "Kafka msg/s", "Kafka MB/s", "FluxMQ msg/s", "FluxMQ MB/s", "ratio",
                    "Kafka % of loopback", "FluxMQ % of loopback"], rows)
        self.add("MB/s counts record values. \"% of loopback\" compares bytes on the wire (values plus "
                 "record and batch framing) with `fluxmq-tcp-probe` streaming the same request size over "
                 "loopback TCP between the same CPUs, with no protocol, storage or acknowledgements.")
        self.add()
        self.add("Bounds of each load-generator run (broker CPU seconds ÷ wall time, the load "
                 "generator's own CPU, the loopback limit):")
        self.add()
        for record_bytes in (100, 1000):
            name = f"lg-{record_bytes}b-acks1"
            for kind, data in (("Kafka", self.kafka), ("FluxMQ", self.fluxmq)):
                run = get(data, "loadgen_produce", name)
                if run:
                    self.add(f"- {kind}, {record_bytes} B: {self.bound(kind.lower(), run, record_bytes)}; "
                             f"load generator used {fmt_float(run.get('cpu_cores'))} cores.")
        self.add()
        for record_bytes, target in ((100, 3), (1000, 2)):
            name = f"lg-{record_bytes}b-acks1"
            kafka = get(self.kafka, "loadgen_produce", name)
            fluxmq = get(self.fluxmq, "loadgen_produce", name)
            self.targets.append((f"produce throughput, {record_bytes} B (load generator, acks=1)",
                                 ratio(get(fluxmq, "msgs_per_sec"), get(kafka, "msgs_per_sec")), target, True,
                                 self.bound("fluxmq", fluxmq, record_bytes)))

    def consume_section(self):
        self.add("## Consume throughput")
        self.add()
        rows = []
        for record_bytes in (100, 1000):
            kafka = get(self.kafka, "loadgen_consume", f"{record_bytes}b")
            fluxmq = get(self.fluxmq, "loadgen_consume", f"{record_bytes}b")
            value = ratio(get(fluxmq, "msgs_per_sec"), get(kafka, "msgs_per_sec"))
            rows.append([f"load generator, {record_bytes} B, from the beginning",
                         fmt_count(get(kafka, "msgs_per_sec")), fmt_float(get(kafka, "mb_per_sec"), 1),
                         fmt_count(get(fluxmq, "msgs_per_sec")), fmt_float(get(fluxmq, "mb_per_sec"), 1),
                         fmt_ratio(value)])
            self.chart_rows.append((f"consume {record_bytes} B (load generator)", value, True, None))
        kafka = get(self.kafka, "consumer_performance")
        fluxmq = get(self.fluxmq, "consumer_performance")
        if kafka or fluxmq:
            value = ratio(get(fluxmq, "msgs_per_sec"), get(kafka, "msgs_per_sec"))
            rows.append(["ConsumerPerformance, 1000 B",
                         fmt_count(get(kafka, "msgs_per_sec")) if kafka and "error" not in kafka else "n/a",
                         fmt_float(get(kafka, "mb_per_sec"), 1),
                         fmt_count(get(fluxmq, "msgs_per_sec")) if fluxmq and "error" not in fluxmq else "n/a",
                         fmt_float(get(fluxmq, "mb_per_sec"), 1), fmt_ratio(value)])
            for kind, run in (("Kafka", kafka), ("FluxMQ", fluxmq)):
                if run and "error" in run:
                    self.add(f"ConsumerPerformance (it subscribes with a consumer group) failed against {kind}: "
                             f"{run['error']}.")
                    self.add()
            if value is not None:
                self.chart_rows.append(("consume 1000 B (ConsumerPerformance)", value, True, None))
        self.table(["workload", "Kafka msg/s", "Kafka MB/s", "FluxMQ msg/s", "FluxMQ MB/s", "ratio"], rows)
        self.add("MB/s counts record batch bytes as stored.")
        self.add()

    def latency_section(self):
        rate = self.results["settings"]["latency_rate"]
        self.add(f"## Latency at a fixed {rate:,} records/s")
        self.add()
        rows = []
        linger = self.results["settings"].get("latency_linger_ms", 1)
        for label, key, field, unit in ((f"produce (load generator, 100 B, linger {linger} ms)", "produce",
                                         "latency_us", "µs"),
                                        ("end to end (load generator, 100 B)", "e2e", "latency_us", "µs"),
                                        ("produce (ProducerPerformance, 100 B)", "producer_performance",
                                         "latency_ms", "ms")):
            kafka = get(self.kafka, "latency", key, field)
            fluxmq = get(self.fluxmq, "latency", key, field)
            if kafka is None and fluxmq is None:
                continue
            cells = [label]
            for percentile in ("p50", "p99", "p999"):
                cells.append(f"{fmt_count(get(kafka, percentile))} / {fmt_count(get(fluxmq, percentile))} {unit}")
                if key != "producer_performance":
                    value = ratio(get(fluxmq, percentile), get(kafka, percentile))
                    cells.append(fmt_ratio(value))
                    if percentile == "p99":
                        self.chart_rows.append((f"{key} latency p99", value, False,
                                                0.25 if key == "produce" else None))
                else:
                    cells.append(fmt_ratio(ratio(get(fluxmq, percentile), get(kafka, percentile))))
            rows.append(cells)
        kafka_floor = get(self.kafka, "latency", "floor", "latency_us")
        fluxmq_floor = get(self.fluxmq, "latency", "floor", "latency_us")
        if kafka_floor or fluxmq_floor:
            rows.append(["bare request/reply over loopback TCP, no broker (the machine's floor, taken "
                         "before each broker's latency runs)",
                         *[cell for percentile in ("p50", "p99", "p999")
                           for cell in (f"{fmt_count(get(kafka_floor, percentile))} / "
                                        f"{fmt_count(get(fluxmq_floor, percentile))} µs", "")]])
        self.table(["workload", "p50 Kafka / FluxMQ", "ratio", "p99 Kafka / FluxMQ", "ratio",
                    "p99.9 Kafka / FluxMQ", "ratio"], rows)
        self.add("The load generator measures from each request's due time (open loop, no coordinated "
                 "omission), so a stall anywhere (broker, client, or another process holding their CPU) "
                 "shows in every request it delayed; its batches are what a producer with that linger "
                 "fills at this rate. ProducerPerformance (linger 5 ms, its default) reports whole "
                 "milliseconds and leaves out its first 3 s. The floor is `fluxmq-tcp-probe ping` against "
                 "its echo server on the same CPUs, at the produce run's request rate and size, measured "
                 "the same way: what the machine adds to every request (waking idle CPUs, scheduling, "
                 "loopback TCP) before any broker does anything.")
        self.add()
        kafka = get(self.kafka, "latency", "produce", "latency_us", "p99")
        fluxmq = get(self.fluxmq, "latency", "produce", "latency_us", "p99")
        run = get(self.fluxmq, "latency", "produce")
        bound = self.bound("fluxmq", run) if run else ""
        floor_p99 = get(self.fluxmq, "latency", "floor", "latency_us", "p99")
        if floor_p99 and fluxmq:
            bound = (f"a bare loopback request/reply at this rate had p99 {fmt_count(floor_p99)} µs just "
                     f"before: FluxMQ's {fmt_count(fluxmq)} µs is {fluxmq / floor_p99:.2f}× the machine's "
                     f"floor; " + bound)
        self.targets.append(("p99 produce latency at a fixed rate", ratio(fluxmq, kafka), 0.25, False, bound))

    def resources_section(self):
        self.add("## Broker resources")
        self.add()
        rows = []
        for label, path in (("produce 100 B acks=1", ("loadgen_produce", "lg-100b-acks1")),
                            ("produce 1000 B acks=1", ("loadgen_produce", "lg-1000b-acks1")),
                            ("consume 100 B", ("loadgen_consume", "100b")),
                            ("consume 1000 B", ("loadgen_consume", "1000b"))):
            kafka = get(self.kafka, *path, "broker_cpu_secs_per_million_msgs")
            fluxmq = get(self.fluxmq, *path, "broker_cpu_secs_per_million_msgs")
            value = ratio(fluxmq, kafka)
            rows.append([f"CPU-seconds per million messages, {label}", fmt_float(kafka, 3),
                         fmt_float(fluxmq, 3), fmt_ratio(value)])
            if label.startswith("produce"):
                self.chart_rows.append((f"CPU per message, {label}", value, False, 0.2))
        cpu_ratio = ratio(get(self.fluxmq, "loadgen_produce", "lg-100b-acks1", "broker_cpu_secs_per_million_msgs"),
                          get(self.kafka, "loadgen_produce", "lg-100b-acks1", "broker_cpu_secs_per_million_msgs"))
        self.targets.append(("broker CPU per message (100 B produce)", cpu_ratio, 0.2, False, ""))
        kafka_memory = get(self.kafka, "memory_peak_bytes") or {}
        fluxmq_memory = get(self.fluxmq, "memory_peak_bytes") or {}
        kafka_peak = kafka_memory.get("VmHWM_final") or kafka_memory.get("VmHWM")
        fluxmq_peak = fluxmq_memory.get("VmHWM_final") or fluxmq_memory.get("VmHWM")
        rss_ratio = ratio(fluxmq_peak, kafka_peak)
        rows.append(["peak RSS (VmHWM)", fmt_bytes(kafka_peak), fmt_bytes(fluxmq_peak), fmt_ratio(rss_ratio)])
        anon_ratio = ratio(fluxmq_memory.get("RssAnon"), kafka_memory.get("RssAnon"))
        rows.append(["peak anonymous RSS (sampled every 0.2 s)", fmt_bytes(kafka_memory.get("RssAnon")),
                     fmt_bytes(fluxmq_memory.get("RssAnon")), fmt_ratio(anon_ratio)])
        rows.append(["peak file-backed RSS (sampled)", fmt_bytes(kafka_memory.get("RssFile")),
                     fmt_bytes(fluxmq_memory.get("RssFile")),
                     fmt_ratio(ratio(fluxmq_memory.get("RssFile"), kafka_memory.get("RssFile")))])
        self.chart_rows.append(("peak RSS (VmHWM)", rss_ratio, False, 0.05))
        self.chart_rows.append(("peak anonymous RSS", anon_ratio, False, None))
        rss_bound = ""
        if fluxmq_memory.get("RssFile") and fluxmq_peak and fluxmq_memory["RssFile"] > 0.5 * fluxmq_peak:
            rss_bound = (f"FluxMQ's RSS is mostly mapped segment pages ({fmt_bytes(fluxmq_memory['RssFile'])} "
                         f"file-backed); anonymous memory ratio is {fmt_ratio(anon_ratio)}")
        self.targets.append(("peak RSS", rss_ratio, 0.05, False, rss_bound))
        kafka_start = get(self.kafka, "startup_secs")
        fluxmq_start = get(self.fluxmq, "startup_secs")
        start_ratio = ratio(fluxmq_start, kafka_start)
        rows.append(["start to first successful request (ApiVersions + Metadata)",
                     f"{fmt_float(kafka_start, 3)} s", f"{fmt_float(fluxmq_start, 3)} s", fmt_ratio(start_ratio)])
        self.chart_rows.append(("start-up time", start_ratio, False, 0.05))
        self.targets.append(("start-up time", start_ratio, 0.05, False, ""))
        install = self.results.get("install", {})
        kafka_install = (install.get("kafka_jars_bytes") or 0) + (install.get("jre_bytes") or 0)
        fluxmq_install = install.get("fluxmq_stripped_bytes") or install.get("fluxmq_binary_bytes")
        rows.append(["install size (Kafka: server jars + JRE; FluxMQ: stripped binary)",
                     f"{fmt_bytes(install.get('kafka_jars_bytes'))} + {fmt_bytes(install.get('jre_bytes'))}",
                     fmt_bytes(fluxmq_install), fmt_ratio(ratio(fluxmq_install, kafka_install))])
        rows.append(["install size, jars only vs binary as built", fmt_bytes(install.get("kafka_jars_bytes")),
                     fmt_bytes(install.get("fluxmq_binary_bytes")),
                     fmt_ratio(ratio(install.get("fluxmq_binary_bytes"), install.get("kafka_jars_bytes")))])
        self.chart_rows.append(("install size", ratio(fluxmq_install, kafka_install), False, None))
        self.table(["", "Kafka", "FluxMQ", "ratio"], rows)
        self.add("CPU is the broker process's user + system time from `/proc/<pid>/stat` over the client's "
                 "run (all threads; for Kafka the whole JVM, GC included). Kafka's start-up excludes "
                 "`kafka-storage format`, a one-time step. FluxMQ appends with `pwritev` and reads through "
                 "a read-only mapping whose pages it unmaps again behind each reader, so its file-backed RSS "
                 "is a few MiB per partition being read; Kafka writes with `write()` and sends with "
                 "`sendfile`, so the page cache never counts in its RSS. Anonymous RSS is the memory each "
                 "process owns.")
        self.add()

    def scaling_section(self):
        machine = self.results["machine"]
        self.add("## Per-core scaling")
        self.add()
        rows = []
        efficiencies = {}
        for kind, data in (("Kafka", self.kafka), ("FluxMQ", self.fluxmq)):
            points = get(data, "scaling") or {}
            a, b = points.get("a"), points.get("b")
            efficiency_a = get(a, "msgs_per_broker_cpu_sec")
            efficiency_b = get(b, "msgs_per_broker_cpu_sec")
            efficiencies[kind] = ratio(efficiency_b, efficiency_a)
            rows.append([kind, f"{fmt_count(get(a, 'msgs_per_sec'))} msg/s, {fmt_count(efficiency_a)} msg/CPU-s",
                         f"{fmt_count(get(b, 'msgs_per_sec'))} msg/s, {fmt_count(efficiency_b)} msg/CPU-s",
                         fmt_ratio(ratio(get(b, "msgs_per_sec"), get(a, "msgs_per_sec"))),
                         fmt_ratio(efficiencies[kind])])
        self.table(["broker", f"CPUs {cpus(machine['cores_a'])}", f"CPUs {cpus(machine['cores_b'])}",
                    "throughput ratio", "efficiency ratio (msg per CPU-s)"], rows)
        self.add("Flat-out 100 B produce, acks=1, a fresh broker per point: FluxMQ runs one shard per CPU, "
                 "Kafka is the same JVM restricted to those CPUs. The clients share the machine, so on a "
                 "2-core box the larger point has no CPU to itself; messages per broker CPU-second is the "
                 "measure that stays fair.")
        self.add()
        points = get(self.fluxmq, "scaling") or {}
        self.targets.append((f"FluxMQ {len(machine['cores_b'])}-shard efficiency vs "
                             f"{len(machine['cores_a'])}-shard", efficiencies.get("FluxMQ"), 0.9, True,
                             self.bound("fluxmq", points.get("b")) if points.get("b") else ""))
        self.chart_rows.append(("FluxMQ efficiency, more shards / fewer", efficiencies.get("FluxMQ"), True, 0.9))

    def loopback_section(self):
        self.add("## The physical limit: loopback TCP")
        self.add()
        rows = []
        for record_bytes in (100, 1000):
            run = get(self.results, "loopback", f"{record_bytes}b") or {}
            rows.append([f"{fmt_count(run.get('write_bytes'))}-byte writes (the {record_bytes} B workloads' "
                         f"request size)", fmt_float(get(run, "source", "mb_per_sec"), 0),
                         fmt_float(get(run, "source", "cpu_secs")), fmt_float(get(run, "sink", "cpu_secs"))])
        self.table(["", "MB/s", "source CPU-s", "sink CPU-s"], rows)

    def render(self):
        self.header()
        body_start = len(self.lines)
        self.produce_section()
        self.consume_section()
        self.latency_section()
        self.resources_section()
        self.scaling_section()
        self.loopback_section()
        body = self.lines[body_start:]
        self.lines = self.lines[:body_start]
        self.targets_section()
        self.add("![FluxMQ / Kafka ratios](chart.svg)")
        self.add()
        self.lines.extend(body)
        self.add("Raw numbers: [results.json](results.json).")
        return "\n".join(self.lines) + "\n"


def walk_runs(broker):
    for value in broker.values():
        if isinstance(value, dict):
            if "broker_cpu_secs" in value:
                yield value
            else:
                yield from walk_runs(value)


def wire_mb_per_sec(run, record_bytes, results):
    if not run or not run.get("msgs_per_sec"):
        return None
    per_batch = results["settings"]["records_per_batch"][str(record_bytes)]
    per_record = record_bytes + RECORD_FRAMING_BYTES + BATCH_HEADER_BYTES / per_batch
    return run["msgs_per_sec"] * per_record / 1e6


def percent(value, limit):
    if value is None or not limit:
        return "–"
    return f"{value / limit:.0%}"


def cpus(values):
    return ",".join(str(value) for value in values)


# --------------------------------------------------------------------------------------------------
# The chart: one row per ratio on a log axis, green where FluxMQ is better, red where worse.


def chart_svg(rows):
    rows = [row for row in rows if row[1] is not None and row[1] > 0]
    width, label_width, right = 980, 380, 80
    row_height, top = 24, 56
    height = top + row_height * len(rows) + 16
    low, high = 1e-3, 1e2
    for _, value, _, target in rows:
        low = min(low, value / 2, (target or 1) / 2)
        high = max(high, value * 2)
    log_low, log_high = math.log10(low), math.log10(high)
    plot_width = width - label_width - right

    def x(value):
        return label_width + (math.log10(value) - log_low) / (log_high - log_low) * plot_width

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">'
           f'FluxMQ / Kafka (log scale; green: FluxMQ better, red: worse; | target)</text>']
    decade = math.floor(log_low)
    while decade <= log_high:
        value = 10 ** decade
        if low <= value <= high:
            position = x(value)
            out.append(f'<line x1="{position:.1f}" y1="{top - 8}" x2="{position:.1f}" '
                       f'y2="{top + row_height * len(rows)}" stroke="{"#333" if decade == 0 else "#ddd"}"/>')
            out.append(f'<text x="{position:.1f}" y="{top - 12}" text-anchor="middle">{value:g}×</text>')
        decade += 1
    for index, (label, value, higher, target) in enumerate(rows):
        y = top + index * row_height
        better = value >= 1 if higher else value <= 1
        colour = "#2e8b57" if better else "#c0392b"
        start, end = sorted((x(1), x(value)))
        direction = "↑ better" if higher else "↓ better"
        out.append(f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end">{escape(label)} '
                   f'<tspan fill="#888">({direction})</tspan></text>')
        out.append(f'<rect x="{start:.1f}" y="{y + 5}" width="{max(end - start, 1):.1f}" height="14" '
                   f'fill="{colour}"/>')
        out.append(f'<text x="{max(x(value), x(1)) + 4:.1f}" y="{y + 16}">{fmt_ratio(value)}</text>')
        if target:
            position = x(target)
            out.append(f'<line x1="{position:.1f}" y1="{y + 2}" x2="{position:.1f}" y2="{y + 22}" '
                       f'stroke="black" stroke-width="2"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    parser = argparse.ArgumentParser(description="Render REPORT.md and chart.svg from results.json")
    parser.add_argument("results")
    parser.add_argument("--out", default=None, help="directory for REPORT.md and chart.svg")
    args = parser.parse_args()
    results = json.loads(Path(args.results).read_text())
    out = Path(args.out) if args.out else Path(args.results).parent
    out.mkdir(parents=True, exist_ok=True)
    report = Report(results)
    (out / "REPORT.md").write_text(report.render())
    (out / "chart.svg").write_text(chart_svg(report.chart_rows))


if __name__ == "__main__":
    main()
