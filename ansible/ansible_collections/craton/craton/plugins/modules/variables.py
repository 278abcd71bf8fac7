#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Craton developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: variables
short_description: Manage the variables of a Craton host, group or project
version_added: 0.1.0
description:
  - Sets or deletes variables owned by a host, a group or the project (the C(all) group) of Craton, through the Craton REST API.
  - V(present) merges the given variables in key by key (other keys are left alone); a key that already holds the value is not written.
  - V(absent) deletes the given keys; keys that are not set are ignored.
  - Variables set by a config ref (git) cannot be changed here; the API refuses them naming the ref.
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
  platform:
    platforms: posix
options:
  host:
    description:
      - The host whose variables these are.
      - Mutually exclusive with O(group); with neither, the project's variables are meant.
    type: str
  group:
    description:
      - The group whose variables these are.
      - Mutually exclusive with O(host); with neither, the project's variables are meant.
    type: str
  variables:
    description:
      - Variable names and values (any JSON value). Required with O(state=present).
      - With O(state=absent), its keys are deleted (the values do not matter).
    type: dict
  keys:
    description:
      - Variable names to delete, with O(state=absent).
    type: list
    elements: str
  state:
    description:
      - V(present) sets the variables, V(absent) deletes them.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: Region-wide settings
  craton.craton.variables:
    group: region1
    variables:
      ntp_servers: [ntp1.region1.example.net]
      dns_domain: region1.example.net

- name: One host's disks
  craton.craton.variables:
    host: node-a1-01
    variables:
      disks:
        - {dev: sda, role: os}
        - {dev: sdb, role: ceph}

- name: Project-wide (the all group)
  craton.craton.variables:
    variables:
      ansible_user: deploy

- name: No longer needed
  craton.craton.variables:
    group: region1
    keys: [dns_domain]
    state: absent
'''

RETURN = r'''
variables:
  description: The owner's own variables after the task (predicted in check mode).
  returned: always
  type: dict
  sample:
    ntp_servers: [ntp1.region1.example.net]
    dns_domain: region1.example.net
owner:
  description: What the variables belong to.
  returned: always
  type: dict
  sample:
    kind: group
    id: 3
    name: region1
'''

from ansible_collections.craton.craton.plugins.module_utils.craton_modules import CratonModule

RESOURCES = {'host': 'hosts', 'group': 'groups', 'project': 'projects'}


def main():
    m = CratonModule(
        dict(
            host=dict(type='str'),
            group=dict(type='str'),
            variables=dict(type='dict'),
            keys=dict(type='list', elements='str', no_log=False),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        mutually_exclusive=[('host', 'group')],
        required_if=[('state', 'present', ['variables']), ('state', 'absent', ['variables', 'keys'], True)],
    )
    p = m.params
    kind, owner = m.owner()
    label = m.owner_label(kind)
    if owner is None:
        # Absent: an owner that does not exist has no variables to delete.
        if p['state'] == 'absent':
            m.module.exit_json(changed=False, variables={}, owner=m.owner_info(kind, None), diff=dict(before={}, after={}))
        if not m.check_mode:
            m.module.fail_json(msg='%s not found' % label)
        # Check mode: an earlier task would have created it.
        m.module.warn('%s does not exist (yet): reporting every key as changed' % label)
        after = dict(p['variables'])
        m.module.exit_json(changed=bool(after), variables=after, owner=m.owner_info(kind, None), diff=dict(before={}, after=after))

    resource = getattr(m.client, RESOURCES[kind])
    info = m.owner_info(kind, owner)
    before = m.run('reading the variables of %s' % label, resource.variables, owner['id'])

    if p['state'] == 'present':
        changes = dict((k, v) for k, v in p['variables'].items() if k not in before or before[k] != v)
        if not changes:
            m.module.exit_json(changed=False, variables=before, owner=info, diff=dict(before=before, after=before))
        if m.check_mode:
            after = dict(before)
            after.update(changes)
        else:
            after = m.run('setting variables of %s' % label, resource.set_variables, owner['id'], changes)
    else:
        names = list(p['keys'] or []) + list((p['variables'] or {}).keys())
        gone = [k for k in names if k in before]
        if not gone:
            m.module.exit_json(changed=False, variables=before, owner=info, diff=dict(before=before, after=before))
        after = dict((k, v) for k, v in before.items() if k not in gone)
        if not m.check_mode:
            m.run('deleting variables of %s' % label, resource.delete_variables, owner['id'], gone)
            after = m.run('reading the variables of %s' % label, resource.variables, owner['id'])
    m.module.exit_json(changed=True, variables=after, owner=info, diff=dict(before=before, after=after))


if __name__ == '__main__':
    main()
