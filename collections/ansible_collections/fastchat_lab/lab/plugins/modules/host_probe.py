#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_probe
short_description: Read what a role needs to know of a host in one task (changes nothing)
description:
  - Probe once, then act only where needed. A role asks in one task which of its packages
    are installed (and at which version), which paths exist, the content of small files,
    the state of systemd units and the output of read-only commands; the tasks that change
    the host then run, or are included, only where the answers say so.
  - A re-run of the lab that changes nothing pays per task, not per question
    (see tests/bench/rerun). One probe instead of a dpkg-query, a stat, a slurp and two
    commands saves four rounds of every host.
  - Never fails for what it finds (a missing file, package, unit or command is an answer);
    it fails only for a malformed request.
  - Runs in check mode as in a real run (it changes nothing).
version_added: 0.2.0
author:
  - fastchat-lab contributors
options:
  packages:
    description:
      - Debian package specs, C(name), C(name=version) or C(name=version*) (apt's wildcard).
      - Answered by one C(dpkg-query); on a host without dpkg every spec is missing.
    type: list
    elements: str
    default: []
  paths:
    description: Absolute paths whose existence, type, mode, size, owner and group are returned.
    type: list
    elements: path
    default: []
  read:
    description: Absolute paths of small text files whose content is returned (at most 1 MiB each).
    type: list
    elements: path
    default: []
  read_glob:
    description:
      - Absolute glob patterns; the content of every regular file they match is returned
        (at most 1 MiB each, 4096 files a pattern), e.g. the PCI vendor files.
    type: list
    elements: str
    default: []
  commands:
    description:
      - Read-only commands by name, each an argv list (no shell). An executable that is not
        there answers rc 127; one that runs past O(command_timeout) answers rc 124.
    type: dict
    default: {}
  command_timeout:
    description: Seconds each command may run.
    type: int
    default: 60
  services:
    description: systemd unit names whose C(is-active) and C(is-enabled) answers are returned.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Not for the contents of secrets, as what O(read) returns is in the task's result.
"""

EXAMPLES = r"""
- name: Read Docker's packages, daemon.json, the service and the versions in one task.
  fastchat_lab.lab.host_probe:
    packages: [docker.io, docker-compose]
    read: [/etc/docker/daemon.json]
    services: [docker.service]
    commands:
      server: [docker, version, --format, "{{ '{{' }}.Server.Version{{ '}}' }}"]
  register: _docker_probe

- name: Install what is missing.
  ansible.builtin.apt:
    name: "{{ _docker_probe.missing_packages }}"
  when: _docker_probe.missing_packages | length > 0
"""

RETURN = r"""
packages:
  description: "{name: version} of the asked packages that are fully installed."
  returned: always
  type: dict
  sample: {"docker.io": "26.1.5+dfsg1-9+b9"}
missing_packages:
  description: The asked specs that are not installed as asked, in their order.
  returned: always
  type: list
  elements: str
  sample: ["docker-compose"]
paths:
  description: "{path: {exists, type (file, directory, link, other or null), mode, size, owner, group}} (owner and group by name, or number where they have none)."
  returned: always
  type: dict
files:
  description: "{path: content}, null where the file is absent, unreadable or too large."
  returned: always
  type: dict
globbed:
  description: "{pattern: {path: content}} of the files each pattern matched."
  returned: always
  type: dict
commands:
  description: "{name: {rc, stdout, stderr}}, stdout and stderr without their last newline."
  returned: always
  type: dict
services:
  description: "{unit: {active, enabled}}: systemctl's answers (e.g. active, inactive; enabled,
    disabled, masked, not-found), unknown without systemctl."
  returned: always
  type: dict
"""

import fnmatch
import glob
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess

from ansible.module_utils.basic import AnsibleModule

# The package logic lives here, in the module itself: a module that imports the
# collection's module_utils is run by Mitogen in a process forked for each task on the
# host, one that imports only Ansible's own runs in the host's interpreter (about twice
# as cheap a task). tests/test_packages.py tests it directly.

# The probe's output format (dpkg-query -f), one line per known package.
DPKG_FORMAT = "${Package}\t${Version}\t${db:Status-Abbrev}\n"


def installed_packages(probe):
    """{name: version} of the packages the probe shows fully installed ("ii")."""
    found = {}
    for line in (probe or "").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].startswith("ii"):
            found[parts[0].split(":", 1)[0]] = parts[1]
    return found


def missing_packages(probe, wanted):
    """The specs of ``wanted`` (name, name=version, name=version* with apt's wildcard) that
    the probe does not show installed as asked, in their order."""
    if isinstance(wanted, str):
        wanted = [wanted]
    have = installed_packages(probe)
    missing = []
    for spec in wanted:
        name, _, version = str(spec).partition("=")
        installed = have.get(name.split(":", 1)[0])
        if installed is None or (version and not fnmatch.fnmatchcase(installed, version)):
            missing.append(spec)
    return missing


def package_names(wanted):
    """The bare names of apt specs (what dpkg-query is asked about)."""
    if isinstance(wanted, str):
        wanted = [wanted]
    return [str(spec).partition("=")[0].split(":", 1)[0] for spec in wanted]


PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]*\Z")


def is_package_name(name):
    """Debian policy's package names: lower-case ASCII letters, digits and + - ., starting
    with a letter or digit."""
    return bool(PACKAGE_NAME.fullmatch(name))


def dpkg_query_argv(wanted):
    """The probe's command line (an argv list: the names are data, never shell code)."""
    names = package_names(wanted)
    for name in names:
        if not is_package_name(name):
            raise ValueError("not a Debian package name: %r" % name)
    return ["dpkg-query", "-W", "-f", DPKG_FORMAT.replace("\t", "\\t").replace("\n", "\\n"), "--"] + names


MAX_READ = 1024 * 1024
MAX_GLOB = 4096
UNIT = re.compile(r"^[A-Za-z0-9@._:\\-]+\Z")
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")


def check_request(params):
    """The problems of a request, as messages naming the option and the fix."""
    problems = []
    for name in package_names(params["packages"]):
        if not is_package_name(name):
            problems.append("packages: %r is not a Debian package name." % name)
    for option in ("paths", "read", "read_glob"):
        for path in params[option]:
            if not os.path.isabs(path) or "\0" in path:
                problems.append("%s: %r must be an absolute path." % (option, path))
    for name, argv in params["commands"].items():
        if not NAME.fullmatch(str(name)):
            problems.append("commands: %r is not a name (letters, digits, _ . -)." % name)
        if not isinstance(argv, list) or not argv or not all(
                isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in argv):
            problems.append("commands.%s: must be a non-empty argv list of strings." % name)
        elif "\0" in "".join(str(a) for a in argv):
            problems.append("commands.%s: an argument holds a NUL byte." % name)
    for unit in params["services"]:
        if not UNIT.fullmatch(unit):
            problems.append("services: %r is not a systemd unit name." % unit)
    if params["command_timeout"] < 1:
        problems.append("command_timeout: must be at least 1 second.")
    return problems


def run(argv, timeout):
    """{rc, stdout, stderr} of an argv (never a shell), rc 127 when it is not there."""
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        proc = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, env=env, check=False)
    except FileNotFoundError as exc:
        return {"rc": 127, "stdout": "", "stderr": str(exc)}
    except PermissionError as exc:
        return {"rc": 126, "stdout": "", "stderr": str(exc)}
    except subprocess.TimeoutExpired:
        return {"rc": 124, "stdout": "", "stderr": "timed out after %d s" % timeout}
    return {"rc": proc.returncode,
            "stdout": proc.stdout.decode("utf-8", "replace").rstrip("\n"),
            "stderr": proc.stderr.decode("utf-8", "replace").rstrip("\n")}


def read_text(path):
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_READ + 1)
    except OSError:
        return None
    if len(data) > MAX_READ:
        return None
    return data.decode("utf-8", "replace")


def _name(lookup, ident):
    """A user's or group's name, or its number where it has none."""
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def path_state(path):
    missing = {"exists": False, "type": None, "mode": None, "size": None, "owner": None, "group": None}
    try:
        st = os.lstat(path)
    except OSError:
        return missing
    if stat.S_ISLNK(st.st_mode):
        kind = "link"
        try:
            st = os.stat(path)
        except OSError:
            return dict(missing, type="link")
    else:
        kind = None
    if kind is None:
        kind = "file" if stat.S_ISREG(st.st_mode) else "directory" if stat.S_ISDIR(st.st_mode) else "other"
    return {"exists": True, "type": kind, "mode": "%04o" % stat.S_IMODE(st.st_mode), "size": st.st_size,
            "owner": _name(pwd.getpwuid, st.st_uid), "group": _name(grp.getgrgid, st.st_gid)}


def probe_packages(specs, timeout):
    if not specs:
        return {}, []
    if shutil.which("dpkg-query") is None:
        return {}, list(specs)
    out = run(dpkg_query_argv(specs), timeout)
    # rc 1: some package is unknown to dpkg (missing): its line is simply absent.
    probe = out["stdout"] if out["rc"] in (0, 1) else ""
    return installed_packages(probe), missing_packages(probe, specs)


def probe_services(units, timeout):
    answers = {}
    systemctl = shutil.which("systemctl")
    for unit in units:
        if systemctl is None:
            answers[unit] = {"active": "unknown", "enabled": "unknown"}
            continue
        active = run([systemctl, "is-active", "--", unit], timeout)["stdout"].strip() or "unknown"
        enabled_run = run([systemctl, "is-enabled", "--", unit], timeout)
        enabled = enabled_run["stdout"].strip()
        if not enabled:
            # "Failed to get unit file state for x: No such file or directory"
            enabled = "not-found" if "No such file" in enabled_run["stderr"] or "not found" in enabled_run["stderr"] else "unknown"
        answers[unit] = {"active": active.splitlines()[0], "enabled": enabled.splitlines()[0]}
    return answers


def main():
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": []},
            "paths": {"type": "list", "elements": "path", "default": []},
            "read": {"type": "list", "elements": "path", "default": []},
            "read_glob": {"type": "list", "elements": "str", "default": []},
            "commands": {"type": "dict", "default": {}},
            "command_timeout": {"type": "int", "default": 60},
            "services": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    problems = check_request(params)
    if problems:
        module.fail_json(msg="host_probe: " + " ".join(problems))
    timeout = params["command_timeout"]
    packages, missing = probe_packages(params["packages"], timeout)
    globbed = {}
    for pattern in params["read_glob"]:
        matches = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))[:MAX_GLOB]
        globbed[pattern] = {p: read_text(p) for p in matches}
    module.exit_json(
        changed=False,
        packages=packages,
        missing_packages=missing,
        paths={p: path_state(p) for p in params["paths"]},
        files={p: read_text(p) for p in params["read"]},
        globbed=globbed,
        commands={name: run(argv, timeout) for name, argv in params["commands"].items()},
        services=probe_services(params["services"], timeout),
    )


if __name__ == "__main__":
    main()
