#!/usr/bin/env bash
# Throughput of the overlay: one iperf3 TCP flow between two network namespaces, peer-to-peer
# and relayed through the supernode, for -A1, -A3, -A6 and -A7, each against a limit measured in
# the same run on the same veths:
#   limit     plain veth with its offloads on (TSO/GSO/GRO): what the lab carries at best;
#   baseline  plain veth with offloads off and the overlay's MSS: one packet at a time.
# The overlay runs in two lab modes:
#   offload   the lab's veths carry UDP GSO super-packets whole (as today's veths do);
#             compared with the limit;
#   wire      both sites' uplinks (and the supernode's) cut UDP GSO super-packets into
#             datagrams and GRO them on ingress (ethtool -K wan tx-udp-segmentation off gro
#             on), what a NIC without UDP segmentation offload does; compared with the
#             per-packet baseline.
# Prints Mbit/s, the ratio to its limit and the edges' CPU seconds per GB.
# Usage: sudo bench/throughput.sh [seconds per run, default 8]   (needs iperf3, ethtool)
# BENCH_LABS="offload wire", BENCH_MODES="p2p relay" and BENCH_CIPHERS="-A1 -A3 -A6 -A7" pick the
# runs; BENCH_THREADS=1 adds each edge thread's CPU seconds per GB (sender a, receiver b).
# BENCH_ROUNDS=N repeats the whole run (limit and baseline included) N times and ends with
# each row's median and the range of its ratio: on a shared VM one run moves by ±15 %.
# BENCH_PAIRED=1 measures each row's limit or baseline again right before the row (twice the
# time): each ratio then compares runs seconds apart.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
for tool in iperf3 ethtool; do
    command -v "$tool" >/dev/null || { echo "error: bench/throughput.sh needs $tool" >&2; exit 1; }
done
P="n2nb$$"
# N2N_BIN=dir benchmarks binaries built elsewhere (e.g. with other RUSTFLAGS).
BIN=${N2N_BIN:-target/release}
EDGE=$BIN/edge
SN=$BIN/supernode
[ -n "${N2N_BIN:-}" ] || cargo build --release --quiet -p n2n-edge -p n2n-supernode

# The supernode; the edges of each run are waited for, and cleanup kills whatever still runs
# in the namespaces.
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for n in inet sn a b; do
        for p in $(ip netns pids "$P$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$P$n" 2>/dev/null || true
    done
}
trap cleanup EXIT

for n in inet sn a b; do ip netns add "$P$n"; ip -n "$P$n" link set lo up; done
i=0
for n in sn a b; do
    ip link add "r$n" netns "${P}inet" type veth peer name wan netns "$P$n"
    ip -n "${P}inet" addr add "198.18.$i.1/24" dev "r$n"
    ip -n "$P$n" addr add "198.18.$i.2/24" dev wan
    ip -n "${P}inet" link set "r$n" up
    ip -n "$P$n" link set wan up
    ip -n "$P$n" route add default via "198.18.$i.1"
    i=$((i + 1))
done
# Every veth of the lab, as "namespace device".
VETHS=("${P}inet rsn" "${P}inet ra" "${P}inet rb" "${P}sn wan" "${P}a wan" "${P}b wan")
veth_offloads() {
    local state=$1
    for v in "${VETHS[@]}"; do
        set -- $v
        ip netns exec "$1" ethtool -K "$2" tso "$state" gso "$state" gro "$state" >/dev/null 2>&1 || true
    done
}
ip netns exec "${P}inet" sysctl -qw net.ipv4.ip_forward=1
A_WAN=198.18.1.2; B_WAN=198.18.2.2

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# "side:thread ticks" for every thread of an edge (comm may not contain spaces: ours do not).
thread_ticks() { for t in /proc/$2/task/*; do awk -v s="$1" '{print s ":" $2, $14 + $15}' "$t/stat"; done; }

# iperf3 from a to $1; prints "Mbit/s bytes"
run_iperf() {
    local out
    out=$(ip netns exec "${P}a" iperf3 -c "$1" -t "$SECS" -M 1250 -J 2>/dev/null || true)
    python3 -c 'import json,sys; j=json.load(sys.stdin); d=j.get("end",{}).get("sum_received"); print("%.0f %d" % (d["bits_per_second"]/1e6, d["bytes"]) if d else "0 1"); sys.stderr.write(j.get("error","")+"\n" if not d else "")' <<<"$out"
}

ip netns exec "${P}b" iperf3 -s -D >/dev/null
ip netns exec "${P}sn" "$SN" -f -p 7654 -t 5645 >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.3
ROUNDS=${BENCH_ROUNDS:-1}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "error: BENCH_ROUNDS must be a positive number" >&2; exit 1; }
# Every row of every round, for the summary: "lab path cipher Mbit/s ratio CPU-s/GB".
ROWS=$(mktemp)
trap 'cleanup; rm -f "$ROWS"' EXIT

# The uplinks of lab $1: "wire" cuts UDP GSO super-packets at each site's uplink and GROs on
# ingress (the supernode is a host with a NIC too: its uplink behaves the same).
set_uplinks() {
    local seg=on gro=off
    [ "$1" = wire ] && { seg=off; gro=on; }
    for n in a b sn; do
        ip netns exec "$P$n" ethtool -K wan tx-udp-segmentation $seg gro $gro >/dev/null
    done
}

# Path $1: "relay" blocks the sites' direct path, so the supernode relays.
set_path() {
    ip netns exec "${P}inet" iptables -F FORWARD
    if [ "$1" = relay ]; then
        ip netns exec "${P}inet" iptables -I FORWARD -s $A_WAN -d $B_WAN -j DROP
        ip netns exec "${P}inet" iptables -I FORWARD -s $B_WAN -d $A_WAN -j DROP
    fi
}

# BENCH_PAIRED=1: the reference of lab $1 (limit or baseline) measured again right before a
# row of path $2, so that the row is compared with a run seconds away, not minutes; then the
# lab is set up again as the rows run in (veth offloads off, its uplinks, its path).
paired_reference() {
    local state=off
    [ "$1" = offload ] && state=on
    set_path p2p
    veth_offloads $state
    read -r REF _ < <(run_iperf "$B_WAN")
    echo "$REF_NAME - - $REF 1 0" >>"$ROWS"
    veth_offloads off
    set_uplinks "$1"
    set_path "$2"
}

# One round: the limit, the baseline, then every overlay row against the one of its lab.
measure_round() {
    [ "$ROUNDS" -gt 1 ] && echo "round $1 of $ROUNDS"
    # The last round's relay runs left the direct path blocked.
    set_path p2p
    veth_offloads on
    read -r LIMIT _ < <(run_iperf "$B_WAN")
    veth_offloads off
    read -r BASE _ < <(run_iperf "$B_WAN")
    echo "limit    veth, offloads on (TSO/GSO/GRO), MSS 1250:  $LIMIT Mbit/s"
    echo "baseline veth, offloads off, MSS 1250 (per packet):  $BASE Mbit/s"
    echo "limit - - $LIMIT 1 0" >>"$ROWS"
    echo "baseline - - $BASE 1 0" >>"$ROWS"
    printf '%-8s %-6s %-6s %10s %8s %-9s %12s\n' lab path cipher Mbit/s ratio "of" "CPU s/GB"

    for lab in ${BENCH_LABS:-offload wire}; do
      # Each lab sets the uplinks it needs, so the labs may come in any order and rounds repeat.
      set_uplinks "$lab"
      if [ "$lab" = wire ]; then REF=$BASE; REF_NAME=baseline; else REF=$LIMIT; REF_NAME=limit; fi
      for mode in ${BENCH_MODES:-p2p relay}; do
        set_path "$mode"
        for cipher in ${BENCH_CIPHERS:--A1 -A3 -A6 -A7}; do
            [ "${BENCH_PAIRED:-0}" = 1 ] && paired_reference "$lab" "$mode"
            key=(-k bench-secret-key); [ "$cipher" = -A1 ] && key=()
            ip netns exec "${P}a" "$EDGE" -f -c bench "${key[@]}" "$cipher" -a 10.99.0.1 -l 198.18.0.2:7654 -d n2n0 -u 0 -g 0 >/dev/null 2>&1 &
            EA=$!
            ip netns exec "${P}b" "$EDGE" -f -c bench "${key[@]}" "$cipher" -a 10.99.0.2 -l 198.18.0.2:7654 -d n2n0 -u 0 -g 0 >/dev/null 2>&1 &
            EB=$!
            for _ in $(seq 100); do ip netns exec "${P}a" ping -c1 -W1 -q 10.99.0.2 >/dev/null 2>&1 && break; done
            if [ "$mode" = p2p ]; then
                for _ in $(seq 100); do printf 'r 1 edges' | ip netns exec "${P}a" nc -u -w1 127.0.0.1 5644 | grep -q '"mode":"p2p"' && break; done
            fi
            c0=$(( $(cpu_ticks $EA) + $(cpu_ticks $EB) ))
            t0=$( { thread_ticks a $EA; thread_ticks b $EB; } )
            read -r MBPS BYTES < <(run_iperf 10.99.0.2)
            c1=$(( $(cpu_ticks $EA) + $(cpu_ticks $EB) ))
            t1=$( { thread_ticks a $EA; thread_ticks b $EB; } )
            row=$(python3 -c "import sys; m,ref,t,by=map(float,sys.argv[1:]); print('%.0f %.4f %.3f' % (m, m/ref, t/100/(by/1e9)))" "$MBPS" "$REF" "$((c1 - c0))" "$BYTES")
            echo "$lab $mode $cipher $row" >>"$ROWS"
            read -r m ratio cpu <<<"$row"
            printf '%-8s %-6s %-6s %10.0f %8.2f %-9s %12.2f\n' "$lab" "$mode" "$cipher" "$m" "$ratio" "$REF_NAME" "$cpu"
            if [ -n "${BENCH_THREADS:-}" ]; then
                join <(sort <<<"$t0") <(sort <<<"$t1") | awk -v by="$BYTES" \
                    '$3 > $2 { printf "    %-14s %6.2f CPU s/GB\n", $1, ($3 - $2) / 100 / (by / 1e9) }'
            fi
            kill -TERM $EA $EB 2>/dev/null || true
            wait $EA $EB 2>/dev/null || true
        done
      done
    done
}

for round in $(seq "$ROUNDS"); do measure_round "$round"; done

# Several rounds: each row's median, with the spread of its ratio (each run against the
# limit or baseline measured in its own round).
if [ "$ROUNDS" -gt 1 ]; then
    echo
    echo "summary of $ROUNDS rounds (median; ratio range in brackets)"
    python3 - "$ROWS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    lab, path, cipher, m, ratio, cpu = line.split()
    rows.setdefault((lab, path, cipher), []).append((float(m), float(ratio), float(cpu)))
for (lab, path, cipher), runs in rows.items():
    med = lambda i: statistics.median(r[i] for r in runs)
    if path == "-":
        print("%-8s %10.0f Mbit/s  [%.0f-%.0f]" % (lab, med(0), min(r[0] for r in runs), max(r[0] for r in runs)))
        continue
    lo, hi = min(r[1] for r in runs), max(r[1] for r in runs)
    print("%-8s %-6s %-6s %10.0f %8.2f [%.2f-%.2f] %8.2f CPU s/GB" % (lab, path, cipher, med(0), med(1), lo, hi, med(2)))
PY
fi
