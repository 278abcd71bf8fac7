#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Craton developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: secret
short_description: Manage a secret of a Craton host, group or project
version_added: 0.1.0
description:
  - Creates, replaces or deletes a secret (a password, a key, a certificate) owned by a host, a group or the project, through the Craton REST API.
    Craton stores it encrypted and hands it to Ansible as a vaulted variable of the same name.
  - The value is never returned, logged or shown in a diff. Whether the stored secret already holds it is decided by its fingerprint
    (the SHA-256 the API shows), computed here the way the server computes it, so the plaintext is never read back.
  - A new value stores a new version of the secret; the API keeps the previous versions.
author:
  - Craton developers (@craton)
extends_documentation_fragment:
  - craton.craton.modules_common
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the kind, version and fingerprint, never the value.
  platform:
    platforms: posix
options:
  name:
    description:
      - The secret's name, an Ansible variable name (letters, digits, V(_)).
    type: str
    required: true
  host:
    description:
      - The host that owns the secret.
      - Mutually exclusive with O(group); with neither, the project owns it.
    type: str
  group:
    description:
      - The group that owns the secret.
      - Mutually exclusive with O(host); with neither, the project owns it.
    type: str
  value:
    description:
      - The secret's value. Required with O(state=present).
    type: str
  kind:
    description:
      - V(password) and V(opaque) are stored as given; V(pem) must be PEM keys or certificates and V(certificate) must hold a certificate
        (the server checks them and records the certificate's expiry).
    type: str
    choices: [opaque, password, pem, certificate]
    default: opaque
  force:
    description:
      - Store a new version even when the fingerprint says the value is unchanged.
      - For a V(pem) or V(certificate) secret the fingerprint covers the first certificate only, so a changed private key beside an unchanged
        certificate needs O(force=true) to be stored.
    type: bool
    default: false
  state:
    description:
      - V(present) creates the secret or stores a new version when the value or kind differ; V(absent) deletes it with all its versions.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: The database password of a host
  craton.craton.secret:
    host: db1
    name: db_password
    kind: password
    value: "{{ lookup('ansible.builtin.password', '/dev/null length=32') }}"

- name: A TLS certificate and key for a whole cell
  craton.craton.secret:
    group: cell1
    name: tls_bundle
    kind: pem
    value: "{{ lookup('ansible.builtin.file', 'cell1.pem') }}"

- name: Retired
  craton.craton.secret:
    host: db1
    name: db_password
    state: absent
'''

RETURN = r'''
secret:
  description: The secret's metadata after the task (predicted in check mode), never its value; empty when absent.
  returned: always
  type: dict
  sample:
    name: db_password
    kind: password
    version: 2
    fingerprint: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    not_after: null
    created_by: "token:4:editor"
    updated_by: "token:4:editor"
    created_at: 1764669600000
    updated_at: 1764673200000
    versions: [2, 1]
owner:
  description: What the secret belongs to.
  returned: always
  type: dict
  sample:
    kind: host
    id: 7
    name: db1
'''

from ansible_collections.craton.craton.plugins.module_utils.craton_client import fingerprint
from ansible_collections.craton.craton.plugins.module_utils.craton_modules import CratonModule


def view(secret):
    """What a diff may show of a secret."""
    if not secret:
        return {}
    return dict((k, secret.get(k)) for k in ('name', 'kind', 'version', 'fingerprint'))


def main():
    m = CratonModule(
        dict(
            name=dict(type='str', required=True),
            host=dict(type='str'),
            group=dict(type='str'),
            value=dict(type='str', no_log=True),
            kind=dict(type='str', choices=['opaque', 'password', 'pem', 'certificate'], default='opaque'),
            force=dict(type='bool', default=False),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        mutually_exclusive=[('host', 'group')],
        required_if=[('state', 'present', ['value'])],
    )
    p = m.params
    c = m.client
    name = p['name']
    kind, owner = m.owner()
    label = m.owner_label(kind)
    present = p['state'] == 'present'
    wanted = None
    if present:
        wanted = dict(name=name, kind=p['kind'], version=1, fingerprint=fingerprint(p['value'], p['kind']))

    info = m.owner_info(kind, owner)

    def done(changed, secret, before, after):
        result = dict(changed=changed, secret=secret, owner=info)
        if m.module._diff:
            result['diff'] = dict(before=before, after=after)
        m.module.exit_json(**result)

    if owner is None:
        # Absent: an owner that does not exist has no secret to delete.
        if not present:
            done(False, {}, {}, {})
        if not m.check_mode:
            m.module.fail_json(msg='%s not found' % label)
        m.module.warn('%s does not exist (yet): reporting the secret as changed' % label)
        done(present, wanted or {}, {}, view(wanted))

    current = m.run('reading secret %s of %s' % (name, label), c.secrets.find, kind, owner['id'], name)

    if not present:
        if current is None:
            done(False, {}, {}, {})
        if not m.check_mode:
            m.run('deleting secret %s of %s' % (name, label), c.secrets.delete, kind, owner['id'], name)
        done(True, {}, view(current), {})

    if current is None:
        if m.check_mode:
            done(True, wanted, {}, view(wanted))
        new = m.run('creating secret %s of %s' % (name, label), c.secrets.create, kind, owner['id'], name, p['value'], p['kind'])
        done(True, new, {}, view(new))

    if not p['force'] and current['fingerprint'] == wanted['fingerprint'] and current['kind'] == p['kind']:
        done(False, current, view(current), view(current))
    if m.check_mode:
        predicted = dict(current, kind=p['kind'], fingerprint=wanted['fingerprint'], version=current['version'] + 1)
        done(True, predicted, view(current), view(predicted))
    new = m.run('storing secret %s of %s' % (name, label), c.secrets.update, kind, owner['id'], name, p['value'], p['kind'])
    done(True, new, view(current), view(new))


if __name__ == '__main__':
    main()
