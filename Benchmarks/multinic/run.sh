#!/usr/bin/env bash
# HFReduce beside Open MPI (and Gloo) on emulated multi-NIC hosts, in one sitting, through
# ../shared/peers/peers.sh netns (its test bed: namespaces hfr-hH, NICs nicK at 198.18.K.(H+1)/24,
# tbf on both directions). Needs root, a release build, and the peers built (peers.sh build).
#
#   Benchmarks/multinic/run.sh [a] [b] [c] | tee Benchmarks/results/multinic-$(date +%F).txt
#
#   a: 2 hosts x 2 NICs at 1 Gbit/s       allreduce, 2 ranks
#   b: 2 hosts, NICs at 1 and 0.5 Gbit/s  allreduce, 2 ranks
#   c: 4 hosts x 2 NICs at 0.5 Gbit/s     allreduce (tree and auto) and all-to-all, 4 ranks
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/peers}
BIN=${BIN:-$ROOT/.build/release}
export BUILD=${BUILD:-/tmp/hfr-peers-build}
export MINBYTES=${MINBYTES:-1M} NETNS_MAXBYTES=${NETNS_MAXBYTES:-64M} NETNS_RUNS=${NETNS_RUNS:-2}
[ -x "$BIN/hfr-bench" ] || { echo "run.sh: build first: swift build -c release" >&2; exit 1; }

# One rank per namespace host, started by peers.sh with RANK N MASTER_ADDR PORT IFNAMES LABEL BENCH_ARGS.
launch='env RANK=$RANK WORLD_SIZE=$N LOCAL_RANK=0 LOCAL_WORLD_SIZE=$N MASTER_ADDR=$MASTER_ADDR MASTER_PORT=$PORT HFR_JOB_TOKEN=$PORT HFR_SOCKET_IFNAME=$IFNAMES'
export PEERNS_hfreduce="$launch $BIN/hfr-bench --peers-format -l \$LABEL \$BENCH_ARGS"
export PEERNS_hfreduce_tree="$launch HFR_ALGO=tree $BIN/hfr-bench --peers-format -l \$LABEL \$BENCH_ARGS"
export PEERNS_hfreduce_a2a="$launch $BIN/hfr-bench alltoall --peers-format -l \$LABEL \$BENCH_ARGS"

cd "$PEERS_DIR"
for t in "${@:-a b c}"; do
  for topo in $t; do
    case $topo in
      a) NETNS_HOSTS=2 NETNS_NICS=2 NETNS_RATE=1gbit \
           NETNS_PEERS="mpi-tcp:nic0,nic1 hfreduce:nic0,nic1 hfreduce:nic0 gloo:nic0,nic1" ./peers.sh netns ;;
      b) NETNS_HOSTS=2 NETNS_NICS=2 NETNS_RATE=1gbit,500mbit \
           NETNS_PEERS="mpi-tcp-bw:nic0,nic1 mpi-tcp:nic0,nic1 hfreduce:nic0,nic1" ./peers.sh netns ;;
      c) NETNS_HOSTS=4 NETNS_NICS=2 NETNS_RATE=500mbit \
           NETNS_PEERS="mpi-tcp:nic0,nic1 hfreduce-tree:nic0,nic1 hfreduce:nic0,nic1 mpi-tcp-a2a:nic0,nic1 hfreduce-a2a:nic0,nic1 gloo-a2a:nic0" ./peers.sh netns ;;
      *) echo "run.sh: unknown topology '$topo' (a, b or c)" >&2; exit 2 ;;
    esac
  done
done
