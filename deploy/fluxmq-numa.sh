#!/usr/bin/env bash
# Runs one FluxMQ broker on one NUMA node: its CPUs become the shards, and memory comes from that node.
# Usage: fluxmq-numa.sh NODE [fluxmq args...]   e.g. fluxmq-numa.sh 1 --port 9093 --data-dir /data1
# Without numactl, a core mask does the same for the CPUs: fluxmq --core-mask 0xFF00
set -euo pipefail
node="${1:?usage: $0 NODE [fluxmq args...]}"
shift
binary="${FLUXMQ_BINARY:-$(command -v fluxmq || echo target/release/fluxmq)}"
ulimit -l unlimited 2>/dev/null || echo "fluxmq-numa: could not raise ulimit -l; using $(ulimit -l) KiB" >&2
exec numactl --cpunodebind="$node" --membind="$node" "$binary" "$@"
