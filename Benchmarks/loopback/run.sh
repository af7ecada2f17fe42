#!/usr/bin/env bash
# HFReduce beside Open MPI and Gloo over loopback TCP, interleaved: ROUNDS rounds of
# ../shared/peers/peers.sh bench, one launch per peer and rank count each, the peers' order
# reversed every other round. Separate launches here differ by up to 4x and the machine drifts
# within minutes, so launches of one peer in a row are compared with the others' taken later;
# interleaving spreads that drift over all of them. table.py takes the median over the rounds.
#
#   Benchmarks/loopback/run.sh alltoall [ROUNDS] > Benchmarks/results/alltoall-$(date +%F).txt
#   Benchmarks/loopback/run.sh allreduce [ROUNDS] > Benchmarks/results/loopback-$(date +%F).txt
#   ../shared/peers/table.py Benchmarks/results/alltoall-$(date +%F).txt --spread
#
# NRANKS (default "4"), MINBYTES, MAXBYTES and the other peers.sh knobs pass through. Needs a
# release build, Open MPI and torch (../shared/peers/README.md says how) and the peers built
# (peers.sh build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/peers}
BIN=${BIN:-$ROOT/.build/release}
export BUILD=${BUILD:-/tmp/hfr-peers-build}
[ -x "$BIN/hfr-bench" ] || { echo "run.sh: build first: swift build -c release" >&2; exit 1; }
op=${1:-alltoall}
rounds=${2:-5}
case $op in
  alltoall) peers=(mpi-tcp-a2a hfreduce gloo-a2a); bench_op=alltoall ;;
  allreduce) peers=(mpi-tcp hfreduce gloo); bench_op=allreduce ;;
  *) echo "usage: run.sh alltoall|allreduce [ROUNDS]" >&2; exit 2 ;;
esac
export PEER_hfreduce="$BIN/hfrun -n \$N $BIN/hfr-bench $bench_op --peers-format -l hfreduce \$BENCH_ARGS | sed -u 's/^\[0\] //'"
export NRANKS=${NRANKS:-4}
cd "$PEERS_DIR"
./peers.sh env
for r in $(seq "$rounds"); do
  order=("${peers[@]}")
  if (( r % 2 == 0 )); then order=(); for ((k = ${#peers[@]} - 1; k >= 0; k--)); do order+=("${peers[k]}"); done; fi
  echo "## round $r of $rounds: ${order[*]}"
  PEERS="${order[*]}" BENCH_RUNS=1 ./peers.sh bench
done
