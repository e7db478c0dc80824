# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""What the nvidia_container_toolkit role must do on one host, and why: the one place that
decides.

The role asks the host once (fastchat_lab.lab.host_probe: the toolkit's packages, its
repository files, its signing key, Docker's daemon.json) and runs:

- the install section (``install``): a wanted package is missing or at another version;
  the signing key is missing, not a key ``nvidia_container_toolkit_key_fingerprints``
  trusts, or not root's 0644; a repository file (sources list, pin) is missing, differs
  from what the role writes, or has another mode, owner or group; or the host is EL (dnf
  is its own probe). The section writes the key and the files again and installs.
- the docker role's ``daemon_json`` entry point (``register``): the toolkit was installed
  in this run (Docker must restart to find its hook), daemon.json does not register the
  ``nvidia`` runtime, or it is to be Docker's default runtime and is not.

``why`` lists every reason in words (printed with -v); a converged host has none.
"""

from __future__ import annotations

import json

from ansible_collections.fastchat_lab.lab.plugins.module_utils.keyring import keyring_reasons


def _file_reasons(probe, entry):
    path = entry["path"]
    state = (probe.get("paths") or {}).get(path) or {}
    if not state.get("exists"):
        return ["%s is missing" % path]
    reasons = []
    if (probe.get("files") or {}).get(path) != entry["content"]:
        reasons.append("%s differs from what the role writes" % path)
    if state.get("mode") != entry["mode"]:
        reasons.append("%s has mode %s, not %s" % (path, state.get("mode"), entry["mode"]))
    owner = (state.get("owner"), state.get("group"))
    if owner != ("root", "root"):
        reasons.append("%s belongs to %s:%s, not root:root" % (path, owner[0], owner[1]))
    return reasons


def _daemon(probe, path):
    text = (probe.get("files") or {}).get(path) or ""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def needs(probe, wanted, changed=None):
    """What the role's sections must do on this host (see the module's docstring).

    probe: the host_probe result (missing_packages, files, paths).
    wanted: os_family, keyring, key_fingerprints, apt_files ([{path, content, mode}]),
        daemon_json (its path), default_runtime (bool).
    changed: packages (bool: this run installed the toolkit).
    """
    changed = changed or {}
    install_why = []
    if wanted["os_family"] != "Debian":
        install_why.append("%s: dnf checks the repository and packages itself" % wanted["os_family"])
    else:
        missing = list(probe.get("missing_packages") or [])
        if missing:
            install_why.append("packages missing or at another version: %s" % ", ".join(missing))
        install_why += keyring_reasons(probe, wanted["keyring"], wanted["key_fingerprints"],
                                       "nvidia_container_toolkit_key_fingerprints", owner=("root", "root"))
        for entry in wanted["apt_files"]:
            install_why += _file_reasons(probe, entry)
    register_why = []
    if changed.get("packages"):
        register_why.append("the toolkit was installed in this run (Docker must restart to find its hook)")
    daemon = _daemon(probe, wanted["daemon_json"])
    runtimes = daemon.get("runtimes")
    if not isinstance(runtimes, dict) or "nvidia" not in runtimes:
        register_why.append("%s does not register the nvidia runtime" % wanted["daemon_json"])
    if wanted["default_runtime"] and daemon.get("default-runtime") != "nvidia":
        register_why.append("%s does not make nvidia Docker's default runtime" % wanted["daemon_json"])
    return {"install": bool(install_why), "register": bool(register_why), "why": install_why + register_why}
