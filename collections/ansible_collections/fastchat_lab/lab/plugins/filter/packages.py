# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Which apt packages a host lacks, from one dpkg-query probe: the roles install only then.

The logic lives in module_utils/packages.py, which the host_probe module runs on the
host (most roles probe with it); these filters serve tasks that read a probe themselves.

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

from ansible_collections.fastchat_lab.lab.plugins.module_utils.packages import (  # noqa: F401
    DPKG_FORMAT,
    dpkg_query_argv,
    installed_packages,
    missing_packages,
    package_names,
)


class FilterModule:
    def filters(self):
        return {"missing_packages": missing_packages, "package_names": package_names,
                "dpkg_query_argv": dpkg_query_argv}
