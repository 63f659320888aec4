#!/usr/bin/env bash
# The README's main-job command: installs what is missing, builds the release
# preset, and runs nudge's best end-to-end comparison of polling against push:
#   1. a business day (8 h) of 10,000 clients in virtual time, poll vs push vs async;
#   2. push clients behind a mix of NATs, in virtual time: what breaks, what falls back;
#   3. the seed article's bandwidth table, closed-form model beside the simulation;
#   4. a short real-socket run on loopback: a live notifier and 2,000 clients;
#   5. the report over all of them: report.md and report.html (charts), result.json,
#      junit.xml, with a few thresholds checked (docs/report.md).
# Results (JSON + tables) land in out/demo/, the report in out/demo/report/.
# Exit status: nudge-report's (0 all thresholds passed, 3 one failed; docs/report.md).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target notifier client-sim nudge-seed-table nudge-model nudge-report
bin=build/release/bin
out=out/demo
mkdir -p "$out" "$out/notifier"

echo "== virtual time: a business day of 10,000 clients, poll / push / async (scenarios/business-day.toml) =="
"$bin/client-sim" --clock virtual --scenario scenarios/business-day.toml \
  --json "$out/business-day.json" | tee "$out/business-day.txt"

echo
echo "== virtual time: 1,000 push clients behind a mix of NATs (scenarios/nat-mix.toml) =="
"$bin/client-sim" --clock virtual --scenario scenarios/nat-mix.toml \
  --json "$out/nat-mix.json" | tee "$out/nat-mix.txt"

echo
echo "== the seed article's table: closed-form model beside the simulation (docs/seed-table.md) =="
"$bin/nudge-seed-table" scenarios/seed-article.toml scenarios/seed-article-faithful.toml scenarios/seed-article-push.toml \
  | tee "$out/seed-table.txt"

echo
echo "== real sockets on loopback: notifier + 2,000 clients for 30 s =="
base=${NUDGE_DEMO_PORT_BASE:-47770}  # loopback ports base..base+2; set another base if these are taken
tcp=$base udp=$((base + 1)) ctl=$((base + 2))
"$bin/notifier" --listen 127.0.0.1:$tcp --udp 127.0.0.1:$udp --control 127.0.0.1:$ctl \
  --polls-max-ms 5000 --quiet --stats-json "$out/notifier/stats.json" &
notifier_pid=$!
trap 'kill $notifier_pid 2>/dev/null || true' EXIT
sleep 0.5
"$bin/client-sim" --clock real --notifier 127.0.0.1:$tcp --notifier-udp 127.0.0.1:$udp --control 127.0.0.1:$ctl \
  --clients 2000 --mix poll=0.3,push=0.4,async=0.3 --poll-interval 5 --events-per-client-hour 60 \
  --duration 30 --drain 8 --ramp-up 2 --json "$out/real-loopback.json" | tee "$out/real-loopback.txt"
kill -INT $notifier_pid; wait $notifier_pid || true
trap - EXIT

echo
echo "== the report: every result above, with thresholds (docs/report.md) =="
# Thresholds: no mode misses mail; push and async cost a fraction of polling
# and signal within a second; behind the NAT mix, pings bring the clients on no
# NAT nearly all their mail (the first events of each come by polling, until
# its first ping) and never reach those behind a symmetric NAT (legacy policy);
# no real-socket client failed.
set +e
"$bin/nudge-report" "$out" --out "$out/report" \
  --threshold 'total.missed == 0' \
  --threshold 'business-day:push.wire_bytes_per_client_hour < 0.25 * business-day:poll.wire_bytes_per_client_hour' \
  --threshold 'business-day:async.wire_bytes_per_client_hour < 0.5 * business-day:poll.wire_bytes_per_client_hour' \
  --threshold 'business-day:push.latency.p99 < 1s' \
  --threshold 'business-day:async.latency.p99 < 1s' \
  --threshold 'nat-mix:push[none].fetched_by_push >= 0.99 * nat-mix:push[none].fetched' \
  --threshold 'nat-mix:push[symmetric].fetched_by_push == 0' \
  --threshold 'real-loopback:total.clients_failed == 0'
report_status=$?
set -e

echo
echo "Results in $out/: business-day, nat-mix, seed-table, real-loopback (.txt tables, .json schema nudge.result/1: docs/measurements.md)"
echo "The report: $out/report/report.md and $out/report/report.html (open it in a browser; charts are inline SVG)"
exit $report_status
