# Copyright: Craton developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
name: resolved
short_description: A host's resolved variables in Craton, with blame
version_added: 0.1.0
author:
  - Craton developers (@craton)
description:
  - For each host name, what the host ends up with in Craton, resolved with Ansible's inventory precedence
    (C(GET /v1/hosts/{id}/variables?resolved=true)), and for each variable the owner that supplied it.
  - Two requests per host name, one to find the host's id by name and one for its variables.
extends_documentation_fragment:
  - craton.craton.api
options:
  _terms:
    description: Host names.
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Where does ntp_server of web1 come from?
  ansible.builtin.debug:
    msg: >-
      {{ r.variables.ntp_server }} from {{ r.blame.ntp_server.owner_type }} {{ r.blame.ntp_server.owner }}
  vars:
    r: "{{ lookup('craton.craton.resolved', 'web1', url='https://craton.example.net:8080') }}"

- name: In a template, with the token from CRATON_TOKEN
  ansible.builtin.template:
    src: blame.txt.j2
    dest: /tmp/blame.txt
  # blame.txt.j2:
  # {% set r = lookup('craton.craton.resolved', inventory_hostname) %}
  # {% for k, b in r.blame.items() %}{{ k }}: {{ b.owner_type }} {{ b.owner }} ({{ b.tier }})
  # {% endfor %}
"""

RETURN = r"""
_raw:
  description: One entry per host name.
  type: list
  elements: dict
  contains:
    variables:
      description: The resolved variables, as Ansible sees them for the host.
      type: dict
    blame:
      description:
        - Per variable, the owner that supplied the winning value.
        - C(owner_type) is V(all), V(group) or V(host); C(owner) the group or host name (V(all) for the project);
          C(tier) V(inventory) (inline) or V(vars_file) (group_vars/host_vars).
      type: dict
"""

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

from ansible_collections.craton.craton.plugins.plugin_utils import api


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        conn = {
            'token': self.get_option('token'),
            'validate_certs': self.get_option('validate_certs'),
            'timeout': self.get_option('timeout'),
            'ca_path': self.get_option('ca_path'),
        }
        url = self.get_option('url')
        project = [('project', self.get_option('project'))] if self.get_option('project') else []
        out = []
        for term in terms:
            name = to_native(term)
            try:
                page = api.get_json(url, '/v1/hosts', [('name', name)] + project, **conn)
                ids = [h.get('id') for h in page.get('items', []) if h.get('name') == name]
                if not ids:
                    raise AnsibleError("craton.craton.resolved: no host %r in Craton" % name)
                out.append(api.get_json(url, '/v1/hosts/%d/variables' % ids[0],
                                        [('resolved', 'true')] + project, **conn))
            except api.CratonApiError as e:
                raise AnsibleError("craton.craton.resolved: %s" % to_native(e))
        return out
