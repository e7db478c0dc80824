# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filters of the lab_judge role (module_utils/judge.py)."""

DOCUMENTATION = r"""
name: judge_manifest_models
short_description: What the judge's manifest says of each planned model.
description:
  - The source, revision, engine, precision, quantization and backend of each model of the
    lab plan's C(models), for judge.json's manifest (module_utils/judge.py).
positional: _input
options:
  _input:
    description: "The lab plan's models ({name: entry})."
    type: dict
    required: true
"""


def judge_manifest_models(models):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.judge import manifest_models

    return manifest_models(models)


class FilterModule:
    def filters(self):
        return {"judge_manifest_models": judge_manifest_models}
