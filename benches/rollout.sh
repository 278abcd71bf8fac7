#!/usr/bin/env bash
# Per-batch cost of a rollout: the same 40-host play as one run and as
# batches of 10 (4 ansible-playbook processes), through cratond run --local.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CARGO_TARGET_DIR:-$PWD/target}/debug
[ "${CRATON_BENCH_SKIP_BUILD:-0}" = 1 ] || cargo build -p cratond -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git init -q --bare "$work/pb.git"; git clone -q "$work/pb.git" "$work/src" 2>/dev/null
printf -- '- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg=one\n    - set_fact: x=1\n    - debug: msg=three\n' > "$work/src/site.yml"
git -C "$work/src" add site.yml; git -C "$work/src" -c user.email=b@b -c user.name=b commit -qm b; git -C "$work/src" push -q origin HEAD:main 2>/dev/null
py=$PWD/.venv/bin/python
{ echo "[all:vars]"; echo "ansible_connection=local"; echo "ansible_python_interpreter=$py"; echo "[fleet]"; for i in $(seq 0 39); do printf 'h%03d\n' "$i"; done; } > "$work/inv.ini"
export CRATON_DATABASE_URL=sqlite://$work/c.db CRATON_CONFIG=/dev/null CRATON_ANSIBLE_PLAYBOOK=$PWD/.venv/bin/ansible-playbook
export CRATON_GIT_CACHE_DIR=$work/git CRATON_RUNS_DIR=$work/runs PATH=$PWD/.venv/bin:$PATH
$BIN/cratond migrate >/dev/null; $BIN/cratond import ansible "$work/inv.ini" >/dev/null
for round in 1 2 3; do
  for mode in single batch; do
    extra=(); [ $mode = batch ] && extra=(--batch 10)
    s=$(date +%s.%N)
    $BIN/cratond run site.yml --repo "file://$work/pb.git" --ref main --group fleet --local "${extra[@]}" >/dev/null 2>&1 || true
    e=$(date +%s.%N)
    echo "$round $mode $(echo "$e - $s" | bc)"
  done
done
