# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Whether the fastchat_deploy role starts (``compose up``) or restarts services on one host,
and why: the one place that decides.

The role asks the host once (fastchat_lab.lab.host_probe: the compose file, the project's
network and its containers), writes its files (``lab_files``: a drifted compose file,
page, launcher or mode is put back and reported as changed), then decides here:

- ``down_first``: the project's network has another bridge than the one compose.py names
  (a lab deployed before the bridge had a name): taken down once, then up.
- ``up``: the compose file was written in this run, a service of the plan has no running
  container whose health check passes (stopped, exited, unhealthy, starting, gone), or
  ``down_first``. ``compose up --wait`` then makes what differs and waits until healthy.
- ``restart``: the services that read a changed file only when they start: the web UI
  (page, logins) and the API server (keys) (deploy_files.restarts).

``why`` lists every reason in words (printed with -v); a converged host has none, and the
role skips its start section in one step.
"""

from __future__ import annotations

from ansible_collections.fastchat_lab.lab.plugins.module_utils.compose import bridge_outdated, container_states
from ansible_collections.fastchat_lab.lab.plugins.module_utils.deploy_files import restarts


def needs(services, deploy_dir, probe, changed=None):
    """What the role's start section must do on this host (see the module's docstring).

    services: this host's services in the plan ([{name, kind, ...}]).
    probe: the host_probe result (commands network and containers).
    changed: files and secrets (the paths the role's two file tasks changed in this run).
    """
    changed = changed or {}
    commands = probe.get("commands") or {}
    why = []
    compose_file = deploy_dir + "/compose.yaml"
    files = list(changed.get("files") or [])
    if compose_file in files:
        why.append("%s was written in this run" % compose_file)
    down_first = bridge_outdated(commands.get("network"))
    if down_first:
        why.append("the project's network has an unnamed bridge: taken down once")
    ps = commands.get("containers") or {}
    states = container_states(ps.get("stdout") if ps.get("rc") == 0 else "")
    unhealthy = [svc["name"] for svc in services if states.get(svc["name"]) != "healthy"]
    for name in unhealthy:
        why.append("service %s is %s" % (name, states.get(name) or "not there"))
    restart = restarts(services, deploy_dir, files, changed.get("secrets") or [])
    if restart:
        why.append("restarted for files they read at start: %s" % ", ".join(restart))
    return {"up": bool(compose_file in files or unhealthy or down_first), "down_first": down_first,
            "restart": restart, "why": why}
