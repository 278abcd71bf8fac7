# -*- coding: utf-8 -*-
# Copyright: Craton developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The connection options every craton.craton module takes."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  url:
    description:
      - Base URL of the Craton REST API, for example C(https://craton.example.net:8080).
      - If not set, the environment variable E(CRATON_URL) is used.
    type: str
    required: true
  token:
    description:
      - A Craton API token (C(cratond token create)); editor role or above for changes.
      - If not set, the environment variable E(CRATON_TOKEN) is used.
      - Never logged or returned.
    type: str
  project:
    description:
      - The project to work in, for root tokens (a project token always works in its own project).
      - If not set, the environment variable E(CRATON_PROJECT) is used; without either, root tokens work in C(default).
    type: str
  validate_certs:
    description:
      - Whether to verify the server's TLS certificate.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of CA certificates to verify the server's certificate with.
    type: path
  timeout:
    description:
      - Seconds to wait for a connection or an answer. Reads (and idempotent writes) are retried a few times on connection errors and 502/503/504.
    type: float
    default: 30
notes:
  - "The modules talk to the API from where they run: with C(ansible_connection=local)
    or C(delegate_to: localhost), the controller."
  - They use the C(craton-client) Python module vendored in the collection
    (C(plugins/module_utils/craton_client.py)), which needs only the Python standard library.
'''
