# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Action plugin for fastchat_lab.lab.lab_settings_check: every problem of the given roles'
settings on this host (module_utils/lab_settings.py), without reading the values through
a Jinja filter (the settings gate runs it on every lab host: an action loads one plugin
file in Ansible's worker, where a collection filter loads every filter file)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import yaml
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_settings import role_options, setting_problems

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ARGUMENT_SPEC = {"roles": {"type": "list", "elements": "path", "required": True},
                 # Only read the roles' settings (result: options), check nothing: a run_once
                 # task does it once for a play of many hosts ...
                 "spec_only": {"type": "bool", "default": False},
                 # ... and each host's check reads them from that task's registered result,
                 # by name, as it is (not templated), instead of parsing every spec again.
                 "spec_from": {"type": "str"}}


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
        host = task_vars.get("inventory_hostname", "?")
        if args["spec_from"]:
            found = task_vars.get(args["spec_from"])
            spec = found.get("options") if isinstance(found, Mapping) else None
            if not isinstance(spec, Mapping):
                result.update(failed=True, msg=(
                    "lab_settings_check: %s holds no roles' settings. Fix: run this action with "
                    "spec_only: true first, registered as %s." % (args["spec_from"], args["spec_from"])))
                return result
        else:
            try:
                spec = role_options(args["roles"])
            except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
                result.update(failed=True, msg="lab_settings_check: cannot read the roles' settings: %s" % exc)
                return result
        if args["spec_only"]:
            result.update(changed=False, options=spec)
            return result
        # Option names are identifiers (they are variable names); one that is not is skipped
        # rather than put into the expression below.
        names = [name for name in spec if name in task_vars and _IDENTIFIER.match(name)]
        given, unreadable = {}, []
        try:
            # One expression for every value: each evaluation compiles its expression and
            # builds its variable context anew, the most of this check's time per name.
            # The expression is made here of option names (identifiers), not read from input.
            expression = trust_as_template("[%s]" % ", ".join(names))
            values = self._templar.evaluate_expression(expression) if names else []
            given = dict(zip(names, values))
        except Exception:  # noqa: BLE001 - find the variable that cannot be read, below
            for name in names:
                try:
                    given[name] = self._templar.resolve_variable_expression(name)
                except Exception as exc:  # noqa: BLE001 - any templating error is the user's to fix
                    # The error names the variable, never its value (secrets are among them).
                    first = to_text(exc).splitlines()[0] if to_text(exc) else type(exc).__name__
                    unreadable.append("%s: %s: cannot be read (%s). Fix: correct the variable." % (
                        host, name, first))
        result["changed"] = False
        result["problems"] = unreadable + setting_problems(given, spec, host)
        return result
