#!/usr/bin/env bash
# The correctness runs of Benchmarks/README.md: hfr-bench with -c 1 (every element checked
# against a value computed independently of the library), one line per run.
#
#   Benchmarks/correctness/run.sh allreduce > Benchmarks/results/correctness-$(date +%F).txt
#   Benchmarks/correctness/run.sh family    > Benchmarks/results/family-correctness-$(date +%F).txt
set -uo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/.build/release}
run() {  # label, then hfrun/hfr-bench arguments
  local label=$1; shift
  local out rc
  out=$(timeout 600 "$BIN/hfrun" "$@" 2>&1); rc=$?
  echo "$label exit=$rc outofbounds=[$(grep -o 'Out of bounds values : .*' <<<"$out" | sed 's/Out of bounds values : //' | paste -sd' ')]"
  # A failed run shows why: its last lines (errors, the rank that failed).
  if [ "$rc" != 0 ]; then tail -n 20 <<<"$out" | sed 's/^/    /'; fi
}
case ${1:-allreduce} in
  allreduce)
    for to in "float sum" "bfloat16 sum" "half sum" "int32 max" "int64 prod" "float avg"; do
      set -- $to
      for na in "4 auto" "3 auto" "5 auto" "4 tree" "4 ring" "3 tree" "5 ring" "4 doubling" "4 halving"; do
        n=${na% *}; a=${na#* }
        algo=(-a "$a"); [ "$a" = auto ] && algo=()
        run "n=$n type=$1 op=$2 algo=$a" -n "$n" "$BIN/hfr-bench" -b 8 -e 64M -f 4 -c 1 -d "$1" -o "$2" "${algo[@]}"
      done
    done ;;
  family)
    for op in allreduce broadcast reduce allgather reducescatter alltoall sendrecv; do
      for n in 2 3 4 5; do run "$op n=$n" -n "$n" "$BIN/hfr-bench" "$op" -b 8 -e 16M -f 4 -c 1; done
    done ;;
  *) echo "usage: run.sh allreduce|family" >&2; exit 2 ;;
esac
