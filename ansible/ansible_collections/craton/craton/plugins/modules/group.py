#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Craton developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: group
short_description: Manage a Craton group
version_added: 0.1.0
description:
  - Creates, changes or deletes a group of a Craton project (a region, a cell, a role...), through the Craton REST API.
  - Only the options given are managed; a group that already has them is left alone (C(ok)).
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
      - The group's name, unique in the project.
    type: str
    required: true
  state:
    description:
      - V(present) creates the group or changes the options given; V(absent) deletes it (its variables and secrets go with it).
    type: str
    choices: [present, absent]
    default: present
  kind:
    description:
      - What the group stands for, free text (C(region), C(cell), C(role)...).
    type: str
  description:
    description:
      - A description.
    type: str
  priority:
    description:
      - The group's C(ansible_group_priority).
    type: int
  parents:
    description:
      - Names of the groups this group is a child of (all of them; the order does not matter).
    type: list
    elements: str
  children:
    description:
      - Names of the groups that are children of this group (all of them; the order does not matter).
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: A region
  craton.craton.group:
    url: https://craton.example.net:8080
    token: "{{ craton_token }}"
    name: region1
    kind: region

- name: A cell in it (CRATON_URL and CRATON_TOKEN from the environment)
  craton.craton.group:
    name: cell1
    kind: cell
    parents: [region1]

- name: Gone, with its variables
  craton.craton.group:
    name: cell9
    state: absent
'''

RETURN = r'''
group:
  description: The group as the API shows it after the task (predicted in check mode, where a new group has no id); empty when absent.
  returned: always
  type: dict
  sample:
    id: 3
    name: cell1
    kind: cell
    description: null
    priority: null
    parents: [region1]
    children: []
    variables: {}
'''

from ansible_collections.craton.craton.plugins.module_utils.craton_modules import CratonModule, manage_object

FIELDS = ('kind', 'description', 'priority', 'parents', 'children')
SETS = ('parents', 'children')
# What a group the API has not created yet would hold (check mode).
BLANK = dict(kind='', description=None, priority=None, parents=[], children=[], variables={})


def main():
    m = CratonModule(dict(
        name=dict(type='str', required=True),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        kind=dict(type='str'),
        description=dict(type='str'),
        priority=dict(type='int'),
        parents=dict(type='list', elements='str'),
        children=dict(type='list', elements='str'),
    ))
    manage_object(m, 'group', m.client.groups, FIELDS, SETS, BLANK)


if __name__ == '__main__':
    main()
