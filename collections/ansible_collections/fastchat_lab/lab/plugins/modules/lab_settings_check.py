#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_settings_check
short_description: Every problem of the given roles' settings on this host
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
  spec_only:
    description:
      - Only read the roles' settings and return them (C(options)), checking nothing. A
        C(run_once) task does it once for a play of many hosts.
    type: bool
    default: false
  spec_from:
    description:
      - The name of a registered result of a C(spec_only) run whose C(options) are used
        instead of reading every role's spec again on each host (the play's settings gate).
    type: str
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

# Many hosts: read the specs once, then check each host.
- name: Read every role's settings once.
  fastchat_lab.lab.lab_settings_check:
    roles: "{{ lab_roles }}"
    spec_only: true
  register: lab_settings_spec
  run_once: true

- name: Check every role's settings on this host.
  fastchat_lab.lab.lab_settings_check:
    roles: "{{ lab_roles }}"
    spec_from: lab_settings_spec
  register: lab_settings_found
  no_log: true
"""

RETURN = r"""
problems:
  description: Every problem found, each naming the host, the variable, what is wrong and the fix.
  returned: success, unless spec_only
  type: list
  elements: str
options:
  description: The roles' settings ({variable: argument-spec option}).
  returned: with spec_only
  type: dict
"""
