# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Action plugin for fastchat_lab.lab.lab_settings_check: every problem of the given roles'
settings (module_utils/lab_settings.py) on this host, or on every host of ``hosts`` at once.

One host: the task's own variables, as Ansible made them for this host (the play's
imported role defaults, the inventory, extra vars), for a role's ``settings`` entry point.

Many hosts (the lab's settings gate, one ``run_once`` task): each host's variables as the
roles will see them, built the way Ansible's precedence builds them for a play that has no
variables of its own: the roles' defaults (``defaults/main.yml``, in the order given), under
the host's own variables (``hostvars``' untemplated view: inventory, group and host vars,
facts, extra vars; the same call community.general's merge_variables lookup makes), then
templated in that host's context. A task per host costs a worker process per host and Jinja
compiling every templated default again in each; this reads 1,250 hosts in one process
(tests/bench/plan-scale)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import yaml
from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_settings import (
    role_options, setting_problems, where_of)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ARGUMENT_SPEC = {"roles": {"type": "list", "elements": "path", "required": True},
                 # Check these inventory hosts, each by its own variables over the roles'
                 # defaults, in this one task (run it once); none: this task's host.
                 "hosts": {"type": "list", "elements": "str"}}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            spec = role_options(args["roles"])
            defaults = self._defaults(args["roles"]) if args["hosts"] is not None else {}
        except (OSError, yaml.YAMLError, AnsibleError, KeyError, TypeError, AttributeError) as exc:
            result.update(failed=True, msg="lab_settings_check: cannot read the roles' settings: %s" % exc)
            return result
        result["changed"] = False
        if args["hosts"] is None:
            result["problems"] = self._problems(self._templar, task_vars, spec,
                                                task_vars.get("inventory_hostname", "?"))
            return result
        hostvars = task_vars.get("hostvars")
        problems = []
        for host in args["hosts"]:
            own = hostvars.raw_get(host) if host in hostvars else None
            if not isinstance(own, Mapping):
                problems.append("%s: is not a host of the inventory. Fix: name inventory hosts "
                                "in hosts." % where_of(host))
                continue
            variables = dict(defaults)
            variables.update(own)
            variables["hostvars"] = hostvars
            templar = self._templar.copy_with_new_env(available_variables=variables)
            problems.extend(self._problems(templar, variables, spec, host))
        result["problems"] = problems
        return result

    def _defaults(self, role_paths):
        """The roles' defaults as Ansible loads them (untemplated; templates trusted, as a
        role's own files are), the later role's value where two roles set one."""
        merged = {}
        for path in role_paths:
            for name in ("main.yml", "main.yaml"):
                found = os.path.join(path, "defaults", name)
                if os.path.isfile(found):
                    data = self._loader.load_from_file(found, trusted_as_template=True)
                    if data is not None and not isinstance(data, Mapping):
                        raise TypeError("%s is not a mapping of variables" % found)
                    merged.update(data or {})
                    break
        return merged

    @staticmethod
    def _problems(templar, variables, spec, host):
        """Every problem of ``host``'s settings, read through ``templar`` (whose variables
        are ``variables``)."""
        # Option names are identifiers (they are variable names); one that is not is skipped
        # rather than put into the expression below.
        names = [name for name in spec if name in variables and _IDENTIFIER.match(name)]
        given, unreadable = {}, []
        try:
            # One expression for every value: each evaluation compiles its expression and
            # builds its variable context anew, the most of this check's time per name.
            # The expression is made here of option names (identifiers), not read from input.
            expression = trust_as_template("[%s]" % ", ".join(names))
            values = templar.evaluate_expression(expression) if names else []
            given = dict(zip(names, values))
        except Exception:  # noqa: BLE001 - find the variable that cannot be read, below
            for name in names:
                try:
                    given[name] = templar.resolve_variable_expression(name)
                except Exception as exc:  # noqa: BLE001 - any templating error is the user's to fix
                    # The error names the variable, never its value (secrets are among them).
                    first = to_text(exc).splitlines()[0] if to_text(exc) else type(exc).__name__
                    unreadable.append("%s: %s: cannot be read (%s). Fix: correct the variable." % (
                        where_of(host), name, first))
        return unreadable + setting_problems(given, spec, host)
