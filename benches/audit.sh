#!/usr/bin/env bash
# The audit trail's cost on a 10,000-host import (issue 12), per backend:
# trail off (baseline), change rows, and as shipped (one document per bulk
# change set). Prints the Markdown table of BENCHMARKS.md.
#
# usage: benches/audit.sh [HOSTS]   (PostgreSQL and MariaDB running)
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-10000}
cargo bench --bench audit_import --no-run -q
BIN=$(ls -t target/release/deps/audit_import-* | grep -v '\.d$' | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 benches/gen_inventory.py "$hosts" 100 10 > "$work/inv.json"

fresh_url() {
  local backend=$1 name="craton_abench_$$_$2"
  case $backend in
    sqlite) echo "sqlite://$work/$name.sqlite3" ;;
    postgres)
      psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
      echo "postgres://postgres@127.0.0.1:5432/$name" ;;
    mysql)
      mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $name; CREATE DATABASE $name CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
      echo "mysql://root@127.0.0.1:3306/$name" ;;
  esac
}

echo "| backend | hosts | mode | import (s) | re-import, 1 var per host changed (s) |"
echo "|---|---|---|---|---|"
for b in sqlite postgres mysql; do
  for mode in off rows auto; do
    read -r first second < <("$BIN" "$(fresh_url "$b" "$mode")" "$work/inv.json" "$mode")
    echo "| $b | $hosts | $mode | $first | $second |"
  done
done
