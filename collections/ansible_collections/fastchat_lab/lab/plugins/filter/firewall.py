# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filters of the lab_firewall role (module_utils/firewall.py): its settings' checks, the
host's checks and the rules its script applies."""

from ansible.errors import AnsibleFilterError


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


def _firewall():
    # Imported when a filter is used, not when Ansible loads this file: it loads every filter
    # file of the collection to find one filter, in every task's worker (collection README).
    from ansible_collections.fastchat_lab.lab.plugins.module_utils import firewall

    return firewall


def _rules(args):
    try:
        return _firewall().firewall_rules(**args)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def _problems(args):
    return _firewall().settings_problems(**args)


def _host_problems(probe, where, script, unit):
    return _firewall().host_problems(where, script, unit, probe)


def _probe_request(*args, **kwargs):
    return _firewall().probe_request(*args, **kwargs)


class FilterModule:
    def filters(self):
        return {
            "lab_firewall_rules": _rules,
            "lab_firewall_problems": _problems,
            "lab_firewall_host_problems": _host_problems,
            "lab_firewall_probe_request": _probe_request,
        }
