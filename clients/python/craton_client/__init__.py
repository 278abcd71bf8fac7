# -*- coding: utf-8 -*-
# Copyright: Craton developers
# Apache License 2.0 (see LICENSE in the Craton repository)
"""A client for the Craton REST API v1, on the standard library alone.

Hand-written rather than generated from ``/v1/openapi.json``: the API is
small (a few dozen routes, one error shape, one paging scheme), a generator
would add a build step to CI and a runtime dependency, and what a generator
cannot give is most of the value here: paging as iterators, the SSE event
stream with resumption, safe bundle unpacking, retries on idempotent
requests only, and tokens kept out of every repr and message.

This module is one file on purpose: the Ansible collection ``craton.craton``
vendors it byte for byte as ``plugins/module_utils/craton_client.py`` (a
test keeps the copies identical), so it imports nothing but the standard
library and runs on Python 3.8 and later.

    from craton_client import Client

    c = Client("https://craton.example:8080", token)
    for host in c.hosts.list(group="cell1"):
        print(host["name"])
"""

from __future__ import absolute_import, annotations, division, print_function

import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import random
import re
import ssl
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

try:
    from typing import TypedDict
except ImportError:  # pragma: no cover - Python < 3.8 is not supported
    TypedDict = dict  # type: ignore

__metaclass__ = type
__version__ = "0.1.0"
__all__ = [
    "ApiError",
    "BadRequest",
    "Bundle",
    "Client",
    "Conflict",
    "CratonError",
    "CreatedToken",
    "FieldError",
    "Forbidden",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RequestTimeout",
    "RunEvent",
    "ServerError",
    "Stdout",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UnsafeBundle",
    "UnsupportedMediaType",
    "fingerprint",
    "unpack_bundle",
]

# ---- the API's shapes ---------------------------------------------------------
# TypedDicts rather than classes: results are the API's JSON objects as sent,
# so they serialize back unchanged (an Ansible module returns them as is).


class FieldError(TypedDict):
    """One problem with one field of a request."""

    field: str
    message: str


class _ProjectBase(TypedDict):
    id: int
    name: str
    revision: int
    created_at: int
    updated_at: int


class Project(_ProjectBase, total=False):
    variables: Dict[str, Any]


class _GroupBase(TypedDict):
    id: int
    name: str
    kind: str
    description: Optional[str]
    priority: Optional[int]
    parents: List[str]
    children: List[str]


class Group(_GroupBase, total=False):
    variables: Dict[str, Any]


class LastRun(TypedDict):
    run: int
    status: str
    at: int
    reachable_at: Optional[int]
    unreachable_at: Optional[int]


class _HostBase(TypedDict):
    id: int
    name: str
    ip_address: Optional[str]
    active: bool
    parent: Optional[str]
    labels: List[str]
    groups: List[str]


class Host(_HostBase, total=False):
    variables: Dict[str, Any]
    last_run: Optional[LastRun]


class Blame(TypedDict):
    """Where a resolved value came from: ``owner_type`` all, group or host."""

    owner_type: str
    owner: str
    tier: str


class _VariablesBase(TypedDict):
    variables: Dict[str, Any]


class Variables(_VariablesBase, total=False):
    blame: Dict[str, Blame]


class TokenInfo(TypedDict):
    id: int
    project: Optional[str]
    role: str
    description: str
    prefix: str
    created_at: int
    revoked_at: Optional[int]


class SyncStatus(TypedDict):
    result: Optional[str]
    commit: Optional[str]
    synced_at: Optional[int]
    attempted_at: Optional[int]
    error: Optional[Dict[str, Any]]
    counts: Dict[str, int]
    failures: int
    next_poll_at: int
    sync_requested: bool
    in_progress: bool


class ConfigRef(TypedDict):
    id: int
    url: str
    ref: str
    path: str
    group: Optional[str]
    poll_interval: int
    status: SyncStatus
    created_at: int
    updated_at: int


class SyncAccepted(TypedDict):
    id: int
    sync_requested_at: int
    force: bool


class RunCounts(TypedDict):
    hosts: int
    ok: int
    changed: int
    failed: int
    unreachable: int
    skipped: int
    running: int


class Run(TypedDict):
    id: int
    project: str
    status: str
    rc: Optional[int]
    reason: Optional[str]
    playbook: str
    source: Dict[str, Any]
    target: Dict[str, Any]
    options: Dict[str, Any]
    bundle_etag: Optional[str]
    created_by: str
    created_at: int
    started_at: Optional[int]
    finished_at: Optional[int]
    cancel_requested: Optional[str]
    counts: RunCounts
    events: Dict[str, int]
    stdout: Dict[str, Any]


class RunHost(TypedDict):
    host: str
    status: str
    ok: int
    changed: int
    failures: int
    unreachable: int
    skipped: int
    rescued: int
    ignored: int
    task: Optional[str]
    updated_at: int


class _SecretInfoBase(TypedDict):
    name: str
    kind: str
    version: int
    fingerprint: str
    not_after: Optional[int]
    created_by: str
    updated_by: str
    created_at: int
    updated_at: int


class SecretInfo(_SecretInfoBase, total=False):
    tier: str
    versions: List[int]


# Final run statuses: a run in one of these changes no more.
FINAL_RUN_STATUSES = frozenset(["successful", "failed", "canceled", "error", "lost", "skipped"])


@dataclass(frozen=True)
class CreatedToken:
    """A new API token; ``token`` is the secret, shown by the API this once
    and never in this object's repr."""

    id: int
    role: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class RunEvent:
    """One Server-Sent Event of a run: ``run_event`` (``data`` is the
    callback's event, ``id`` its counter), ``status`` (``data`` is the run)
    or ``end`` (the finished run; the last event of a stream)."""

    event: str
    id: Optional[int]
    data: Any


@dataclass(frozen=True)
class Stdout:
    """ansible-playbook's stored output; ``truncated`` when the server's cap
    cut it."""

    text: str
    truncated: bool


@dataclass(frozen=True)
class Bundle:
    """An inventory bundle as downloaded: ``format`` is ``tgz`` or ``zip``,
    ``etag`` the hash the server names it by (send it back as ``etag=`` to
    download only when it changed)."""

    data: bytes = field(repr=False)
    format: str
    etag: Optional[str]

    def unpack(self, dest: str, max_bytes: int = 1 << 30) -> List[str]:
        """Unpacks into directory ``dest`` (see :func:`unpack_bundle`)."""
        return unpack_bundle(self.data, dest, self.format, max_bytes=max_bytes)


# ---- errors -------------------------------------------------------------------


class CratonError(Exception):
    """Every error this client raises."""


class TransportError(CratonError):
    """No HTTP answer: connection refused or reset, timeout, TLS failure."""


class UnsafeBundle(CratonError):
    """A bundle with a member that would land outside the target directory,
    a link or device, or more bytes than allowed."""


class ApiError(CratonError):
    """An HTTP error answer of the API, ``{"error": {"status", "message",
    "details"}}``: ``status`` is the HTTP status, ``details`` one
    ``{"field", "message"}`` per bad field (empty when the error is about no
    field)."""

    def __init__(
        self,
        status: int,
        message: str,
        details: Optional[List[FieldError]] = None,
        method: str = "",
        path: str = "",
        retry_after: Optional[float] = None,
    ) -> None:
        self.status = status
        self.message = message
        self.details: List[FieldError] = list(details or [])
        self.method = method
        self.path = path
        self.retry_after = retry_after
        super().__init__(self._text())

    def _text(self) -> str:
        where = "{0} {1}: ".format(self.method, self.path) if self.method else ""
        text = "{0}HTTP {1}: {2}".format(where, self.status, self.message)
        if self.details:
            text += " (" + "; ".join("{0}: {1}".format(d.get("field"), d.get("message")) for d in self.details) + ")"
        return text

    def field_errors(self) -> Dict[str, str]:
        """``details`` as field name to message."""
        return dict((d.get("field", ""), d.get("message", "")) for d in self.details)


class BadRequest(ApiError):
    """400: the request is invalid; ``details`` names the fields."""


class Unauthorized(ApiError):
    """401: no token, or an invalid or revoked one."""


class Forbidden(ApiError):
    """403: the token's role does not allow this."""


class NotFound(ApiError):
    """404: no such object (or one of another project)."""


class MethodNotAllowed(ApiError):
    """405."""


class RequestTimeout(ApiError):
    """408: the server gave up on the request."""


class Conflict(ApiError):
    """409: already exists, owned by a config ref, or not bundlable."""


class PayloadTooLarge(ApiError):
    """413."""


class UnsupportedMediaType(ApiError):
    """415."""


class ServerError(ApiError):
    """500 and other 5xx answers without a class of their own."""


class Unavailable(ApiError):
    """503: the database or a key provider cannot serve now; retry later."""


_ERRORS = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    503: Unavailable,
}


def _error_class(status: int) -> type:
    if status in _ERRORS:
        return _ERRORS[status]
    return ServerError if status >= 500 else ApiError


# ---- transport ----------------------------------------------------------------

# Requests that may be sent twice with the effect of once. POST (create,
# sync, submit a run, cancel) and PATCH are never retried.
_IDEMPOTENT = frozenset(["GET", "HEAD", "PUT", "DELETE"])
# Answers of a proxy or a server that could not serve now.
_RETRY_STATUS = frozenset([502, 503, 504])
_MAX_BACKOFF = 10.0
Params = Union[Mapping[str, Any], Sequence[Tuple[str, Any]], None]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The API never redirects; following one could hand the token to
    another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - urllib's hook
        return None


def _encode_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _query(params: Params) -> str:
    """A query string; None values are left out, lists repeat the key."""
    if not params:
        return ""
    items = params.items() if isinstance(params, Mapping) else params
    pairs: List[Tuple[str, str]] = []
    for k, v in items:
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            pairs.extend((k, _encode_value(x)) for x in v)
        else:
            pairs.append((k, _encode_value(v)))
    return urllib.parse.urlencode(pairs)


def _with_query(path: str, params: Params) -> str:
    q = _query(params)
    if not q:
        return path
    return path + ("&" if "?" in path else "?") + q


def _var_terms(filters: Optional[Mapping[str, Any]]) -> Optional[List[str]]:
    """``vars=key:json`` terms: values are sent as JSON, so that the
    server's type-strict comparison sees the type meant (``"1"`` vs ``1``)."""
    if not filters:
        return None
    return ["{0}:{1}".format(k, json.dumps(v, separators=(",", ":"))) for k, v in filters.items()]


def _quote(segment: Any) -> str:
    return urllib.parse.quote(str(segment), safe="")


def _retry_after(headers: Any) -> Optional[float]:
    raw = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


class _Answer:
    """A complete response: status, headers and body bytes (decompressed)."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))


def _read_body(resp: Any) -> bytes:
    body = resp.read()
    if (resp.headers.get("Content-Encoding") or "").lower() == "gzip":
        body = gzip.decompress(body)
    return body


class Client:
    """The Craton REST API at ``url`` with a bearer ``token``.

    ``timeout`` bounds each connect and each read (seconds); ``cacert`` is a
    CA bundle file for TLS, ``verify=False`` turns certificate checks off.
    ``project`` is the project a root token works in (``?project=``; a
    project token always works in its own). Idempotent requests (GET, HEAD,
    PUT, DELETE) are retried up to ``retries`` times on connection errors
    and 502/503/504, waiting ``backoff`` seconds doubling (and any
    ``Retry-After``, at most 10 s); POST and PATCH never are.
    """

    def __init__(
        self,
        url: str,
        token: Optional[str],
        timeout: float = 30.0,
        cacert: Optional[str] = None,
        verify: bool = True,
        project: Optional[str] = None,
        retries: int = 3,
        backoff: float = 0.5,
        user_agent: Optional[str] = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be http(s)://HOST[:PORT][/PATH], not {0!r}".format(url))
        if parts.username or parts.password:
            raise ValueError("url must not carry credentials; pass the token instead")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.project = project
        self.retries = max(0, retries)
        self.backoff = max(0.0, backoff)
        self._token = token
        self._user_agent = user_agent or "craton-client/" + __version__
        if verify:
            ctx = ssl.create_default_context(cafile=cacert)
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), _NoRedirect())
        self.projects = Projects(self)
        self.groups = Groups(self)
        self.hosts = Hosts(self)
        self.tokens = Tokens(self)
        self.config_refs = ConfigRefs(self)
        self.inventory = Inventory(self)
        self.bundles = Bundles(self)
        self.runs = Runs(self)
        self.secrets = Secrets(self)

    @classmethod
    def from_env(cls, **kwargs: Any) -> "Client":
        """A client from ``CRATON_URL``, ``CRATON_TOKEN`` and (optionally)
        ``CRATON_PROJECT``; keyword arguments as for the constructor."""
        url = os.environ.get("CRATON_URL")
        if not url:
            raise ValueError("CRATON_URL is not set")
        kwargs.setdefault("project", os.environ.get("CRATON_PROJECT") or None)
        return cls(url, os.environ.get("CRATON_TOKEN"), **kwargs)

    def __repr__(self) -> str:
        return "Client(url={0!r}, project={1!r})".format(self.url, self.project)

    # -- requests

    def _sleep(self, attempt: int, retry_after: Optional[float]) -> None:
        delay = self.backoff * (2 ** attempt) * (0.5 + random.random() / 2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        time.sleep(min(delay, _MAX_BACKOFF))

    def _open(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        ok_statuses: Tuple[int, ...] = (),
    ) -> Any:
        """Sends a request and returns the open response (the caller reads
        and closes it). An HTTP error answer raises its ApiError, except
        for ``ok_statuses``, which return the HTTPError as the response."""
        url = self.url + path
        idempotent = method in _IDEMPOTENT
        attempt = 0
        while True:
            req = urllib.request.Request(url, data=body, method=method)
            req.add_header("User-Agent", self._user_agent)
            if body is not None:
                req.add_header("Content-Type", "application/json")
            for k, v in (headers or {}).items():
                req.add_header(k, v)
            if self._token:
                # Unredirected: never copied onto another request.
                req.add_unredirected_header("Authorization", "Bearer " + self._token)
            try:
                return self._opener.open(req, timeout=timeout or self.timeout)
            except urllib.error.HTTPError as e:
                if e.code in ok_statuses:
                    return e
                if idempotent and e.code in _RETRY_STATUS and attempt < self.retries:
                    e.close()
                    self._sleep(attempt, _retry_after(e.headers))
                    attempt += 1
                    continue
                raise self._api_error(method, path, e)
            except urllib.error.URLError as e:
                reason = e.reason
                # A certificate that does not verify will not verify on retry.
                if idempotent and not isinstance(reason, ssl.SSLError) and attempt < self.retries:
                    self._sleep(attempt, None)
                    attempt += 1
                    continue
                raise TransportError("{0} {1}: {2}".format(method, url, reason)) from None
            except (OSError, http.client.HTTPException) as e:
                if idempotent and not isinstance(e, ssl.SSLError) and attempt < self.retries:
                    self._sleep(attempt, None)
                    attempt += 1
                    continue
                raise TransportError("{0} {1}: {2}".format(method, url, e or type(e).__name__)) from None

    def _api_error(self, method: str, path: str, e: urllib.error.HTTPError) -> ApiError:
        try:
            raw = _read_body(e)
        except (OSError, http.client.HTTPException, EOFError):
            raw = b""
        finally:
            e.close()
        message, details = "", []  # type: Tuple[str, List[FieldError]]
        try:
            err = json.loads(raw.decode("utf-8"))["error"]
            message = str(err.get("message", ""))
            details = [FieldError(field=str(d.get("field", "")), message=str(d.get("message", ""))) for d in err.get("details") or []]
        except (ValueError, KeyError, TypeError, AttributeError):
            message = raw[:200].decode("utf-8", "replace").strip() or (e.reason if isinstance(e.reason, str) else "")
        cls = _error_class(e.code)
        return cls(e.code, message, details, method, path.split("?", 1)[0], _retry_after(e.headers))

    def request(
        self,
        method: str,
        path: str,
        params: Params = None,
        json_body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> _Answer:
        """One request of any route; the answer read whole. Paths start
        with ``/`` (``/v1/...``)."""
        target = _with_query(path, params)
        body = None if json_body is None else json.dumps(json_body).encode("utf-8")
        h = {"Accept-Encoding": "gzip"}
        h.update(headers or {})
        resp = self._open(method, target, body, h)
        try:
            try:
                data = _read_body(resp)
            except (OSError, http.client.HTTPException, EOFError) as e:
                raise TransportError("{0} {1}{2}: reading the answer: {3}".format(method, self.url, target, e)) from None
            return _Answer(resp.status if hasattr(resp, "status") else resp.code, resp.headers, data)
        finally:
            resp.close()

    def _json(self, method: str, path: str, params: Params = None, json_body: Any = None) -> Any:
        return self.request(method, path, params, json_body).json()

    def _paginate(self, path: str, params: Params) -> Iterator[Any]:
        """Every item of a list, following ``links.next`` page by page."""
        target: Optional[str] = _with_query(path, params)
        while target:
            page = self._json("GET", target)
            yield from page.get("items", [])
            target = (page.get("links") or {}).get("next")
            # The events pages' links leave out ?project= (cratond 0.1):
            # carried along, or a root token's next page is another
            # project's (a 404).
            if target and self.project and not re.search(r"[?&]project=", target):
                target = _with_query(target, [("project", self.project)])

    def _scoped(self, extra: Params = None) -> List[Tuple[str, Any]]:
        """Query parameters with the client's project first."""
        out: List[Tuple[str, Any]] = [("project", self.project)]
        if extra:
            out.extend(extra.items() if isinstance(extra, Mapping) else extra)
        return out

    # -- meta

    def health(self) -> Dict[str, Any]:
        """``GET /healthz`` (no token needed)."""
        return self._json("GET", "/healthz")

    def openapi(self) -> Dict[str, Any]:
        """The server's OpenAPI document."""
        return self._json("GET", "/v1/openapi.json")


def _fields(**kw: Any) -> Dict[str, Any]:
    """A JSON body of the fields given (None: not sent)."""
    return dict((k, v) for k, v in kw.items() if v is not None)


class _Resource:
    def __init__(self, client: Client) -> None:
        self._c = client


class _VariablesMixin(_Resource):
    _collection = ""

    def _vars_path(self, owner_id: int) -> str:
        return "{0}/{1}/variables".format(self._collection, _quote(owner_id))

    def _params(self) -> Params:
        return self._c._scoped()

    def variables(self, owner_id: int) -> Dict[str, Any]:
        """The owner's own variables."""
        return self._c._json("GET", self._vars_path(owner_id), self._params())["variables"]

    def set_variables(self, owner_id: int, variables: Mapping[str, Any]) -> Dict[str, Any]:
        """Merges ``variables`` in key by key; returns the owner's variables
        after the merge."""
        return self._c._json("PUT", self._vars_path(owner_id), self._params(), dict(variables))["variables"]

    def delete_variables(self, owner_id: int, keys: Iterable[str]) -> None:
        """Deletes the listed keys (absent ones are ignored by the server)."""
        self._c.request("DELETE", self._vars_path(owner_id), self._params(), {"keys": list(keys)})


class Projects(_VariablesMixin):
    """``/v1/projects``: root manages them; a project token sees its own."""

    _collection = "/v1/projects"

    def _params(self) -> Params:
        return None

    def list(self, name: Optional[str] = None, details: bool = False, page_size: Optional[int] = None) -> Iterator[Project]:
        return self._c._paginate(self._collection, [("name", name), ("details", details or None), ("limit", page_size)])

    def get(self, project_id: int) -> Project:
        return self._c._json("GET", "/v1/projects/{0}".format(_quote(project_id)))

    def find(self, name: str) -> Optional[Project]:
        """The project named ``name``, with its variables, or None."""
        for p in self.list(name=name, details=True):
            return p
        return None

    def create(self, name: str) -> Project:
        return self._c._json("POST", self._collection, None, {"name": name})

    def rename(self, project_id: int, name: str) -> Project:
        return self._c._json("PATCH", "/v1/projects/{0}".format(_quote(project_id)), None, {"name": name})

    def delete(self, project_id: int) -> None:
        """Deletes the project with everything in it (root)."""
        self._c.request("DELETE", "/v1/projects/{0}".format(_quote(project_id)))


class _ProjectObjects(_VariablesMixin):
    """What groups and hosts share: one object of the client's project by
    id, found by name, changed (PATCH), replaced (PUT) or deleted."""

    def _item(self, obj_id: int) -> str:
        return "{0}/{1}".format(self._collection, _quote(obj_id))

    def find(self, name: str) -> Optional[Any]:
        """The object named ``name``, with its own variables, or None."""
        for o in self.list(name=name, details=True):  # type: ignore[attr-defined]
            return o
        return None

    def update(self, obj_id: int, **fields: Any) -> Any:
        """Changes only the fields given (PATCH; None is sent as null)."""
        return self._c._json("PATCH", self._item(obj_id), self._c._scoped(), fields)

    def replace(self, obj_id: int, name: str, **fields: Any) -> Any:
        """Replaces every field (PUT): those not given get their defaults."""
        body = dict(fields, name=name)
        return self._c._json("PUT", self._item(obj_id), self._c._scoped(), body)

    def delete(self, obj_id: int) -> None:
        self._c.request("DELETE", self._item(obj_id), self._c._scoped())


class Groups(_ProjectObjects):
    """``/v1/groups`` of the client's project."""

    _collection = "/v1/groups"

    def list(
        self,
        name: Optional[str] = None,
        kind: Optional[str] = None,
        details: bool = False,
        page_size: Optional[int] = None,
    ) -> Iterator[Group]:
        """Groups by id; ``details`` adds each one's variables."""
        q = self._c._scoped([("name", name), ("kind", kind), ("details", details or None), ("limit", page_size)])
        return self._c._paginate(self._collection, q)

    def get(self, group_id: int) -> Group:
        return self._c._json("GET", self._item(group_id), self._c._scoped())

    def create(
        self,
        name: str,
        kind: Optional[str] = None,
        description: Optional[str] = None,
        priority: Optional[int] = None,
        parents: Optional[Sequence[Union[str, int]]] = None,
        children: Optional[Sequence[Union[str, int]]] = None,
    ) -> Group:
        """A new group; ``parents`` and ``children`` by name or id."""
        body = _fields(name=name, kind=kind, description=description, priority=priority, parents=parents, children=children)
        return self._c._json("POST", self._collection, self._c._scoped(), body)


class Hosts(_ProjectObjects):
    """``/v1/hosts`` of the client's project."""

    _collection = "/v1/hosts"

    def list(
        self,
        name: Optional[str] = None,
        group: Optional[str] = None,
        labels: Optional[Sequence[str]] = None,
        parent: Optional[str] = None,
        active: Optional[bool] = None,
        vars: Optional[Mapping[str, Any]] = None,
        last_run_status: Optional[str] = None,
        details: bool = False,
        resolved: bool = False,
        page_size: Optional[int] = None,
    ) -> Iterator[Host]:
        """Hosts by id, every filter ANDed: ``group`` (its subtree),
        ``labels`` (all of them), ``vars`` (resolved values equal to these),
        ``last_run_status``; ``details`` adds variables, ``resolved`` the
        resolved ones."""
        q = self._c._scoped(
            [
                ("name", name),
                ("group", group),
                ("label", list(labels) if labels else None),
                ("parent", parent),
                ("active", active),
                ("vars", _var_terms(vars)),
                ("last_run_status", last_run_status),
                ("details", details or None),
                ("resolved", resolved or None),
                ("limit", page_size),
            ]
        )
        return self._c._paginate(self._collection, q)

    def get(self, host_id: int, resolved: bool = False) -> Host:
        q = self._c._scoped([("resolved", resolved or None)])
        return self._c._json("GET", self._item(host_id), q)

    def create(
        self,
        name: str,
        ip_address: Optional[str] = None,
        active: Optional[bool] = None,
        parent: Optional[Union[str, int]] = None,
        labels: Optional[Sequence[str]] = None,
        groups: Optional[Sequence[Union[str, int]]] = None,
    ) -> Host:
        body = _fields(name=name, ip_address=ip_address, active=active, parent=parent, labels=labels, groups=groups)
        return self._c._json("POST", self._collection, self._c._scoped(), body)

    def resolved_variables(self, host_id: int) -> Variables:
        """What Ansible ends up with for the host, and per key the owner
        that supplied it (``blame``)."""
        return self._c._json("GET", self._vars_path(host_id), self._c._scoped([("resolved", True)]))


class Tokens(_Resource):
    """``/v1/tokens`` (admin; root manages all)."""

    def list(self, project: Optional[str] = None) -> List[TokenInfo]:
        """Tokens, never with their secrets; root sees all unless
        ``project`` names one."""
        return self._c._json("GET", "/v1/tokens", [("project", project)])["tokens"]

    def create(self, role: str, project: Optional[str] = None, description: str = "") -> CreatedToken:
        """A new token of ``role`` (reader, editor, admin; root for root)."""
        v = self._c._json("POST", "/v1/tokens", None, _fields(role=role, project=project, description=description))
        return CreatedToken(id=v["id"], role=v["role"], token=v["token"])

    def revoke(self, token_id: int) -> None:
        self._c.request("DELETE", "/v1/tokens/{0}".format(_quote(token_id)))


class ConfigRefs(_Resource):
    """``/v1/config-refs``: git repositories whose variables sync in."""

    def list(self, page_size: Optional[int] = None) -> Iterator[ConfigRef]:
        return self._c._paginate("/v1/config-refs", self._c._scoped([("limit", page_size)]))

    def get(self, ref_id: int) -> ConfigRef:
        return self._c._json("GET", "/v1/config-refs/{0}".format(_quote(ref_id)), self._c._scoped())

    def create(
        self,
        url: str,
        ref: str,
        path: Optional[str] = None,
        group: Optional[Union[str, int]] = None,
        poll_interval: Optional[int] = None,
    ) -> ConfigRef:
        body = _fields(url=url, ref=ref, path=path, group=group, poll_interval=poll_interval)
        return self._c._json("POST", "/v1/config-refs", self._c._scoped(), body)

    def delete(self, ref_id: int) -> None:
        """Deletes the ref and the variables it owns."""
        self._c.request("DELETE", "/v1/config-refs/{0}".format(_quote(ref_id)), self._c._scoped())

    def sync(self, ref_id: int, force: bool = False) -> SyncAccepted:
        """Asks for a sync now; it runs in the background (202). ``force``
        applies the commit again even if it was synced already."""
        path = "/v1/config-refs/{0}/sync".format(_quote(ref_id))
        return self._c._json("POST", path, self._c._scoped(), {"force": force} if force else None)


class Inventory(_Resource):
    """``/v1/inventory``: the documents ``craton-inventory`` prints."""

    def _params(self, group: Optional[str], vars: Optional[Mapping[str, Any]], resolved: bool, include_inactive: bool) -> Params:
        return self._c._scoped(
            [
                ("group", group),
                ("vars", _var_terms(vars)),
                ("resolved", resolved or None),
                ("include_inactive", include_inactive or None),
            ]
        )

    def list(
        self,
        group: Optional[str] = None,
        vars: Optional[Mapping[str, Any]] = None,
        resolved: bool = False,
        include_inactive: bool = False,
    ) -> Dict[str, Any]:
        """The ``--list`` document (``_meta.hostvars`` and the groups)."""
        return self._c._json("GET", "/v1/inventory", self._params(group, vars, resolved, include_inactive))

    def host(self, name: str, resolved: bool = False) -> Dict[str, Any]:
        """One host's ``--host`` document."""
        path = "/v1/inventory/hosts/{0}".format(_quote(name))
        return self._c._json("GET", path, self._params(None, None, resolved, False))


class Bundles(_Resource):
    """Inventory bundles (``ansible.cfg`` + ``hosts/``) that
    ``ansible-playbook`` runs as unpacked."""

    def download(
        self,
        group: Optional[str] = None,
        format: str = "tgz",
        vars: Optional[Mapping[str, Any]] = None,
        resolved: bool = False,
        include_inactive: bool = False,
        etag: Optional[str] = None,
    ) -> Optional[Bundle]:
        """The project's bundle, or ``group``'s subtree's; None when
        ``etag`` still names it (304, nothing downloaded)."""
        if format not in ("tgz", "zip"):
            raise ValueError("format must be 'tgz' or 'zip', not {0!r}".format(format))
        if group is None:
            path = "/v1/inventory.{0}".format(format)
        else:
            path = "/v1/inventory/{0}.{1}".format(_quote(group), format)
        params = Inventory(self._c)._params(None, vars, resolved, include_inactive)
        headers = {"If-None-Match": etag} if etag else None
        resp = self._c._open("GET", _with_query(path, params), headers=headers, ok_statuses=(304,))
        try:
            code = getattr(resp, "status", None) or resp.code
            if code == 304:
                return None
            return Bundle(data=resp.read(), format=format, etag=resp.headers.get("ETag"))
        except (OSError, http.client.HTTPException) as e:
            raise TransportError("GET {0}{1}: reading the bundle: {2}".format(self._c.url, path, e)) from None
        finally:
            resp.close()

    def fetch(self, dest: str, group: Optional[str] = None, format: str = "tgz", **kw: Any) -> Bundle:
        """Downloads the bundle and unpacks it into ``dest``."""
        b = self.download(group=group, format=format, **kw)
        if b is None:  # only with an etag, which fetch does not send
            raise CratonError("the server answered 304 to a download without If-None-Match")
        b.unpack(dest)
        return b


def _member_target(root: str, name: str) -> str:
    """Where member ``name`` lands under ``root``; refuses anything that
    would land elsewhere (absolute, ``..``, through a symlink)."""
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        raise UnsafeBundle("unsafe member name {0!r}".format(name))
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeBundle("member {0!r} climbs out of the directory".format(name))
    target = os.path.join(root, *parts) if parts else root
    real = os.path.realpath(target)
    if real != root and not real.startswith(root + os.sep):
        raise UnsafeBundle("member {0!r} would land outside the directory".format(name))
    return target


def _write_file(target: str, data: bytes, executable: bool) -> None:
    parent = os.path.dirname(target)
    if parent:
        os.makedirs(parent, exist_ok=True)
    if os.path.lexists(target) and not os.path.isfile(target):
        raise UnsafeBundle("{0!r} exists and is not a regular file".format(target))
    with open(target, "wb") as f:
        f.write(data)
    os.chmod(target, 0o755 if executable else 0o644)


def unpack_bundle(data: bytes, dest: str, format: str = "tgz", max_bytes: int = 1 << 30) -> List[str]:
    """Unpacks a bundle (``tgz`` or ``zip``) into directory ``dest``
    (created if missing); returns the files written, relative to it.

    Only regular files and directories are accepted: a link, a device, a
    member whose path is absolute, climbs out with ``..`` or would pass
    through a symlink already in ``dest``, or more than ``max_bytes`` of
    content raise :class:`UnsafeBundle` (before anything is written, except
    for the size). Modes are 0644, or 0755 for executables; owners and
    times are not restored.
    """
    os.makedirs(dest, exist_ok=True)
    root = os.path.realpath(dest)
    written: List[str] = []
    total = 0
    if format == "tgz":
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                if not (m.isfile() or m.isdir()):
                    raise UnsafeBundle("member {0!r} is not a regular file or directory".format(m.name))
                _member_target(root, m.name)
                total += m.size
            if total > max_bytes:
                raise UnsafeBundle("the bundle holds {0} bytes, more than {1}".format(total, max_bytes))
            for m in members:
                target = _member_target(root, m.name)
                if m.isdir():
                    os.makedirs(target, exist_ok=True)
                    continue
                src = tar.extractfile(m)
                content = src.read() if src is not None else b""
                _write_file(target, content, bool(m.mode & 0o111))
                written.append(os.path.relpath(target, root))
    elif format == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            for i in infos:
                mode = i.external_attr >> 16
                if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise UnsafeBundle("member {0!r} is not a regular file or directory".format(i.filename))
                _member_target(root, i.filename)
                total += i.file_size
            if total > max_bytes:
                raise UnsafeBundle("the bundle holds {0} bytes, more than {1}".format(total, max_bytes))
            for i in infos:
                target = _member_target(root, i.filename)
                if i.is_dir():
                    os.makedirs(target, exist_ok=True)
                    continue
                with z.open(i) as src:
                    content = src.read(max_bytes + 1)
                if len(content) > i.file_size:
                    raise UnsafeBundle("member {0!r} is larger than its header says".format(i.filename))
                _write_file(target, content, bool((i.external_attr >> 16) & 0o111))
                written.append(os.path.relpath(target, root))
    else:
        raise ValueError("format must be 'tgz' or 'zip', not {0!r}".format(format))
    return written


def _sse(lines: Iterable[bytes]) -> Iterator[RunEvent]:
    """Server-Sent Events from a stream's lines (comments, the keep-alives,
    skipped; ``data`` parsed as JSON when it is)."""
    event: Optional[str] = None
    data: List[str] = []
    eid: Optional[str] = None
    for raw in lines:
        line = raw.decode("utf-8")
        if line.endswith("\n"):
            line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
        if line == "":
            if data or event:
                text = "\n".join(data)
                try:
                    value: Any = json.loads(text)
                except ValueError:
                    value = text
                yield RunEvent(event=event or "message", id=int(eid) if eid and eid.isdigit() else None, data=value)
            event, data, eid = None, [], None
            continue
        if line.startswith(":"):
            continue
        name, _colon, value_text = line.partition(":")
        if value_text.startswith(" "):
            value_text = value_text[1:]
        if name == "event":
            event = value_text
        elif name == "data":
            data.append(value_text)
        elif name == "id":
            eid = value_text


class Runs(_Resource):
    """``/v1/runs``: playbook runs of the client's project."""

    def submit(
        self,
        playbook: str,
        repo: Optional[str] = None,
        ref: Optional[str] = None,
        config_ref: Optional[int] = None,
        group: Optional[str] = None,
        filter: Optional[Sequence[str]] = None,
        limit: Optional[str] = None,
        extra_vars: Optional[Mapping[str, Any]] = None,
        check: Optional[bool] = None,
        diff: Optional[bool] = None,
        tags: Optional[Sequence[str]] = None,
        skip_tags: Optional[Sequence[str]] = None,
        forks: Optional[int] = None,
        timeout_s: Optional[int] = None,
    ) -> Run:
        """Starts ``playbook`` from ``repo`` at ``ref`` (or from the tree of
        ``config_ref``) on ``group`` (default: the whole project) or the
        hosts matching ``filter`` (``key=value`` terms). Never retried."""
        body = _fields(
            playbook=playbook,
            repo=repo,
            ref=ref,
            config_ref=config_ref,
            group=group,
            filter=list(filter) if filter is not None else None,
            limit=limit,
            extra_vars=dict(extra_vars) if extra_vars is not None else None,
            check=check,
            diff=diff,
            tags=list(tags) if tags is not None else None,
            skip_tags=list(skip_tags) if skip_tags is not None else None,
            forks=forks,
            timeout_s=timeout_s,
        )
        return self._c._json("POST", "/v1/runs", self._c._scoped(), body)

    def get(self, run_id: int) -> Run:
        return self._c._json("GET", "/v1/runs/{0}".format(_quote(run_id)), self._c._scoped())

    def list(
        self,
        status: Optional[str] = None,
        group: Optional[str] = None,
        since: Optional[int] = None,
        page_size: Optional[int] = None,
    ) -> Iterator[Run]:
        """Runs, newest first; ``since`` in milliseconds since the epoch."""
        q = self._c._scoped([("status", status), ("group", group), ("since", since), ("limit", page_size)])
        return self._c._paginate("/v1/runs", q)

    def hosts(self, run_id: int) -> List[RunHost]:
        """Per-host results: status and the recap counters."""
        return self._c._json("GET", "/v1/runs/{0}/hosts".format(_quote(run_id)), self._c._scoped())["items"]

    def stdout(self, run_id: int, tail: Optional[int] = None) -> Stdout:
        """ansible-playbook's output; ``tail`` bytes of the end only."""
        a = self._c.request("GET", "/v1/runs/{0}/stdout".format(_quote(run_id)), self._c._scoped([("tail", tail)]))
        truncated = (a.headers.get("X-Craton-Truncated") or "").lower() == "true"
        return Stdout(text=a.body.decode("utf-8", "replace"), truncated=truncated)

    def bundle(self, run_id: int) -> Bundle:
        """The bundle (.tgz) the run's ansible-playbook read."""
        resp = self._c._open("GET", _with_query("/v1/runs/{0}/bundle".format(_quote(run_id)), self._c._scoped()))
        try:
            return Bundle(data=resp.read(), format="tgz", etag=resp.headers.get("ETag"))
        except (OSError, http.client.HTTPException) as e:
            raise TransportError("reading run {0}'s bundle: {1}".format(run_id, e)) from None
        finally:
            resp.close()

    def cancel(self, run_id: int, mode: str = "graceful") -> Run:
        """``graceful`` (SIGINT: Ansible stops after the current task) or
        ``immediate`` (SIGKILL); the run ends ``canceled``."""
        return self._c._json("POST", "/v1/runs/{0}/cancel".format(_quote(run_id)), self._c._scoped(), {"mode": mode})

    def stored_events(self, run_id: int, after: int = 0, page_size: Optional[int] = None) -> Iterator[Dict[str, Any]]:
        """The run's stored events in counter order (JSON pages), from
        after counter ``after``; ends at the last stored one."""
        path = "/v1/runs/{0}/events".format(_quote(run_id))
        return self._c._paginate(path, self._c._scoped([("after", after), ("limit", page_size)]))

    def events(self, run_id: int, after: Optional[int] = None, reconnects: int = 5) -> Iterator[RunEvent]:
        """The run's live event stream (SSE): stored events first, then
        live ones, each once, ending after the ``end`` event. A cut stream
        is resumed with ``Last-Event-ID`` up to ``reconnects`` times in a
        row (waiting as retries do)."""
        path = _with_query("/v1/runs/{0}/events".format(_quote(run_id)), self._c._scoped())
        last = after
        failures = 0
        # The server sends a keep-alive every 15 s: a read waits longer.
        timeout = max(self._c.timeout, 45.0)
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            resp = self._c._open("GET", path, headers=headers, timeout=timeout)
            problem = "the stream ended before the run's end event"
            try:
                for ev in _sse(resp):
                    failures = 0
                    if ev.id is not None:
                        last = ev.id
                    yield ev
                    if ev.event == "end":
                        return
            except (OSError, http.client.HTTPException, ValueError) as e:
                problem = str(e) or type(e).__name__
            finally:
                resp.close()
            failures += 1
            if failures > reconnects:
                raise TransportError("run {0}'s event stream: {1} ({2} reconnects)".format(run_id, problem, reconnects))
            self._c._sleep(failures - 1, None)

    def wait(self, run_id: int, timeout: float = 3600.0, poll: float = 1.0) -> Run:
        """Polls the run until it is final; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(run_id)
            if run["status"] in FINAL_RUN_STATUSES:
                return run
            if time.monotonic() >= deadline:
                raise TimeoutError("run {0} is still {1} after {2} s".format(run_id, run["status"], timeout))
            time.sleep(poll)


_OWNERS = {"host": "/v1/hosts", "group": "/v1/groups", "project": "/v1/projects"}


class Secrets(_Resource):
    """Secrets of a host, a group or a project (``owner``): metadata only,
    the plaintext from :meth:`value` alone (admin, root or the secrets
    scope; every read is recorded)."""

    def _path(self, owner: str, owner_id: int, name: Optional[str] = None, value: bool = False) -> str:
        if owner not in _OWNERS:
            raise ValueError("owner must be one of host, group, project, not {0!r}".format(owner))
        p = "{0}/{1}/secrets".format(_OWNERS[owner], _quote(owner_id))
        if name is not None:
            p += "/" + _quote(name)
        if value:
            p += "/value"
        return p

    def _params(self, owner: str, extra: Params = None) -> Params:
        if owner == "project":
            return extra
        return self._c._scoped(extra)

    def list(self, owner: str, owner_id: int, expiring_within: Optional[str] = None) -> List[SecretInfo]:
        """The owner's secrets; ``expiring_within`` (``30d``, ``12h``)
        keeps the certificates expiring that soon."""
        q = self._params(owner, [("expiring_within", expiring_within)])
        return self._c._json("GET", self._path(owner, owner_id), q)["secrets"]

    def get(self, owner: str, owner_id: int, name: str) -> SecretInfo:
        """Metadata and kept versions, never the value."""
        return self._c._json("GET", self._path(owner, owner_id, name), self._params(owner))

    def find(self, owner: str, owner_id: int, name: str) -> Optional[SecretInfo]:
        try:
            return self.get(owner, owner_id, name)
        except NotFound:
            return None

    def create(self, owner: str, owner_id: int, name: str, value: str, kind: str = "opaque") -> SecretInfo:
        """A new secret: ``kind`` pem, certificate, password or opaque."""
        body = {"name": name, "kind": kind, "value": value}
        return self._c._json("POST", self._path(owner, owner_id), self._params(owner), body)

    def update(self, owner: str, owner_id: int, name: str, value: str, kind: Optional[str] = None) -> SecretInfo:
        """A new version of the secret (``kind`` default: unchanged)."""
        body = _fields(kind=kind, value=value)
        return self._c._json("PUT", self._path(owner, owner_id, name), self._params(owner), body)

    def set(self, owner: str, owner_id: int, name: str, value: str, kind: str = "opaque") -> SecretInfo:
        """Creates the secret, or stores a new version when it exists."""
        if self.find(owner, owner_id, name) is None:
            return self.create(owner, owner_id, name, value, kind)
        return self.update(owner, owner_id, name, value, kind)

    def delete(self, owner: str, owner_id: int, name: str) -> None:
        self._c.request("DELETE", self._path(owner, owner_id, name), self._params(owner))

    def value(self, owner: str, owner_id: int, name: str) -> str:
        """The plaintext (recorded in the server's access log)."""
        return self._c._json("GET", self._path(owner, owner_id, name, value=True), self._params(owner))["value"]


_CERT_BLOCK = re.compile(r"-----BEGIN (CERTIFICATE|TRUSTED CERTIFICATE)-----\s*(.*?)\s*-----END \1-----", re.S)


def fingerprint(value: str, kind: str = "opaque") -> str:
    """The fingerprint the server gives a secret: ``sha256:HEX`` of the
    value, or for a ``pem`` or ``certificate`` holding a certificate, of the
    first certificate's DER. Lets a caller tell whether a stored secret
    holds ``value`` without reading the plaintext back. (A PEM bundle whose
    certificate stayed but whose key changed keeps its fingerprint.)"""
    raw = value.encode("utf-8")
    if kind in ("pem", "certificate"):
        m = _CERT_BLOCK.search(value)
        if m:
            body = "".join(line for line in m.group(2).splitlines() if ":" not in line)
            try:
                raw = base64.b64decode("".join(body.split()), validate=True)
            except ValueError:
                pass
    return "sha256:" + hashlib.sha256(raw).hexdigest()
