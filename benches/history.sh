#!/usr/bin/env bash
# The inventory as of a past time (issue 12, stage 2): what `craton-inventory
# --list --at REV` costs against the live `--list`, by how many change sets
# it undoes, on a 1,000-host project (SQLite). The project is imported (one
# bulk change set of ~12,000 changes), then N single-variable API writes
# (one change set each) go through a `cratond serve`. Prints the Markdown
# table of BENCHMARKS.md.
#
# usage: benches/history.sh [HOSTS] [WRITES]
#   CRATOND / CRATON_INVENTORY: the binaries (default target/release, else debug)
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-1000}
writes=${2:-200}
pick() { if [ -x "target/release/$1" ]; then echo "target/release/$1"; else echo "target/debug/$1"; fi; }
CRATOND=${CRATOND:-$(pick cratond)}
CRATON_INVENTORY=${CRATON_INVENTORY:-$(pick craton-inventory)}
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
export CRATON_CONFIG=/dev/null CRATON_DATABASE_URL="sqlite://$work/db.sqlite3"
unset CRATON_URL CRATON_PROJECT CRATON_VAULT_PASSWORD_FILE
python3 benches/gen_inventory.py "$hosts" 20 10 > "$work/inv.json"
"$CRATOND" migrate >/dev/null
"$CRATOND" import ansible "$work/inv.json" >/dev/null
"$CRATOND" serve --insecure-no-auth --no-sync --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
python3 - "$port" "$hosts" "$writes" <<'EOF'
import json, sys, urllib.request
port, hosts, writes = map(int, sys.argv[1:])
for i in range(writes):
    h = 1 + (i * 7919) % hosts
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/hosts/{h}/variables", method="PUT",
                                 data=json.dumps({"bench_k": i}).encode(), headers={"content-type": "application/json"})
    urllib.request.urlopen(req).read()
EOF
kill $server; wait $server 2>/dev/null || true
python3 - "$CRATON_INVENTORY" "$writes" <<'EOF'
import statistics, subprocess, sys, time
inv, writes = sys.argv[1], int(sys.argv[2])
def t(args, n=5):
    runs = []
    for _ in range(n):
        s = time.perf_counter()
        out = subprocess.run([inv, *args], check=True, capture_output=True).stdout
        runs.append(time.perf_counter() - s)
    return statistics.median(runs) * 1000, len(out)
# The import made revision 1; write i made revision 1 + i.
head = 1 + writes
live, size = t(["--list"])
print(f"| as of | change sets undone | --list (ms) | bytes |")
print(f"|---|---|---|---|")
print(f"| live | - | {live:.0f} | {size} |")
for undone in sorted({0, 1, 10, 50, 100, writes}):
    ms, size = t(["--list", "--at", str(head - undone)])
    print(f"| revision {head - undone} | {undone} | {ms:.0f} | {size} |")
ms, size = t(["--list", "--at", "0"])
print(f"| revision 0 (before the import) | {writes} + the import's bulk set | {ms:.0f} | {size} |")
EOF
