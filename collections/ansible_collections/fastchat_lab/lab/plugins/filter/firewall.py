# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filters of the lab_firewall role (module_utils/firewall.py): its settings' checks, the
host's checks and the rules its script applies."""

from ansible.errors import AnsibleFilterError

from ansible_collections.fastchat_lab.lab.plugins.module_utils.firewall import (
    firewall_rules,
    host_problems,
    probe_request,
    settings_problems,
)

DOCUMENTATION = r"""
name: lab_firewall_rules
short_description: The lab_firewall role's rules for one host (module_utils/firewall.py).
description:
  - Also provides C(lab_firewall_problems) (the settings' problems, read no host),
    C(lab_firewall_host_problems) (what the host's probe shows in the way) and
    C(lab_firewall_probe_request) (what the role's probe reads and runs for them).
positional: _input
options:
  _input:
    description: A mapping of where, ports, addresses, host_ips, allowed_sources, daemon_json.
    type: dict
    required: true
"""


def _rules(args):
    try:
        return firewall_rules(**args)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def _problems(args):
    return settings_problems(**args)


def _host_problems(probe, where, script, unit):
    return host_problems(where, script, unit, probe)


class FilterModule:
    def filters(self):
        return {
            "lab_firewall_rules": _rules,
            "lab_firewall_problems": _problems,
            "lab_firewall_host_problems": _host_problems,
            "lab_firewall_probe_request": probe_request,
        }
