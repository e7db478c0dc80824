# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filter of the nvidia_container_toolkit role: what it must do on one host, and why
(module_utils/toolkit_host.py)."""

DOCUMENTATION = r"""
name: toolkit_needs
short_description: What the nvidia_container_toolkit role must do on one host, and why.
description:
  - From the role's probe, its settings and what this run changed, whether the install
    section runs (C(install)), whether the docker role's daemon_json entry point runs
    (C(register)), and the reasons in words (C(why)); module_utils/toolkit_host.py.
positional: _input, wanted, changed
options:
  _input:
    description: The host_probe result (missing_packages, files, paths).
    type: dict
    required: true
  wanted:
    description: os_family, keyring, key_fingerprints, apt_files, daemon_json, default_runtime.
    type: dict
    required: true
  changed:
    description: packages (bool) as this run changed them.
    type: dict
"""


def toolkit_needs(probe, wanted, changed=None):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.toolkit_host import needs

    return needs(probe, wanted, changed)


class FilterModule:
    def filters(self):
        return {"toolkit_needs": toolkit_needs}
