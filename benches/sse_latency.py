#!/usr/bin/env python3
"""Reads a run's SSE stream (benches/runs.sh) and prints, as JSON, how many
events arrived and the latency from each event's `created` (set by the
producer) to its arrival here: p50, p99, max (ms).
usage: sse_latency.py BASE_URL TOKEN RUN_ID"""
import http.client
import json
import sys
import time
import urllib.parse

base, token, run = sys.argv[1], sys.argv[2], sys.argv[3]
u = urllib.parse.urlparse(base)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
c.request("GET", "/v1/runs/%s/events" % run, headers={"Authorization": "Bearer " + token, "Accept": "text/event-stream"})
r = c.getresponse()
lat = []
event = None
while True:
    line = r.fp.readline()
    if not line:
        break
    line = line.rstrip(b"\n")
    if line.startswith(b"event: "):
        event = line[7:].decode()
    elif line.startswith(b"data: ") and event == "run_event":
        now = time.time() * 1000
        created = json.loads(line[6:]).get("created")
        if created:
            lat.append(now - created)
    elif line.startswith(b"data: ") and event == "end":
        break
lat.sort()
q = lambda p: round(lat[min(len(lat) - 1, int(len(lat) * p))], 1) if lat else None
print(json.dumps({"events": len(lat), "p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": q(1.0)}))
