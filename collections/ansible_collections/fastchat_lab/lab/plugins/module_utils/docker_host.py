# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""What the docker role must do on one host, and why: the one place that decides.

The role asks the host once (fastchat_lab.lab.host_probe: Docker's packages, daemon.json,
the signing key, docker.service, the docker group), writes daemon.json, and on Debian/Ubuntu
with ``docker_install_source: docker_repo`` runs ``deb822_repository`` (docker.sources) and
``template`` (the pin file) every time: those modules compare the whole file, owner and mode
themselves, so a changed suite (bookworm -> trixie), ``Signed-By:``, pin or mode is repaired
by them and reported as changed. What is left to decide is here:

- ``key``: fetch Docker's signing key again (``signing_key``, a download) where the keyring
  is absent, holds a key not trusted by ``docker_repo_key_fingerprints``, is unreadable as
  a key, or has another mode. A trusted key in place costs no download.
- ``install`` (the apt/dnf section): a wanted package is missing or at another version, or
  the host is EL (dnf is its own probe). ``repository_changed``: this run wrote Docker's
  sources, pin or key, so that section reads the package index again (no cache).
- ``service`` (restart/start, enable, group): daemon.json or a package changed this run,
  docker.service is not in the wanted state, or a listed user is not in the docker group.

``why`` lists every reason in words (printed with -v); a converged host has none.
"""

from __future__ import annotations

from ansible_collections.fastchat_lab.lab.plugins.module_utils.keyring import keyring_reasons

SERVICE = "docker.service"
# Docker's daemon.json, written in this one place: the docker role writes it (keys merged
# into the others'), the nvidia_container_toolkit role and module_utils/firewall.py read it
# (the filter docker_file gives it to the roles' tasks).
DAEMON_JSON = "/etc/docker/daemon.json"
FILES = {"daemon_json": DAEMON_JSON}


def _users_missing(probe, users):
    group = ((probe.get("commands") or {}).get("group")) or {}
    members = []
    if group.get("rc") == 0:
        fields = (group.get("stdout") or "").strip().split(":")
        members = [m for m in (fields[3] if len(fields) > 3 else "").split(",") if m]
    return [user for user in users if user not in members]


def needs(probe, wanted, changed=None):
    """What the docker role's sections must do on this host (see the module's docstring).

    probe: the host_probe result (missing_packages, files, paths, services, commands).
    wanted: os_family, source (distro|docker_repo), keyring, key_fingerprints, key_mode,
        service_state (started|stopped|restarted), service_enabled, users.
    changed: what this run changed so far: daemon_json, repository (sources, pin or key),
        packages (each a bool; absent = not changed).
    """
    changed = changed or {}
    why = []
    debian = wanted["os_family"] == "Debian"
    repo = debian and wanted["source"] == "docker_repo"

    key = []
    if repo:
        key = keyring_reasons(probe, wanted["keyring"], wanted["key_fingerprints"], "docker_repo_key_fingerprints",
                              wanted.get("key_mode", "0644"))
        why.extend(key)

    missing = list(probe.get("missing_packages") or [])
    if not debian:
        why.append("%s: dnf checks the repository and packages itself" % wanted["os_family"])
    if missing:
        why.append("packages missing or at another version: %s" % ", ".join(missing))
    repository_changed = bool(repo and changed.get("repository"))
    if repository_changed:
        why.append("Docker's repository (sources, pin or key) was written in this run")
    install = not debian or bool(missing)

    service_reasons = []
    if changed.get("daemon_json"):
        service_reasons.append("daemon.json was written in this run")
    if changed.get("packages"):
        service_reasons.append("Docker's packages were installed in this run")
    unit = (probe.get("services") or {}).get(SERVICE) or {}
    want_running = wanted["service_state"] != "stopped"
    if (unit.get("active") == "active") != want_running:
        service_reasons.append("docker.service is %s, wanted %s" % (unit.get("active") or "not there",
                                                                     "running" if want_running else "stopped"))
    if (unit.get("enabled") == "enabled") != bool(wanted["service_enabled"]):
        service_reasons.append("docker.service is %s at boot, wanted %s" % (
            unit.get("enabled") or "not there", "enabled" if wanted["service_enabled"] else "disabled"))
    users_missing = _users_missing(probe, wanted.get("users") or [])
    if users_missing:
        service_reasons.append("not in the docker group: %s" % ", ".join(users_missing))
    why.extend(service_reasons)
    return {
        "key": bool(key),
        "install": install,
        "repository_changed": repository_changed,
        "service": bool(service_reasons),
        "users_missing": users_missing,
        "why": why,
    }
