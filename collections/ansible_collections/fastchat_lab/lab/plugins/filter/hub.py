# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filters of the model_weights role: each model's clone URL and the hub settings' checks
(module_utils/hub.py)."""

from ansible.errors import AnsibleFilterError


DOCUMENTATION = r"""
name: hub_problems
short_description: Problems of the hub settings and where the hub token may go (module_utils/hub.py).
description:
  - >-
    Returns a list of "all, variable, what, Fix" lines, empty when the hub URL, the models'
    sources and the token's allowed hosts are fine. Also provides C(hub_clone_url)
    (C(hub_url | fastchat_lab.lab.hub_clone_url(source))), C(weights_probe_commands)
    (C(helper | fastchat_lab.lab.weights_probe_commands(models, names)), the probe's one
    question to the weights helper) and C(weights_missing)
    (C(probe | fastchat_lab.lab.weights_missing(fallback, host)): its answer, the models the
    host lacks; module_utils/weights_host.py).
positional: _input
options:
  _input:
    description: A mapping of hub_url, token_set (a boolean, never the token), token_hosts,
      models (the plan's models the lab downloads, each with its source).
    type: dict
    required: true
"""


def _hub():
    # Imported when a filter is used, not when Ansible loads this file: it loads every filter
    # file of the collection to find one filter, in every task's worker (collection README).
    from ansible_collections.fastchat_lab.lab.plugins.module_utils import hub

    return hub


def _weights():
    from ansible_collections.fastchat_lab.lab.plugins.module_utils import weights_host

    return weights_host


def _problems(args):
    sources = {name: (entry or {}).get("source") for name, entry in (args["models"] or {}).items()}
    return _hub().hub_problems(args["hub_url"], bool(args["token_set"]), args["token_hosts"], sources)


def hub_clone_url(hub_url, source):
    return _hub().clone_url(hub_url, source)


def weights_probe_commands(helper, models, names):
    return _weights().probe_argv(helper, models, names)


def weights_missing(probe, fallback=None, host=""):
    weights = _weights()
    try:
        return weights.missing(probe, fallback, host)
    except weights.WeightsProbeError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    def filters(self):
        return {"hub_problems": _problems, "hub_clone_url": hub_clone_url,
                "weights_probe_commands": weights_probe_commands, "weights_missing": weights_missing}
