# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Action plugin for fastchat_lab.lab.lab_plan: computes the lab plan on the controller."""

from __future__ import annotations

import importlib.util
import os

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import (
    PlanError,
    SETTING_KEYS,
    build_plan,
    format_plan_table,
    merge_catalogue,
)

# Only these host variables are read; reading all of hostvars would template everything.
HOST_KEYS = (
    "fastchat_workers", "fastchat_address", "ansible_host", "fastchat_gpus",
    "fastchat_gpu_facts",
)

# The settings are passed on untouched (type raw): the planner types and checks them,
# so its messages (host, variable, fix) are the ones a user sees.
ARGUMENT_SPEC = {
    "catalogue": {"type": "raw", "required": True},
    "catalogue_extra": {"type": "raw", "required": True},
    "settings": {"type": "dict", "required": True},
}


def conversation_templates():
    """Template names of the installed FastChat, or None when fschat is missing."""
    try:
        from fastchat.conversation import conv_templates
    except ImportError:
        return None
    return set(conv_templates)


# The project's collections/requirements.yml (the collections its roles use, linked by
# scripts/setup), five directories above this file; absent where this collection is
# installed on its own.
REQUIREMENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), *[os.pardir] * 5,
                            "requirements.yml")


def missing_collections(requirements=REQUIREMENTS):
    """The collections REQUIREMENTS lists that this Ansible cannot load ([] without the file):
    ansible.cfg reads collections from the project's collections/ only, where scripts/setup
    links them; a run without it would fail in the middle, at the first role that uses one."""
    import yaml  # on the control node only

    try:
        with open(requirements, encoding="utf-8") as handle:
            entries = (yaml.safe_load(handle) or {}).get("collections") or []
    except OSError:
        return []
    missing = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name.count(".") != 1:
            continue
        try:
            found = importlib.util.find_spec("ansible_collections." + name) is not None
        except ImportError:
            found = False
        if not found:
            missing.append(name)
    return missing


def _read(hvars, key):
    """A host variable, templated; (value, error text)."""
    try:
        return hvars.get(key), None
    except Exception as exc:  # noqa: BLE001 - any templating error is the user's to fix
        return None, to_text(exc)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        result["changed"] = False
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)

        missing = missing_collections()
        if missing:
            result.update(failed=True, msg=(
                "all: collections: %s cannot be loaded (ansible.cfg reads collections from the "
                "project's collections/ only; collections/requirements.yml lists them). Fix: run "
                "scripts/setup, which links them there from the ansible package of "
                "requirements.txt." % ", ".join(missing)))
            return result

        templates = conversation_templates()
        if templates is None:
            result.update(failed=True, msg=(
                "all: fastchat: FastChat (fschat) is not importable by the Python that runs "
                "Ansible, so the conversation templates cannot be checked. Fix: run "
                "scripts/setup and use its .venv (. .venv/bin/activate)."))
            return result

        groups = {name: list(members) for name, members in task_vars.get("groups", {}).items()}
        hostvars = task_vars.get("hostvars", {})
        hosts, errors = {}, []
        for host in groups.get("all", []):
            hvars = hostvars[host]
            hosts[host] = {}
            for key in HOST_KEYS:
                value, error = _read(hvars, key)
                if error:
                    errors.append("%s: %s: cannot be read (%s). Fix: correct the variable." % (
                        host, key, error))
                elif value is not None:
                    hosts[host][key] = value
            facts, _error = _read(hvars, "ansible_facts")
            if isinstance(facts, dict):
                kept = {key: facts[key] for key in ("fastchat_gpu_facts", "default_ipv4")
                        if facts.get(key)}
                if kept:
                    hosts[host]["ansible_facts"] = kept
        if errors:
            result.update(failed=True, msg=str(PlanError(errors)))
            return result

        catalogue = merge_catalogue(args["catalogue"], args["catalogue_extra"])
        unknown = sorted(set(args["settings"]) - set(SETTING_KEYS))
        if unknown:
            result.update(failed=True, msg="all: lab_plan: unknown setting(s) %s. Fix: pass "
                          "only %s." % (", ".join(unknown), ", ".join(SETTING_KEYS)))
            return result
        try:
            plan = build_plan(hosts, groups, catalogue, args["settings"], templates)
        except PlanError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        if plan["warnings"]:
            result["warnings"] = list(plan["warnings"])
        result["plan"] = plan
        result["table"] = format_plan_table(plan)
        return result
