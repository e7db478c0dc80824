# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Render one host's docker compose project from the lab plan.

Pure Python (standard library only): pytest imports it directly and the
``fastchat_lab.lab.compose_project`` filter wraps it. The plan (see lab_plan/__init__.py)
owns every fact — services, ports, GPUs, FastChat argv, addresses; this module only
adds how they run in Docker: image per stack, GPU device requests, published ports,
read-only weights, health checks, restart policy, start order, secrets by env file.

Every service is started through the launcher (files/launch.py of the fastchat_deploy
role, mounted read-only at ``LAUNCHER``), which
- waits, bounded, for the controller before a worker or the API server starts
  (FastChat's worker registers once and exits if the controller is not up), and
- hands the OpenAI API server its keys from a root-only file mounted read-only, so they
  never appear on a command line, in an environment or anywhere ``docker inspect`` shows.
"""

from __future__ import annotations

from ansible_collections.fastchat_lab.lab.plugins.module_utils import deploy_files

LAUNCHER = "/opt/fastchat-lab/launch.py"
# The API server's keys, one per line, mounted read-only from a root-only host file.
API_KEYS_FILE = "/opt/fastchat-lab/secrets/api-keys"
# The web UI's own files (page.json, the login file, the leaderboard tab's files), mounted
# read-only; the launcher hands FastChat what is there (launch.py WEB_UI_FILES).
WEB_UI_DIR = "/opt/fastchat-lab/web-ui"

# The project's network is a Linux bridge of this fixed name (a valid interface name, at
# most 15 characters) instead of Docker's br-<network id>: the lab_firewall role lets this
# host's lab containers through by it, matched exactly (module_utils/firewall.py).
BRIDGE = "fastchat-lab"
BRIDGE_OPTION = "com.docker.network.bridge.name"

DEFAULT_OPTIONS = {
    "project": "fastchat-lab",
    # {stack: image reference}; every stack a host's services use must be there.
    "images": {},
    # The host paths come from the plan: the launcher, the API keys file and the web UI's
    # files in the lab's directory (summary.deploy_dir, where the fastchat_deploy role
    # writes them: module_utils/deploy_files.py names each), the arena's logs in
    # summary.logs_dir (bind-mounted: no compose project owns it, so neither `docker
    # compose down -v` nor a volume prune removes it).
    # The API server has keys: their root-only file is mounted read-only (False: an open API).
    "api_keys": True,
    # The web UI's files (page, login, leaderboard) are mounted (False: none).
    "web_ui_files": True,
    # The web UI has logins: it must not start without its logins file (fail closed).
    "web_ui_login": False,
    # Days of FastChat's own daily log files kept (the hardening patch prunes the rest).
    "log_days": 14,
    # Seconds a worker may take to load its model before health checks count.
    "worker_start_period": 900,
    # {host name: IPv4 address} of lab hosts addressed by name, as the host resolves
    # them: containers do not read the host's /etc/hosts (nor always its resolver).
    "extra_hosts": {},
    # The Docker Engine API version of the host ("1.45"); from 1.44 (Engine 25) a
    # starting service is checked every HEALTH_START_INTERVAL instead of every interval.
    "docker_api_version": None,
}

HEALTH = {"interval": "15s", "timeout": "10s", "retries": 4}
# While a service starts, Docker (Engine 25+, API 1.44) checks it this often, so `compose up
# --wait` returns about a second after the service answers instead of at the first
# 15-second interval (a changed worker took 17 s to count as healthy, 3 s to answer).
# After the start it is checked every interval again. Older engines refuse the key
# ("can't set healthcheck.start_interval"): it is left out for them.
HEALTH_START_INTERVAL = "1s"
START_INTERVAL_API = (1, 44)


def _api_at_least(version, wanted):
    try:
        return tuple(int(part) for part in str(version).split(".")[:2]) >= wanted
    except ValueError:
        return False
# FastChat's heartbeats (fastchat/constants.py): a worker beats every 5 s instead of 45, so
# one that its controller forgot (a controller restart, a head reboot) registers again
# within seconds, by itself; the controller drops a worker silent for 20 s instead of 90.
HEART_BEAT = {"FASTCHAT_WORKER_HEART_BEAT_INTERVAL": "5",
              "FASTCHAT_CONTROLLER_HEART_BEAT_EXPIRATION": "20"}


def _bind(source, target):
    """A read-only bind mount whose source must exist. With Docker's short syntax a
    missing source (a weights directory not there yet, /etc/fastchat-lab lost with a
    host's root file system) is silently made an empty directory, which then hides the
    file the play writes there ("can not use content with a dir as dest") or a model a
    worker cannot load; this way the service does not start and Docker says why."""
    return {"type": "bind", "source": source, "target": target, "read_only": True,
            "bind": {"create_host_path": False}}


def _health(url, method="GET", start_period=30, api_key=False, start_interval=False):
    test = ["CMD", "python3", LAUNCHER, "health", url, method]
    if api_key:
        test.append("--api-key")
    out = dict(HEALTH, test=test, start_period="%ds" % start_period)
    if start_interval:
        out["start_interval"] = HEALTH_START_INTERVAL
    return out


def _published(svc):
    """Where a head service's port is published: with the TLS proxy in front, FastChat's
    own port on the host's loopback only (the proxy has the public port)."""
    if svc.get("backend_port"):
        return "127.0.0.1:%d:%d" % (svc["backend_port"], svc["port"])
    return "%s:%d:%d" % (svc.get("bind", "0.0.0.0"), svc["port"], svc["port"])


def render_compose(plan, host, options=None):
    """The compose project (a dict, to be written as YAML) for ``host``.

    Raises ValueError when the host is not in the plan or an image is missing.
    """
    opts = dict(DEFAULT_OPTIONS)
    opts.update(options or {})
    if host not in plan["hosts"]:
        raise ValueError("%s: not in the lab plan (hosts: %s)" % (
            host, ", ".join(sorted(plan["hosts"]))))
    host_plan = plan["hosts"][host]
    missing = sorted({s["stack"] for s in host_plan["services"]} - set(opts["images"]))
    if missing:
        raise ValueError("%s: no image for stack(s) %s. Fix: build the images first "
                         "(fastchat_image role)." % (host, ", ".join(missing)))
    controller_url = plan["summary"]["controller_address"]
    deploy_dir = plan["summary"]["deploy_dir"]
    launcher_mount = _bind(deploy_files.launcher_path(deploy_dir), LAUNCHER)
    services = {}
    controller_here = [s["name"] for s in host_plan["services"] if s["kind"] == "controller"]
    quick = opts["docker_api_version"] is not None and _api_at_least(opts["docker_api_version"],
                                                                    START_INTERVAL_API)

    for svc in host_plan["services"]:
        port = svc["port"]
        out = {
            "image": opts["images"][svc["stack"]],
            "restart": "unless-stopped",
            "init": True,
            "labels": {"fastchat-lab.service": svc["name"], "fastchat-lab.kind": svc["kind"]},
            "volumes": [launcher_mount],
            "environment": {"FASTCHAT_LAB_SERVICE": svc["name"],
                            "FASTCHAT_LAB_LOG_DAYS": str(opts["log_days"])},
        }
        if opts["extra_hosts"]:
            out["extra_hosts"] = ["%s:%s" % (name, ip) for name, ip in sorted(opts["extra_hosts"].items())]
        command = ["python3", LAUNCHER, "run"]
        if svc["kind"] in ("controller", "model_worker"):
            out["environment"].update(HEART_BEAT)
        if svc["kind"] == "controller":
            # IPv4 only: Docker forwards IPv4 through DOCKER-USER, where the lab_firewall
            # role keeps this port to the lab's hosts; IPv6 would go through docker-proxy.
            out["ports"] = ["0.0.0.0:%d:%d" % (port, port)]
            out["healthcheck"] = _health("http://127.0.0.1:%d/test_connection" % port,
                                         start_interval=quick)
        elif svc["kind"] == "openai_api":
            out["ports"] = [_published(svc)]
            command += ["--wait-for", controller_url]
            if opts["api_keys"]:
                # The path only: the keys are in no environment docker inspect shows.
                out["volumes"].append(_bind(deploy_files.api_keys_path(deploy_dir), API_KEYS_FILE))
                out["environment"]["FASTCHAT_LAB_API_KEYS_FILE"] = API_KEYS_FILE
            out["healthcheck"] = _health("http://127.0.0.1:%d/v1/models" % port,
                                         api_key=bool(opts["api_keys"]),
                                         start_interval=quick)
        elif svc["kind"] == "web_ui":
            out["ports"] = [_published(svc)]
            command += ["--wait-for", controller_url]
            # FastChat writes conversation and vote logs under LOGDIR.
            out["environment"]["LOGDIR"] = "/logs"
            # No calls home from Gradio: lab hosts are often offline.
            out["environment"]["GRADIO_ANALYTICS_ENABLED"] = "False"
            out["volumes"].append({"type": "bind", "source": plan["summary"]["logs_dir"], "target": "/logs",
                                   "bind": {"create_host_path": False}})
            if opts["web_ui_files"]:
                out["volumes"].append(_bind(deploy_files.web_ui_dir(deploy_dir), WEB_UI_DIR))
                out["environment"]["FASTCHAT_LAB_WEB_UI_DIR"] = WEB_UI_DIR
            if opts["web_ui_login"]:
                out["environment"]["FASTCHAT_LAB_REQUIRE_LOGIN"] = "1"
            out["healthcheck"] = _health("http://127.0.0.1:%d/" % port, start_period=60,
                                         start_interval=quick)
        else:
            out["labels"]["fastchat-lab.model"] = svc["model"]
            out["ports"] = ["0.0.0.0:%d:%d" % (port, port)]  # IPv4 only, as the controller
            command += ["--wait-for", controller_url]
            if svc.get("backend") == "llamacpp":
                # The GGUF file (made once per lab by model_weights) and its record.
                gguf = plan["models"][svc["model"]]["gguf"][svc["quantization"]]
                out["volumes"].append(_bind(gguf["host_path"], svc["model_path"]))
                out["volumes"].append(_bind(gguf["host_path"] + ".json", svc["model_path"] + ".json"))
            else:
                # The plan's host_path: fastchat_weights_dir/<model> or the catalogue's local_path.
                out["volumes"].append(_bind(plan["models"][svc["model"]]["host_path"],
                                            svc["model_path"]))
            out["healthcheck"] = _health("http://127.0.0.1:%d/worker_get_status" % port,
                                         method="POST",
                                         start_period=opts["worker_start_period"],
                                         start_interval=quick)
            if svc["gpus"]:
                out["deploy"] = {"resources": {"reservations": {"devices": [{
                    "driver": "nvidia", "device_ids": list(svc["gpus"]),
                    "capabilities": ["gpu"]}]}}}
        if svc["kind"] != "controller" and controller_here:
            # Start order on the head; elsewhere the launcher waits for the controller.
            out["depends_on"] = {controller_here[0]: {"condition": "service_healthy"}}
        out["command"] = command + ["--"] + list(svc["argv"])
        services[svc["name"]] = out

    return {"name": opts["project"], "services": services,
            "networks": {"default": {"driver_opts": {BRIDGE_OPTION: BRIDGE}}}}


def bridge_outdated(inspected):
    """Whether the project's network must be made again before ``compose up``: it exists
    (``docker network inspect`` answered rc 0) with another bridge than BRIDGE, e.g. the
    br-<id> of a lab deployed before its bridge had a name. Compose keeps such a network
    as it is when it has no config-hash label (compose made none before it learnt to
    detect changed networks, docker/compose#12267), and where it does detect the change it
    may fail to start the containers it stopped to remove it (docker/compose#12897): the
    fastchat_deploy role takes the project down once instead.

    ``inspected``: the probe's answer {rc, stdout} of ``docker network inspect --format
    '{{index .Options "com.docker.network.bridge.name"}}' <project>_default``."""
    if not isinstance(inspected, dict) or inspected.get("rc") != 0:
        return False
    return str(inspected.get("stdout", "")).strip() != BRIDGE


# How a running container's health shows in `docker ps` STATUS ("Up 3 minutes (healthy)").
_HEALTH_MARKS = (("(healthy)", "healthy"), ("(unhealthy)", "unhealthy"), ("(health: starting)", "starting"))
_RANK = {"healthy": 0, "running": 1, "starting": 2}


def container_states(ps_output):
    """{service: state} from ``docker ps --all --format`` lines of
    ``SERVICE<TAB>STATE<TAB>STATUS`` (the service is the label com.docker.compose.service).

    A running container's state is its health (healthy, starting, unhealthy) or running
    when it has no health check; otherwise Docker's state (exited, created, restarting...).
    A service with several containers gets the worst of them. Lines without a service
    (containers outside a compose project) are left out."""
    states = {}
    for line in (ps_output or "").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0].strip():
            continue
        service, state, status = parts[0].strip(), parts[1].strip(), parts[2]
        if state == "running":
            state = next((value for mark, value in _HEALTH_MARKS if mark in status), "running")
        if service not in states or _RANK.get(state, 9) > _RANK.get(states[service], 9):
            states[service] = state
    return states
