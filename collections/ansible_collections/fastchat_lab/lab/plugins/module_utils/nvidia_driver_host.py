# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""What the nvidia_driver role must do on one host, and why: the one place that decides.

The role asks the host once (fastchat_lab.lab.host_probe: the PCI vendor files, the loaded
driver from /proc and nvidia-smi, Secure Boot, the signing files, cuda-keyring and the CUDA
toolkit's packages, nvidia-persistenced). Where a GPU is present (or ``force``) it writes
the CUDA repository's sources list and pin every run when anything comes from NVIDIA's
repository (those modules repair a drifted file themselves), then decides here:

- ``action``: keep (the wanted branch answers), install (none answers), replace (another
  branch answers and replacing is allowed) or refuse (it is not).
- ``problems`` (the preflight, before any change): another branch loaded and not to be
  replaced, Secure Boot on with no signing key, a signing file missing, a CUDA version or
  branch NVIDIA's repository does not publish for this distribution.
- ``install`` (the repository and package section): the driver is to be installed, or the
  CUDA toolkit is wanted and a package is missing or at another version, or this run
  rewrote the repository's sources list or pin, or the host is EL (dnf is its own probe).
  ``repository_changed``: that rewrite happened, so apt reads the index again (no cache).
- ``persistenced`` (nvidia-persistenced started and enabled): the driver is installed now,
  or the unit is there but disabled, masked or not running.
- ``reboot_allowed``: the policy is auto and the host is neither a container nor the
  controller itself (local connection).

``why`` lists every reason in words (printed with -v); a converged host has none.
"""

from __future__ import annotations

from ansible_collections.fastchat_lab.lab.plugins.module_utils import cuda_support

NVIDIA_VENDOR = "0x10de"
PERSISTENCED = "nvidia-persistenced.service"
# ansible_facts' virtualization_type of a container: it never reboots.
CONTAINER_TYPES = ("docker", "container", "podman", "lxc", "containerd")


def _gpu_present(probe):
    for files in (probe.get("globbed") or {}).values():
        for text in (files or {}).values():
            if isinstance(text, str) and text.strip() == NVIDIA_VENDOR:
                return True
    return False


def loaded_version(probe, proc_file):
    """The loaded driver's version: /proc's word, else nvidia-smi's; "" when none answers."""
    smi = ((probe.get("commands") or {}).get("smi")) or {}
    return cuda_support.loaded_driver_version((probe.get("files") or {}).get(proc_file) or "",
                                              smi.get("stdout") or "" if smi.get("rc") == 0 else "")


def needs(probe, wanted, changed=None):
    """What the role's sections must do on this host (see the module's docstring).

    probe: the host_probe result (globbed, files, paths, commands smi and secure_boot,
        missing_packages, services).
    wanted: os_family, branch, replace_other_branch, force, proc_version_file, cuda_toolkit,
        cuda_version, repo_distro, repo_extra_support, secure_boot_ignore, signing_files
        ([key, cert], "" when not given), persistenced, reboot (auto|never),
        virtualization_type, connection.
    changed: repository (bool: this run wrote the repository's sources list or pin).
    """
    changed = changed or {}
    gpu = _gpu_present(probe)
    version = loaded_version(probe, wanted["proc_version_file"])
    action = cuda_support.driver_action(version, wanted["branch"], wanted["replace_other_branch"])
    installs = action in ("install", "replace")
    toolkit = bool(wanted["cuda_toolkit"])
    why = []
    if not (gpu or wanted["force"]):
        return {"gpu_present": False, "run": False, "loaded_version": version, "action": action,
                "problems": {}, "install": False, "repository_changed": False, "persistenced": False, "reboot_allowed": False,
                "why": ["no NVIDIA GPU on the PCI bus (vendor %s) and nvidia_driver_force is off" % NVIDIA_VENDOR]}

    problems = {}
    if action == "refuse":
        problems["branch"] = version
    signing = [path for path in wanted["signing_files"] if path]
    secure_boot = "SecureBoot enabled" in ((((probe.get("commands") or {}).get("secure_boot")) or {}).get("stdout")
                                           or "")
    if (secure_boot and not wanted["secure_boot_ignore"] and len(signing) < 2 and action != "keep"):
        problems["secure_boot"] = True
    paths = probe.get("paths") or {}
    missing_signing = [path for path in signing if not (paths.get(path) or {}).get("exists")]
    if missing_signing:
        problems["signing_missing"] = missing_signing
    if installs or toolkit:
        repo = cuda_support.support_problems(wanted["repo_distro"] or None,
                                             wanted["cuda_version"] if toolkit else None,
                                             wanted["branch"] if installs else None,
                                             wanted["repo_extra_support"])
        if repo:
            problems["repository"] = repo

    if installs:
        why.append("driver branch %s is to be %s (loaded: %s)" % (
            wanted["branch"], "installed" if action == "install" else "installed over the loaded one",
            version or "none"))
    install = installs
    repository_changed = bool(changed.get("repository"))
    if toolkit:
        if wanted["os_family"] != "Debian":
            why.append("%s: dnf checks the repository and packages itself" % wanted["os_family"])
            install = True
        missing = list(probe.get("missing_packages") or [])
        if missing:
            why.append("packages missing or at another version: %s" % ", ".join(missing))
            install = True
        if repository_changed:
            why.append("the CUDA repository's sources list or pin was written in this run")
            install = True

    persistenced = False
    if wanted["persistenced"]:
        unit = (probe.get("services") or {}).get(PERSISTENCED) or {}
        enabled = unit.get("enabled") or ""
        if installs:
            persistenced = True
            why.append("%s is enabled with the driver installed now" % PERSISTENCED)
        elif enabled in ("disabled", "masked"):
            persistenced = True
            why.append("%s is %s" % (PERSISTENCED, enabled))
        elif enabled in ("enabled", "static") and unit.get("active") != "active":
            persistenced = True
            why.append("%s is %s, not running" % (PERSISTENCED, unit.get("active") or "inactive"))

    reboot_allowed = (wanted["reboot"] == "auto"
                      and (wanted.get("virtualization_type") or "") not in CONTAINER_TYPES
                      and (wanted.get("connection") or "ssh") != "local")
    return {"gpu_present": gpu, "run": True, "loaded_version": version, "action": action,
            "problems": problems, "install": install, "repository_changed": repository_changed,
            "persistenced": persistenced,
            "reboot_allowed": reboot_allowed, "why": why}
