# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Which apt packages a host has, from one dpkg-query probe (the one owner of that logic).

The host_probe module runs the probe (``dpkg_query_argv``) on the host and returns what is
missing (``missing_packages``); the filters of the same names (plugins/filter/packages.py)
wrap these functions for tasks that read a probe's output themselves. Standard library only.
"""

from __future__ import annotations

import fnmatch

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


def is_package_name(name):
    """Debian policy's package names: lower-case alphanumerics and + - ., starting alphanumeric."""
    return bool(name) and name[0].isalnum() and all(
        (c.isalnum() and (c.islower() or c.isdigit())) or c in "+-." for c in name)


def dpkg_query_argv(wanted):
    """The probe's command line (an argv list: the names are data, never shell code)."""
    names = package_names(wanted)
    for name in names:
        if not is_package_name(name):
            raise ValueError("not a Debian package name: %r" % name)
    return ["dpkg-query", "-W", "-f", DPKG_FORMAT.replace("\t", "\\t").replace("\n", "\\n"), "--"] + names
