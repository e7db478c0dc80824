# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""gpu_facts_lines: one line per host of the GPUs found (module_utils/nvidia_smi.py)."""

DOCUMENTATION = r"""
name: gpu_facts_lines
short_description: One line per host of the GPUs the gpu_facts role found.
description:
  - >-
    Input is C({host: what fastchat_lab.lab.nvidia_gpu_facts registered there}); returns
    C(HOST: N GPU(s): NAMES MESSAGE) for each, or C(HOST: not read (WHY)) where the task did
    not run.
positional: _input
options:
  _input:
    description: The registered results by host.
    type: dict
    required: true
"""


def gpu_facts_lines(results):
    # Imported when the filter is used, not when Ansible loads this file (collection README).
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.nvidia_smi import summary_lines

    return summary_lines(results or {})


class FilterModule:
    def filters(self):
        return {"gpu_facts_lines": gpu_facts_lines}
