#!/usr/bin/env bash
# Secrets into Ansible at fleet size (issue 9), printing Markdown: a
# 10,000-host project where every host has one secret (a 200-byte password),
# on SQLite; `craton-inventory --list` without and with a vault password
# (one PBKDF2 derivation per output, then AES-CTR + HMAC per value), the
# same over REST, a client-mode bundle, and what Ansible then needs: parsing
# the script output, and a one-task play that decrypts all 10,000 values.
#
# usage: benches/secrets.sh [HOSTS]   (default 10000; needs the .venv of tests/run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-10000}
[ "${CRATON_BENCH_SKIP_BUILD:-0}" = 1 ] || cargo build --release -p cratond -p craton-inventory -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
VENV=$PWD/.venv
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

export CRATON_DATABASE_URL="sqlite://$work/bench.sqlite3" CRATON_CONFIG=/dev/null
export CRATON_MASTER_KEY_FILE=$work/master.key
{ echo "[fleet]"; for i in $(seq 0 $((hosts - 1))); do printf 'h%05d\n' "$i"; done; } > "$work/inv.ini"
$BIN/cratond migrate >/dev/null
$BIN/cratond import ansible "$work/inv.ini" >/dev/null
token=$($BIN/cratond token create --root)
CRATON_LOG=warn $BIN/cratond serve --listen "127.0.0.1:$port" --no-sync >"$work/serve.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$port"
for _ in $(seq 50); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.2; done

# One secret per host, over one keep-alive connection.
setup_s=$(python3 - "$port" "$token" <<'PY'
import http.client, json, sys, time
port, token = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPConnection("127.0.0.1", port)
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
def call(method, path, body=None):
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse(); data = r.read()
    assert r.status in (200, 201), (path, r.status, data)
    return json.loads(data)
items, path = [], "/v1/hosts?limit=1000"
while path:
    page = call("GET", path)
    items += page["items"]
    nxt = (page.get("links") or {}).get("next")
    path = nxt[nxt.index("/v1/"):] if nxt else None
t = time.time()
for hst in items:
    call("POST", f"/v1/hosts/{hst['id']}/secrets", {"name": "host_password", "kind": "password", "value": ("p" * 190) + hst["name"]})
print(f"{time.time() - t:.1f}")
PY
)
printf 'x%.0s' $(seq 24) > "$work/pw"

# median of N runs of a command, in seconds
median() {
  local n=$1; shift
  python3 - "$n" "$@" <<'PY'
import subprocess, sys, time
n, cmd = int(sys.argv[1]), sys.argv[2:]
ts = []
for _ in range(n):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    ts.append(time.perf_counter() - t)
ts.sort()
print(f"{ts[len(ts)//2]:.2f}")
PY
}
inv=$BIN/craton-inventory
plain=$(median 5 env -u CRATON_VAULT_PASSWORD_FILE $inv --list)
vaulted=$(median 5 env CRATON_VAULT_PASSWORD_FILE=$work/pw $inv --list)
rest=$(median 5 env -u CRATON_DATABASE_URL CRATON_URL=$base CRATON_TOKEN=$token CRATON_VAULT_PASSWORD_FILE=$work/pw $inv --list)
bundle=$(median 3 curl -fs -o /dev/null -H "Authorization: Bearer $token" "$base/v1/inventory.tgz?vault=client")
CRATON_VAULT_PASSWORD_FILE=$work/pw $inv --list > "$work/list.json"
size=$(stat -c %s "$work/list.json")
cat > "$work/cat.sh" <<SH
#!/bin/sh
exec cat $work/list.json
SH
chmod +x "$work/cat.sh"
export ANSIBLE_HOME=$work/.ansible ANSIBLE_INVENTORY_ENABLED=script ANSIBLE_CONFIG=$work/none.cfg
parse=$(median 3 $VENV/bin/ansible-inventory -i "$work/cat.sh" --list --vault-id "craton@$work/pw")
cat > "$work/all.yml" <<'YML'
- hosts: localhost
  gather_facts: false
  tasks:
    - assert:
        that: (groups['fleet'] | map('extract', hostvars, 'host_password') | map('length') | select('equalto', 196) | list | length) == (groups['fleet'] | length)
YML
decrypt=$(median 1 $VENV/bin/ansible-playbook -i "$work/cat.sh" "$work/all.yml" -c local --vault-id "craton@$work/pw")

echo "| $hosts hosts, one secret each (SQLite, release) | seconds |"
echo "|---|---|"
echo "| creating the secrets through the API (one POST each) | $setup_s |"
echo "| \`craton-inventory --list\`, no password (secrets left out) | $plain |"
echo "| \`craton-inventory --list\` with CRATON_VAULT_PASSWORD_FILE (database) | $vaulted |"
echo "| the same over REST (\`X-Craton-Vault-Password\`) | $rest |"
echo "| \`GET /v1/inventory.tgz?vault=client\` | $bundle |"
echo "| \`ansible-inventory --list\` of that output ($((size / 1024)) KiB) | $parse |"
echo "| a play that decrypts all $hosts values (one task, localhost) | $decrypt |"
