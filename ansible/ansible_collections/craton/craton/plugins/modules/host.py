#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Craton developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: host
short_description: Manage a Craton host
version_added: 0.1.0
description:
  - Creates, changes or deletes a host of a Craton project, with its address, labels, groups and parent host, through the Craton REST API.
  - Only the options given are managed; a host that already has them is left alone (C(ok)).
  - Variables are managed with M(craton.craton.variables), secrets with M(craton.craton.secret).
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
  name:
    description:
      - The host's name (its C(inventory_hostname)), unique in the project.
    type: str
    required: true
  state:
    description:
      - V(present) creates the host or changes the options given; V(absent) deletes it (its variables and secrets go with it).
    type: str
    choices: [present, absent]
    default: present
  ip_address:
    description:
      - An IPv4 or IPv6 address.
    type: str
  active:
    description:
      - Whether the host is in the inventory; inactive hosts are left out of it.
    type: bool
  parent:
    description:
      - The name of the host's parent host (a hypervisor, a chassis).
    type: str
  labels:
    description:
      - The host's labels (all of them; the order does not matter).
    type: list
    elements: str
  groups:
    description:
      - Names of the groups the host is a member of (all of them; the order does not matter).
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: A compute node in cell1
  craton.craton.host:
    name: node-a1-01
    ip_address: 10.1.0.11
    groups: [cell1, compute]
    labels: [rack-a1]

- name: Out of the inventory for now
  craton.craton.host:
    name: node-a1-02
    active: false

- name: Decommissioned
  craton.craton.host:
    name: node-a1-03
    state: absent
'''

RETURN = r'''
host:
  description: The host as the API shows it after the task (predicted in check mode, where a new host has no id); empty when absent.
  returned: always
  type: dict
  sample:
    id: 7
    name: node-a1-01
    ip_address: 10.1.0.11
    active: true
    parent: null
    labels: [rack-a1]
    groups: [cell1, compute]
    variables: {}
'''

import ipaddress

from ansible_collections.craton.craton.plugins.module_utils.craton_modules import CratonModule, manage_object

FIELDS = ('ip_address', 'active', 'parent', 'labels', 'groups')
SETS = ('labels', 'groups')
# What a host the API has not created yet would hold (check mode).
BLANK = dict(ip_address=None, active=True, parent=None, labels=[], groups=[], variables={})


def same_value(key, a, b):
    """Addresses compared as addresses (``::0001`` is ``::1``)."""
    if key != 'ip_address':
        return a == b
    try:
        return a is not None and b is not None and ipaddress.ip_address(u'%s' % a) == ipaddress.ip_address(u'%s' % b)
    except ValueError:
        return a == b


def main():
    m = CratonModule(dict(
        name=dict(type='str', required=True),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        ip_address=dict(type='str'),
        active=dict(type='bool'),
        parent=dict(type='str'),
        labels=dict(type='list', elements='str'),
        groups=dict(type='list', elements='str'),
    ))
    manage_object(m, 'host', m.client.hosts, FIELDS, SETS, BLANK, same=same_value)


if __name__ == '__main__':
    main()
