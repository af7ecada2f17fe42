#!/usr/bin/env bash
# The main job: builds HFReduce in release mode and runs a 4-rank float32 sum allreduce
# benchmark (nccl-tests format, every result checked) on this machine. Extra arguments go to
# hfr-bench, e.g. scripts/bench.sh -d bfloat16 -a ring.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
swift build -c release
exec .build/release/hfrun -n "${NRANKS:-4}" --timeout 600 -- .build/release/hfr-bench -b 8 -e 64M -f 4 -c 1 "$@"
