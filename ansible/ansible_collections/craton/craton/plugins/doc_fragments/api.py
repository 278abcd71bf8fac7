# Copyright: Craton developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""The connection options the collection's plugins share (inventory, lookup)."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of a Craton daemon (C(cratond serve)), for example V(https://craton.example.net:8080).
    type: str
    env:
      - name: CRATON_URL
  token:
    description:
      - Craton API token, sent as a bearer token in the C(Authorization) header.
      - It is never written to logs, error messages or the inventory cache; keep it out of files
        (use O(token) from C(CRATON_TOKEN), or an C(!vault) value).
    type: str
    env:
      - name: CRATON_TOKEN
  project:
    description:
      - Craton project to read. Default is the token's own project (a root token reads V(default)).
    type: str
    env:
      - name: CRATON_PROJECT
  validate_certs:
    description:
      - Verify the daemon's TLS certificate (C(https://) URLs).
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the CA certificates to trust for an C(https://) URL instead of the system's.
    type: path
    env:
      - name: CRATON_CACERT
  timeout:
    description:
      - Seconds to wait for the daemon.
    type: float
    default: 60
    env:
      - name: CRATON_TIMEOUT
"""
