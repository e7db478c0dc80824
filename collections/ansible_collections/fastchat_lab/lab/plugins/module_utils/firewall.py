# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The lab_firewall role's decisions: the checks of its settings (before any host
changes), the checks of a host before the role writes there, and the rules its script
applies.

Pure Python (standard library only); the ``fastchat_lab.lab`` firewall filters wrap it
and ``tests/test_firewall.py`` tests it.

The rules (iptables, IPv4: the compose project publishes IPv4 only and its network has no
IPv6), each in a chain FASTCHAT-LAB of its table:

- filter, jumped to first from DOCKER-USER (Docker sends forwarded traffic through it
  before its own rules and never flushes it):
  1. REJECT (TCP reset) what any other interface forwards to the compose bridge for the
     container port of a service published on the host's loopback only (the API server
     and the web UI behind the TLS proxy, which reaches them through 127.0.0.1, never
     forwarded): a neighbour that routes to the container's address directly (moby#45610,
     Docker < 28) would pass the proxy by;
  2. RETURN for every allowed source: each lab host's address (names as this host
     resolves them) and ``lab_firewall_allowed_sources``;
  3. RETURN for what comes in on this host's own container bridges, by their exact
     names: Docker's default bridge (docker0, or daemon.json's "bridge") and the compose
     project's (``compose.BRIDGE``) -- never a pattern such as br+, which also matches
     an uplink bridge (br0, br-lan);
  4. REJECT what goes out to the compose bridge for a controller or worker port: the
     containers listen on the port number the plan publishes, so this stops a neighbour
     that routes to a container's address directly (moby#45610);
  5. REJECT what Docker DNATed from one of those ports (the published path; the
     connection's original destination port).
  No conntrack state is exempt: a connection that got through before the rules were
  (re)applied is reset at its next packet.
- raw, jumped to first from PREROUTING: DROP every packet for 127.0.0.0/8 that arrives on
  another interface than lo, before Docker's DNAT of its loopback-published ports (the API
  server's and the web UI's own ports behind the TLS proxy) can rewrite it past the
  kernel's martian check; a neighbour that sends to 127.0.0.1 through this host's MAC
  address reaches nothing (moby#41872). Needed whatever route_localnet says: the DNAT
  comes before the routing decision that reads it.
"""

from __future__ import annotations

import ipaddress
import json
import posixpath
import re

from ansible_collections.fastchat_lab.lab.plugins.module_utils.compose import BRIDGE as COMPOSE_BRIDGE
from ansible_collections.fastchat_lab.lab.plugins.module_utils.docker_host import DAEMON_JSON

CHAIN = "FASTCHAT-LAB"
COMMENT = "fastchat-lab"
# Every file the role writes carries it (the templates' first comment): a unit file or a
# script path that is there without it belongs to someone else.
MARKER = "(role lab_firewall)"
DOCKER_BRIDGE = "docker0"
UNIT_DIR = "/etc/systemd/system"
# A script named like a command there would shadow it for every PATH that lists
# /usr/local first (dockerd calling iptables, for one).
SYSTEM_BIN_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE = re.compile(r"%s(?:\.%s){3}" % (_OCTET, _OCTET))
SOURCE_RE = re.compile(r"(%s)(?:/(3[0-2]|[12]?[0-9]))?" % IPV4_RE.pattern)
# A Linux interface name is at most 15 bytes; these characters are safe in a rule.
IFNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
# What a rendered rule may hold: it is split into iptables' argv by the shell.
RULE_RE = re.compile(r"[A-Za-z0-9 ./!_-]+")
SOURCES_FIX = ("give IPv4 addresses or networks, e.g. 192.0.2.7 or 192.0.2.0/24 "
               "(names are not resolved here)")


def source_problem(value) -> str | None:
    """None for an IPv4 address or network (a.b.c.d or a.b.c.d/n), else what is wrong."""
    if not isinstance(value, str):
        return "%r is not text" % (value,)
    match = SOURCE_RE.fullmatch(value)
    if not match:
        return ("%r is not an IPv4 address or network (a.b.c.d or a.b.c.d/n, no leading "
                "zeros)" % (value,))
    net = ipaddress.IPv4Network(value, strict=False)
    if net.prefixlen == 0:
        return "%r allows every address, which is no firewall at all" % (value,)
    if match.group(2) is not None and net.network_address != ipaddress.IPv4Address(match.group(1)):
        return "%r has host bits set (the network is %s)" % (value, net)
    return None


def _source(value) -> str:
    """The rule's form of a valid source: a.b.c.d/n (iptables -S prints it so)."""
    return str(ipaddress.IPv4Network(value, strict=False))


def unit_file(unit: str) -> str:
    return "%s/%s" % (UNIT_DIR, unit)


def _shape_problem(shape, value) -> str | None:
    """The settings gate's shape (module_utils/lab_settings.py owns it) as a problem text."""
    from ansible_collections.fastchat_lab.lab.plugins.module_utils import lab_settings

    try:
        getattr(lab_settings, shape)(value)
    except lab_settings.Problem as exc:
        return exc.what
    return None


def script_problem(path) -> str | None:
    return _shape_problem("helper_path", path)


def unit_problem(unit) -> str | None:
    return _shape_problem("owned_unit", unit)


def settings_problems(where, sources, script, unit) -> list:
    """Every problem of the role's settings, in the house format (host, variable, what is
    wrong, fix); read no host. Checked by the preflight, before any host changes."""
    problems = []
    if not isinstance(sources, list):
        problems.append("%s: lab_firewall_allowed_sources: must be a list, got a %s. Fix: %s."
                        % (where, type(sources).__name__, SOURCES_FIX))
    else:
        for pos, value in enumerate(sources):
            problem = source_problem(value)
            if problem:
                problems.append("%s: lab_firewall_allowed_sources[%d]: %s. Fix: %s."
                                % (where, pos, problem, SOURCES_FIX))
    problem = script_problem(script)
    if problem:
        problems.append("%s: lab_firewall_script: %s. Fix: leave the default "
                        "/usr/local/sbin/fastchat-lab-firewall, or name a file fastchat-lab-* "
                        "of its own in /usr/local/sbin or /opt/fastchat-lab." % (where, problem))
    problem = unit_problem(unit)
    if problem:
        problems.append("%s: lab_firewall_unit: %s. Fix: leave the default "
                        "fastchat-lab-firewall.service, or name a unit fastchat-lab-<word>.service."
                        % (where, problem))
    return problems


def host_problems(where, script, unit, probe) -> list:
    """Problems only the host shows (the role's host_probe answers: files, paths,
    services), checked before the role writes, starts, stops or removes anything there:
    a unit of that name that this role did not write (ssh.service), a file at the script's
    path that is not this role's script, a script named like a system command."""
    problems = []
    files = (probe or {}).get("files") or {}
    paths = (probe or {}).get("paths") or {}
    services = (probe or {}).get("services") or {}
    unit_path = unit_file(unit)
    text = files.get(unit_path)
    there = (paths.get(unit_path) or {}).get("exists") or text is not None
    enabled = (services.get(unit) or {}).get("enabled", "unknown")
    if there and (text is None or MARKER not in text):
        problems.append("%s: lab_firewall_unit: %s is a unit file this role did not write. "
                        "Fix: name a unit of the role's own (the default "
                        "fastchat-lab-firewall.service)." % (where, unit_path))
    elif not there and enabled not in ("not-found", "unknown"):
        problems.append("%s: lab_firewall_unit: %s is a unit this host has already "
                        "(systemctl is-enabled: %s), not one this role wrote: the role would "
                        "replace, start or stop it. Fix: name a unit of the role's own (the "
                        "default fastchat-lab-firewall.service)." % (where, unit, enabled))
    state = paths.get(script) or {}
    if state.get("exists"):
        text = files.get(script)
        if state.get("type") != "file" or text is None or MARKER not in text:
            problems.append("%s: lab_firewall_script: %s is there already (a %s) and is not "
                            "this role's script. Fix: name a file of the role's own (the default "
                            "/usr/local/sbin/fastchat-lab-firewall)." % (
                                where, script, state.get("type") or "file"))
    name = posixpath.basename(script)
    for directory in SYSTEM_BIN_DIRS:
        command = "%s/%s" % (directory, name)
        if (paths.get(command) or {}).get("exists"):
            problems.append("%s: lab_firewall_script: %s would shadow the system command %s "
                            "for every program whose PATH lists %s first (dockerd calls "
                            "iptables by its name). Fix: give the script a name of its own (the "
                            "default /usr/local/sbin/fastchat-lab-firewall)." % (
                                where, script, command, posixpath.dirname(script)))
            break
    return problems


# The probe's check of the live rules: the script at that path answers only where it is
# this role's own (a command of that name is never run).
CHECK_SH = ('grep -qF -- "%s" "$0" 2>/dev/null || { echo "not the lab_firewall script: $0"; '
            'exit 3; }; exec "$0" check' % MARKER)


def probe_request(script, unit) -> dict:
    """What the role's host_probe must read and run for host_problems, firewall_rules
    and the converge decision: {daemon_json (its path), read, paths, check (argv)}."""
    name = posixpath.basename(script)
    return {"daemon_json": DAEMON_JSON,
            "read": [DAEMON_JSON, unit_file(unit), script],
            "paths": [unit_file(unit), script] + ["%s/%s" % (d, name) for d in SYSTEM_BIN_DIRS],
            "check": ["/bin/sh", "-c", CHECK_SH, script]}


def docker_bridges(where, daemon_json) -> list:
    """The name of Docker's default bridge as daemon.json sets it (docker0 when it sets
    none; no bridge for "none"). Raises ValueError, naming the fix, for a daemon.json
    that is not JSON or names no interface."""
    if daemon_json is None or not str(daemon_json).strip():
        return [DOCKER_BRIDGE]
    fix = ("Fix: correct %s (the docker role writes it: docker_daemon_options)." % DAEMON_JSON)
    try:
        conf = json.loads(daemon_json)
    except ValueError:
        conf = None
    if not isinstance(conf, dict):
        raise ValueError("%s: lab_firewall: %s is not a JSON object, so Docker's default "
                         "bridge is unknown. %s" % (where, DAEMON_JSON, fix))
    bridge = conf.get("bridge")
    if bridge is None or bridge == "":
        return [DOCKER_BRIDGE]
    if bridge == "none":
        return []
    if not isinstance(bridge, str) or not IFNAME_RE.fullmatch(bridge) or bridge in (".", ".."):
        raise ValueError("%s: lab_firewall: %s sets \"bridge\" to %r, not an interface name "
                         "(at most 15 letters, digits, . _ -). %s" % (where, DAEMON_JSON, bridge, fix))
    return [bridge]


def _port(where, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError("%s: lab_firewall: %r is not a TCP port of the plan. Fix: re-run "
                         "the plan (playbooks/plan.yml)." % (where, value))
    return value


def firewall_rules(where, host_plan, addresses, host_ips=None, allowed_sources=(),
                   daemon_json=None) -> dict:
    """The rules of the host ``where`` (see the module's docstring).

    host_plan: the host's entry of the lab plan (its internal_ports, the controller's and
    the workers', and its services: those with a backend_port are published on the
    loopback only); addresses: every lab host's address (plan summary), names looked up
    in host_ips ({name: IPv4}, lab_plan's resolve entry point); allowed_sources:
    lab_firewall_allowed_sources; daemon_json: the text of /etc/docker/daemon.json (None
    where there is none).

    Returns {chain, comment, ports, loopback_ports, sources, bridges, filter: [rule],
    raw: [rule]}, each rule the arguments after ``iptables -t TABLE -A FASTCHAT-LAB``.
    Raises ValueError (with the host, what is wrong and the fix) for anything that is not
    of its shape."""
    ports = (host_plan or {}).get("internal_ports") if isinstance(host_plan, dict) else None
    services = (host_plan or {}).get("services", []) if isinstance(host_plan, dict) else None
    if not isinstance(ports, (list, tuple)) or not isinstance(services, (list, tuple)):
        raise ValueError("%s: lab_firewall: the plan has no internal_ports and services for "
                         "this host. Fix: re-run the plan (playbooks/plan.yml)." % where)
    ports = sorted({_port(where, p) for p in ports})
    loopback_ports = sorted({_port(where, s.get("port")) for s in services
                             if isinstance(s, dict) and s.get("backend_port")})
    host_ips = host_ips or {}
    sources = []
    for address in addresses or ():
        value = host_ips.get(address, address)
        problem = source_problem(value)
        if problem:
            raise ValueError("%s: lab_firewall: the lab host address %s (as this host resolves "
                             "it) is no IPv4 address to allow: %s. Fix: set that host's "
                             "fastchat_address to its IPv4 address." % (where, address, problem))
        sources.append(_source(value))
    for pos, value in enumerate(allowed_sources or ()):
        problem = source_problem(value)
        if problem:
            raise ValueError("%s: lab_firewall_allowed_sources[%d]: %s. Fix: %s."
                             % (where, pos, problem, SOURCES_FIX))
        sources.append(_source(value))
    sources = sorted(set(sources), key=lambda s: ipaddress.IPv4Network(s))
    bridges = []
    for bridge in docker_bridges(where, daemon_json) + [COMPOSE_BRIDGE]:
        if bridge not in bridges:
            bridges.append(bridge)
    tail = "-m comment --comment %s" % COMMENT
    reject = "%s -j REJECT --reject-with tcp-reset" % tail
    filter_rules = (["-o %s ! -i %s -p tcp -m tcp --dport %d %s" % (
                        COMPOSE_BRIDGE, COMPOSE_BRIDGE, p, reject) for p in loopback_ports]
                    + ["-s %s %s -j RETURN" % (s, tail) for s in sources]
                    + ["-i %s %s -j RETURN" % (b, tail) for b in bridges]
                    + ["-o %s -p tcp -m tcp --dport %d %s" % (COMPOSE_BRIDGE, p, reject)
                       for p in ports]
                    + ["-p tcp -m conntrack --ctstate DNAT --ctorigdstport %d %s" % (p, reject)
                       for p in ports])
    raw_rules = ["! -i lo -d 127.0.0.0/8 %s -j DROP" % tail]
    for rule in filter_rules + raw_rules:
        if not RULE_RE.fullmatch(rule):  # never: every part above is of its shape
            raise ValueError("%s: lab_firewall: refusing the rule %r" % (where, rule))
    return {"chain": CHAIN, "comment": COMMENT, "ports": ports,
            "loopback_ports": loopback_ports, "sources": sources, "bridges": bridges,
            "filter": filter_rules, "raw": raw_rules}
