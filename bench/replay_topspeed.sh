#!/usr/bin/env bash
# Top-speed replay: nudge-replay --blind --topspeed against a live notifier
# beside tcpreplay --topspeed on `lo`, on the same capture, in one run. Prints
# the sessions replayed per second (and packets or operations per second) of
# each.
#
#   bench/replay_topspeed.sh [--bin DIR] [--clients 1000] [--duration 30] [--loops 1]
#
# The capture is a virtual run of --clients EMSMDB clients (a third each
# polling, push, async; poll every 5 s, one event per client-minute) over
# --duration seconds, written by client-sim --pcap. DIR holds client-sim,
# notifier and nudge-replay (default build/release/bin, else build/dev/bin).
#
# What each side does differs, by design: nudge-replay opens every client's
# connections to the notifier, rewrites each call for its live session and
# waits for each answer before the next call on that connection (a session is
# replayed when all its calls were answered); tcpreplay writes the capture's
# frames unchanged onto `lo` as fast as it can (blind: the kernel drops them,
# their addresses are the capture's documentation range, nothing answers), so
# its sessions per second is the capture's clients over its send time.
# tcpreplay needs root (or CAP_NET_RAW) for `lo`.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/build/release/bin"
[ -x "$bin/nudge-replay" ] || bin="$here/build/dev/bin"
clients=1000
duration=30
loops=1
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --loops) loops=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "replay_topspeed.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in tcpreplay python3 "$bin/client-sim" "$bin/notifier" "$bin/nudge-replay"; do
  command -v "$tool" >/dev/null || { echo "replay_topspeed.sh: $tool not found" >&2; exit 1; }
done

work=$(mktemp -d /tmp/replay_topspeed.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tcp_port=$(free_port)
udp_port=$(free_port)
control_port=$(free_port)

capture="$work/capture.pcap"
"$bin/client-sim" --clock virtual --clients "$clients" --mix poll=1,push=1,async=1 --poll-interval 5 \
  --events-per-client-hour 60 --duration "$duration" --drain 2 --seed 1 --quiet --pcap "$capture" >/dev/null
frames=$(python3 -c 'import os,struct,sys
f=open(sys.argv[1],"rb"); f.read(24); n=0
while True:
    h=f.read(16)
    if len(h)<16: break
    f.seek(struct.unpack("<IIII",h)[2],1); n+=1
print(n)' "$capture")

"$bin/notifier" --listen "127.0.0.1:$tcp_port" --udp "127.0.0.1:$udp_port" --control "127.0.0.1:$control_port" \
  --quiet 2>"$work/notifier.log" &
pids+=($!)
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$control_port),0.2)" 2>/dev/null && break; sleep 0.05; done

"$bin/nudge-replay" "$capture" --blind --topspeed --loop "$loops" --stats 0 --quiet --grace 1 \
  --notifier "127.0.0.1:$tcp_port" --notifier-udp "127.0.0.1:$udp_port" --control "127.0.0.1:$control_port" \
  --json "$work/replay.json" || true  # a differing client is in the figures, not a reason to stop
read -r n_sessions n_ops n_wall n_consistent < <(python3 - "$work/replay.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
passes = j if isinstance(j, list) else [j]
sessions = sum(len(p["clients"]) for p in passes)
ops = sum(p["summary"]["ops_sent"] for p in passes)
# Each pass's time zero to its last send or answer: the replay's work, without
# the grace it then waits for answers the live notifier holds (as captured).
def last_activity(p):
    t = 0.0
    for c in p["clients"]:
        for op in c["timeline"]:
            for k in ("sent_s", "answered_s"):
                if op.get(k) is not None:
                    t = max(t, op[k])
    return t
wall = sum(last_activity(p) for p in passes)
consistent = sum(p["summary"]["consistent"] for p in passes)
print(sessions, ops, wall, consistent)
EOF
)

tcpreplay --topspeed --intf1=lo --loop="$loops" "$capture" >"$work/tcpreplay.log" 2>&1
t_packets=$(sed -n 's/^Actual: \([0-9]*\) packets.*/\1/p' "$work/tcpreplay.log")
t_seconds=$(sed -n 's/^Actual: .* sent in \([0-9.]*\) seconds.*/\1/p' "$work/tcpreplay.log")

python3 - "$clients" "$loops" "$frames" "$n_sessions" "$n_ops" "$n_wall" "$n_consistent" "$t_packets" "$t_seconds" <<'EOF'
import sys
clients, loops, frames = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
n_sessions, n_ops, n_wall, n_consistent = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
t_packets, t_seconds = int(sys.argv[8]), float(sys.argv[9])
print(f"capture: {clients} EMSMDB clients, {frames} frames, replayed {loops} time(s)")
print(f"{'':26}{'sessions/s':>12}{'rate':>24}{'seconds':>10}")
print(f"{'nudge-replay --topspeed':26}{n_sessions / n_wall:>12.0f}{f'{n_ops / n_wall:.0f} calls/s':>24}{n_wall:>10.3f}"
      f"   ({n_consistent}/{n_sessions} sessions consistent)")
t_sessions = clients * loops
print(f"{'tcpreplay --topspeed':26}{t_sessions / t_seconds:>12.0f}{f'{t_packets / t_seconds:.0f} packets/s':>24}{t_seconds:>10.3f}"
      f"   (blind, onto lo)")
EOF
