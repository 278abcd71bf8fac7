"""craton_client against a live cratond over loopback.

Run by daemon/tests/python_client.rs, which starts the daemon (with a
master key, the runner and the sync workers) on each backend and sets:

- CRATON_TEST_URL, CRATON_TEST_TOKEN: the daemon and a root token;
- CRATON_TEST_REPO: a file:// git repository with site.yml, slow.yml and
  an inventory directory inv/ (group_vars/all.yml sets synced_var);
- CRATON_TEST_PYTHON: the interpreter the runs' ansible uses.

Nothing is mocked: the one stand-in is a local server answering 503 in the
retry test, because cratond cannot be made to answer 503 on demand.
"""

import http.server
import io
import os
import socket
import sys
import tarfile
import tempfile
import threading
import time
import unittest
import uuid

import craton_client
from craton_client import (
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    NotFound,
    TransportError,
    Unauthorized,
    Unavailable,
    UnsafeBundle,
)


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(name + " is not set: run this through `cargo test -p cratond --test python_client`")
    return value


URL = env("CRATON_TEST_URL")
ROOT = env("CRATON_TEST_TOKEN")
REPO = env("CRATON_TEST_REPO")
PYTHON = env("CRATON_TEST_PYTHON")


def unique(prefix):
    return "{0}_{1}".format(prefix, uuid.uuid4().hex[:8])


def client(**kw):
    return Client(URL, ROOT, timeout=20, **kw)


def wait_until(what, fn, within=60.0):
    deadline = time.monotonic() + within
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("not {0} within {1} s".format(what, within))
        time.sleep(0.2)


class Projects(unittest.TestCase):
    def test_crud_variables_and_paging(self):
        c = client()
        names = [unique("p") for _ in range(3)]
        made = [c.projects.create(n) for n in names]
        self.assertEqual([p["name"] for p in made], names)
        self.assertEqual(made[0]["variables"], {})
        # More pages than one: page_size 1 follows links.next to the end.
        first = c._json("GET", "/v1/projects", {"limit": 1})
        self.assertIn("next", first["links"])
        paged = [p["id"] for p in c.projects.list(page_size=1)]
        whole = [p["id"] for p in c.projects.list(page_size=1000)]
        self.assertEqual(paged, whole)
        self.assertEqual(paged, sorted(paged))
        self.assertTrue(set(p["id"] for p in made) <= set(paged))

        p = made[0]
        self.assertEqual(c.projects.get(p["id"])["name"], names[0])
        self.assertEqual(c.projects.find(names[0])["id"], p["id"])
        self.assertIsNone(c.projects.find(unique("missing")))
        renamed = unique("renamed")
        self.assertEqual(c.projects.rename(p["id"], renamed)["name"], renamed)
        self.assertEqual(c.projects.set_variables(p["id"], {"a": 1, "b": [1, 2]}), {"a": 1, "b": [1, 2]})
        self.assertEqual(c.projects.set_variables(p["id"], {"c": {"d": None}}), {"a": 1, "b": [1, 2], "c": {"d": None}})
        c.projects.delete_variables(p["id"], ["a", "c"])
        self.assertEqual(c.projects.variables(p["id"]), {"b": [1, 2]})
        for q in made:
            c.projects.delete(q["id"])
        with self.assertRaises(NotFound) as cm:
            c.projects.get(p["id"])
        self.assertEqual(cm.exception.status, 404)


class Tree(unittest.TestCase):
    """A project of its own: region > cell > hosts, with variables."""

    @classmethod
    def setUpClass(cls):
        cls.root = client()
        cls.project = cls.root.projects.create(unique("tree"))
        cls.c = client(project=cls.project["name"])

    @classmethod
    def tearDownClass(cls):
        cls.root.projects.delete(cls.project["id"])

    def test_groups_hosts_blame_filters_paging(self):
        c = self.c
        region = c.groups.create("region1", kind="region", description="the first region")
        cell = c.groups.create("cell1", kind="cell", parents=["region1"], priority=5)
        self.assertEqual(cell["parents"], ["region1"])
        self.assertEqual(c.groups.get(region["id"])["children"], ["cell1"])
        self.assertEqual(c.groups.find("cell1")["id"], cell["id"])
        self.assertIsNone(c.groups.find("nope"))
        self.assertEqual([g["name"] for g in c.groups.list(kind="cell")], ["cell1"])

        c.groups.set_variables(region["id"], {"ntp": "ntp.region", "level": "region"})
        c.groups.set_variables(cell["id"], {"level": "cell"})
        hosts = [c.hosts.create("node{0:02d}".format(i), groups=["cell1"], labels=["compute"] if i % 2 else []) for i in range(7)]
        c.hosts.set_variables(hosts[0]["id"], {"level": "host", "disks": [{"dev": "sda"}]})
        self.assertEqual(c.hosts.variables(hosts[0]["id"]), {"level": "host", "disks": [{"dev": "sda"}]})

        r = c.hosts.resolved_variables(hosts[1]["id"])
        self.assertEqual(r["variables"]["level"], "cell")
        self.assertEqual(r["variables"]["ntp"], "ntp.region")
        self.assertEqual(r["blame"]["level"]["owner"], "cell1")
        self.assertEqual(r["blame"]["level"]["owner_type"], "group")
        self.assertEqual(r["blame"]["ntp"]["owner"], "region1")
        own = c.hosts.resolved_variables(hosts[0]["id"])
        self.assertEqual(own["blame"]["level"], {"owner_type": "host", "owner": "node00", "tier": "inventory"})
        self.assertEqual(c.hosts.get(hosts[1]["id"], resolved=True)["variables"]["level"], "cell")

        # Paging across pages, with a filter the links carry along.
        raw = c._json("GET", "/v1/hosts", {"project": self.project["name"], "group": "region1", "limit": 2})
        self.assertEqual(len(raw["items"]), 2)
        self.assertIn("group=region1", raw["links"]["next"])
        paged = [h["name"] for h in c.hosts.list(group="region1", page_size=2)]
        self.assertEqual(paged, ["node{0:02d}".format(i) for i in range(7)])
        self.assertEqual([h["name"] for h in c.hosts.list(labels=["compute"], page_size=1)], ["node01", "node03", "node05"])
        self.assertEqual([h["name"] for h in c.hosts.list(vars={"level": "host"})], ["node00"])
        # Type-strict: the string "5" is not the number 5.
        c.hosts.set_variables(hosts[2]["id"], {"n": 5})
        self.assertEqual([h["name"] for h in c.hosts.list(vars={"n": 5})], ["node02"])
        self.assertEqual(list(c.hosts.list(vars={"n": "5"})), [])
        detailed = next(c.hosts.list(name="node00", details=True))
        self.assertEqual(detailed["variables"]["level"], "host")
        self.assertIn("last_run", detailed)

        # PATCH changes the fields given, PUT resets the others.
        h = c.hosts.update(hosts[3]["id"], ip_address="10.0.0.3", parent="node00")
        self.assertEqual((h["ip_address"], h["parent"], h["groups"]), ("10.0.0.3", "node00", ["cell1"]))
        self.assertEqual([x["name"] for x in c.hosts.list(parent="node00")], ["node03"])
        h = c.hosts.replace(hosts[3]["id"], "node03", active=False)
        self.assertEqual((h["ip_address"], h["parent"], h["groups"], h["active"]), (None, None, [], False))
        g = c.groups.update(cell["id"], priority=None, description="cell one")
        self.assertEqual((g["priority"], g["description"], g["parents"]), (None, "cell one", ["region1"]))
        g = c.groups.replace(region["id"], "region1")
        self.assertEqual((g["kind"], g["description"], g["children"]), ("", None, []))
        c.groups.delete_variables(region["id"], ["ntp"])
        self.assertEqual(c.groups.variables(region["id"]), {"level": "region"})

        inv = c.inventory.list()
        self.assertIn("node00", inv["_meta"]["hostvars"])
        self.assertEqual(inv["cell1"]["hosts"], ["node{0:02d}".format(i) for i in range(7) if i != 3])
        self.assertEqual(c.inventory.host("node00")["level"], "host")
        self.assertEqual(c.inventory.list(vars={"level": "host"})["_meta"]["hostvars"].keys(), {"node00"})
        with self.assertRaises(NotFound):
            c.inventory.host("nope")

        c.hosts.delete(hosts[6]["id"])
        with self.assertRaises(NotFound):
            c.hosts.get(hosts[6]["id"])
        c.groups.delete(region["id"])
        self.assertIsNone(c.groups.find("region1"))

    def test_errors_carry_the_details(self):
        c = self.c
        with self.assertRaises(BadRequest) as cm:
            c._json("POST", "/v1/groups", c._scoped(), {"name": "", "colour": "red", "priority": "high"})
        e = cm.exception
        self.assertEqual(e.status, 400)
        fields = e.field_errors()
        self.assertEqual(sorted(fields), ["colour"], e.details)
        self.assertIn("unknown field", fields["colour"])
        with self.assertRaises(BadRequest) as cm:
            c.groups.create("g_bad", priority="high")
        self.assertIn("priority", cm.exception.field_errors())
        self.assertIn("priority", str(cm.exception))
        self.assertIn("POST /v1/groups", str(cm.exception))
        c.groups.create("dup")
        with self.assertRaises(Conflict) as cm:
            c.groups.create("dup")
        self.assertEqual(cm.exception.status, 409)
        with self.assertRaises(NotFound) as cm:
            c.hosts.get(999999)
        self.assertIn("not found", cm.exception.message)
        with self.assertRaises(BadRequest) as cm:
            c.hosts.list(last_run_status="sideways").__next__()
        self.assertEqual(list(cm.exception.field_errors()), ["last_run_status"])
        self.assertTrue(isinstance(cm.exception, craton_client.ApiError))

        bad = Client(URL, "craton_not_a_token_at_all")
        with self.assertRaises(Unauthorized) as cm:
            bad.groups.get(1)
        self.assertNotIn("craton_not_a_token_at_all", str(cm.exception))
        self.assertNotIn("craton_not_a_token_at_all", repr(cm.exception))
        self.assertNotIn("craton_not_a_token_at_all", repr(bad))
        self.assertNotIn(ROOT, repr(c))

    def test_tokens(self):
        c = self.c
        made = c.tokens.create("reader", project=self.project["name"], description="py reader")
        self.assertEqual(made.role, "reader")
        self.assertNotIn(made.token, repr(made))
        listed = [t for t in c.tokens.list(project=self.project["name"]) if t["id"] == made.id]
        self.assertEqual(len(listed), 1)
        self.assertEqual(listed[0]["description"], "py reader")
        self.assertTrue(made.token.startswith(listed[0]["prefix"]))
        reader = Client(URL, made.token)
        self.assertEqual([p["name"] for p in reader.projects.list()], [self.project["name"]])
        with self.assertRaises(Forbidden):
            reader.groups.create(unique("g"))
        c.tokens.revoke(made.id)
        with self.assertRaises(Unauthorized):
            list(reader.groups.list())
        with self.assertRaises(NotFound):
            c.tokens.revoke(made.id + 100000)

    def test_secrets(self):
        c = self.c
        host = c.hosts.create(unique("sec"))
        value = "s3cret-" + uuid.uuid4().hex
        made = c.secrets.create("host", host["id"], "db_password", value, kind="password")
        self.assertEqual((made["name"], made["kind"], made["version"]), ("db_password", "password", 1))
        self.assertEqual(made["fingerprint"], craton_client.fingerprint(value, "password"))
        self.assertNotIn("value", made)
        self.assertEqual([s["name"] for s in c.secrets.list("host", host["id"])], ["db_password"])
        self.assertEqual(c.secrets.value("host", host["id"], "db_password"), value)
        with self.assertRaises(Conflict):
            c.secrets.create("host", host["id"], "db_password", value, kind="password")
        again = c.secrets.set("host", host["id"], "db_password", value + "2", kind="password")
        self.assertEqual(again["version"], 2)
        self.assertEqual(c.secrets.get("host", host["id"], "db_password")["versions"], [2, 1])
        with self.assertRaises(BadRequest) as cm:
            c.secrets.create("host", host["id"], "cert", "not pem", kind="certificate")
        self.assertIn("value", cm.exception.field_errors())
        self.assertNotIn("not pem", str(cm.exception))
        # Project and group owners.
        pid = self.project["id"]
        c.secrets.set("project", pid, "api_key", "k1")
        self.assertEqual(c.secrets.value("project", pid, "api_key"), "k1")
        group = c.groups.create(unique("sg"))
        c.secrets.set("group", group["id"], "g_key", "g1")
        self.assertEqual(c.secrets.find("group", group["id"], "g_key")["fingerprint"], craton_client.fingerprint("g1"))
        c.secrets.delete("host", host["id"], "db_password")
        self.assertIsNone(c.secrets.find("host", host["id"], "db_password"))
        c.secrets.delete("project", pid, "api_key")
        # A reader sees metadata, never values.
        made = c.tokens.create("reader", project=self.project["name"])
        with self.assertRaises(Forbidden):
            Client(URL, made.token).secrets.value("group", group["id"], "g_key")

    def test_bundles(self):
        c = self.c
        c.groups.create("bgroup")
        c.hosts.create("bhost", groups=["bgroup"])
        with tempfile.TemporaryDirectory() as d:
            b = c.bundles.download()
            self.assertTrue(b.etag)
            self.assertNotIn("data", repr(b))
            files = b.unpack(os.path.join(d, "tgz"))
            self.assertIn("ansible.cfg", files)
            self.assertTrue(any(f.startswith("hosts" + os.sep) for f in files), files)
            self.assertIsNone(c.bundles.download(etag=b.etag))
            z = c.bundles.download(group="bgroup", format="zip")
            zfiles = z.unpack(os.path.join(d, "zip"))
            self.assertIn("ansible.cfg", zfiles)
            fetched = c.bundles.fetch(os.path.join(d, "fetched"), group="bgroup")
            self.assertEqual(fetched.format, "tgz")
            with open(os.path.join(d, "fetched", "ansible.cfg")) as f:
                self.assertIn("inventory", f.read())
            with self.assertRaises(NotFound):
                c.bundles.download(group="no_such_group")

    def test_unsafe_bundles_are_refused(self):
        def tgz(*members):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as t:
                for info, data in members:
                    t.addfile(info, io.BytesIO(data) if data is not None else None)
            return buf.getvalue()

        def file_member(name, data=b"x"):
            i = tarfile.TarInfo(name)
            i.size = len(data)
            return i, data

        link = tarfile.TarInfo("hosts/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        with tempfile.TemporaryDirectory() as d:
            dest = os.path.join(d, "out")
            for bad in (
                tgz(file_member("ok.txt"), file_member("../escape.txt")),
                tgz(file_member("/abs.txt")),
                tgz(file_member("ok.txt"), (link, None)),
            ):
                with self.assertRaises(UnsafeBundle):
                    craton_client.unpack_bundle(bad, dest)
                self.assertEqual(os.listdir(dest), [], "nothing written before the check")
            self.assertFalse(os.path.exists(os.path.join(d, "escape.txt")))
            # A symlink already in the directory is not followed out.
            os.symlink(d, os.path.join(dest, "hosts"))
            with self.assertRaises(UnsafeBundle):
                craton_client.unpack_bundle(tgz(file_member("hosts/x.txt")), dest)
            self.assertFalse(os.path.exists(os.path.join(d, "x.txt")))
            with self.assertRaises(UnsafeBundle):
                craton_client.unpack_bundle(tgz(file_member("big", b"y" * 100)), os.path.join(d, "o2"), max_bytes=10)


class ConfigRefs(unittest.TestCase):
    def test_create_sync_and_ownership(self):
        root = client()
        project = root.projects.create(unique("refs"))
        c = client(project=project["name"])
        try:
            ref = c.config_refs.create(REPO, "main", path="inv", poll_interval=3600)
            self.assertEqual((ref["ref"], ref["path"], ref["group"]), ("main", "inv", None))
            synced = wait_until("synced", lambda: c.config_refs.get(ref["id"])["status"]["result"] == "ok" and c.config_refs.get(ref["id"]))
            self.assertEqual(len(synced["status"]["commit"]), 40)
            self.assertEqual(c.projects.variables(project["id"])["synced_var"], "from_git")
            with self.assertRaises(Conflict) as cm:
                c.projects.set_variables(project["id"], {"synced_var": "changed"})
            self.assertIn("config ref", cm.exception.message)
            accepted = c.config_refs.sync(ref["id"], force=True)
            self.assertEqual((accepted["id"], accepted["force"]), (ref["id"], True))
            self.assertEqual([r["id"] for r in c.config_refs.list(page_size=1)], [ref["id"]])
            c.config_refs.delete(ref["id"])
            self.assertNotIn("synced_var", c.projects.variables(project["id"]))
            with self.assertRaises(NotFound):
                c.config_refs.sync(ref["id"])
        finally:
            root.projects.delete(project["id"])


class CuttingProxy:
    """A loopback TCP proxy to the daemon that closes the first connection
    after ``cut`` bytes of the answer: a stream cut mid-way."""

    def __init__(self, upstream_port, cut):
        self.cut = cut
        self.connections = 0
        self.upstream = ("127.0.0.1", upstream_port)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:{0}".format(self.sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.cut if self.connections == 1 else None
            threading.Thread(target=self._serve, args=(conn, limit), daemon=True).start()

    def _serve(self, conn, limit):
        up = socket.create_connection(self.upstream)

        def forward():
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        return
                    up.sendall(data)
            except OSError:
                return

        threading.Thread(target=forward, daemon=True).start()
        sent = 0
        try:
            while True:
                data = up.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    conn.sendall(data[: limit - sent])
                    break
                conn.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (conn, up):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self):
        self.sock.close()


class Runs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = client()
        cls.project = cls.root.projects.create(unique("runs"))
        cls.c = client(project=cls.project["name"])
        cls.c.projects.set_variables(cls.project["id"], {"ansible_connection": "local", "ansible_python_interpreter": PYTHON})
        cls.c.groups.create("cellr")
        for n in ("r1", "r2"):
            cls.c.hosts.create(n, groups=["cellr"])

    @classmethod
    def tearDownClass(cls):
        cls.root.projects.delete(cls.project["id"])

    def test_submit_stream_resume_and_read(self):
        c = self.c
        run = c.runs.submit("site.yml", repo=REPO, ref="main", group="cellr", extra_vars={"greeting": "hi"})
        self.assertIn(run["status"], ("queued", "running"))
        events = list(c.runs.events(run["id"]))
        self.assertEqual(events[-1].event, "end")
        self.assertEqual(events[-1].data["status"], "successful", events[-1].data)
        run_events = [e for e in events if e.event == "run_event"]
        counters = [e.id for e in run_events]
        self.assertEqual(counters, sorted(set(counters)), "each event once, in counter order")
        self.assertEqual(run_events[0].data["counter"], counters[0])
        self.assertEqual(run_events[-1].data["event"], "playbook_on_stats")
        stored = [e["counter"] for e in c.runs.stored_events(run["id"], page_size=3)]
        self.assertEqual(stored, counters)

        # Resume after a counter: only what follows.
        later = [e.id for e in c.runs.events(run["id"], after=counters[2]) if e.event == "run_event"]
        self.assertEqual(later, counters[3:])

        # A stream cut mid-way resumes with Last-Event-ID: every event once.
        port = int(URL.rsplit(":", 1)[1])
        proxy = CuttingProxy(port, cut=1500)
        try:
            via = Client(proxy.url, ROOT, project=self.project["name"], backoff=0.05)
            resumed = [e.id for e in via.runs.events(run["id"]) if e.event == "run_event"]
        finally:
            proxy.close()
        self.assertGreaterEqual(proxy.connections, 2, "the stream was cut and reopened")
        self.assertEqual(resumed, counters)

        done = c.runs.get(run["id"])
        self.assertEqual((done["status"], done["rc"], done["playbook"]), ("successful", 0, "site.yml"))
        self.assertEqual(done["counts"]["hosts"], 2)
        self.assertEqual(sorted(h["host"] for h in c.runs.hosts(run["id"])), ["r1", "r2"])
        self.assertTrue(all(h["status"] in ("ok", "changed") for h in c.runs.hosts(run["id"])))
        out = c.runs.stdout(run["id"])
        self.assertIn("PLAY RECAP", out.text)
        self.assertFalse(out.truncated)
        self.assertEqual(len(c.runs.stdout(run["id"], tail=10).text.encode()), 10)
        b = c.runs.bundle(run["id"])
        self.assertEqual(b.etag, done["bundle_etag"])
        with tempfile.TemporaryDirectory() as d:
            self.assertIn("ansible.cfg", b.unpack(d))
        self.assertIn(run["id"], [r["id"] for r in c.runs.list(status="successful")])
        self.assertEqual(c.runs.wait(run["id"], timeout=5)["status"], "successful")

    def test_list_pages_and_cancel(self):
        c = self.c
        slow = c.runs.submit("slow.yml", repo=REPO, ref="main", group="cellr")
        wait_until("running", lambda: c.runs.get(slow["id"])["status"] == "running")
        asked = c.runs.cancel(slow["id"], mode="immediate")
        self.assertEqual(asked["id"], slow["id"])
        self.assertEqual(c.runs.wait(slow["id"], timeout=60)["status"], "canceled")
        with self.assertRaises(BadRequest) as cm:
            c.runs.cancel(slow["id"], mode="sideways")
        self.assertEqual(list(cm.exception.field_errors()), ["mode"])
        with self.assertRaises(BadRequest) as cm:
            c.runs.submit("../x.yml", repo=REPO, ref="main")
        self.assertIn("playbook", cm.exception.field_errors())
        quick = c.runs.submit("site.yml", repo=REPO, ref="main", group="cellr")
        c.runs.wait(quick["id"], timeout=120)
        ids = [r["id"] for r in c.runs.list(page_size=1)]
        self.assertEqual(ids, sorted(ids, reverse=True), "newest first")
        self.assertTrue({slow["id"], quick["id"]} <= set(ids))
        with self.assertRaises(NotFound):
            c.runs.get(999999)


class Unavailable503(http.server.BaseHTTPRequestHandler):
    """Answers every request 503 with the API's error body, counting."""

    hits = []

    def _answer(self):
        self.hits.append(self.command)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b'{"error": {"status": 503, "message": "service unavailable: retry later"}}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _answer

    def log_message(self, *args):
        pass


class Retries(unittest.TestCase):
    def test_only_idempotent_requests_are_retried(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable503)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            c = Client("http://127.0.0.1:{0}".format(server.server_address[1]), ROOT, retries=2, backoff=0.01)
            for method, call in (
                ("GET", lambda: c.groups.get(1)),
                ("PUT", lambda: c.groups.set_variables(1, {"a": 1})),
                ("DELETE", lambda: c.groups.delete(1)),
                ("POST", lambda: c.groups.create("g")),
                ("PATCH", lambda: c.groups.update(1, kind="x")),
            ):
                del Unavailable503.hits[:]
                with self.assertRaises(Unavailable) as cm:
                    call()
                self.assertEqual(cm.exception.retry_after, 0.0)
                want = 3 if method in ("GET", "PUT", "DELETE") else 1
                self.assertEqual(Unavailable503.hits, [method] * want, method)
        finally:
            server.shutdown()
            server.server_close()

    def test_connection_errors(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        c = Client("http://127.0.0.1:{0}".format(port), ROOT, retries=1, backoff=0.01)
        started = time.monotonic()
        with self.assertRaises(TransportError) as cm:
            c.groups.get(1)
        self.assertLess(time.monotonic() - started, 5)
        self.assertNotIn(ROOT, str(cm.exception))
        with self.assertRaises(ValueError):
            Client("ftp://example", ROOT)
        with self.assertRaises(ValueError):
            Client("http://user:pw@example", ROOT)

    def test_health_and_openapi(self):
        self.assertEqual(Client(URL, None).health()["status"], "ok")
        self.assertIn("/v1/hosts/{id}/variables", client().openapi()["paths"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
