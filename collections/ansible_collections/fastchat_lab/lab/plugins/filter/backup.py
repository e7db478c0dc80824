# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filter of the lab_backup role: its settings' checks (module_utils/backup_settings.py)."""

DOCUMENTATION = r"""
name: backup_problems
short_description: Problems of the lab_backup role's settings (module_utils/backup_settings.py).
description:
  - Returns a list of "all, variable, what, Fix" lines, empty when the settings are fine.
positional: _input
options:
  _input:
    description: A mapping of dir, keep, schedule, logs_dir, weights_dir.
    type: dict
    required: true
"""


def _problems(args):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.backup_settings import backup_problems

    return backup_problems(args["dir"], args["keep"], args["schedule"], args["logs_dir"],
                           args["weights_dir"])


class FilterModule:
    def filters(self):
        return {"backup_problems": _problems}
