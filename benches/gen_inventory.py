#!/usr/bin/env python3
"""Writes a synthetic fleet as inventory-script JSON for the benchmarks.

usage: gen_inventory.py HOSTS GROUPS VARS_PER_OWNER > inventory.json

Groups: 4 regions, cells under them, and a few role groups that cut across;
each host is in one cell and one role. Every group and every host gets
VARS_PER_OWNER variables of mixed types, with keys that overlap across
levels so precedence matters.
"""
import json
import sys

hosts_n, groups_n, vars_n = (int(a) for a in sys.argv[1:4])
regions = [f"region{i}" for i in range(4)]
roles = [f"role_{i}" for i in range(max(1, groups_n // 16))]
cells = [f"cell{i:03d}" for i in range(groups_n - len(regions) - len(roles))]


def vars_for(owner, n):
    out = {}
    for i in range(n):
        k = f"var{i:02d}"
        kind = i % 5
        if kind == 0:
            out[k] = f"{owner}-value-{i}"
        elif kind == 1:
            out[k] = i * 1000 + len(owner)
        elif kind == 2:
            out[k] = [owner, i, True]
        elif kind == 3:
            out[k] = {"owner": owner, "n": i, "nested": {"ok": i % 2 == 0}}
        else:
            out[k] = i % 2 == 0
    return out


doc = {"all": {"vars": vars_for("all", vars_n), "children": regions + roles}}
for r_i, r in enumerate(regions):
    doc[r] = {"children": [c for c_i, c in enumerate(cells) if c_i % len(regions) == r_i], "vars": vars_for(r, vars_n)}
members = {g: [] for g in cells + roles}
hostvars = {}
for h in range(hosts_n):
    name = f"node{h:06d}.example.net"
    members[cells[h % len(cells)]].append(name)
    members[roles[h % len(roles)]].append(name)
    hv = vars_for(name, vars_n)
    hv["ansible_host"] = f"10.{h // 65536 % 256}.{h // 256 % 256}.{h % 256}"
    hostvars[name] = hv
for g in cells + roles:
    doc[g] = {"hosts": members[g], "vars": vars_for(g, vars_n)}
doc["_meta"] = {"hostvars": hostvars}
json.dump(doc, sys.stdout)
