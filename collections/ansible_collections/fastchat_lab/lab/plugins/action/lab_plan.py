# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Action plugin for fastchat_lab.lab.lab_plan: computes the lab plan on the controller."""

from __future__ import annotations

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import (
    DEFAULT_SETTINGS,
    DISPATCH_METHODS,
    PlanError,
    build_plan,
    format_plan_table,
    merge_catalogue,
)

# Only these host variables are read; reading all of hostvars would template everything.
HOST_KEYS = (
    "fastchat_workers", "fastchat_address", "ansible_host", "fastchat_gpus",
    "fastchat_gpu_facts",
)

ARGUMENT_SPEC = {
    "catalogue": {"type": "dict", "required": True},
    "catalogue_extra": {"type": "dict", "default": {}},
    "controller_port": {"type": "int", "default": DEFAULT_SETTINGS["controller_port"]},
    "worker_base_port": {"type": "int", "default": DEFAULT_SETTINGS["worker_base_port"]},
    "api_port": {"type": "int", "default": DEFAULT_SETTINGS["api_port"]},
    "web_ui_port": {"type": "int", "default": DEFAULT_SETTINGS["web_ui_port"]},
    "dispatch_method": {"type": "str", "default": DEFAULT_SETTINGS["dispatch_method"],
                        "choices": list(DISPATCH_METHODS)},
    "models_dir": {"type": "str", "default": DEFAULT_SETTINGS["models_dir"]},
    "head_group": {"type": "str", "default": DEFAULT_SETTINGS["head_group"]},
    "gpu_group": {"type": "str", "default": DEFAULT_SETTINGS["gpu_group"]},
    "rehearsal": {"type": "bool", "default": DEFAULT_SETTINGS["rehearsal"]},
}


def conversation_templates():
    """Template names of the installed FastChat, or None when fschat is missing."""
    try:
        from fastchat.conversation import conv_templates
    except ImportError:
        return None
    return set(conv_templates)


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

        templates = conversation_templates()
        if templates is None:
            result.update(failed=True, msg=(
                "all: fastchat: FastChat (fschat) is not importable by the Python that runs "
                "Ansible, so the conversation templates cannot be checked. Fix: run "
                "scripts/setup and use its .venv (. .venv/bin/activate)."))
            return result

        groups = {name: list(members) for name, members in task_vars.get("groups", {}).items()}
        hostvars = task_vars.get("hostvars", {})
        hosts = {}
        errors = []
        for host in groups.get("all", []):
            hvars = hostvars[host]
            hosts[host] = {}
            for key in HOST_KEYS:
                try:
                    value = hvars.get(key)
                except Exception as exc:  # noqa: BLE001 - report any templating error
                    errors.append("%s: %s: cannot be read (%s). Fix: correct the variable." % (
                        host, key, to_text(exc)))
                    continue
                if value is not None:
                    hosts[host][key] = value
            try:
                facts = hvars.get("ansible_facts") or {}
                kept = {key: facts[key] for key in ("fastchat_gpu_facts", "default_ipv4")
                        if facts.get(key)}
                if kept:
                    hosts[host]["ansible_facts"] = kept
            except Exception:  # noqa: BLE001 - facts are optional
                pass
        if errors:
            result.update(failed=True, msg=str(PlanError(errors)))
            return result

        catalogue = merge_catalogue(args["catalogue"], args["catalogue_extra"] or {})
        settings = {k: args[k] for k in ARGUMENT_SPEC if k not in ("catalogue", "catalogue_extra")}
        try:
            plan = build_plan(hosts, groups, catalogue, settings, templates)
        except PlanError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        if plan["warnings"]:
            result["warnings"] = list(plan["warnings"])
        result["plan"] = plan
        result["table"] = format_plan_table(plan)
        return result
