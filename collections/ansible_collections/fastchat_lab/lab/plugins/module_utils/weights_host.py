# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Which hub models a host lacks: the question the model_weights role asks each host once.

The role's probe runs the weights helper (roles/model_weights/files/fastchat_weights.py)
once per host, ``missing --model NAME DIR REV ...`` for the models it checks, and the helper
answers ``{"missing": [NAME...], "problems": {NAME: [...]}}`` by name:

- :func:`probe_argv`: that command, for the models given (none: no command).
- :func:`missing`: its answer. A helper that could not answer fails the run with its words
  (a real run installed it just before), except where ``fallback`` is given: check mode on a
  new host, where the helper is not there yet and every model checked counts as lacking.
"""

from __future__ import annotations

import json

COMMAND = "weights"


class WeightsProbeError(Exception):
    pass


def probe_argv(helper, models, names):
    """{COMMAND: argv} asking ``helper`` which of ``names`` (keys of the plan's ``models``,
    each with host_path and revision) lack a verified copy; {} when there are none."""
    if not names:
        return {}
    argv = [helper, "missing"]
    for name in names:
        argv += ["--model", name, models[name]["host_path"], models[name]["revision"]]
    return {COMMAND: argv}


def missing(probe, fallback=None, host=""):
    """The names the helper found lacking in a registered probe; [] when it asked nothing."""
    answer = ((probe or {}).get("commands") or {}).get(COMMAND)
    if answer is None:
        return []
    if answer.get("rc") == 0:
        try:
            found = json.loads(answer.get("stdout") or "")
            return list(found["missing"])
        except (ValueError, KeyError, TypeError):
            pass
    if fallback is not None:
        return list(fallback)
    raise WeightsProbeError(
        "%s: the weights helper (fastchat_weights.py missing) could not say which models are missing "
        "(rc %s): %s. Fix: make python3 on that host run it (the model_weights role installs it), then re-run."
        % (host or "a host", answer.get("rc"), ((answer.get("stderr") or answer.get("stdout") or "").strip())[-400:]))
