#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_settings_check
short_description: Every problem of the given roles' settings on this host or on given hosts
description:
  - Runs on the controller only (action plugin), reads no host and changes nothing.
  - Reads the options of each role's C(meta/argument_specs.yml) (the main entry point's,
    and the optional ones of its other entry points), takes the value of each one this host
    has (the inventory's, the play's, a role default the play imported) and checks them by
    the roles' own argument specs (types, choices) and by their shapes
    (module_utils/lab_settings.py), in the planner's form (host, variable, what, fix).
  - Secrets (options with C(no_log)) are never shown; run the task with C(no_log) anyway,
    as Ansible's own output of a failure could.
version_added: 0.1.0
author:
  - fastchat-lab contributors
options:
  roles:
    description: The paths of the roles whose settings are checked.
    type: list
    elements: path
    required: true
  hosts:
    description:
      - Check these inventory hosts instead of the task's own, all in this one task (run it
        with C(run_once)). Each host's values are its own variables (the untemplated view
        of C(hostvars), that is inventory, group and host vars, facts, extra vars) over the
        given roles' C(defaults/main.yml), templated in that host's context; what the roles will
        read in a play that sets no variables of its own.
      - A name that is not an inventory host is a problem, not an error.
    type: list
    elements: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the docker role's settings on this host.
  fastchat_lab.lab.lab_settings_check:
    roles: ["{{ role_path }}"]
  register: docker_settings
  no_log: true

# Every host of the play in one task (the lab's settings gate).
- name: Check every role's settings on every lab host.
  fastchat_lab.lab.lab_settings_check:
    roles: "{{ lab_roles }}"
    hosts: "{{ ansible_play_hosts_all }}"
  register: lab_settings_found
  run_once: true
  no_log: true
"""

RETURN = r"""
problems:
  description: Every problem found, each naming the host, the variable, what is wrong and the fix.
  returned: success
  type: list
  elements: str
"""
