#!/usr/bin/env bash
# Run benchmarks (issue 8), printing Markdown:
#  1. ingest: a synthetic producer (benches/event_producer.py) stands in for
#     ansible-playbook and sends BENCH_EVENTS events over the run's socket as
#     fast as it can; events/s from the run's start to its recorded end, on
#     SQLite and PostgreSQL;
#  2. latency: the same at a fixed 20,000 events/s, with an SSE client
#     (benches/sse_latency.py) measuring event-to-client latency;
#  3. a real 1,000-host play (local connection, 5 tasks, forks 50): wall
#     time through cratond (callback on) against the same ansible-playbook
#     on the same bundle without Craton's callback.
#
# usage: benches/runs.sh [EVENTS]   (default 200000; needs the .venv of tests/run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-200000}
# CRATON_BENCH_SKIP_BUILD=1 uses the release binary as it is.
[ "${CRATON_BENCH_SKIP_BUILD:-0}" = 1 ] || cargo build --release -p cratond -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
VENV=$PWD/.venv
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One playbook repository, local and bare.
git init -q --bare "$work/pb.git"
git clone -q "$work/pb.git" "$work/src" 2>/dev/null
cat > "$work/src/site.yml" <<'YML'
- hosts: all
  gather_facts: false
  tasks:
    - debug: msg="one {{ inventory_hostname }}"
    - set_fact: x=1
    - debug: msg="three"
    - assert: {that: x == 1}
    - debug: msg="five"
YML
git -C "$work/src" add site.yml
git -C "$work/src" -c user.email=b@b -c user.name=b commit -qm bench
git -C "$work/src" push -q origin HEAD:main 2>/dev/null
py=$VENV/bin/python
{ echo "[all:vars]"; echo "ansible_connection=local"; echo "ansible_python_interpreter=$py"; echo "[fleet]";
  for i in $(seq 0 999); do printf 'h%05d\n' "$i"; done; } > "$work/inv.ini"

# start_daemon URL PLAYBOOK_BINARY -> sets base, token
start_daemon() {
  export CRATON_DATABASE_URL=$1 CRATON_CONFIG=/dev/null CRATON_ANSIBLE_PLAYBOOK=$2
  export CRATON_GIT_CACHE_DIR=$work/git CRATON_RUNS_DIR=$work/runs
  $BIN/cratond migrate >/dev/null
  $BIN/cratond import ansible "$work/inv.ini" >/dev/null
  token=$($BIN/cratond token create --root)
  local port; port=$(free_port)
  CRATON_LOG=warn $BIN/cratond serve --listen "127.0.0.1:$port" --no-sync >"$work/serve.log" 2>&1 &
  pids+=($!)
  base="http://127.0.0.1:$port"
  for _ in $(seq 50); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.2; done
}
stop_daemon() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }
# submit [EXTRA_VARS_JSON]
submit() {
  curl -fs -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"playbook\": \"site.yml\", \"repo\": \"file://$work/pb.git\", \"ref\": \"main\", \"forks\": 50, \"extra_vars\": ${1:-{\}}}" \
    "$base/v1/runs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
wait_run() {
  while :; do
    local r; r=$(curl -fs -H "Authorization: Bearer $token" "$base/v1/runs/$1")
    if echo "$r" | python3 -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if r["finished_at"] else 1)'; then echo "$r"; return; fi
    sleep 0.2
  done
}
field() { python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }

# CRATON_BENCH_ONLY_PLAY=1 skips 1. and 2.; CRATON_BENCH_PLAY_ROUNDS=N
# (default 1) alternates the two sides of 3. N times and reports medians.
if [ "${CRATON_BENCH_ONLY_PLAY:-0}" != 1 ]; then
echo "| backend | events | ingest events/s | events stored | lost |"
echo "|---|---|---|---|---|"
pg_db="craton_bench_$$"
for backend in sqlite postgres; do
  if [ $backend = sqlite ]; then url="sqlite://$work/bench.sqlite3"; else
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $pg_db" >/dev/null; url="postgres://postgres@127.0.0.1/$pg_db"; fi
  start_daemon "$url" "$PWD/benches/event_producer.py"
  id=$(submit "{\"bench_events\": $events}"); r=$(wait_run "$id")
  echo "| $backend | $events | $(echo "$r" | field '"%.0f" % (r["events"]["received"] / ((r["finished_at"] - r["started_at"]) / 1000))') | $(echo "$r" | field 'r["events"]["received"]') | $(echo "$r" | field 'r["events"]["lost"]') |"
  # Latency at 20,000 events/s, 10 s.
  id=$(submit '{"bench_events": 200000, "bench_rate": 20000}')
  lat=$(python3 benches/sse_latency.py "$base" "$token" "$id")
  wait_run "$id" >/dev/null
  lat_rows+=("| $backend | 20000 | $lat |")
  stop_daemon
  rm -f "$work"/bench.sqlite3*
  [ $backend = postgres ] && psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE $pg_db" >/dev/null
done
echo
echo "| backend | rate (events/s) | SSE client: events, latency p50/p99/max (ms) |"
echo "|---|---|---|"
printf '%s\n' "${lat_rows[@]}"
fi

# The real play, alternating the two sides.
start_daemon "sqlite://$work/play.sqlite3" "$VENV/bin/ansible-playbook"
rounds=${CRATON_BENCH_PLAY_ROUNDS:-1}
craton_all=(); plain_all=()
for round in $(seq "$rounds"); do
  id=$(submit); r=$(wait_run "$id")
  craton_all+=("$(echo "$r" | field '"%.1f" % ((r["finished_at"] - r["started_at"]) / 1000)')")
  if [ ! -d "$work/bundle" ]; then
    mkdir -p "$work/bundle" && curl -fs -H "Authorization: Bearer $token" "$base/v1/runs/$id/bundle" | tar -xz -C "$work/bundle"
  fi
  start=$(date +%s.%N)
  (cd "$work/src" && env -i PATH="$PATH" HOME="$HOME" ANSIBLE_NOCOLOR=1 "$VENV/bin/ansible-playbook" -i "$work/bundle/hosts" --forks=50 site.yml >/dev/null) || true
  plain_all+=("$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")")
done
stop_daemon
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
craton_s=$(median "${craton_all[@]}"); plain_s=$(median "${plain_all[@]}")
echo "rounds: through cratond ${craton_all[*]}; alone ${plain_all[*]}" >&2
echo
echo "| 1,000-host play, 5 tasks, forks 50 (median of $rounds) | wall (s) |"
echo "|---|---|"
echo "| through cratond (callback, events stored) | $craton_s |"
echo "| ansible-playbook alone, same bundle | $(printf '%.1f' "$plain_s") |"
echo "| ratio | $(echo "scale=3; $craton_s / $plain_s" | bc) |"
echo "| events of the play | $(echo "$r" | field 'r["events"]["received"]') |"
