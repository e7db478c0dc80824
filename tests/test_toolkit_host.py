"""module_utils/toolkit_host.py: what the nvidia_container_toolkit role does on a host, and
why, from its probe. A converged host needs nothing; each drift (a package gone, the key gone,
replaced or loosened, a repository file gone, edited, loosened or given to another owner,
the runtime missing from daemon.json or not the default as asked) asks for the section that
repairs it and says why."""

import json
import shutil

import pytest

from ansible_collections.fastchat_lab.lab.plugins.filter.toolkit import FilterModule
from ansible_collections.fastchat_lab.lab.plugins.module_utils.toolkit_host import needs

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs gpg")
KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.asc"
LIST = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"
PREF = "/etc/apt/preferences.d/nvidia-container-toolkit.pref"
DAEMON = "/etc/docker/daemon.json"
FILES = [{"path": LIST, "mode": "0644", "content": "deb [signed-by=%s] https://x/stable/deb/$(ARCH) /\n" % KEYRING},
         {"path": PREF, "mode": "0644", "content": "Package: nvidia-container-toolkit\nPin: version 1.13.5-*\n"}]
ROOT = {"owner": "root", "group": "root"}


@pytest.fixture(name="host")
def fixture_host(keys):
    fpr, armored, _binary = keys["repo"]
    probe = {
        "missing_packages": [],
        "files": {LIST: FILES[0]["content"], PREF: FILES[1]["content"], KEYRING: armored.decode(),
                  DAEMON: json.dumps({"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}},
                                      "log-driver": "json-file"})},
        "paths": {LIST: dict(ROOT, exists=True, type="file", mode="0644"),
                  PREF: dict(ROOT, exists=True, type="file", mode="0644"),
                  KEYRING: dict(ROOT, exists=True, type="file", mode="0644")},
    }
    wanted = {"os_family": "Debian", "keyring": KEYRING, "key_fingerprints": [fpr], "apt_files": FILES,
              "daemon_json": DAEMON, "default_runtime": False}
    return probe, wanted


def test_a_converged_host_needs_nothing(host):
    probe, wanted = host
    assert needs(probe, wanted, {"packages": False}) == {"install": False, "register": False, "why": []}


@pytest.mark.parametrize("drift, words", [
    (lambda p, k: p.update(missing_packages=["nvidia-container-toolkit=1.13.5-*"]), "packages missing"),
    (lambda p, k: p["paths"][KEYRING].update(exists=False), "signing key %s is missing" % KEYRING),
    (lambda p, k: p["files"].update({KEYRING: k["stranger"][1].decode()}), "is not a trusted key"),
    (lambda p, k: p["files"].update({KEYRING: "not a key\n"}), "is not a trusted key"),
    (lambda p, k: p["paths"][KEYRING].update(mode="0600"), "has mode 0600, not 0644"),
    (lambda p, k: p["paths"][KEYRING].update(owner="lab"), "belongs to lab:root, not root:root"),
    (lambda p, k: p["paths"][LIST].update(exists=False), "%s is missing" % LIST),
    (lambda p, k: p["files"].update({LIST: FILES[0]["content"].replace("stable", "experimental")}),
     "%s differs from what the role writes" % LIST),
    (lambda p, k: p["paths"][PREF].update(mode="0666"), "%s has mode 0666, not 0644" % PREF),
    (lambda p, k: p["paths"][PREF].update(group="staff"), "%s belongs to root:staff, not root:root" % PREF),
])
def test_each_drift_runs_the_install_section_and_says_why(host, keys, drift, words):
    probe, wanted = host
    drift(probe, keys)
    result = needs(probe, wanted)
    assert result["install"] is True and result["register"] is False, result
    assert any(words in why for why in result["why"]), result["why"]


@pytest.mark.parametrize("daemon, default, words", [
    ("", False, "does not register the nvidia runtime"),
    ("{}", False, "does not register the nvidia runtime"),
    ('{"runtimes": {"runc": {}}}', False, "does not register the nvidia runtime"),
    ("not json", False, "does not register the nvidia runtime"),
    ('{"runtimes": {"nvidia": {}}}', True, "does not make nvidia Docker's default runtime"),
    ('{"runtimes": {"nvidia": {}}, "default-runtime": "runc"}', True, "does not make nvidia"),
])
def test_a_runtime_not_registered_as_asked_runs_the_docker_entry_point(host, daemon, default, words):
    probe, wanted = host
    probe["files"][DAEMON] = daemon
    result = needs(probe, dict(wanted, default_runtime=default))
    assert result["register"] is True and result["install"] is False
    assert any(words in why for why in result["why"]), result["why"]


def test_the_default_runtime_registered_as_asked_needs_nothing(host):
    probe, wanted = host
    probe["files"][DAEMON] = '{"runtimes": {"nvidia": {}}, "default-runtime": "nvidia"}'
    assert needs(probe, dict(wanted, default_runtime=True))["register"] is False


def test_a_toolkit_installed_in_this_run_restarts_docker_through_the_entry_point(host):
    probe, wanted = host
    result = needs(probe, wanted, {"packages": True})
    assert result["register"] is True and "installed in this run" in result["why"][0]


def test_an_el_host_always_runs_the_install_section(host):
    probe, wanted = host
    result = needs(probe, dict(wanted, os_family="RedHat", apt_files=[]))
    assert result["install"] is True and result["why"] == ["RedHat: dnf checks the repository and packages itself"]


def test_the_role_reads_it_through_its_filter(host):
    probe, wanted = host
    assert FilterModule().filters()["toolkit_needs"](probe, wanted, {"packages": True}) == needs(
        probe, wanted, {"packages": True})
