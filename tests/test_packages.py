"""The package probe the roles run before apt (the host_probe module's packages): a host
that has everything installs nothing; anything else missing, half-installed or at another
version than asked is installed; no name reaches dpkg-query unchecked."""

import shutil
import subprocess

import pytest

from ansible_collections.fastchat_lab.lab.plugins.modules.host_probe import (
    dpkg_query_argv,
    installed_packages,
    missing_packages,
)

PROBE = (
    "git\t1:2.39.5-0+deb12u3\tii \n"
    "git-lfs\t3.3.0-1+b5\trc \n"          # removed, its configuration kept
    "nginx\t1.22.1-9\tiU \n"              # unpacked, not configured
    "cuda-keyring\t1.1-1\tii \n"
    "libstdc++6:amd64\t12.2.0-14\tii \n"
    "nvidia-container-toolkit\t1.17.8-1\tii \n"
)


def test_only_fully_installed_packages_count():
    assert installed_packages(PROBE) == {
        "git": "1:2.39.5-0+deb12u3", "cuda-keyring": "1.1-1", "libstdc++6": "12.2.0-14",
        "nvidia-container-toolkit": "1.17.8-1"}


@pytest.mark.parametrize("wanted, missing", [
    (["git"], []),
    (["git", "git-lfs", "nginx"], ["git-lfs", "nginx"]),
    (["cuda-keyring=1.1-1"], []),
    (["cuda-keyring=1.0-1"], ["cuda-keyring=1.0-1"]),
    (["nvidia-container-toolkit=1.17.8*"], []),
    (["nvidia-container-toolkit=1.16*"], ["nvidia-container-toolkit=1.16*"]),
    (["libstdc++6:amd64", "libstdc++6"], []),
    (["rsync"], ["rsync"]),
    ("rsync", ["rsync"]),
    ([], []),
])
def test_missing_packages(wanted, missing):
    assert missing_packages(PROBE, wanted) == missing


def test_an_empty_or_garbled_probe_means_everything_is_missing():
    assert missing_packages("", ["git"]) == ["git"]
    assert missing_packages(None, ["git"]) == ["git"]
    assert missing_packages("dpkg-query: error\n", ["git"]) == ["git"]


@pytest.mark.parametrize("name", ["git; rm -rf /", "-x", "Git", "", "a b", "$(id)", "../x", "caf\u00e9", "git\n"])
def test_no_odd_name_reaches_the_command_line(name):
    with pytest.raises(ValueError):
        dpkg_query_argv([name])


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="no dpkg here")
def test_the_probe_reads_this_machines_dpkg():
    wanted = ["dpkg", "coreutils=*", "no-such-package-fcl", "dpkg=0.0-not-this"]
    proc = subprocess.run(dpkg_query_argv(wanted), capture_output=True, text=True, check=False)
    assert proc.returncode == 1          # one name unknown: the roles accept rc 1
    assert missing_packages(proc.stdout, wanted) == ["no-such-package-fcl", "dpkg=0.0-not-this"]
