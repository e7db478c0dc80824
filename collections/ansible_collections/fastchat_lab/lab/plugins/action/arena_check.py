# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Action plugin for fastchat_lab.lab.arena_check: looks at the web UI in a headless
Chromium on the control node (module_utils/arena.py)."""

from __future__ import annotations

import os
import tempfile

from ansible.plugins.action import ActionBase

from ansible_collections.fastchat_lab.lab.plugins.module_utils.arena import (
    check_arena,
    find_browser,
    memory_file,
    remember,
    remembered,
)

ARGUMENT_SPEC = {
    "url": {"type": "str", "required": True},
    "expect": {"type": "list", "elements": "str", "default": []},
    "dest": {"type": "path"},
    "tab": {"type": "str", "default": "Arena (side-by-side)"},
    "timeout": {"type": "int", "default": 60},
    "browser": {"type": "str"},
    "login_user": {"type": "str"},
    "login_password": {"type": "str", "no_log": True},
    "ca_file": {"type": "path"},
    "unchanged_key": {"type": "str", "no_log": False},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        result["changed"] = False
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        key = args["unchanged_key"]
        if key:
            last = remembered(memory_file(), args["url"], key)
            if last and set(args["expect"]) <= set(last["models"]):
                result.update(status="offered", models=last["models"], missing=[], error="",
                              screenshot="", looked=False,
                              msg="The arena offers %s (seen at %s; the web UI process, its "
                                  "models and its login are the same since)." % (
                                      ", ".join(last["models"]), last["at"]))
                return result
        browser = args["browser"] or find_browser()
        if not browser:
            result.update(status="no-browser", models=[], missing=list(args["expect"]),
                          msg="No Chromium on the control node: the arena was not looked at.")
            return result
        with tempfile.TemporaryDirectory(prefix="fastchat-lab-arena-") as scratch:
            png = args["dest"] or os.path.join(scratch, "arena.png")
            if args["dest"]:
                os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
            login = (args["login_user"], args["login_password"]) if args["login_user"] else None
            status, report = check_arena(args["url"], png, None, args["expect"], args["tab"],
                                         args["timeout"], browser, login=login,
                                         ca_file=args["ca_file"])
        result.update(status=status, models=report["models"], missing=report["missing"],
                      error=report["error"], screenshot=args["dest"] or "", looked=True)
        if key and not self._task.check_mode:
            remember(memory_file(), args["url"], key,
                     report["models"] if status == "offered" else None)
        result["msg"] = {
            "offered": "The arena offers %s." % ", ".join(report["models"]),
            "missing": "The arena does not offer %s (it offers %s)." % (
                ", ".join(report["missing"]), ", ".join(report["models"]) or "nothing"),
        }.get(status, "The browser could not look at %s: %s" % (args["url"], report["error"]))
        return result
