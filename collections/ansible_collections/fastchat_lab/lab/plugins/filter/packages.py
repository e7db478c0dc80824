# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Which apt packages a host lacks, from one dpkg-query probe: the roles install only then.

A re-run of the lab used to run every apt task (each loads apt's cache, 1-4 s a task per
host, and refreshes the lists when they are older than an hour, minutes on a slow
mirror). The roles probe first, in one task that changes nothing:

    - name: Read which of the role's packages are installed.
      ansible.builtin.command:
        argv: "{{ wanted | fastchat_lab.lab.dpkg_query_argv }}"
      register: probe
      changed_when: false
      failed_when: probe.rc > 1          # 1: some package is unknown to dpkg
      check_mode: false

and run apt (and refresh its lists) only when
``probe.stdout | fastchat_lab.lab.missing_packages(wanted)`` is not empty.
"""

import fnmatch

DOCUMENTATION = r"""
name: missing_packages
short_description: The apt package specs a host lacks, from a dpkg-query probe.
description:
  - Input is the standard output of C(dpkg-query -W -f '${Package}\t${Version}\t${db:Status-Abbrev}\n' NAME...)
    (names dpkg-query does not know are simply absent from it).
  - Returns the specs of I(wanted) that are not installed as asked, in their order. A spec
    is C(name), C(name=version) or C(name=version*) (apt's own wildcard); C(name:arch)
    compares the name. Half-installed or removed-but-configured packages count as missing.
positional: _input, wanted
options:
  _input:
    description: dpkg-query's output.
    type: str
    required: true
  wanted:
    description: apt package specs.
    type: list
    elements: str
    required: true
"""

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


def dpkg_query_argv(wanted):
    """The probe's command line (an argv list: the names are data, never shell code)."""
    names = package_names(wanted)
    for name in names:
        # Debian policy's package names; anything else never reaches the command line.
        if not name or not all(c.isalnum() and c.islower() or c.isdigit() or c in "+-." for c in name) \
                or not name[0].isalnum():
            raise ValueError("not a Debian package name: %r" % name)
    return ["dpkg-query", "-W", "-f", DPKG_FORMAT.replace("\t", "\\t").replace("\n", "\\n"), "--"] + names


class FilterModule:
    def filters(self):
        return {"missing_packages": missing_packages, "package_names": package_names,
                "dpkg_query_argv": dpkg_query_argv}
