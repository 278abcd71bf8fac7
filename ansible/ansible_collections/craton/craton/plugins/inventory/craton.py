# Copyright: Craton developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
name: craton
short_description: Craton fleet inventory (REST API or craton-inventory)
version_added: 0.1.0
author:
  - Craton developers (@craton)
description:
  - Reads a Craton project's inventory with one request, C(GET /v1/inventory) of a Craton daemon,
    or by running C(craton-inventory --list) against a database (O(database_url)).
  - The document is the one the C(craton-inventory) script gives Ansible, and it is read exactly as
    Ansible's script inventory plugin reads it, so C(ansible-inventory --list) prints the same result for
    both; values are templated as script values are, C(__ansible_unsafe) values stay literal and
    C(__ansible_vault) values become vaulted strings.
  - With O(cache) on, the document and its C(ETag) are kept in the cache plugin, and every later load over HTTP
    asks the daemon with C(If-None-Match); an unchanged inventory costs one C(304 Not Modified) answer.
    A cached document without an C(ETag) (from O(database_url), or a daemon that sends none) is used as is
    until O(cache_timeout) runs out or C(--flush-cache) is given.
  - The inventory file name must end in C(.craton.yml) or C(.craton.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - craton.craton.api
options:
  plugin:
    description: Marks this file as a source for this plugin.
    required: true
    type: str
    choices: [craton.craton.craton]
  group:
    description:
      - Only the hosts of this group's subtree; each keeps exactly the variables it has in the whole inventory
        (C(craton-inventory --group), C(GET /v1/inventory?group=)).
    type: str
  filters:
    description:
      - Only hosts whose resolved value of each key equals the given value, all terms together
        (C(craton-inventory --filter KEY=JSON), C(?vars=KEY:JSON)).
      - The match is type-strict, V(80) is the number and V("80") the string.
    type: dict
    default: {}
  include_inactive:
    description: Also the hosts marked inactive (left out by default).
    type: bool
    default: false
  vault_password_file:
    description:
      - A file holding a vault password. With it the daemon (or C(craton-inventory)) includes the project's
        secrets as ansible-vault values of vault id V(craton), which Ansible opens with
        C(--vault-id craton@FILE). Without it secrets are left out.
      - Over HTTP the password is sent as C(X-Craton-Vault-Password), which needs a token allowed to read
        secret values.
    type: path
    env:
      - name: CRATON_VAULT_PASSWORD_FILE
  database_url:
    description:
      - Read the database directly by running O(path) C(--list) (no shell) with C(CRATON_DATABASE_URL) set
        to this, instead of asking a daemon. C(sqlite://PATH), C(postgres://...), C(mysql://...).
      - When set, O(url) and O(token) are not used. Only this file sets it (no environment variable), so the
        file alone decides between the daemon and the database.
    type: str
  path:
    description:
      - The C(craton-inventory) binary for O(database_url), a path or a name looked up in C(PATH).
    type: str
    default: craton-inventory
notes:
  - One request per inventory load, however many hosts; no per-host requests.
  - The response is asked for gzip-compressed (C(Accept-Encoding)) and decoded when the daemon compresses it.
  - The cache holds the inventory document as the daemon sent it (secrets only as vault ciphertext), never the token.
seealso:
  - name: Craton collection documentation
    description: docs/collection.md in the Craton repository.
    link: https://example.invalid/craton/docs/collection.md
"""

EXAMPLES = r"""
# prod.craton.yml: the project prod from a daemon; CRATON_TOKEN in the environment.
plugin: craton.craton.craton
url: https://craton.example.net:8080
project: prod

# Only region1's hosts that run Ubuntu 22.04, cached and revalidated with one 304.
plugin: craton.craton.craton
url: https://craton.example.net:8080
group: region1
filters:
  os_release: "22.04"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/craton-inventory
cache_timeout: 86400

# Straight from the database through craton-inventory, with constructed groups.
plugin: craton.craton.craton
database_url: postgres://craton@db.example.net/craton
path: /usr/local/bin/craton-inventory
keyed_groups:
  - key: rack
    prefix: rack
compose:
  ansible_host: ip_address | default(inventory_hostname)
groups:
  big_disks: (disk_gb | default(0)) > 1000
"""

import hashlib
import json
import os
import shutil
import subprocess

from ansible.errors import AnsibleParserError
from ansible.inventory.helpers import get_group_vars
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.vars import combine_vars

from ansible_collections.craton.craton.plugins.plugin_utils import api

try:
    # ansible-core >= 2.19 (data tagging): the script plugin's own decoding,
    # strings trusted as templates and vault values as EncryptedString.
    from ansible.module_utils.common.json import get_decoder
    from ansible.template import trust_as_template
    HAS_DATA_TAGGING = True
except ImportError:
    HAS_DATA_TAGGING = False

# The JSON profile the script plugin reads a script's output with when it
# names none (Craton's output names none).
SCRIPT_PROFILE = 'inventory_legacy'

# Bumped when what the cache holds changes shape.
CACHE_FORMAT = 1


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """A Craton project's inventory, read as the script plugin reads craton-inventory."""

    NAME = 'craton.craton.craton'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(('.craton.yml', '.craton.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache=cache)
        self._read_config_data(path)
        text = self._document(path, cache)
        hosts = self._populate_like_script(text)
        self._construct(hosts)

    # -- fetching ---------------------------------------------------------

    def _source_id(self):
        """What the cached document depends on; the token only as a hash."""
        token = self.get_option('token') or ''
        parts = {
            'format': CACHE_FORMAT,
            'database_url': bool(self.get_option('database_url')),
            'url': None if self.get_option('database_url') else self.get_option('url'),
            'project': self.get_option('project'),
            'group': self.get_option('group'),
            'filters': self._filter_terms(),
            'include_inactive': self.get_option('include_inactive'),
            'vault': bool(self.get_option('vault_password_file')),
            'token': hashlib.sha256(to_text(token).encode('utf-8')).hexdigest() if token else None,
        }
        if self.get_option('database_url'):
            parts['db'] = hashlib.sha256(to_text(self.get_option('database_url')).encode('utf-8')).hexdigest()
        return json.dumps(parts, sort_keys=True)

    def _document(self, path, cache):
        """The --list document as text: from the cache, revalidated over HTTP
        when it has an ETag, or fetched."""
        use_cache = self.get_option('cache')
        key = self.get_cache_key(path)
        source = self._source_id()
        cached = None
        if use_cache and cache:
            try:
                entry = self._cache[key]
            except KeyError:
                entry = None
            if isinstance(entry, dict) and entry.get('source') == source and isinstance(entry.get('inventory'), str):
                cached = entry
        if cached is not None and not cached.get('etag'):
            return cached['inventory']
        if self.get_option('database_url'):
            text, etag = self._run_binary(), None
        else:
            text, etag = self._request(cached)
        if use_cache and (cached is None or cached['inventory'] is not text):
            self._cache[key] = {'source': source, 'etag': etag, 'inventory': text}
        return text

    def _filter_terms(self):
        """``filters`` as (key, JSON value) pairs, in the file's order."""
        return [(to_text(k), json.dumps(v, separators=(',', ':'))) for k, v in (self.get_option('filters') or {}).items()]

    def _request(self, cached):
        query = []
        if self.get_option('project'):
            query.append(('project', self.get_option('project')))
        if self.get_option('group'):
            query.append(('group', self.get_option('group')))
        for k, v in self._filter_terms():
            query.append(('vars', '%s:%s' % (k, v)))
        if self.get_option('include_inactive'):
            query.append(('include_inactive', 'true'))
        headers = {}
        if self.get_option('vault_password_file'):
            headers['X-Craton-Vault-Password'] = self._vault_password()
        try:
            resp = api.get(
                self.get_option('url'), '/v1/inventory', query,
                token=self.get_option('token'),
                validate_certs=self.get_option('validate_certs'),
                timeout=self.get_option('timeout'),
                ca_path=self.get_option('ca_path'),
                etag=cached['etag'] if cached else None,
                headers=headers,
            )
        except api.CratonApiError as e:
            raise AnsibleParserError("craton inventory: %s" % to_native(e))
        if resp.status == 304:
            if cached is None:
                raise AnsibleParserError("craton inventory: the daemon answered 304 to an unconditional request")
            return cached['inventory'], resp.etag
        try:
            text = to_text(resp.body, errors='strict')
        except UnicodeError:
            raise AnsibleParserError("craton inventory: the daemon's answer is not UTF-8")
        return text, resp.etag

    def _vault_password(self):
        """The password file's content, stripped as Ansible strips one."""
        name = self.get_option('vault_password_file')
        try:
            with open(name, 'rb') as f:
                password = to_text(f.read(), errors='strict').strip()
        except (OSError, UnicodeError) as e:
            raise AnsibleParserError("craton inventory: vault_password_file %r: %s" % (name, to_native(e)))
        if not password:
            raise AnsibleParserError("craton inventory: vault_password_file %r is empty" % name)
        return password

    def _run_binary(self):
        """``craton-inventory --list`` over ``database_url``: no shell, the
        database URL through the environment (not argv, which ps shows)."""
        binary = self.get_option('path')
        found = binary if os.sep in binary else shutil.which(binary)
        if not found:
            raise AnsibleParserError("craton inventory: path %r: craton-inventory not found in PATH" % binary)
        cmd = [found, '--list']
        if self.get_option('group'):
            cmd += ['--group', self.get_option('group')]
        for k, v in self._filter_terms():
            cmd += ['--filter', '%s=%s' % (k, v)]
        if self.get_option('include_inactive'):
            cmd.append('--include-inactive')
        env = dict(os.environ)
        for name in ('CRATON_URL', 'CRATON_TOKEN', 'CRATON_PROJECT', 'CRATON_VAULT_PASSWORD_FILE'):
            env.pop(name, None)
        env['CRATON_DATABASE_URL'] = self.get_option('database_url')
        if self.get_option('project'):
            env['CRATON_PROJECT'] = self.get_option('project')
        if self.get_option('vault_password_file'):
            env['CRATON_VAULT_PASSWORD_FILE'] = self.get_option('vault_password_file')
        try:
            proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=self.get_option('timeout'), check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AnsibleParserError("craton inventory: running %s: %s" % (found, to_native(e)))
        stderr = to_text(proc.stderr, errors='surrogate_or_replace').strip()
        if proc.returncode != 0:
            raise AnsibleParserError("craton inventory: %s --list exited %d: %s" % (found, proc.returncode, stderr))
        try:
            return to_text(proc.stdout, errors='strict')
        except UnicodeError:
            raise AnsibleParserError("craton inventory: %s --list printed something that is not UTF-8" % found)

    # -- reading, exactly as the script plugin reads a script -------------

    def _decode(self, text):
        try:
            if HAS_DATA_TAGGING:
                return json.loads(trust_as_template(text), cls=get_decoder(SCRIPT_PROFILE))
            # Before data tagging the script plugin used the loader, which
            # knows the vault secrets and reads __ansible_unsafe/__ansible_vault.
            return self.loader.load(text, json_only=True)
        except Exception as e:
            raise AnsibleParserError("craton inventory: the inventory is not valid JSON: %s" % to_native(e))

    def _populate_like_script(self, text):
        """Adds groups, hosts and variables in the script plugin's order;
        returns the names of the hosts added."""
        doc = self._decode(text)
        if not isinstance(doc, dict):
            raise AnsibleParserError("craton inventory: the inventory is not a JSON object")
        hostvars = None
        hosts = {}
        for group, data in doc.items():
            if group == '_meta':
                hostvars = data.get('hostvars') if isinstance(data, dict) else None
                if not isinstance(hostvars, dict):
                    raise AnsibleParserError("craton inventory: _meta.hostvars is not an object")
                continue
            if not isinstance(data, dict):
                raise AnsibleParserError("craton inventory: group %r is not an object" % group)
            name = self.inventory.add_group(group)
            members = data.get('hosts', [])
            if not isinstance(members, list):
                raise AnsibleParserError("craton inventory: %s.hosts is not a list" % group)
            for host in members:
                hosts[host] = True
                self.inventory.add_host(host, name)
            group_vars = data.get('vars', {})
            if not isinstance(group_vars, dict):
                raise AnsibleParserError("craton inventory: %s.vars is not an object" % group)
            for k, v in group_vars.items():
                self.inventory.set_variable(name, k, v)
            for child in data.get('children', []):
                child = self.inventory.add_group(child)
                self.inventory.add_child(name, child)
        if hostvars is None:
            raise AnsibleParserError("craton inventory: the inventory has no _meta.hostvars")
        for host in hosts:
            self._populate_host_vars([host], hostvars.get(host, {}))
        return list(hosts)

    # -- constructed ------------------------------------------------------

    def _construct(self, hosts):
        compose = self.get_option('compose')
        groups = self.get_option('groups')
        keyed = self.get_option('keyed_groups')
        if not (compose or groups or keyed):
            return
        strict = self.get_option('strict')
        for name in hosts:
            host = self.inventory.get_host(name)
            # Group variables too, as the constructed plugin sees them: a
            # keyed group on a region's value is the common case.
            self._set_composite_vars(compose, combine_vars(get_group_vars(host.get_groups()), host.get_vars()),
                                     name, strict=strict)
            hostvars = combine_vars(get_group_vars(host.get_groups()), host.get_vars())
            self._add_host_to_composed_groups(groups, hostvars, name, strict=strict, fetch_hostvars=False)
            self._add_host_to_keyed_groups(keyed, hostvars, name, strict=strict, fetch_hostvars=False)
