# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filters of the hand-outs (module_utils/handout.py): the items a receiver pulls and the
paths the serving host lists, for the weights, the GGUF files and the image archives."""

from ansible.errors import AnsibleFilterError


def _handout():
    # Imported when a filter is used, not when Ansible loads this file: it loads every filter
    # file of the collection to find one filter, in every task's worker (collection README).
    from ansible_collections.fastchat_lab.lab.plugins.module_utils import handout

    return handout

DOCUMENTATION = r"""
name: handout_items
short_description: The {source, dest} items of a hand-out (module_utils/handout.py).
description:
  - C(names | fastchat_lab.lab.handout_items(address, port, module, dest_root)) gives, for each
    name (a directory on the serving host), rsync://ADDRESS:PORT/MODULE/NAME/ to DEST_ROOT/NAME.
  - With C(into=DIR) each name is a file, pulled with each of C(suffixes) into DIR.
  - Also provides C(handout_paths) (C(names | handout_paths(directories=true, suffixes=['']))),
    what the serving host lists (lab_transfer_paths); C(handout_lease) (C(name | handout_lease)),
    the lease file of a transfer name on the serving host; and C(handout_runs)
    (C(host | handout_runs(serving_host, wanted, name, probe, serving_work))), whether a host
    runs a hand-out this run (some host lacks something, or the serving host has work of its
    own or a lease an interrupted run left).
positional: _input
options:
  _input:
    description: The names handed out.
    type: list
    elements: str
    required: true
"""


def _wrap(name):
    def call(*args, **kwargs):
        handout = _handout()
        try:
            return getattr(handout, name)(*args, **kwargs)
        except handout.HandoutError as exc:
            raise AnsibleFilterError(str(exc)) from exc
    return call


class FilterModule:
    def filters(self):
        return {
            "handout_items": _wrap("items"),
            "handout_paths": _wrap("served_paths"),
            "handout_lease": _wrap("lease"),
            "handout_runs": _wrap("runs"),
        }
