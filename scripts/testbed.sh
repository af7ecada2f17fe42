#!/usr/bin/env bash
# Emulated multi-host, multi-NIC test bed in network namespaces (needs root and iproute2).
#
#   scripts/testbed.sh up HOSTS NICS RATE[,RATE...]   e.g. up 2 2 1gbit   or   up 2 2 1gbit,500mbit
#   scripts/testbed.sh down
#   scripts/testbed.sh status
#   scripts/testbed.sh nic-down HOST NIC | nic-up HOST NIC
#   scripts/testbed.sh exec HOST CMD...
#
# Host h is namespace hfrtb-hH. Its NIC k is `nicK` with address 198.18.K.(H+1)/24 (the RFC 2544
# benchmarking range, configured only inside the namespaces). NIC k of every host plugs into
# bridge brK in the switch namespace hfrtb-sw. tbf shapes each NIC's transmit side and the switch
# port towards it (its receive side), so a NIC is full duplex at its rate. One rate applies to
# every NIC, or give one rate per NIC index. Nothing is configured in the root namespace.
set -euo pipefail
PREFIX=hfrtb
STATE=/run/$PREFIX.state

die() { echo "testbed: $*" >&2; exit 1; }

# A tc rate (500mbit, 1gbit, 100kbit, 2500000bit) in bits per second.
bits() {
  local r=${1,,} num unit
  num=${r%%[a-z]*}; unit=${r#"$num"}
  case $unit in
    bit|"") echo "${num%.*}" ;;
    kbit) awk -v n="$num" 'BEGIN{printf "%d", n*1000}' ;;
    mbit) awk -v n="$num" 'BEGIN{printf "%d", n*1000000}' ;;
    gbit) awk -v n="$num" 'BEGIN{printf "%d", n*1000000000}' ;;
    *) die "rate '$1': use bit, kbit, mbit or gbit" ;;
  esac
}
need_root() { [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"; command -v ip >/dev/null || die "needs iproute2 (ip)"; }

down() {
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -f "$STATE"
}

up() {
  local hosts=$1 nics=$2 rates=$3
  [[ $hosts =~ ^[0-9]+$ && $hosts -ge 1 && $hosts -le 200 ]] || die "HOSTS must be 1..200, got $hosts"
  [[ $nics =~ ^[0-9]+$ && $nics -ge 1 && $nics -le 8 ]] || die "NICS must be 1..8, got $nics"
  IFS=, read -r -a rate <<<"$rates"
  [ ${#rate[@]} -eq 1 ] || [ ${#rate[@]} -eq "$nics" ] || die "give one rate or $nics rates, got '$rates'"
  down
  ip netns add $PREFIX-sw
  ip -n $PREFIX-sw link set lo up
  for ((k = 0; k < nics; k++)); do
    ip -n $PREFIX-sw link add br$k type bridge
    ip -n $PREFIX-sw link set br$k up
  done
  for ((h = 0; h < hosts; h++)); do
    local ns=$PREFIX-h$h
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    for ((k = 0; k < nics; k++)); do
      local r=${rate[0]}
      [ ${#rate[@]} -gt 1 ] && r=${rate[$k]}
      ip link add "$PREFIX$h-$k" type veth peer name "sw$h-$k"
      ip link set "$PREFIX$h-$k" netns "$ns"
      ip -n "$ns" link set "$PREFIX$h-$k" name nic$k
      ip link set "sw$h-$k" netns $PREFIX-sw
      ip -n "$ns" addr add 198.18.$k.$((h + 1))/24 dev nic$k
      ip -n "$ns" link set nic$k up
      ip -n $PREFIX-sw link set "sw$h-$k" master br$k
      ip -n $PREFIX-sw link set "sw$h-$k" up
      # The bucket holds 2 ms at the rate (at least 128 KiB), so that 64 KiB GSO packets pass
      # and TCP reaches the rate, as ../shared/peers/netns.sh does.
      local burst=$(( $(bits "$r") / 8 / 500 ))
      (( burst < 131072 )) && burst=131072
      ip netns exec "$ns" tc qdisc add dev nic$k root tbf rate "$r" burst "$burst" latency 10ms
      ip netns exec $PREFIX-sw tc qdisc add dev "sw$h-$k" root tbf rate "$r" burst "$burst" latency 10ms
    done
  done
  echo "$hosts $nics $rates" > "$STATE"
  echo "testbed: $hosts host(s) x $nics NIC(s) at $rates up (namespaces $PREFIX-h0..$PREFIX-h$((hosts - 1)))"
}

status() {
  [ -f "$STATE" ] || { echo "testbed: down"; return; }
  read -r hosts nics rates < "$STATE"
  echo "testbed: $hosts host(s) x $nics NIC(s) at $rates"
  for ((h = 0; h < hosts; h++)); do
    ip -n $PREFIX-h$h -br addr show | grep nic | sed "s/^/  h$h /"
  done
}

nic() {
  local h=$1 k=$2 state=$3
  ip -n $PREFIX-h$h link set nic$k "$state"
}

case "${1:-}" in
  up) need_root; [ $# -eq 4 ] || die "usage: up HOSTS NICS RATE[,RATE...]"; up "$2" "$3" "$4" ;;
  down) need_root; down ;;
  status) status ;;
  nic-down) need_root; nic "$2" "$3" down ;;
  nic-up) need_root; nic "$2" "$3" up ;;
  exec) need_root; h=$2; shift 2; exec ip netns exec $PREFIX-h$h "$@" ;;
  *) die "usage: testbed.sh up HOSTS NICS RATE[,RATE...] | down | status | nic-down H K | nic-up H K | exec H CMD..." ;;
esac
