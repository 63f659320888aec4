#!/usr/bin/env bash
# The polling bus's Poll endpoint under wrk against nginx serving a static
# response of the same size, in one run, on loopback: both single-threaded
# (the notifier is; nginx with one worker process), the same wrk threads,
# connections, duration and request (a SOAP POST of a registered agent's
# EmptyMessage, keep-alive). Prints both rates and their ratio.
#
#   cmake --preset release && cmake --build --preset release --target notifier
#   bench/bus_wrk.sh [--notifier build/release/bin/notifier] [--duration 10] [--threads 1] [--connections 32]
#
# Needs wrk, curl and nginx (/usr/sbin/nginx; nginx-light will do). Run as
# root or any user: nginx runs from a temporary prefix, no master process.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
notifier="$here/build/release/bin/notifier"
duration=10
threads=1
connections=32
nginx_bin=${NGINX:-/usr/sbin/nginx}
while [ $# -gt 0 ]; do
  case "$1" in
    --notifier) notifier=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "bus_wrk.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in wrk curl python3 "$nginx_bin" "$notifier"; do
  command -v "$tool" >/dev/null || { echo "bus_wrk.sh: $tool not found" >&2; exit 1; }
done

work=$(mktemp -d /tmp/bus_wrk.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bus_port=$(free_port)
control_port=$(free_port)
nginx_port=$(free_port)

"$notifier" --listen 127.0.0.1:0 --udp 127.0.0.1:0 --control "127.0.0.1:$control_port" \
  --set "pollbus.port=$bus_port" --quiet 2>"$work/notifier.log" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$bus_port/Bus.asmx?WSDL" && break; sleep 0.05; done

agent=3f2504e0-4f89-11d3-9a0c-0305e82c3301
envelope() {
  printf '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body><Poll xmlns="http://tempuri.org/"><message xsi:type="%s"><AgentId>%s</AgentId><TimeStamp>2026-12-03T12:00:00.000Z</TimeStamp>%s</message></Poll></soap:Body></soap:Envelope>' "$1" "$agent" "$2"
}
post() {  # body file, output prefix
  curl -s -D "$2.head" -o "$2.body" -H 'Content-Type: text/xml; charset=utf-8' \
    -H 'SOAPAction: "http://tempuri.org/Poll"' -H 'Expect:' --data-binary "@$1" "http://127.0.0.1:$bus_port/Bus.asmx"
}
envelope RegisterMessage '<ComputerName>PC-WRK</ComputerName><UserInfo>wrk</UserInfo>' >"$work/register.xml"
envelope EmptyMessage '' >"$work/poll.xml"
post "$work/register.xml" "$work/register"
post "$work/poll.xml" "$work/poll"
grep -q '^HTTP/1.1 200' "$work/poll.head" || { echo "bus_wrk.sh: the poll was not answered 200:" >&2; cat "$work/poll.head" >&2; exit 1; }
body_bytes=$(stat -c %s "$work/poll.body")

# nginx: the same body as a static file, the same Content-Type and ASP.NET's
# extra fields; POST to a static file is turned into a plain 200 of that file.
mkdir -p "$work/nginx/html" "$work/nginx/logs"
cp "$work/poll.body" "$work/nginx/html/Bus.asmx"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $work/nginx/logs/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  server_tokens off;
  keepalive_requests 100000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  types { }
  default_type "text/xml; charset=utf-8";
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/nginx/html;
    etag off;
    add_header Cache-Control "private, max-age=0";
    add_header X-AspNet-Version "4.0.30319";
    add_header X-Powered-By "ASP.NET";
    location / { error_page 405 =200 \$uri; }
  }
}
EOF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/stderr" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$nginx_port/Bus.asmx" && break; sleep 0.05; done
curl -s -D "$work/nginx.head" -o "$work/nginx.body" -H 'Content-Type: text/xml; charset=utf-8' \
  -H 'SOAPAction: "http://tempuri.org/Poll"' --data-binary "@$work/poll.xml" "http://127.0.0.1:$nginx_port/Bus.asmx"
grep -q '^HTTP/1.1 200' "$work/nginx.head" || { echo "bus_wrk.sh: nginx did not answer the POST 200:" >&2; cat "$work/nginx.head" "$work/nginx/logs/error.log" >&2; exit 1; }
cmp -s "$work/poll.body" "$work/nginx.body" || { echo "bus_wrk.sh: nginx's body differs from the bus's" >&2; exit 1; }

python3 - "$work/poll.xml" >"$work/poll.lua" <<'EOF'
import json, sys
body = open(sys.argv[1]).read()
print('wrk.method = "POST"')
print('wrk.body = ' + json.dumps(body))
print('wrk.headers["Content-Type"] = "text/xml; charset=utf-8"')
print('wrk.headers["SOAPAction"] = "\\"http://tempuri.org/Poll\\""')
EOF

rate() {  # url, label
  wrk -t "$threads" -c "$connections" -d "${duration}s" -s "$work/poll.lua" "$1" >"$work/$2.wrk" 2>&1
  local r errs
  r=$(awk '/^Requests\/sec:/ {print $2}' "$work/$2.wrk")
  errs=$(grep -E 'Non-2xx|Socket errors' "$work/$2.wrk" || true)
  [ -n "$errs" ] && echo "bus_wrk.sh: $2: $errs" >&2
  echo "$r"
}
# A short warm-up of each, then the measured runs.
wrk -t1 -c4 -d1s -s "$work/poll.lua" "http://127.0.0.1:$bus_port/Bus.asmx" >/dev/null 2>&1
wrk -t1 -c4 -d1s -s "$work/poll.lua" "http://127.0.0.1:$nginx_port/Bus.asmx" >/dev/null 2>&1
nginx_rate=$(rate "http://127.0.0.1:$nginx_port/Bus.asmx" nginx)
bus_rate=$(rate "http://127.0.0.1:$bus_port/Bus.asmx" bus)

head_bytes() { awk 'BEGIN{n=0} {n+=length($0)+1} END{print n}' "$1"; }
echo "request: POST /Bus.asmx, $(stat -c %s "$work/poll.xml") bytes of SOAP (a registered agent's EmptyMessage), keep-alive"
echo "response body: $body_bytes bytes; head: bus $(head_bytes "$work/poll.head") bytes, nginx $(head_bytes "$work/nginx.head") bytes"
echo "wrk: $threads thread(s), $connections connections, ${duration} s each; both servers single-threaded"
printf 'nginx %s (static file): %s requests/s\n' "$("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///')" "$nginx_rate"
printf 'notifier pollbus Poll:        %s requests/s\n' "$bus_rate"
python3 -c "import sys; print('ratio bus/nginx: %.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$bus_rate" "$nginx_rate"
