#!/usr/bin/env bash
# The README's main-job command: installs what is missing, builds the release
# preset, and runs nudge's best end-to-end comparison of polling against push:
#   1. a business day (8 h) of 10,000 clients in virtual time, poll vs push vs async;
#   2. a short real-socket run on loopback: a live notifier and 2,000 clients.
# Results (JSON + tables) land in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target notifier client-sim
bin=build/release/bin
out=out/demo
mkdir -p "$out"

echo "== virtual time: 10,000 clients, 8-hour day, poll / push / async, 1 event per client-hour... =="
"$bin/client-sim" --clock virtual --clients 10000 --mix poll=0.34,push=0.33,async=0.33 \
  --poll-interval 60 --events-per-client-hour 6.25 --duration 28800 --drain 600 --ramp-up 60 \
  --json "$out/virtual-day.json" | tee "$out/virtual-day.txt"

echo
echo "== real sockets on loopback: notifier + 2,000 clients for 30 s =="
ports=$(python3 - <<'PY'
import socket
s=[socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1",0))
print(" ".join(str(x.getsockname()[1]) for x in s))
PY
)
read -r tcp udp ctl <<<"$ports"
"$bin/notifier" --listen 127.0.0.1:$tcp --udp 127.0.0.1:$udp --control 127.0.0.1:$ctl \
  --polls-max-ms 5000 --quiet --stats-json "$out/notifier-stats.json" &
notifier_pid=$!
trap 'kill $notifier_pid 2>/dev/null || true' EXIT
sleep 0.5
"$bin/client-sim" --clock real --notifier 127.0.0.1:$tcp --notifier-udp 127.0.0.1:$udp --control 127.0.0.1:$ctl \
  --clients 2000 --mix poll=0.3,push=0.4,async=0.3 --poll-interval 5 --events-per-client-hour 60 \
  --duration 30 --drain 8 --ramp-up 2 --json "$out/real-loopback.json" | tee "$out/real-loopback.txt"
kill -INT $notifier_pid; wait $notifier_pid || true
trap - EXIT

echo
echo "Results: $out/virtual-day.{json,txt} and $out/real-loopback.{json,txt} (schema: docs/measurements.md)"
