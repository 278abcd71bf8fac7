# -*- coding: utf-8 -*-
# Streams a playbook run's events to the Craton daemon (issue 8, "Plays").
#
# Why a callback and not the PLAY RECAP text: the daemon needs structured,
# per-host results while the run is going, and a recap that does not depend on
# the stdout callback's formatting. The wire format is fixed by
# notes/runs-design.md: one JSON object per line on a Unix stream socket,
# `counter` contiguous from 1, a summary file with {"emitted", "dropped"} at
# the end so the daemon can tell whether it lost events.
#
# Why the background thread and bounded buffer: ansible-playbook must never
# wait for the daemon. Callbacks only encode and append; a daemon thread
# coalesces whatever has queued into one sendall. A full buffer or a broken
# socket drops events (they still take a counter, so the daemon sees the gap).
#
# stdlib only: the daemon writes this file into each run's work directory and
# ansible-core 2.16 .. 2.20 load it from there.
from __future__ import annotations

DOCUMENTATION = r"""
name: craton_events
type: notification
short_description: send run events to the Craton daemon over a Unix socket
description:
  - "Sends one JSON object per line to the Unix stream socket the Craton daemon
    listens on (ansible-runner event names), and writes a summary
    C({\"emitted\": N, \"dropped\": D}) when the playbook ends."
  - Never blocks the play; events that cannot be delivered are dropped and
    counted.
  - Results of tasks or loop items with C(no_log) are replaced by a censored
    marker before they leave the process.
requirements:
  - enable with C(ANSIBLE_CALLBACKS_ENABLED=craton_events)
options:
  socket:
    description: Path of the Unix stream socket to send events to. Without it
      the plugin disables itself.
    type: path
    env:
      - name: CRATON_EVENTS_SOCKET
  summary:
    description: "File to write C({\"emitted\": N, \"dropped\": D}) to at the end."
    type: path
    env:
      - name: CRATON_EVENTS_SUMMARY
  max_result_bytes:
    description: "A module result (or loop item) whose JSON is larger than this
      is sent as C({\"truncated\": true, \"bytes\": N}). An integer; read as
      text so a bad value costs a warning, not the plugin."
    type: str
    default: "65536"
    env:
      - name: CRATON_EVENTS_MAX_RESULT_BYTES
  runner_start:
    description: "Send a C(runner_on_start) event as each host starts each task
      (C(1), the default) or not (C(0)): they double the event count of a play
      and cost its main thread time; without them host results still carry
      their durations."
    type: str
    default: "1"
    env:
      - name: CRATON_EVENTS_RUNNER_START
  counter_start:
    description: "The counter of the first event is this plus one: a rolling
      run's batches are one ansible-playbook each, and their events one
      contiguous sequence. The summary counts this process's events only."
    type: str
    default: "0"
    env:
      - name: CRATON_EVENTS_COUNTER_START
"""

import atexit
import collections
import json
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Mapping

from ansible.plugins.callback import CallbackBase

CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
# Bounds on what may wait for the socket: enough for a burst of 100k small
# events, and a byte cap so a few huge results cannot eat the controller's memory.
QUEUE_MAX_EVENTS = 100000
QUEUE_MAX_BYTES = 256 * 1024 * 1024
FLUSH_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 2.0
# The writer looks at the queue this often (while flushing: FLUSH_POLL_S), so
# a burst of results goes out in one write and events reach the daemon within
# about POLL_S; one write carries at most BATCH_MAX_BYTES.
POLL_S = 0.05
FLUSH_POLL_S = 0.005
BATCH_MAX_BYTES = 4 * 1024 * 1024

_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)
_rng = random.Random()


def _uuid4():
    # uuid.uuid4() reads os.urandom per call; these ids only need to be unique.
    return str(uuid.UUID(int=_rng.getrandbits(128), version=4))


def _now_ms():
    return int(time.time() * 1000)


def _clean(value):
    """A JSON-safe copy of a module result: `_ansible_*` keys dropped, any
    nested result marked no_log (a loop item) censored, keys as strings,
    non-finite floats as strings."""
    if isinstance(value, Mapping):
        if value.get("_ansible_no_log"):
            return {"censored": CENSORED}
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                k = str(k)
            elif k.startswith("_ansible_"):
                continue
            out[k] = _clean(v)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _default(o):
    # Whatever json does not know (AnsibleUnsafeBytes, datetimes, custom
    # objects from third-party modules' action plugins) goes out as text.
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    return str(o)


def _encode(value):
    """UTF-8 JSON bytes; lone surrogates become U+FFFD so the line stays
    valid UTF-8 for the daemon."""
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def _capped(value, cap):
    """JSON bytes of `value` cleaned, or the truncation marker over `cap`."""
    try:
        b = _encode(_clean(value))
    except (ValueError, TypeError, RecursionError) as e:
        return _encode({"truncated": True, "bytes": 0, "error": "%s: %s" % (type(e).__name__, e)})
    if len(b) > cap:
        return _encode({"truncated": True, "bytes": len(b)})
    return b


class _Sender(object):
    """Bounded buffer of encoded lines and the thread that writes them.

    The play's thread and the writer share no lock: a lock the writer holds
    while the OS has it descheduled (a loaded controller) stalls the play's
    thread, and waking the writer per event costs a GIL hand-off per event;
    both were measured at several ms per event under load. Instead the play
    appends to a deque (atomic under the GIL) and the writer polls it every
    POLL_S, writing everything queued in one sendall. Each counter is
    written by one thread only."""

    def __init__(self, sock, start=0):
        self._sock = sock
        self._queue = collections.deque()
        self._start = start
        # Written by the play's thread only.
        self.counter = start
        self._accepted = 0
        self._accepted_bytes = 0
        self._closing = False
        self._flushing = False
        # Written by the writer only.
        self.delivered = 0
        self._taken = 0
        self._taken_bytes = 0
        self.broken = sock is None
        self.error = None
        self._thread = None
        if sock is not None:
            self._thread = threading.Thread(target=self._run, name="craton-events", daemon=True)
            self._thread.start()

    def emit(self, body):
        """Numbers `body` (an encoded JSON object) and queues it; drops it
        when the socket is gone or the buffer is full."""
        self.counter += 1
        if self.broken or self._closing:
            return
        if self._accepted - self._taken >= QUEUE_MAX_EVENTS:
            return
        line = b'{"counter":%d,' % self.counter + body[1:] + b"\n"
        if self._accepted_bytes - self._taken_bytes + len(line) > QUEUE_MAX_BYTES:
            return
        self._accepted += 1
        self._accepted_bytes += len(line)
        self._queue.append(line)

    def _run(self):
        q = self._queue
        while True:
            if not q:
                if self._closing:
                    break
                time.sleep(FLUSH_POLL_S if self._flushing else POLL_S)
                continue
            batch = []
            size = 0
            while q and size < BATCH_MAX_BYTES:
                line = q.popleft()
                batch.append(line)
                size += len(line)
            self._taken += len(batch)
            self._taken_bytes += size
            try:
                self._sock.sendall(b"".join(batch), _SEND_FLAGS)
            except OSError as e:
                self.error = e
                self.broken = True
                q.clear()
                break
            self.delivered += len(batch)
        try:
            self._sock.close()
        except OSError:
            pass

    def flush(self, timeout):
        """Waits (at most `timeout` seconds) until everything queued is
        written or the socket broke."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        self._flushing = True
        while self.delivered < self._accepted and not self.broken and time.monotonic() < deadline:
            time.sleep(FLUSH_POLL_S)
        self._flushing = False

    def close(self):
        """Stops the writer. A writer still stuck in sendall after the flush
        is cut off by shutting the socket down, which also gives the daemon
        its EOF even though forked workers may hold copies of the fd."""
        if self._thread is None:
            return
        self._closing = True
        self._thread.join(0.5)
        if self._thread.is_alive():
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._thread.join(0.5)

    def summary(self):
        emitted = self.counter - self._start
        return {"emitted": emitted, "dropped": emitted - self.delivered}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "craton_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._sender = None
        self._summary_path = None
        self._summary_written = None
        self._max_bytes = 65536
        self._warned_broken = False
        self._playbook_uuid = None
        self._play_name = None
        self._play_uuid = None
        self._tasks = {}  # task uuid -> (name, path)
        self._task_started = {}  # task uuid -> monotonic start
        self._host_started = {}  # (host, task uuid) -> monotonic start
        self._runner_start = True

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super(CallbackModule, self).set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        if self._sender is not None:
            return
        path = self.get_option("socket")
        if not path:
            self._display.warning("craton_events: CRATON_EVENTS_SOCKET is not set; not sending run events")
            self.disabled = True
            return
        self._summary_path = self.get_option("summary")
        raw = self.get_option("max_result_bytes")
        try:
            self._max_bytes = int(raw)
        except (TypeError, ValueError):
            self._display.warning("craton_events: CRATON_EVENTS_MAX_RESULT_BYTES=%r is not an integer; using 65536" % (raw,))
        self._runner_start = str(self.get_option("runner_start")).strip() != "0"
        try:
            start = max(0, int(self.get_option("counter_start")))
        except (TypeError, ValueError):
            start = 0
            self._display.warning("craton_events: CRATON_EVENTS_COUNTER_START is not an integer; counting from 1")
        sock = None
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(path)
            sock.settimeout(None)
        except OSError as e:
            if sock is not None:
                sock.close()
            sock = None
            self._display.warning("craton_events: cannot connect to %s (%s); run events are dropped" % (path, e))
            self._warned_broken = True
        self._sender = _Sender(sock, start)
        atexit.register(self._at_exit)

    # -- encoding ---------------------------------------------------------

    def _event(self, event, host=None, task=None, parent=None, **fields):
        """Encodes an event with every contract field; `item` and `res` are
        spliced in as already-capped JSON bytes."""
        if self._sender is None:
            return
        name = path = task_uuid = None
        if task is not None:
            task_uuid = getattr(task, "_uuid", None)
            known = self._tasks.get(task_uuid)
            if known is None:
                known = self._task_info(task)
                if task_uuid is not None:
                    self._tasks[task_uuid] = known
            name, path = known
        item = fields.pop("item", None)
        res = fields.pop("res", None)
        ev = {
            "uuid": _uuid4(),
            "parent_uuid": parent,
            "event": event,
            "created": _now_ms(),
            "host": host,
            "play": self._play_name,
            "play_uuid": self._play_uuid,
            "task": name,
            "task_uuid": task_uuid,
            "task_path": path,
            "changed": fields.get("changed"),
            "ignore_errors": fields.get("ignore_errors"),
            "duration_ms": fields.get("duration_ms"),
            "stats": fields.get("stats"),
        }
        head = _encode(ev)
        body = head[:-1] + b',"item":' + (item or b"null") + b',"res":' + (res or b"null") + b"}"
        self._sender.emit(body)
        if self._sender.broken and not self._warned_broken:
            self._warned_broken = True
            self._display.warning("craton_events: the event socket broke (%s); run events are dropped" % self._sender.error)
        return ev["uuid"]

    @staticmethod
    def _task_info(task):
        try:
            name = task.get_name().strip()
        except Exception:
            name = None
        try:
            path = task.get_path() or None
        except Exception:
            path = None
        return name, path

    @staticmethod
    def _parts(result):
        """(host name, task, result dict, task fields) across 2.16 (private
        attributes) and 2.19+ (public properties; the private ones are
        deprecated there)."""
        host = getattr(result, "host", None) or result._host
        task = getattr(result, "task", None) or result._task
        res = getattr(result, "result", None)
        if res is None:
            res = result._result
        fields = getattr(result, "task_fields", None)
        if fields is None:
            fields = getattr(result, "_task_fields", None) or {}
        return host.get_name(), task, res, fields

    @staticmethod
    def _no_log(task, res, fields):
        # Ansible has already censored these in its copy for callbacks, but
        # not loop items nested in `results` on every version; check every
        # marker so nothing marked no_log is sent in clear.
        return bool(
            res.get("_ansible_no_log") or "censored" in res or getattr(task, "no_log", None) is True or fields.get("no_log") is True
        )

    def _host_result(self, event, result, ignore_errors=None, item=False, final=True):
        host, task, res, fields = self._parts(result)
        task_uuid = getattr(task, "_uuid", None)
        now = time.monotonic()
        start = self._host_started.pop((host, task_uuid), None) if final else self._host_started.get((host, task_uuid))
        if start is None:
            start = self._task_started.get(task_uuid)
        duration = int((now - start) * 1000) if start is not None else None
        if not isinstance(res, Mapping):
            res = {}
        if self._no_log(task, res, fields):
            res_b = _encode({"censored": CENSORED})
            item_b = res_b if item else None
        else:
            res_b = _capped(res, self._max_bytes)
            item_b = None
            if item:
                loop_var = res.get("ansible_loop_var") or "item"
                item_b = _capped(res.get(loop_var), self._max_bytes)
        self._event(
            event,
            host=host,
            task=task,
            parent=task_uuid,
            changed=bool(res.get("changed", False)),
            ignore_errors=ignore_errors,
            duration_ms=duration,
            item=item_b,
            res=res_b,
        )

    def _safe(self, fn, *args):
        # A bug here must cost events, never the play.
        try:
            fn(*args)
        except Exception as e:
            self._display.warning("craton_events: %s: %s" % (type(e).__name__, e))

    # -- callbacks --------------------------------------------------------

    def _playbook_start(self):
        self._playbook_uuid = self._event("playbook_on_start")

    def v2_playbook_on_start(self, playbook):
        self._safe(self._playbook_start)

    def _play_start(self, play):
        try:
            self._play_name = play.get_name().strip()
        except Exception:
            self._play_name = None
        self._play_uuid = getattr(play, "_uuid", None)
        self._event("playbook_on_play_start", parent=self._playbook_uuid)

    def v2_playbook_on_play_start(self, play):
        self._safe(self._play_start, play)

    def v2_playbook_on_no_hosts_matched(self):
        self._safe(self._event, "playbook_on_no_hosts_matched", None, None, self._play_uuid)

    def _task_start(self, event, task):
        task_uuid = getattr(task, "_uuid", None)
        self._task_started[task_uuid] = time.monotonic()
        self._event(event, task=task, parent=self._play_uuid)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._safe(self._task_start, "playbook_on_task_start", task)

    def v2_playbook_on_handler_task_start(self, task):
        self._safe(self._task_start, "playbook_on_handler_task_start", task)

    def _on_start(self, host, task):
        name = host.get_name()
        task_uuid = getattr(task, "_uuid", None)
        self._host_started[(name, task_uuid)] = time.monotonic()
        if self._runner_start:
            self._event("runner_on_start", host=name, task=task, parent=task_uuid)

    def v2_runner_on_start(self, host, task):
        self._safe(self._on_start, host, task)

    def v2_runner_on_ok(self, result):
        self._safe(self._host_result, "runner_on_ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._safe(self._host_result, "runner_on_failed", result, bool(ignore_errors))

    def v2_runner_on_skipped(self, result):
        self._safe(self._host_result, "runner_on_skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._safe(self._host_result, "runner_on_unreachable", result)

    def v2_runner_item_on_ok(self, result):
        self._safe(self._host_result, "runner_item_on_ok", result, None, True, False)

    def v2_runner_item_on_failed(self, result):
        self._safe(self._host_result, "runner_item_on_failed", result, None, True, False)

    def v2_runner_item_on_skipped(self, result):
        self._safe(self._host_result, "runner_item_on_skipped", result, None, True, False)

    def v2_runner_retry(self, result):
        self._safe(self._host_result, "runner_retry", result, None, False, False)

    def _stats(self, stats):
        out = {}
        for host in sorted(stats.processed.keys()):
            s = stats.summarize(host)
            out[host] = {
                "ok": s.get("ok", 0),
                "changed": s.get("changed", 0),
                "failures": s.get("failures", 0),
                "unreachable": s.get("unreachable", 0),
                "skipped": s.get("skipped", 0),
                "rescued": s.get("rescued", getattr(stats, "rescued", {}).get(host, 0)),
                "ignored": s.get("ignored", getattr(stats, "ignored", {}).get(host, 0)),
            }
        self._event("playbook_on_stats", parent=self._playbook_uuid, stats=out)

    def v2_playbook_on_stats(self, stats):
        self._safe(self._stats, stats)
        self._finish()

    # -- end of run -------------------------------------------------------

    def _finish(self):
        if self._sender is None:
            return
        self._sender.flush(FLUSH_TIMEOUT_S)
        self._sender.close()
        self._write_summary()

    def _at_exit(self):
        # The play died before v2_playbook_on_stats (an exception, Ctrl-C):
        # still deliver what is queued and say how many events there were.
        try:
            if self._summary_written is None:
                self._finish()
            elif self._summary_written != self._sender.summary():
                self._write_summary()
        except Exception:
            pass

    def _write_summary(self):
        summary = self._sender.summary()
        self._summary_written = summary
        if not self._summary_path:
            return
        tmp = "%s.tmp.%d" % (self._summary_path, os.getpid())
        try:
            with open(tmp, "w") as f:
                json.dump(summary, f)
            os.replace(tmp, self._summary_path)
        except OSError as e:
            self._display.warning("craton_events: cannot write %s: %s" % (self._summary_path, e))
