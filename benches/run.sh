#!/usr/bin/env bash
# Inventory benchmarks: import and `craton-inventory --list` on SQLite,
# PostgreSQL and MariaDB, for 10,000 hosts / 100 groups / 10 vars per owner,
# and 100,000 hosts on SQLite for scaling. Prints a Markdown table; the
# numbers in BENCHMARKS.md come from this script.
#
# usage: benches/run.sh [--quick]   (needs hyperfine and /usr/bin/time:
#        apt-get install hyperfine time; PostgreSQL and MariaDB running)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace -q
BIN=target/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runs=20
[ "${1:-}" = "--quick" ] && runs=5

python3 benches/gen_inventory.py 10000 100 10 > "$work/inv10k.json"
python3 benches/gen_inventory.py 100000 100 10 > "$work/inv100k.json"

fresh_url() {
  local backend=$1 name="craton_bench_$$_$2"
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

echo "| backend | hosts | import (s) | re-import no-op (s) | --list mean (ms) | --list stddev (ms) | --list peak RSS (MB) | output (MB) |"
echo "|---|---|---|---|---|---|---|---|"
bench() {
  local backend=$1 file=$2 hosts=$3
  local url; url=$(fresh_url "$backend" "$hosts")
  export CRATON_DATABASE_URL=$url CRATON_CONFIG=/dev/null
  local t0 t1 t2
  t0=$(date +%s.%N); $BIN/cratond import ansible "$file" >/dev/null; t1=$(date +%s.%N)
  $BIN/cratond import ansible "$file" >/dev/null; t2=$(date +%s.%N)
  hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/h.json" "$BIN/craton-inventory --list" >/dev/null 2>&1
  local mean sd rss size
  mean=$(python3 -c "import json;r=json.load(open('$work/h.json'))['results'][0];print(f\"{r['mean']*1000:.1f}\")")
  sd=$(python3 -c "import json;r=json.load(open('$work/h.json'))['results'][0];print(f\"{r['stddev']*1000:.1f}\")")
  rss=$( { /usr/bin/time -f %M $BIN/craton-inventory --list >/dev/null; } 2>&1 | tail -1)
  size=$($BIN/craton-inventory --list | wc -c)
  printf '| %s | %s | %.2f | %.2f | %s | %s | %.1f | %.1f |\n' "$backend" "$hosts" \
    "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$mean" "$sd" "$(echo "$rss / 1024" | bc -l)" "$(echo "$size / 1048576" | bc -l)"
}
for b in sqlite postgres mysql; do bench "$b" "$work/inv10k.json" 10000; done
bench sqlite "$work/inv100k.json" 100000
