# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filter of the nvidia_driver role: what it must do on one host, and why
(module_utils/nvidia_driver_host.py)."""

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: nvidia_driver_needs
short_description: What the nvidia_driver role must do on one host, and why (module_utils/nvidia_driver_host.py).
description:
  - From the role's probe, its settings and what this run changed so far, whether the role
    acts on this host at all (C(run)), the loaded driver (C(loaded_version)), what it does
    about it (C(action)), the preflight's findings (C(problems)), whether the install section
    (C(install)) and the nvidia-persistenced section (C(persistenced)) run, whether a reboot
    is allowed (C(reboot_allowed)) and the reasons in words (C(why)).
positional: _input, wanted, changed
options:
  _input:
    description: The host_probe result (globbed, files, paths, commands, missing_packages, services).
    type: dict
    required: true
  wanted:
    description: The role's settings as module_utils/nvidia_driver_host.py needs lists them.
    type: dict
    required: true
  changed:
    description: repository (bool) as this run changed it so far.
    type: dict
"""


def nvidia_driver_needs(probe, wanted, changed=None):
    # Imported when a filter is used, not when Ansible loads this file: it loads every filter
    # file of the collection to find one filter, in every task's worker (collection README).
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.nvidia_driver_host import needs

    try:
        return needs(probe, wanted, changed)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    def filters(self):
        return {"nvidia_driver_needs": nvidia_driver_needs}
