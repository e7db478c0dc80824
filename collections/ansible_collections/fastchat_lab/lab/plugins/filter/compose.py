# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""compose_project: one host's docker compose project from the lab plan."""

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: compose_project
short_description: One host's docker compose project, rendered from the lab plan.
description:
  - Wraps C(module_utils/compose.py) C(render_compose); see its docstring.
positional: host, options
options:
  _input:
    description: The lab plan (C(lab_plan_current)).
    type: dict
    required: true
  host:
    description: Inventory name of the host.
    type: str
    required: true
  options:
    description: Images per stack, weights directory, bind addresses, env file.
    type: dict
"""


def compose_project(plan, host, options=None):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.compose import render_compose

    try:
        return render_compose(plan, host, options)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"compose_project": compose_project}
