# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filters of the fastchat_deploy role: its settings' checks and the files it renders."""

from importlib import import_module

DOCUMENTATION = r"""
name: deploy_problems
short_description: Every problem of fastchat_deploy's settings (module_utils/deploy_settings.py).
description:
  - Also provides C(deploy_files), C(deploy_secret_files) and C(deploy_web_ui_dir) (the
    role's files on a host, module_utils/deploy_files.py),
    C(deploy_needs) (whether compose up runs, which services restart, and why,
    module_utils/deploy_host.py), C(api_keys_file), C(web_ui_auth_file) (the root-only files),
    C(lab_page) (the web UI's page file, module_utils/lab_page.py render_page) and
    C(lab_conv_templates) (its templates file from the plan's models, render_conv_templates).
positional: _input
options:
  _input:
    description: A mapping of where, api_keys, open_api, has_api, users, open_web_ui,
      has_web_ui, page, lab_name, models.
    type: dict
    required: true
"""


def _lazy(module, name):
    def call(*args, **kwargs):
    # Imported when a filter is used, not when Ansible loads this file: it loads every filter
    # file of the collection to find one filter, in every task's worker (collection README).
        return getattr(import_module("ansible_collections.fastchat_lab.lab.plugins.module_utils." + module), name)(*args, **kwargs)
    call.__name__ = name
    return call


def _problems(args):
    return _lazy("deploy_settings", "deploy_problems")(**args)


def _page(page, models, lab_name):
    # The models are checked (descriptions of served models only) but not named in the
    # texts: a model added to the lab then changes no page and restarts no web UI.
    return _lazy("lab_page", "render_page")(page, list(models), lab_name, name_models=False)


class FilterModule:
    def filters(self):
        return {
            "deploy_problems": _problems,
            "deploy_files": _lazy("deploy_files", "deploy_files"),
            "deploy_secret_files": _lazy("deploy_files", "secret_files"),
            "deploy_needs": _lazy("deploy_host", "needs"),
            "deploy_web_ui_dir": _lazy("deploy_files", "web_ui_dir"),
            "api_keys_file": _lazy("deploy_settings", "api_keys_file"),
            "web_ui_auth_file": _lazy("deploy_settings", "web_ui_auth_file"),
            "lab_page": _page,
            "lab_conv_templates": _lazy("lab_page", "render_conv_templates"),
        }
