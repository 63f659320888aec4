#!/usr/bin/env bash
# Measures every figure the README publishes and writes them, with the command
# behind each, to docs/figures.md; the README's "Measured" table is the same
# table, copied between its figures markers. One source: edit nothing by hand,
# run this instead.
#
#   bash scripts/figures.sh            # the figures that take about five minutes
#   bash scripts/figures.sh --large    # also a million clients for an hour (2-3 min, ~3 GB)
#
# Wall times are the median of 3 runs; peak RSS is the largest of them.
# Real-socket figures come from one run of a live notifier and client-sim on
# loopback; their wire bytes are measured (kernel TCP_INFO and socket counts,
# docs/measurements.md).
set -euo pipefail
cd "$(dirname "$0")/.."

large=0
[[ ${1:-} == --large ]] && large=1

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target notifier client-sim nudge-seed-table >/dev/null
bin=build/release/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rows=()
row() { rows+=("| $1 | $2 | \`$3\` |"); }

# Runs a command 3 times; prints "median-wall-seconds peak-rss-MB".
timed() {
  local walls=() rss=0 i
  for i in 1 2 3; do
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null
    read -r w m <"$work/time"
    walls+=("$w")
    ((m > rss)) && rss=$m
  done
  local median
  median=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n 2p)
  echo "$median $((rss / 1024))"
}

echo "figures: the seed article's day (10,000 polling clients, 8 h), 3 runs"
read -r wall rss < <(timed "$bin/client-sim" --clock virtual --scenario scenarios/seed-article.toml)
row "seed article's day: 10,000 polling clients, 8 h, virtual time" "${wall} s wall, ${rss} MB peak RSS" \
  "client-sim --clock virtual --scenario scenarios/seed-article.toml"

echo "figures: the same day with push and async, 3 runs"
read -r wall rss < <(timed "$bin/client-sim" --clock virtual --scenario scenarios/seed-article-push.toml)
row "the same day with push and async" "${wall} s wall, ${rss} MB peak RSS" \
  "client-sim --clock virtual --scenario scenarios/seed-article-push.toml"

echo "figures: the seed article's table"
"$bin/nudge-seed-table" scenarios/seed-article.toml >"$work/seed-table.txt"
# "unnecessary bytes" (the simulation, first block) and the closed form's Poisson column.
sim_bytes=$(awk '$1 == "unnecessary" && $2 == "bytes" && NF == 3 {print $3; exit}' "$work/seed-table.txt")
model_bytes=$(awk '/unnecessary bytes per client-hour/ {print $NF; exit}' "$work/seed-table.txt")
if [[ -z $sim_bytes || -z $model_bytes ]]; then
  echo "figures: could not read nudge-seed-table's output ($work/seed-table.txt)" >&2
  exit 1
fi
row "unnecessary polling traffic per client-hour (seed article's day, abstract profile)" \
  "simulation ${sim_bytes} B, Poisson closed form ${model_bytes} B" "nudge-seed-table scenarios/seed-article.toml"

if ((large)); then
  echo "figures: a million clients for one simulated hour (one run)"
  /usr/bin/time -f "%e %U %M" -o "$work/time" "$bin/client-sim" --clock virtual --scenario scenarios/million-hour.toml >/dev/null
  read -r w u m <"$work/time"
  row "1,000,000 clients for one simulated hour" "${w} s wall (${u} s CPU), $((m / 1024)) MB peak RSS" \
    "client-sim --clock virtual --scenario scenarios/million-hour.toml"
fi

echo "figures: 10,000 clients on loopback (about 90 s)"
base=${NUDGE_FIGURES_PORT_BASE:-47780}  # loopback ports base..base+2; set another base if these are taken
tcp=$base udp=$((base + 1)) ctl=$((base + 2))
"$bin/notifier" --listen 127.0.0.1:$tcp --udp 127.0.0.1:$udp --control 127.0.0.1:$ctl --polls-max-ms 5000 --quiet &
notifier_pid=$!
trap 'kill $notifier_pid 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 0.5
real_cmd=(--clients 10000 --mix poll=0.3,push=0.4,async=0.3 --poll-interval 5 --events-per-client-hour 60
          --duration 60 --drain 15 --ramp-up 10)
"$bin/client-sim" --clock real --notifier 127.0.0.1:$tcp --notifier-udp 127.0.0.1:$udp --control 127.0.0.1:$ctl \
  "${real_cmd[@]}" --json "$work/real.json" >/dev/null
kill -INT $notifier_pid; wait $notifier_pid || true
group() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }  # 341347 -> 341,347
mode_bytes() {  # measured (a real run's result always has it)
  jq -r --arg m "$1" '.modes[$m].measured.per_client_hour.wire_bytes | floor' "$work/real.json" | group
}
missed=$(jq -r '.total.events.missed' "$work/real.json")
p50=$(jq -r '.modes.poll.latency.p50_s * 100 | round / 100' "$work/real.json")
row "10,000 clients on loopback (3,000 poll / 4,000 push / 3,000 async, poll 5 s, 60 s)" \
  "${missed} missed; poll p50 latency ${p50} s; measured wire bytes per client-hour: poll $(mode_bytes poll), push $(mode_bytes push), async $(mode_bytes async)" \
  "notifier --polls-max-ms 5000 & client-sim ${real_cmd[*]}"

table=$(printf '%s\n' "| run | figure | command |" "|---|---|---|" "${rows[@]}")
{
  echo "# Published figures"
  echo
  echo "Written by \`bash scripts/figures.sh$( ((large)) && echo " --large")\` on $(date -u +%Y-%m-%d)"
  echo "at commit $(git rev-parse --short HEAD), on $(nproc) cores of"
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), release build."
  echo "Wall times are the median of 3 runs. The README's \"Measured\" table is this table."
  echo
  echo "$table"
} >docs/figures.md

# The README's copy, between its markers.
awk -v table="$table" '
  /<!-- figures:begin -->/ { print; print table; skip = 1; next }
  /<!-- figures:end -->/ { skip = 0 }
  !skip { print }' README.md >"$work/README.md"
cp "$work/README.md" README.md
echo "figures: wrote docs/figures.md and the README's Measured table"
