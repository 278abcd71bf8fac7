#!/usr/bin/env bash
# Builds Craton, imports the example inventory into the embedded SQLite
# database (or CRATON_DATABASE_URL) and shows what Ansible sees through
# craton-inventory.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for p in libmariadb-dev-compat libpq-dev python3-venv; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! .venv/bin/ansible-inventory --version >/dev/null 2>&1; then
  python3 -m venv .venv && .venv/bin/pip install -q --disable-pip-version-check "ansible-core==2.19.14"
fi

cargo build --release
./target/release/cratond import ansible ansible/examples/inventory
export ANSIBLE_INVENTORY_ENABLED=script
.venv/bin/ansible-inventory -i ./target/release/craton-inventory --graph
.venv/bin/ansible-playbook -i ./target/release/craton-inventory ansible/examples/show-vars.yml
