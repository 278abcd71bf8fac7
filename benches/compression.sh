#!/usr/bin/env bash
# Response compression on a 10,000-host inventory (100 groups, 10 vars per
# owner, SQLite): bytes on the wire and time of GET /v1/inventory with
# identity, gzip and zstd (curl, warm snapshot, median of RUNS), and of
# `craton-inventory --list` over REST against a daemon that compresses
# (it asks for gzip) and one started with --no-compression. Prints Markdown.
#
# usage: benches/compression.sh [RUNS]   (default 7)
#
# Builds the release binaries of cratond and craton-inventory only
# (CARGO_TARGET_DIR is honoured); CRATON_BENCH_PROFILE=debug measures a
# debug build instead (and says so).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
profile=${CRATON_BENCH_PROFILE:-release}
if [ "$profile" = release ]; then
  cargo build --release -q -p cratond -p craton-inventory
else
  cargo build -q -p cratond -p craton-inventory
fi
BIN=${CARGO_TARGET_DIR:-$PWD/target}/$profile
work=$(mktemp -d)
export CRATON_DATABASE_URL="sqlite://$work/bench.sqlite3" CRATON_CONFIG=/dev/null
python3 benches/gen_inventory.py 10000 100 10 > "$work/inv.json"
$BIN/cratond import ansible "$work/inv.json" >/dev/null
token=$($BIN/cratond token create --project default --role reader)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
start() { # start PORT [ARGS...]: a daemon, waited for
  local port=$1; shift
  CRATON_LOG=warn $BIN/cratond serve --listen "127.0.0.1:$port" --no-sync "$@" &
  pids+=($!)
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.2; done
  echo "cratond did not start" >&2; exit 1
}
on=$(free_port); start "$on"
off=$(free_port); start "$off" --no-compression
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# curl_row LABEL ENCODING: wire bytes and median total time of RUNS requests.
curl_row() {
  local label=$1 enc=$2 url="http://127.0.0.1:$on/v1/inventory" times=() bytes=0 out
  local hdr=()
  [ "$enc" != identity ] && hdr=(-H "Accept-Encoding: $enc")
  curl -fs -o /dev/null -H "Authorization: Bearer $token" "${hdr[@]}" "$url"   # warm the snapshot
  for _ in $(seq "$runs"); do
    out=$(curl -fs -o "$work/body" -w '%{size_download} %{time_total}' -H "Authorization: Bearer $token" "${hdr[@]}" "$url")
    bytes=${out% *}; times+=("${out#* }")
  done
  local got; got=$(curl -fs -D - -o /dev/null -H "Authorization: Bearer $token" "${hdr[@]}" "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-encoding" {print $2}')
  echo "| $label | ${got:-identity} | $bytes | $(printf '%s\n' "${times[@]}" | median) |"
}

echo "Profile: $profile. 10,000 hosts, 100 groups, 10 vars per owner; median of $runs."
echo
echo "| GET /v1/inventory | Content-Encoding | bytes on the wire | time (s) |"
echo "|---|---|---|---|"
curl_row "no Accept-Encoding" identity
curl_row "Accept-Encoding: gzip" gzip
curl_row "Accept-Encoding: zstd" zstd
echo

# inventory_row LABEL PORT: median wall time of `craton-inventory --list` over REST.
inventory_row() {
  local label=$1 port=$2 times=() s e
  for _ in $(seq $((runs + 1))); do
    s=$(date +%s.%N)
    env -u CRATON_DATABASE_URL CRATON_URL="http://127.0.0.1:$port" CRATON_TOKEN="$token" $BIN/craton-inventory --list > "$work/out.json"
    e=$(date +%s.%N)
    times+=("$(echo "$e - $s" | bc)")
  done
  # The first run warms the daemon's snapshot: left out.
  echo "| $label | $(stat -c %s "$work/out.json") | $(printf '%s\n' "${times[@]:1}" | median) |"
}
direct=$( { time -p $BIN/craton-inventory --list > "$work/direct.json"; } 2>&1 | awk '/real/ {print $2}')
echo "| craton-inventory --list | output bytes | time (s) |"
echo "|---|---|---|"
inventory_row "over REST, gzip (daemon compresses)" "$on"
cmp -s "$work/out.json" "$work/direct.json" || { echo "REST output differs from the database's" >&2; exit 1; }
inventory_row "over REST, identity (--no-compression)" "$off"
cmp -s "$work/out.json" "$work/direct.json" || { echo "REST output differs from the database's" >&2; exit 1; }
echo "| from the database directly (one run) | $(stat -c %s "$work/direct.json") | $direct |"
