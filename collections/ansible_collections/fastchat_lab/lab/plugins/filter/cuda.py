# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filters over NVIDIA's CUDA repository support table (module_utils/cuda_support.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _cuda_support():
    # Imported when a filter is used, not when Ansible loads this file: it loads every filter
    # file of the collection to find one filter, in every task's worker (collection README).
    from ansible_collections.fastchat_lab.lab.plugins.module_utils import cuda_support

    return cuda_support


def cuda_repo_distro(facts):
    """NVIDIA's directory name from a host's ansible_facts; "" when unknown."""
    facts = facts or {}
    name = facts.get("distribution", "")
    # RHEL clones and CentOS report their own name; what matters is EL's major.
    if facts.get("os_family") == "RedHat" and name.lower() not in ("redhat", "rocky", "almalinux", "centos"):
        name = "redhat"
    return _cuda_support().repo_distro(name, facts.get("distribution_major_version", "")) or ""


def cuda_repo_arch(architecture):
    """NVIDIA's architecture directory ("x86_64", "sbsa"); "" when unknown."""
    return _cuda_support().repo_arch(architecture) or ""


def cuda_support_problems(distro, cuda_version=None, driver_branch=None, extra=None):
    try:
        return _cuda_support().support_problems(distro or None, cuda_version, driver_branch, extra)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def cuda_supported_combinations(extra=None):
    try:
        return _cuda_support().supported_combinations(extra)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def cuda_branch_release(branch):
    return _cuda_support().branch_cuda(branch) or ""


def nvidia_loaded_driver(proc_text, smi_text=""):
    return _cuda_support().loaded_driver_version(proc_text, smi_text)


class FilterModule(object):
    def filters(self):
        return {
            "cuda_repo_distro": cuda_repo_distro,
            "cuda_repo_arch": cuda_repo_arch,
            "cuda_support_problems": cuda_support_problems,
            "cuda_supported_combinations": cuda_supported_combinations,
            "cuda_branch_release": cuda_branch_release,
            "nvidia_loaded_driver": nvidia_loaded_driver,
        }
