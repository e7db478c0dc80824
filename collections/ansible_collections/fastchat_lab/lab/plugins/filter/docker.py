# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filters of the docker role: what it must do on one host, and why, and where Docker's files
are (module_utils/docker_host.py)."""

DOCUMENTATION = r"""
name: docker_needs
short_description: What the docker role must do on one host, and why (module_utils/docker_host.py).
description:
  - From the role's probe, its settings and what this run changed so far, whether the
    signing key must be fetched again (C(key)), the install section runs (C(install)), the
    service section runs (C(service)), which listed users are not in the docker group
    (C(users_missing)), and the reasons in words (C(why)).
positional: _input, wanted, changed
options:
  _input:
    description: The host_probe result (missing_packages, files, paths, services, commands).
    type: dict
    required: true
  wanted:
    description: os_family, source, keyring, key_fingerprints, key_mode, service_state, service_enabled, users.
    type: dict
    required: true
  changed:
    description: daemon_json, repository, packages (bools) as this run changed them so far.
    type: dict
"""


def docker_needs(probe, wanted, changed=None):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.docker_host import needs

    return needs(probe, wanted, changed)


def docker_file(name):
    """The path of Docker's file NAME (daemon_json): module_utils/docker_host.py owns it."""
    from ansible.errors import AnsibleFilterError
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.docker_host import FILES

    if name not in FILES:
        raise AnsibleFilterError("docker_file: %r is not one of Docker's files the lab knows (%s)"
                                 % (name, ", ".join(sorted(FILES))))
    return FILES[name]


class FilterModule:
    def filters(self):
        return {"docker_needs": docker_needs, "docker_file": docker_file}
