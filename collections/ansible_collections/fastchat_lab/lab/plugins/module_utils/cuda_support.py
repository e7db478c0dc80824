# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Which CUDA versions (and driver branches) NVIDIA's CUDA repository publishes for
which distribution, and how a host's facts map to the repository's directory names.

One tested place for the data the nvidia_driver role checks before it changes anything.
"""

from __future__ import annotations

import re

# NVIDIA's repository directory per (distribution, major version):
# <base>/<dir>/<arch>/, e.g. .../repos/ubuntu2204/x86_64/.
REPO_DISTROS = {
    ("ubuntu", "20"): "ubuntu2004",
    ("ubuntu", "22"): "ubuntu2204",
    ("ubuntu", "24"): "ubuntu2404",
    ("debian", "11"): "debian11",
    ("debian", "12"): "debian12",
    ("debian", "13"): "debian13",
    ("redhat", "8"): "rhel8",
    ("redhat", "9"): "rhel9",
    ("rocky", "8"): "rhel8",
    ("rocky", "9"): "rhel9",
    ("almalinux", "8"): "rhel8",
    ("almalinux", "9"): "rhel9",
    ("centos", "8"): "rhel8",
}

# Ubuntu's minor release matters (20.04, 22.04, 24.04); the others use the major.
UBUNTU_RELEASES = {"20": "04", "22": "04", "24": "04"}

# NVIDIA's architecture directory per Ansible architecture fact.
REPO_ARCHES = {"x86_64": "x86_64", "aarch64": "sbsa"}

# CUDA versions NVIDIA's repository publishes per directory: (first, last); last None
# means "still published". From the repository's per-release directory listings and
# the CUDA release notes' supported-distribution tables.
CUDA_RANGES = {
    "ubuntu2004": ("11.0", "12.9"),
    "ubuntu2204": ("11.7", None),
    "ubuntu2404": ("12.5", None),
    "debian11": ("11.5", "12.6"),
    "debian12": ("12.2", None),
    "debian13": ("13.0", None),
    "rhel8": ("11.0", None),
    "rhel9": ("11.7", None),
}

# The driver branch each CUDA release shipped with (the branch's first CUDA release).
DRIVER_BRANCH_CUDA = {
    "450": "11.0", "455": "11.1", "460": "11.2", "465": "11.3", "470": "11.4",
    "495": "11.5", "510": "11.6", "515": "11.7", "520": "11.8", "525": "12.0",
    "530": "12.1", "535": "12.2", "545": "12.3", "550": "12.4", "555": "12.5",
    "560": "12.6", "565": "12.7", "570": "12.8", "575": "12.9", "580": "13.0",
}

_CUDA_RE = re.compile(r"^\s*(\d+)\.(\d+)\s*$")


def cuda_tuple(version):
    """(major, minor) of "11.7"; ValueError for anything else."""
    match = _CUDA_RE.match(str(version))
    if not match:
        raise ValueError("not a CUDA version (want MAJOR.MINOR, e.g. 11.7): %r" % (version,))
    return int(match.group(1)), int(match.group(2))


def repo_distro(distribution, major_version):
    """NVIDIA's directory name for a host ("Debian", "12") -> "debian12"; None if unknown."""
    key = (str(distribution).strip().lower(), str(major_version).strip())
    return REPO_DISTROS.get(key)


def repo_arch(architecture):
    """NVIDIA's architecture directory for an Ansible architecture fact; None if unknown."""
    return REPO_ARCHES.get(str(architecture).strip())


def _normalise_extra(extra):
    """{dir: [versions]} from the user's extra support mapping (validated)."""
    out = {}
    for distro, versions in (extra or {}).items():
        if isinstance(versions, (str, int, float)):
            versions = [versions]
        if not isinstance(versions, (list, tuple)):
            raise ValueError("extra support for %s must be a list of CUDA versions, got %r" % (distro, versions))
        out[str(distro)] = sorted({"%d.%d" % cuda_tuple(v) for v in versions}, key=cuda_tuple)
    return out


def publishes_cuda(distro, cuda_version, extra=None):
    """True when the repository for ``distro`` publishes CUDA ``cuda_version``."""
    wanted = cuda_tuple(cuda_version)
    if wanted in [cuda_tuple(v) for v in _normalise_extra(extra).get(distro, [])]:
        return True
    bounds = CUDA_RANGES.get(distro)
    if not bounds:
        return False
    first, last = bounds
    return cuda_tuple(first) <= wanted and (last is None or wanted <= cuda_tuple(last))


def branch_cuda(branch):
    """The CUDA release a driver branch shipped with ("515" -> "11.7"); None if unknown."""
    return DRIVER_BRANCH_CUDA.get(str(branch).strip())


def supported_combinations(extra=None):
    """Human-readable "distro: first-last" lines, extra declarations included."""
    lines = []
    extras = _normalise_extra(extra)
    for distro in sorted(set(CUDA_RANGES) | set(extras)):
        parts = []
        if distro in CUDA_RANGES:
            first, last = CUDA_RANGES[distro]
            parts.append("CUDA %s-%s" % (first, last or "latest"))
        if extras.get(distro):
            parts.append("declared: %s" % ", ".join(extras[distro]))
        lines.append("%s: %s" % (distro, "; ".join(parts)))
    return lines


def support_problems(distro, cuda_version=None, driver_branch=None, extra=None):
    """Why NVIDIA's repository cannot serve this request; [] when it can.

    ``distro`` is NVIDIA's directory name (None: the host maps to none);
    ``cuda_version`` None or "" when no toolkit is asked for; ``driver_branch`` None
    when no driver is asked for.
    """
    if not distro:
        return ["this distribution has no directory in NVIDIA's CUDA repository "
                "(mapped: %s)" % ", ".join(sorted(set(REPO_DISTROS.values())))]
    problems = []
    extras = _normalise_extra(extra)
    known = distro in CUDA_RANGES or distro in extras
    if cuda_version not in (None, ""):
        if not known or not publishes_cuda(distro, cuda_version, extras):
            problems.append("NVIDIA publishes no CUDA %s packages for %s" % (cuda_version, distro))
    if driver_branch not in (None, ""):
        shipped = branch_cuda(driver_branch)
        if shipped is None:
            problems.append("driver branch %s is unknown (known: %s)" % (
                driver_branch, ", ".join(sorted(DRIVER_BRANCH_CUDA))))
        elif not known or not publishes_cuda(distro, shipped, extras):
            problems.append("NVIDIA publishes no driver branch %s (CUDA %s) for %s" % (
                driver_branch, shipped, distro))
    return problems


# "NVRM version: NVIDIA UNIX x86_64 Kernel Module  515.105.01  Sat Mar 11 ..." or
# "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build ..."
_PROC_RE = re.compile(r"NVRM version:.*?Kernel Module.*?\s(\d+\.\d+(?:\.\d+)?)\s")
_SMI_RE = re.compile(r"^\s*(\d+\.\d+(?:\.\d+)?)\s*$")


def loaded_driver_version(proc_text, smi_text=""):
    """Version of the NVIDIA kernel driver that answers, "" when none does.

    ``proc_text``: /proc/driver/nvidia/version (empty when absent); ``smi_text``: the
    output of ``nvidia-smi --query-gpu=driver_version --format=csv,noheader`` (empty when
    it failed). The kernel's own word wins.
    """
    match = _PROC_RE.search(proc_text or "")
    if match:
        return match.group(1)
    for line in (smi_text or "").splitlines():
        match = _SMI_RE.match(line)
        if match:
            return match.group(1)
    return ""


def driver_action(loaded_version, branch, replace_other_branch=False):
    """What the role does about the driver: "keep" (the wanted branch answers: no
    reinstall, no reboot), "install" (none answers), "replace" (another branch answers
    and replacing is allowed) or "refuse" (another branch answers, replacing is not).
    """
    if not loaded_version:
        return "install"
    if str(loaded_version).split(".")[0] == str(branch).strip():
        return "keep"
    return "replace" if replace_other_branch else "refuse"
