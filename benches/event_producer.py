#!/usr/bin/env python3
"""A synthetic ansible-playbook for benches/runs.sh: cratond starts it as the
run's ansible-playbook (CRATON_ANSIBLE_PLAYBOOK), and it speaks the callback's
wire format on CRATON_EVENTS_SOCKET as fast as it can, or at `bench_rate`
events/s: `bench_events` events over `bench_hosts` hosts, then
playbook_on_stats, then the summary file. The numbers come from the run's
extra vars (the run's environment is the daemon's to choose)."""
import json
import os
import socket
import sys
import time
import uuid

extra = {}
for a in sys.argv[1:]:
    if a.startswith("--extra-vars=@"):
        with open(a[len("--extra-vars=@"):]) as f:
            extra = json.load(f)
n = int(extra.get("bench_events", 200000))
hosts = int(extra.get("bench_hosts", 1000))
rate = float(extra.get("bench_rate", 0))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ["CRATON_EVENTS_SOCKET"])
res = json.dumps({"changed": False, "msg": "x" * 200})
task_uuid = str(uuid.uuid4())
start = time.time()
buf = []
counter = 0
for i in range(n):
    counter += 1
    now_ms = int(time.time() * 1000)
    h = "h%05d" % (i % hosts)
    buf.append(
        '{"counter":%d,"uuid":"%032x","parent_uuid":"%s","event":"runner_on_ok","created":%d,'
        '"host":"%s","play":"bench","task":"t%d","task_uuid":"%s","task_path":"pb.yml:%d",'
        '"changed":false,"res":%s,"duration_ms":1}\n'
        % (counter, counter, task_uuid, now_ms, h, i // hosts, task_uuid, i // hosts, res)
    )
    if len(buf) >= (64 if rate else 512):
        s.sendall("".join(buf).encode())
        buf = []
    if rate:
        ahead = counter / rate - (time.time() - start)
        if ahead > 0:
            time.sleep(ahead)
stats = {("h%05d" % i): {"ok": (n // hosts), "changed": 0, "failures": 0, "unreachable": 0,
                          "skipped": 0, "rescued": 0, "ignored": 0} for i in range(hosts)}
counter += 1
buf.append(json.dumps({"counter": counter, "uuid": uuid.uuid4().hex, "event": "playbook_on_stats",
                       "created": int(time.time() * 1000), "stats": stats}) + "\n")
s.sendall("".join(buf).encode())
s.close()
with open(os.environ["CRATON_EVENTS_SUMMARY"], "w") as f:
    json.dump({"emitted": counter, "dropped": 0}, f)
print("PLAY RECAP (synthetic): %d events in %.2f s" % (counter, time.time() - start))
sys.exit(0)
