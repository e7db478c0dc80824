#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_verify
short_description: Check the running FastChat lab as its users reach it
description:
  - Runs on the head (which reaches every port of the lab) and checks, from the lab plan,
    that the controller lists exactly the planned models, every model answers through the
    API with a key, a request without a key gets 401, streaming works, the web UI answers
    and needs its login, and with TLS that the certificates verify against the lab's CA,
    plain HTTP does not reach FastChat and FastChat's own ports are on loopback only.
  - The checks are C(module_utils/lab_check.py); every failure names the model or service,
    its host, what was seen and the fix. Read-only; it runs in check mode too.
version_added: 0.2.0
author:
  - fastchat-lab contributors
options:
  plan:
    description: The lab plan (C(lab_plan_current), through C(fastchat_lab.lab.lab_plan_required)).
    type: dict
    required: true
  api_keys:
    description: The API keys (C(fastchat_deploy_api_keys), [{name, key}]); the first is used.
    type: list
    elements: dict
    default: []
  web_ui_users:
    description: The web UI logins (C(fastchat_deploy_web_ui_users)); the first is used.
    type: list
    elements: dict
    default: []
  ca_file:
    description: The CA certificate on the head that signed the lab's certificate.
    type: path
  retries:
    description: Attempts (5 s apart) for the workers to register with the controller.
    type: int
    default: 36
  timeout:
    description: Seconds one request may take.
    type: int
    default: 120
  min_free_gb:
    description:
      - Free space (GB) wanted on the disk of the arena's logs (the plan's logs_dir, on this
        host); less is a failure. 0 does not check.
    type: float
    default: 2
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the lab.
  fastchat_lab.lab.lab_verify:
    plan: "{{ plan }}"
    api_keys: "{{ fastchat_deploy_api_keys }}"
    web_ui_users: "{{ fastchat_deploy_web_ui_users }}"
    ca_file: "{{ plan.summary.deploy_dir }}/tls/ca.crt"
  vars:
    plan: "{{ lab_plan_current | fastchat_lab.lab.lab_plan_required(inventory_hostname) }}"
  no_log: true
"""

RETURN = r"""
checks:
  description: Every check, with name, ok, detail and fix.
  returned: always
  type: list
  elements: dict
failures:
  description: The checks that failed (not "failed", which would fail the task itself).
  returned: always
  type: list
  elements: dict
web_ui_instance:
  description:
    - The running web UI container on this host as C(<id> <start time>) (empty when there is
      none or Docker cannot be asked); a restart or a new container changes it.
  returned: always
  type: str
table:
  description: What runs where (model, host, GPUs, worker URL), as lines.
  returned: always
  type: list
  elements: str
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_check import check_lab


def main():
    module = AnsibleModule(
        argument_spec={
            "plan": {"type": "dict", "required": True},
            "api_keys": {"type": "list", "elements": "dict", "default": [], "no_log": True},
            "web_ui_users": {"type": "list", "elements": "dict", "default": [], "no_log": True},
            "ca_file": {"type": "path"},
            "retries": {"type": "int", "default": 36},
            "timeout": {"type": "int", "default": 120},
            "min_free_gb": {"type": "float", "default": 2},
        },
        supports_check_mode=True,
    )
    params = module.params
    report = check_lab(
        params["plan"], keys=[k["key"] for k in params["api_keys"]],
        users=[(u["name"], u["password"]) for u in params["web_ui_users"]],
        ca_file=params["ca_file"], retries=params["retries"], timeout=params["timeout"],
        min_free_gb=params["min_free_gb"] or None)
    module.exit_json(changed=False, web_ui_instance=web_ui_instance(module), **report)


def web_ui_instance(module):
    """``<id> <StartedAt>`` of the running web-ui service's container, or ""."""
    docker = module.get_bin_path("docker")
    if not docker:
        return ""
    rc, out, _err = module.run_command([docker, "ps", "-q", "--no-trunc", "--filter",
                                        "label=fastchat-lab.service=web-ui", "--filter",
                                        "status=running"])
    ids = out.split()
    if rc != 0 or len(ids) != 1:
        return ""
    rc, out, _err = module.run_command([docker, "inspect", "--type", "container", ids[0]])
    try:
        started = json.loads(out)[0]["State"]["StartedAt"] if rc == 0 else ""
    except (ValueError, LookupError, TypeError):
        started = ""
    return "%s %s" % (ids[0], started) if started else ""


if __name__ == "__main__":
    main()
