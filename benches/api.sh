#!/usr/bin/env bash
# REST API benchmarks on SQLite with 10,000 hosts / 100 groups / 10 vars per
# owner: wrk at 64 connections on loopback against one host with resolved
# variables and a 100-host detailed list page; single-request timings of the
# whole inventory and of bundles; daemon idle memory. Prints Markdown.
#
# usage: benches/api.sh [SECONDS] [RUNS]   (needs wrk: apt-get install wrk)
#
# Each wrk row is repeated RUNS times (default 3) and reported with its
# spread. CRATON_BENCH_PIN=1 pins the daemon to CPU 0 and a one-thread wrk to
# CPU 1, to tell the daemon's own limit from the load generator's share of
# the two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
runs=${2:-3}
pin=${CRATON_BENCH_PIN:-0}
cargo build --release --workspace -q
BIN=$PWD/target/release
work=$(mktemp -d)
export CRATON_DATABASE_URL="sqlite://$work/bench.sqlite3" CRATON_CONFIG=/dev/null
python3 benches/gen_inventory.py 10000 100 10 > "$work/inv.json"
$BIN/cratond import ansible "$work/inv.json" >/dev/null
token=$($BIN/cratond token create --project default --role reader)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
daemon_cpu=(); wrk_cpu=(); wrk_threads=2
if [ "$pin" = 1 ]; then daemon_cpu=(taskset -c 0); wrk_cpu=(taskset -c 1); wrk_threads=1; fi
CRATON_LOG=warn "${daemon_cpu[@]}" $BIN/cratond serve --listen "127.0.0.1:$port" --pool-size 8 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 50); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.2; done
sleep 1
idle_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hid=$(curl -fs -H "Authorization: Bearer $token" "$base/v1/hosts?name=node005000.example.net" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')

# p99 in ms, whatever unit wrk printed it in.
to_ms() { awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /[^m]s$/) v *= 1000; printf "%.2f", v }'; }
wrk_row() {
  local name=$1 url=$2 all_rps=() all_p99=() out
  for _ in $(seq "$runs"); do
    out=$("${wrk_cpu[@]}" wrk -t"$wrk_threads" -c64 -d"${secs}s" --latency -H "Authorization: Bearer $token" "$url")
    all_rps+=("$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')")
    all_p99+=("$(echo "$out" | awk '$1 == "99%" {print $2}' | to_ms)")
  done
  local spread; spread=$(printf '%s\n' "${all_rps[@]}" | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "-" hi}')
  local pspread; pspread=$(printf '%s\n' "${all_p99[@]}" | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "-" hi}')
  echo "| $name | ${all_rps[*]} | $spread | ${all_p99[*]} | $pspread |"
}
echo "| endpoint (wrk -t$wrk_threads, 64 connections, ${secs}s, pinned=$pin) | req/s per run | req/s spread | p99 ms per run | p99 spread |"
echo "|---|---|---|---|---|"
curl -fs -H "Authorization: Bearer $token" "$base/v1/hosts/$hid?resolved=true" >/dev/null
wrk_row "GET /v1/hosts/{id}?resolved=true" "$base/v1/hosts/$hid?resolved=true"
wrk_row "GET /v1/hosts?limit=100&details=true&resolved=true" "$base/v1/hosts?limit=100&details=true&resolved=true"
echo
echo "| single request | time |"
echo "|---|---|"
t() { curl -fs -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" "$1"; }
t "$base/v1/inventory" >/dev/null
echo "| GET /v1/inventory (10,000 hosts, warm snapshot) | $(t "$base/v1/inventory") s |"
echo "| GET /v1/inventory.tgz (first build) | $(t "$base/v1/inventory.tgz") s |"
echo "| GET /v1/inventory.tgz (cached) | $(t "$base/v1/inventory.tgz") s |"
echo "| GET /v1/inventory/region0.zip (first build) | $(t "$base/v1/inventory/region0.zip") s |"
echo "| daemon idle RSS after start-up | $((idle_kb / 1024)) MB |"
echo "| daemon RSS after the runs | $(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 )) MB |"
