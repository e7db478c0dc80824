# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filters of the model_weights role for the lab's GGUF files (module_utils/gguf.py)."""

from ansible.errors import AnsibleFilterError


def _gguf():
    # Imported when a filter is used, not when Ansible loads this file: it loads every filter
    # file of the collection to find one filter, in every task's worker (collection README).
    from ansible_collections.fastchat_lab.lab.plugins.module_utils import gguf

    return gguf

DOCUMENTATION = r"""
name: gguf_files
short_description: The GGUF files of the lab plan, by file name (module_utils/gguf.py).
description:
  - C(plan | fastchat_lab.lab.gguf_files) gives every GGUF file of the plan with its model,
    quantization, host_path, hosts, revision, commit, gguf_dir and weights_path.
  - Also provides C(gguf_probe_commands) (C(files | gguf_probe_commands(host, cache, helper,
    image_refs))), C(gguf_probe_state) (C(probe | gguf_probe_state)), C(gguf_check_argv)
    (C(entry | gguf_check_argv(helper, *extra))), C(gguf_install_argv), C(gguf_image)
    (C(images | gguf_image(image_refs)), giving [stack, image] or [none, none]) and
    C(gguf_make_argv) (C(entry | gguf_make_argv(image, helper, min_free_gb, prepare, gpus))).
positional: _input
options:
  _input:
    description: The lab plan (lab_plan_current).
    type: dict
    required: true
"""


def _wrap(name):
    def call(*args, **kwargs):
        gguf = _gguf()
        try:
            return getattr(gguf, name)(*args, **kwargs)
        except gguf.GgufPlanError as exc:
            raise AnsibleFilterError(str(exc)) from exc
    return call


def _image(images, image_refs):
    return list(_wrap("pick_image")(images, image_refs))


class FilterModule:
    def filters(self):
        return {
            "gguf_files": _wrap("gguf_files"),
            "gguf_probe_commands": _wrap("probe_commands"),
            "gguf_probe_state": _wrap("probe_state"),
            "gguf_check_argv": _wrap("check_argv"),
            "gguf_install_argv": _wrap("install_argv"),
            "gguf_image": _image,
            "gguf_make_argv": _wrap("make_argv"),
        }
