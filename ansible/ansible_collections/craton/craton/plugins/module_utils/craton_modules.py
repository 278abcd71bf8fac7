# -*- coding: utf-8 -*-
# Copyright: Craton developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""What the craton.craton modules share: the connection options (documented
in the ``modules_common`` doc fragment), the client built from them, API
errors turned into ``fail_json`` with the API's details, and the owner
(host, group or project) a variables or secret task is about.

The client itself is ``craton_client.py`` beside this file, a byte-for-byte
copy of ``clients/python/craton_client/__init__.py``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.craton.craton.plugins.module_utils.craton_client import (
    ApiError,
    Client,
    CratonError,
)

CONNECTION_ARGS = dict(
    url=dict(type='str', required=True, fallback=(env_fallback, ['CRATON_URL'])),
    token=dict(type='str', no_log=True, fallback=(env_fallback, ['CRATON_TOKEN'])),
    project=dict(type='str', fallback=(env_fallback, ['CRATON_PROJECT'])),
    validate_certs=dict(type='bool', default=True),
    ca_path=dict(type='path'),
    timeout=dict(type='float', default=30),
)


class CratonModule(object):
    """An AnsibleModule with check mode, the connection options and a
    client."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(CONNECTION_ARGS)
        spec.update(argument_spec)
        self.module = AnsibleModule(argument_spec=spec, supports_check_mode=True, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        p = self.params
        try:
            self.client = Client(
                p['url'],
                p['token'],
                timeout=p['timeout'],
                cacert=p['ca_path'],
                verify=p['validate_certs'],
                project=p['project'],
            )
        except ValueError as e:
            self.module.fail_json(msg='url: %s' % e)

    def fail(self, error, what):
        """Fails the task for a client error, with the API's status and
        field details when it answered."""
        if isinstance(error, ApiError):
            self.module.fail_json(
                msg='%s: %s' % (what, error),
                status=error.status,
                details=error.details,
            )
        self.module.fail_json(msg='%s: %s' % (what, error))

    def run(self, what, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, failing the task on a client error."""
        try:
            return fn(*args, **kwargs)
        except CratonError as e:
            self.fail(e, what)

    def exit(self, changed, key, obj, before, after):
        result = dict(changed=changed)
        result[key] = obj
        if self.module._diff:
            result['diff'] = dict(before=before, after=after)
        self.module.exit_json(**result)

    def project(self):
        """The project the task works in: the ``project`` option's, else a
        project token's own, else ``default``."""
        c = self.client
        name = self.params['project']
        if name:
            p = self.run('finding project %s' % name, c.projects.find, name)
            if p is None:
                self.module.fail_json(msg='project %r not found' % name)
            return p
        seen = self.run('listing projects', lambda: list(c.projects.list(details=True)))
        if len(seen) == 1:
            return seen[0]
        for p in seen:
            if p['name'] == 'default':
                return p
        self.module.fail_json(msg='the token sees several projects and none is "default": set project')

    def owner(self):
        """``(kind, object)`` of the task's owner: the ``host`` or ``group``
        option's, else the project. ``object`` is None when the host or
        group does not exist (yet: in check mode, an earlier task may only
        have pretended to create it)."""
        c = self.client
        if self.params.get('host'):
            name = self.params['host']
            return 'host', self.run('finding host %s' % name, c.hosts.find, name)
        if self.params.get('group'):
            name = self.params['group']
            return 'group', self.run('finding group %s' % name, c.groups.find, name)
        return 'project', self.project()

    def owner_info(self, kind, obj):
        """The ``owner`` a module returns: kind, id (None for one that does
        not exist yet) and name."""
        if obj is not None:
            return dict(kind=kind, id=obj['id'], name=obj['name'])
        return dict(kind=kind, id=None, name=self.params.get(kind))

    def owner_label(self, kind):
        if kind == 'project':
            return 'the project'
        return '%s %s' % (kind, self.params[kind])


def manage_object(m, kind, resource, fields, sets, blank, same=None):
    """The ``state: present|absent`` flow of a project object (``kind``
    ``host`` or ``group``, ``resource`` the client's ``hosts``/``groups``):
    ``fields`` are the managed options (``sets`` of them compared as sets,
    others with ``same(key, current, wanted)`` or ``==``); ``blank`` is what
    a new object would hold, shown in check mode. Exits the module."""

    def view(obj):
        if not obj:
            return {}
        out = dict((k, obj.get(k)) for k in ('name',) + fields)
        for k in sets:
            out[k] = sorted(out[k] or [])
        return out

    p = m.params
    name = p['name']
    current = m.run('reading %s %s' % (kind, name), resource.find, name)

    if p['state'] == 'absent':
        if current is None:
            m.exit(False, kind, {}, {}, {})
        if not m.check_mode:
            m.run('deleting %s %s' % (kind, name), resource.delete, current['id'])
        m.exit(True, kind, {}, view(current), {})

    wanted = dict((k, p[k]) for k in fields if p[k] is not None)
    if current is None:
        if m.check_mode:
            new = dict(blank, id=None, name=name)
            new.update(wanted)
        else:
            new = m.run('creating %s %s' % (kind, name), resource.create, name, **wanted)
        m.exit(True, kind, new, {}, view(new))

    changes = {}
    for k, v in wanted.items():
        if k in sets:
            unchanged = same_set(current.get(k), v)
        elif same is not None:
            unchanged = same(k, current.get(k), v)
        else:
            unchanged = current.get(k) == v
        if not unchanged:
            changes[k] = v
    if not changes:
        m.exit(False, kind, current, view(current), view(current))
    if m.check_mode:
        new = dict(current)
        new.update(changes)
    else:
        new = m.run('changing %s %s' % (kind, name), resource.update, current['id'], **changes)
    m.exit(True, kind, new, view(current), view(new))


def same_set(a, b):
    """Whether two lists hold the same strings, in any order (the server
    keeps each once)."""
    return set(a or []) == set(b or [])
