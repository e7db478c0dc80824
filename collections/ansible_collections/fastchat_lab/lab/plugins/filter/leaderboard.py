# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filters of the lab_leaderboard role: its settings' checks and the backups retention
removes (module_utils/leaderboard_settings.py)."""

DOCUMENTATION = r"""
name: leaderboard_settings
short_description: The lab_leaderboard settings, checked (module_utils/leaderboard_settings.py).
description:
  - Returns C(daily_cap) and C(keep_backups) as numbers and C(problems), one message per
    bad value (all, the variable, what is wrong, and Fix).
  - Also provides C(leaderboard_backups_to_remove) (paths, keep) -> the backups beyond
    the C(keep) newest, by the UTC time in their names, and C(leaderboard_models) (the
    plan's models, the GPU hosts' model-to-image dicts) -> what was compared, per model.
positional: _input
options:
  _input:
    description: A mapping of daily_cap and keep_backups.
    type: dict
    required: true
"""


def _settings(values):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_settings import leaderboard_settings

    return leaderboard_settings(values.get("daily_cap"), values.get("keep_backups"))


def _backups_to_remove(paths, keep):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_settings import backups_to_remove

    return backups_to_remove(paths, keep)


def _models(models, images):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_settings import meta_models

    return meta_models(models or {}, images or [])


class FilterModule:
    def filters(self):
        return {
            "leaderboard_settings": _settings,
            "leaderboard_backups_to_remove": _backups_to_remove,
            "leaderboard_models": _models,
        }
