"""NVIDIA's CUDA repository support table, the distro mapping and the driver decision."""

import pytest

from ansible_collections.fastchat_lab.lab.plugins.filter.cuda import (
    FilterModule,
    cuda_repo_arch,
    cuda_repo_distro,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.cuda_support import (
    branch_cuda,
    driver_action,
    loaded_driver_version,
    publishes_cuda,
    repo_distro,
    support_problems,
    supported_combinations,
)


@pytest.mark.parametrize("facts, expected", [
    ({"distribution": "Ubuntu", "distribution_major_version": "20", "os_family": "Debian"}, "ubuntu2004"),
    ({"distribution": "Ubuntu", "distribution_major_version": "22", "os_family": "Debian"}, "ubuntu2204"),
    ({"distribution": "Ubuntu", "distribution_major_version": "24", "os_family": "Debian"}, "ubuntu2404"),
    ({"distribution": "Debian", "distribution_major_version": "11", "os_family": "Debian"}, "debian11"),
    ({"distribution": "Debian", "distribution_major_version": "12", "os_family": "Debian"}, "debian12"),
    ({"distribution": "Debian", "distribution_major_version": "13", "os_family": "Debian"}, "debian13"),
    ({"distribution": "RedHat", "distribution_major_version": "8", "os_family": "RedHat"}, "rhel8"),
    ({"distribution": "Rocky", "distribution_major_version": "9", "os_family": "RedHat"}, "rhel9"),
    ({"distribution": "AlmaLinux", "distribution_major_version": "9", "os_family": "RedHat"}, "rhel9"),
    ({"distribution": "OracleLinux", "distribution_major_version": "9", "os_family": "RedHat"}, "rhel9"),
    ({"distribution": "Ubuntu", "distribution_major_version": "18", "os_family": "Debian"}, ""),
    ({"distribution": "Archlinux", "distribution_major_version": "", "os_family": "Archlinux"}, ""),
])
def test_distro_mapping(facts, expected):
    assert cuda_repo_distro(facts) == expected


def test_arch_mapping():
    assert cuda_repo_arch("x86_64") == "x86_64"
    assert cuda_repo_arch("aarch64") == "sbsa"
    assert cuda_repo_arch("ppc64le") == ""


@pytest.mark.parametrize("distro, cuda, ok", [
    ("ubuntu2004", "11.7", True),
    ("ubuntu2204", "11.7", True),
    ("ubuntu2204", "11.6", False),   # 22.04 arrived with CUDA 11.7
    ("ubuntu2404", "11.7", False),
    ("ubuntu2404", "12.5", True),
    ("debian11", "11.7", True),
    ("debian12", "11.7", False),
    ("debian12", "12.2", True),
    ("debian13", "11.7", False),
    ("debian13", "13.0", True),
    ("rhel8", "11.7", True),
    ("rhel9", "11.7", True),
    ("rhel9", "11.6", False),
    ("ubuntu2004", "13.0", False),   # dropped after 12.9
])
def test_support_table(distro, cuda, ok):
    assert publishes_cuda(distro, cuda) is ok


def test_driver_branch_515_is_cuda_11_7():
    assert branch_cuda("515") == "11.7"
    assert branch_cuda(515) == "11.7"
    assert branch_cuda("999") is None


def test_refusal_names_the_problem():
    assert support_problems("debian12", "11.7", "515") == [
        "NVIDIA publishes no CUDA 11.7 packages for debian12",
        "NVIDIA publishes no driver branch 515 (CUDA 11.7) for debian12",
    ]
    assert support_problems("ubuntu2204", "11.7", "515") == []
    assert support_problems("ubuntu2204", None, "515") == []
    assert support_problems("ubuntu2204", "", None) == []
    assert support_problems("ubuntu2204", None, "123") == [
        "driver branch 123 is unknown (known: %s)" % ", ".join(sorted(
            ["450", "455", "460", "465", "470", "495", "510", "515", "520", "525", "530",
             "535", "545", "550", "555", "560", "565", "570", "575", "580"]))]
    assert support_problems(None, "11.7")[0].startswith("this distribution has no directory")


def test_extra_support_declares_what_a_repository_publishes():
    extra = {"debian13": ["11.7"]}
    assert support_problems("debian13", "11.7", "515") != []
    assert support_problems("debian13", "11.7", "515", extra) == []
    assert publishes_cuda("debian13", "11.7", extra)
    assert not publishes_cuda("debian13", "11.8", extra)
    # A directory NVIDIA does not have at all, declared by a local mirror.
    assert support_problems("debian14", "11.7", "515", {"debian14": "11.7"}) == []
    assert support_problems("debian14", "11.7", None) != []


def test_extra_support_is_validated():
    with pytest.raises(ValueError):
        support_problems("debian13", "11.7", None, {"debian13": {"min": "11.7"}})
    with pytest.raises(ValueError):
        support_problems("debian13", "11.7", None, {"debian13": ["eleven"]})


def test_combinations_listed_for_the_message():
    lines = supported_combinations({"debian13": ["11.7"]})
    assert "ubuntu2204: CUDA 11.7-latest" in lines
    assert "debian13: CUDA 13.0-latest; declared: 11.7" in lines
    assert "ubuntu2004: CUDA 11.0-12.9" in lines


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {
        "cuda_repo_distro", "cuda_repo_arch", "cuda_support_problems",
        "cuda_supported_combinations", "cuda_branch_release",
        "nvidia_loaded_driver"}


PROC_515 = ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  515.105.01  Sat Mar 11 00:47:34 UTC 2023\n"
            "GCC version:  gcc version 8.5.0 20210514 (Red Hat 8.5.0-16) (GCC)\n")
PROC_580_OPEN = ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build"
                 "  (dvs-builder@U22-I3-AF03-09-1)  Thu Nov  6 05:43:49 UTC 2025\n")


def test_loaded_driver_version():
    assert loaded_driver_version(PROC_515) == "515.105.01"
    assert loaded_driver_version(PROC_580_OPEN) == "580.159.04"
    assert loaded_driver_version("", "515.105.01\n515.105.01\n") == "515.105.01"
    assert loaded_driver_version("", "NVIDIA-SMI has failed because it couldn't communicate") == ""
    assert loaded_driver_version("", "") == ""


@pytest.mark.parametrize("loaded, replace, action", [
    ("", False, "install"),
    ("515.105.01", False, "keep"),
    ("515.65.01", False, "keep"),
    ("535.183.01", False, "refuse"),
    ("535.183.01", True, "replace"),
])
def test_driver_action(loaded, replace, action):
    assert driver_action(loaded, "515", replace) == action
