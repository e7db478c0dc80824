"""module_utils/nvidia_driver_host.py: what the nvidia_driver role does on a host, and why,
from its probe. A converged GPU host (the wanted branch loaded, the CUDA toolkit at its pin,
nvidia-persistenced enabled and running) needs nothing; each drift (a package gone, the
repository's files rewritten in this run, the unit disabled, masked or stopped, another
branch loaded) asks for the section that repairs it and says why; the preflight's problems
are found before anything changes."""

import copy

import pytest

from ansible_collections.fastchat_lab.lab.plugins.filter.nvidia_driver import FilterModule
from ansible_collections.fastchat_lab.lab.plugins.module_utils.nvidia_driver_host import needs

PROC = "/proc/driver/nvidia/version"
PROC_535 = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024\n"
UNIT = "nvidia-persistenced.service"
KEY, CERT = "/var/lib/shim-signed/mok/MOK.priv", "/var/lib/shim-signed/mok/MOK.der"


def converged():
    probe = {
        "globbed": {"/sys/bus/pci/devices/*/vendor": {"/sys/bus/pci/devices/0000:00:01.0/vendor": "0x8086\n",
                                                      "/sys/bus/pci/devices/0000:3b:00.0/vendor": "0x10de\n"}},
        "files": {PROC: PROC_535},
        "paths": {},
        "commands": {"smi": {"rc": 0, "stdout": "535.183.01\n"}, "secure_boot": {"rc": 0, "stdout": ""}},
        "missing_packages": [],
        "services": {UNIT: {"enabled": "enabled", "active": "active"}},
    }
    wanted = {"os_family": "Debian", "branch": "535", "replace_other_branch": False, "force": False,
              "proc_version_file": PROC, "cuda_toolkit": True, "cuda_version": "12.2",
              "repo_distro": "ubuntu2204", "repo_extra_support": {}, "secure_boot_ignore": False,
              "signing_files": ["", ""], "persistenced": True, "reboot": "auto",
              "virtualization_type": "", "connection": "ssh"}
    return probe, wanted


def test_a_converged_gpu_host_needs_nothing():
    probe, wanted = converged()
    got = needs(probe, wanted, {"repository": False})
    assert got == {"gpu_present": True, "run": True, "loaded_version": "535.183.01", "action": "keep",
                   "problems": {}, "install": False, "repository_changed": False, "persistenced": False,
                   "reboot_allowed": True, "why": []}


def _missing(probe, wanted):
    probe["missing_packages"] = ["cuda-toolkit-12-2"]


def _disabled(probe, wanted):
    probe["services"][UNIT]["enabled"] = "disabled"


def _masked(probe, wanted):
    probe["services"][UNIT] = {"enabled": "masked", "active": "inactive"}


def _stopped(probe, wanted):
    probe["services"][UNIT]["active"] = "failed"


def _no_driver(probe, wanted):
    probe["files"][PROC] = ""
    probe["commands"]["smi"] = {"rc": 127, "stdout": ""}


@pytest.mark.parametrize("drift, install, persistenced, words", [
    (_missing, True, False, "packages missing or at another version: cuda-toolkit-12-2"),
    (_disabled, False, True, "nvidia-persistenced.service is disabled"),
    (_masked, False, True, "nvidia-persistenced.service is masked"),
    (_stopped, False, True, "nvidia-persistenced.service is failed, not running"),
    (_no_driver, True, True, "driver branch 535 is to be installed (loaded: none)"),
])
def test_each_drift_runs_the_section_that_repairs_it(drift, install, persistenced, words):
    probe, wanted = converged()
    drift(probe, wanted)
    got = needs(probe, wanted)
    assert (got["install"], got["persistenced"]) == (install, persistenced)
    assert words in got["why"]
    assert got["problems"] == {}


def test_repository_files_rewritten_this_run_read_the_index_again():
    probe, wanted = converged()
    got = needs(probe, wanted, {"repository": True})
    assert got["install"] and got["repository_changed"]
    assert got["why"] == ["the CUDA repository's sources list or pin was written in this run"]


def test_without_the_toolkit_a_kept_driver_needs_no_repository():
    probe, wanted = converged()
    wanted["cuda_toolkit"] = False
    probe["missing_packages"] = ["cuda-keyring=1.1-1"]
    got = needs(probe, wanted, {"repository": True})
    assert not got["install"] and got["why"] == []


def test_el_lets_dnf_decide():
    probe, wanted = converged()
    wanted.update(os_family="RedHat", repo_distro="rhel9")
    got = needs(probe, wanted)
    assert got["install"] and "RedHat: dnf checks the repository and packages itself" in got["why"]


def test_the_kernel_s_word_wins_over_nvidia_smi():
    probe, wanted = converged()
    probe["commands"]["smi"]["stdout"] = "550.54.15\n"
    assert needs(probe, wanted)["action"] == "keep"
    probe["files"][PROC] = ""
    assert needs(probe, wanted)["action"] == "refuse"


def test_another_branch_is_refused_or_replaced():
    probe, wanted = converged()
    wanted["branch"] = "550"
    wanted["cuda_toolkit"] = False
    got = needs(probe, wanted)
    assert got["action"] == "refuse" and got["problems"] == {"branch": "535.183.01"}
    wanted["replace_other_branch"] = True
    got = needs(probe, wanted)
    assert got["action"] == "replace" and got["install"] and got["persistenced"] and got["problems"] == {}


def test_no_gpu_means_nothing_unless_forced():
    probe, wanted = converged()
    probe["globbed"] = {"/sys/bus/pci/devices/*/vendor": {"/sys/bus/pci/devices/0000:00:01.0/vendor": "0x8086\n"}}
    _no_driver(probe, wanted)
    got = needs(probe, wanted)
    assert not got["run"] and not got["gpu_present"] and not got["install"] and not got["persistenced"]
    wanted["force"] = True
    got = needs(probe, wanted)
    assert got["run"] and not got["gpu_present"] and got["action"] == "install" and got["install"]


def test_secure_boot_blocks_an_unsigned_install_only():
    probe, wanted = converged()
    probe["commands"]["secure_boot"]["stdout"] = "SecureBoot enabled\n"
    assert needs(probe, wanted)["problems"] == {}  # the loaded driver is kept: nothing to sign
    _no_driver(probe, wanted)
    assert needs(probe, wanted)["problems"] == {"secure_boot": True}
    wanted["secure_boot_ignore"] = True
    assert needs(probe, wanted)["problems"] == {}
    wanted.update(secure_boot_ignore=False, signing_files=[KEY, CERT])
    probe["paths"] = {KEY: {"exists": True}, CERT: {"exists": False}}
    assert needs(probe, wanted)["problems"] == {"signing_missing": [CERT]}
    probe["paths"][CERT] = {"exists": True}
    assert needs(probe, wanted)["problems"] == {}


def test_what_the_repository_does_not_publish_is_a_problem():
    probe, wanted = converged()
    wanted.update(repo_distro="debian13", cuda_version="11.7")
    problems = needs(probe, wanted)["problems"]["repository"]
    assert problems and all(isinstance(p, str) for p in problems)
    wanted["repo_extra_support"] = {"debian13": ["11.7"]}
    assert "repository" not in needs(probe, wanted)["problems"]
    wanted.update(repo_extra_support={}, cuda_toolkit=False)
    assert "repository" not in needs(probe, wanted)["problems"]  # a kept driver, no toolkit: nothing asked of it


@pytest.mark.parametrize("change, allowed", [
    ({}, True),
    ({"reboot": "never"}, False),
    ({"virtualization_type": "docker"}, False),
    ({"virtualization_type": "lxc"}, False),
    ({"virtualization_type": "kvm"}, True),
    ({"connection": "local"}, False),
])
def test_reboot_policy(change, allowed):
    probe, wanted = converged()
    wanted.update(change)
    assert needs(probe, wanted)["reboot_allowed"] is allowed


def test_the_probe_is_not_changed_and_the_filter_is_registered():
    probe, wanted = converged()
    before = copy.deepcopy(probe)
    needs(probe, wanted)
    assert probe == before
    assert FilterModule().filters()["nvidia_driver_needs"](probe, wanted)["action"] == "keep"
