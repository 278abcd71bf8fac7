# Copyright: Craton developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""One GET to a Craton daemon, for the collection's controller-side plugins.

The inventory plugin and the resolved lookup speak to the same REST API with
the same options (url, token, validate_certs, timeout, ca_path); this keeps
the request, gzip, conditional requests and error messages in one place.
The token travels only in the Authorization header: no message built here
contains it.
"""

from __future__ import annotations

import gzip
import json
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import open_url

# What the REST API returns for the largest inventories is a few MB; a body
# above this is not a Craton answer.
MAX_BODY = 1 << 30


class CratonApiError(Exception):
    """A failed request: the method, URL (never the token) and the reason."""

    def __init__(self, message, status=None):
        super(CratonApiError, self).__init__(message)
        self.status = status


class Response(object):
    """A 200 or a 304 (``body`` is then empty)."""

    def __init__(self, status, body, etag):
        self.status = status
        self.body = body
        self.etag = etag


def quote_segment(value):
    """``value`` as one path segment."""
    return quote(to_text(value), safe='')


def base_url(url):
    if not url:
        raise CratonApiError("url is required (option url or CRATON_URL)")
    if not (url.startswith('http://') or url.startswith('https://')):
        raise CratonApiError("url %r must start with http:// or https://" % url)
    return url.rstrip('/')


def _error_detail(body):
    """The daemon's ``error.message``, else the start of the body."""
    text = to_text(body, errors='surrogate_or_replace')
    try:
        message = json.loads(text)['error']['message']
        if isinstance(message, str):
            return message
    except (ValueError, KeyError, TypeError):
        pass
    return text[:200]


def _read(resp_or_error):
    body = resp_or_error.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise CratonApiError("response larger than %d bytes" % MAX_BODY)
    encoding = (resp_or_error.headers.get('Content-Encoding') or '').strip().lower()
    if encoding == 'gzip':
        body = gzip.decompress(body)
    elif encoding not in ('', 'identity'):
        raise CratonApiError("unsupported Content-Encoding %r" % encoding)
    return body


def get(url, path, query=None, token=None, validate_certs=True, timeout=60, ca_path=None,
        etag=None, headers=None):
    """GET ``url`` + ``path`` with ``query`` (a list of pairs); with ``etag``
    the request is conditional and an unchanged resource answers 304."""
    full = base_url(url) + path
    if query:
        full += '?' + urlencode(query)
    send = {'Accept': 'application/json', 'Accept-Encoding': 'gzip'}
    if token:
        send['Authorization'] = 'Bearer %s' % token
    if etag:
        send['If-None-Match'] = etag
    send.update(headers or {})
    try:
        # decompress=False: gzip is decoded above, the same way on every
        # ansible-core this collection supports.
        resp = open_url(full, method='GET', headers=send, validate_certs=validate_certs,
                        timeout=timeout, ca_path=ca_path, decompress=False,
                        follow_redirects='none', use_proxy=True, use_netrc=False)
    except HTTPError as e:
        if e.code == 304:
            return Response(304, b'', e.headers.get('ETag') or etag)
        try:
            detail = _error_detail(_read(e))
        except Exception:
            detail = to_text(e.reason)
        raise CratonApiError("GET %s: HTTP %d: %s" % (full, e.code, detail), status=e.code)
    except URLError as e:
        raise CratonApiError("GET %s: %s" % (full, to_text(e.reason)))
    except Exception as e:
        # Timeouts, TLS and socket errors of every Python version.
        raise CratonApiError("GET %s: %s" % (full, to_text(e)))
    status = resp.getcode()
    if status == 304:
        return Response(304, b'', resp.headers.get('ETag') or etag)
    try:
        body = _read(resp)
    except CratonApiError as e:
        raise CratonApiError("GET %s: %s" % (full, e))
    except Exception as e:
        raise CratonApiError("GET %s: reading the response: %s" % (full, to_text(e)))
    if status != 200:
        raise CratonApiError("GET %s: HTTP %d: %s" % (full, status, _error_detail(body)), status=status)
    return Response(200, body, resp.headers.get('ETag'))


def get_json(url, path, query=None, **kwargs):
    """``get`` of a JSON document, parsed."""
    resp = get(url, path, query, **kwargs)
    try:
        return json.loads(to_text(resp.body))
    except ValueError as e:
        raise CratonApiError("GET %s%s: not JSON: %s" % (base_url(url), path, e))
