# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""A repository's signing key on a host, as fastchat_lab.lab.host_probe read it (its
``files`` and ``paths``): in place, or why it must be written again. The docker and
nvidia_container_toolkit roles' decisions (docker_host.py, toolkit_host.py) share it."""

from __future__ import annotations

from ansible_collections.fastchat_lab.lab.plugins.module_utils import openpgp


def keyring_reasons(probe, keyring, fingerprints, setting, mode="0644", owner=None):
    """Why the key file KEYRING must be written again, in words; [] when it is in place: it
    is missing, holds a key the FINGERPRINTS of SETTING do not trust (or no key), has another
    mode than MODE, or (where OWNER, a (user, group) pair, is given) another owner."""
    state = (probe.get("paths") or {}).get(keyring) or {}
    content = (probe.get("files") or {}).get(keyring)
    if state.get("exists") is False or not content:
        return ["the signing key %s is missing" % keyring]
    try:
        openpgp.check(content.encode("utf-8", "surrogateescape"), fingerprints, keyring, setting)
    except openpgp.OpenPGPError as exc:
        return ["the signing key %s is not a trusted key (%s)" % (keyring, exc)]
    reasons = []
    if state.get("mode") is not None and state["mode"] != mode:
        reasons.append("the signing key %s has mode %s, not %s" % (keyring, state["mode"], mode))
    if owner and (state.get("owner"), state.get("group")) != tuple(owner):
        reasons.append("the signing key %s belongs to %s:%s, not %s:%s" % (
            keyring, state.get("owner"), state.get("group"), owner[0], owner[1]))
    return reasons
