# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Action plugin for fastchat_lab.lab.lab_files: renders the entries given as a
``template`` (a file of the role's templates/ directory, as ansible.builtin.template
finds and renders it) on the control node, then runs the module with their content.

A role used to render them with ``lookup('ansible.builtin.template', ...)``, which copies
every variable of the task deeply for each template (a tenth of a second a template on a
re-run, on every host); this renders with a shallow copy, as the template action does.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template
from ansible._internal._templating import _template_vars


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def _render(self, name, dest, task_vars):
        try:
            source = self._find_needle("templates", name)
        except Exception as exc:  # noqa: BLE001 - AnsibleError and friends: say which entry
            raise AnsibleActionFail("lab_files: %s: template %s not found: %s" % (dest, name, exc)) from exc
        data = trust_as_template(self._loader.get_text_file_contents(source))
        # The template action's search path: each role/play path and its templates/.
        searchpath = []
        for path in list(task_vars.get("ansible_search_path", [])) + [self._loader._basedir, os.path.dirname(source)]:
            searchpath.extend([os.path.join(path, "templates"), path])
        variables = task_vars.copy()
        variables.update(_template_vars.generate_ansible_template_vars(
            path=name, fullpath=source, dest_path=dest,
            include_ansible_managed="ansible_managed" not in variables))
        templar = self._templar.copy_with_new_env(searchpath=searchpath, available_variables=variables)
        rendered = templar.template(data, escape_backslashes=False, overrides=dict(trim_blocks=True))
        return "" if rendered is None else rendered

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        files = self._task.args.get("files")
        if not isinstance(files, list):
            raise AnsibleActionFail("lab_files: files must be a list of entries (is %s)." % type(files).__name__)
        entries = []
        for number, entry in enumerate(files):
            if isinstance(entry, dict) and entry.get("template") is not None:
                entry = dict(entry)
                name = entry.pop("template")
                where = "files[%d] (%s)" % (number, entry.get("path") or "no path")
                if entry.get("content") is not None:
                    raise AnsibleActionFail("lab_files: %s: give content or template, not both." % where)
                if (entry.get("state") or "file") != "file":
                    raise AnsibleActionFail("lab_files: %s: template is only for state file." % where)
                entry["content"] = self._render(str(name), entry.get("path"), task_vars)
            entries.append(entry)
        args = dict(self._task.args, files=entries)
        result.update(self._execute_module(module_name="fastchat_lab.lab.lab_files", module_args=args,
                                           task_vars=task_vars))
        return result
