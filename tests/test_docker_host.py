"""module_utils/docker_host.py: what the docker role does on a host, and why, from its probe.
A converged host needs nothing; each kind of drift (a package gone or at another pin, the
signing key gone, replaced by another key or garbage or its mode changed, daemon.json or
the repository written in this run, the service stopped or disabled, a user out of the
docker group) asks for exactly the section that repairs it, and says why."""

import copy
import shutil

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.docker_host import needs

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs gpg")
KEYRING = "/etc/apt/keyrings/docker.asc"


@pytest.fixture(name="host")
def fixture_host(keys):
    """A converged docker_repo host (probe, wanted) trusting the 'repo' key."""
    fpr, armored, _binary = keys["repo"]
    probe = {
        "missing_packages": [],
        "files": {"/etc/docker/daemon.json": "{}\n", KEYRING: armored.decode()},
        "paths": {KEYRING: {"exists": True, "type": "file", "mode": "0644", "size": len(armored)}},
        "services": {"docker.service": {"active": "active", "enabled": "enabled"}},
        "commands": {"group": {"rc": 0, "stdout": "docker:x:999:labadmin,ops\n"}},
    }
    wanted = {"os_family": "Debian", "source": "docker_repo", "keyring": KEYRING, "key_fingerprints": [fpr],
              "key_mode": "0644", "service_state": "started", "service_enabled": True,
              "users": ["labadmin", "ops"]}
    return probe, wanted


def test_a_converged_host_needs_nothing(host):
    probe, wanted = host
    assert needs(probe, wanted, {}) == {"key": False, "install": False, "repository_changed": False,
                                        "service": False, "users_missing": [], "why": []}


def test_a_fingerprint_given_with_spaces_and_lower_case_still_trusts_the_key(host):
    probe, wanted = host
    fpr = wanted["key_fingerprints"][0].lower()
    wanted = dict(wanted, key_fingerprints=[" ".join(fpr[i:i + 4] for i in range(0, 40, 4))])
    assert needs(probe, wanted)["key"] is False


@pytest.mark.parametrize("drift, words", [
    (lambda p, k: p["files"].update({KEYRING: None}), "is missing"),
    (lambda p, k: p["files"].update({KEYRING: ""}), "is missing"),
    (lambda p, k: p["files"].update({KEYRING: k["stranger"][1].decode()}), "not a trusted key"),
    (lambda p, k: p["files"].update({KEYRING: k["repo"][1].decode() + k["stranger"][1].decode()}),
     "not a trusted key"),
    (lambda p, k: p["files"].update({KEYRING: "-----BEGIN PGP PUBLIC KEY BLOCK-----\ngarbage\n"}),
     "not a trusted key"),
    (lambda p, k: p["paths"][KEYRING].update({"mode": "0600"}), "has mode 0600, not 0644"),
])
def test_a_drifted_signing_key_is_fetched_again_and_nothing_else_runs(host, keys, drift, words):
    probe, wanted = host
    drift(probe, keys)
    result = needs(probe, wanted)
    assert result["key"] is True and result["install"] is False and result["service"] is False, result
    assert len(result["why"]) == 1 and words in result["why"][0] and KEYRING in result["why"][0], result


def test_a_missing_or_repinned_package_runs_the_install_section(host):
    probe, wanted = host
    probe["missing_packages"] = ["docker-ce=5:27.5.1-*", "docker-compose-plugin=2.32.4-*"]
    result = needs(probe, wanted)
    assert result["install"] is True and result["key"] is False and result["service"] is False
    assert result["why"] == ["packages missing or at another version: docker-ce=5:27.5.1-*, "
                             "docker-compose-plugin=2.32.4-*"]


def test_a_repository_written_this_run_is_said_and_refreshes_the_index(host):
    probe, wanted = host
    result = needs(probe, wanted, {"repository": True})
    assert result["repository_changed"] is True and result["install"] is False
    assert result["why"] == ["Docker's repository (sources, pin or key) was written in this run"]
    # From the distribution's packages there is no repository of Docker's to speak of.
    assert needs(probe, dict(wanted, source="distro"), {"repository": True})["repository_changed"] is False


@pytest.mark.parametrize("changed, words", [
    ({"daemon_json": True}, "daemon.json was written in this run"),
    ({"packages": True}, "Docker's packages were installed in this run"),
])
def test_a_change_of_this_run_runs_the_service_section(host, changed, words):
    probe, wanted = host
    result = needs(probe, wanted, changed)
    assert result["service"] is True and result["install"] is False and result["why"] == [words]


@pytest.mark.parametrize("unit, state, enabled, words", [
    ({"active": "inactive", "enabled": "enabled"}, "started", True, "docker.service is inactive, wanted running"),
    ({"active": "failed", "enabled": "enabled"}, "restarted", True, "docker.service is failed, wanted running"),
    ({"active": "active", "enabled": "disabled"}, "started", True,
     "docker.service is disabled at boot, wanted enabled"),
    ({"active": "active", "enabled": "enabled"}, "stopped", True, "docker.service is active, wanted stopped"),
    ({"active": "active", "enabled": "enabled"}, "started", False,
     "docker.service is enabled at boot, wanted disabled"),
    ({"active": "inactive", "enabled": "not-found"}, "started", True, "docker.service is inactive, wanted running"),
])
def test_a_service_not_in_the_wanted_state_runs_the_service_section(host, unit, state, enabled, words):
    probe, wanted = host
    probe["services"]["docker.service"] = unit
    result = needs(probe, dict(wanted, service_state=state, service_enabled=enabled))
    assert result["service"] is True and result["install"] is False and words in result["why"], result


@pytest.mark.parametrize("group, missing", [
    ({"rc": 0, "stdout": "docker:x:999:labadmin\n"}, ["ops"]),
    ({"rc": 0, "stdout": "docker:x:999:\n"}, ["labadmin", "ops"]),
    ({"rc": 2, "stdout": ""}, ["labadmin", "ops"]),          # no docker group yet
    ({"rc": 0, "stdout": "docker:x:999:labadmins,xops\n"}, ["labadmin", "ops"]),  # no prefix match
])
def test_a_listed_user_outside_the_docker_group_runs_the_service_section(host, group, missing):
    probe, wanted = host
    probe["commands"]["group"] = group
    result = needs(probe, wanted)
    assert result["service"] is True and result["users_missing"] == missing
    assert result["why"] == ["not in the docker group: " + ", ".join(missing)]


def test_the_distro_source_never_looks_at_a_signing_key(host):
    probe, wanted = host
    probe["files"][KEYRING] = None
    assert needs(probe, dict(wanted, source="distro"))["key"] is False


def test_an_el_host_always_runs_the_install_section_dnf_being_its_own_probe(host):
    probe, wanted = host
    result = needs(probe, dict(wanted, os_family="RedHat"))
    assert result["install"] is True and result["key"] is False
    assert result["why"] == ["RedHat: dnf checks the repository and packages itself"]


def test_every_reason_is_said_at_once(host, keys):
    probe, wanted = host
    probe = copy.deepcopy(probe)
    probe["files"][KEYRING] = keys["stranger"][1].decode()
    probe["missing_packages"] = ["containerd.io=1.7.25-*"]
    probe["services"]["docker.service"] = {"active": "inactive", "enabled": "disabled"}
    result = needs(probe, wanted, {"daemon_json": True, "repository": True})
    assert result["key"] and result["install"] and result["service"] and result["repository_changed"]
    assert len(result["why"]) == 6, result["why"]


def test_daemon_json_is_written_in_one_place():
    """docker_host.py owns daemon.json's path: the docker role (writes it), the toolkit role
    and the firewall (read it) take it from there, through the filter docker_file."""
    import os
    import re

    from ansible.errors import AnsibleFilterError
    from ansible_collections.fastchat_lab.lab.plugins.filter.docker import docker_file
    from ansible_collections.fastchat_lab.lab.plugins.module_utils import docker_host, firewall

    assert docker_file("daemon_json") == docker_host.DAEMON_JSON == "/etc/docker/daemon.json"
    assert firewall.DAEMON_JSON is docker_host.DAEMON_JSON
    with pytest.raises(AnsibleFilterError, match="is not one of Docker's files"):
        docker_file("../../etc/shadow")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    written = []
    for top in ("roles", os.path.join("collections", "ansible_collections", "fastchat_lab")):
        for folder, _dirs, files in os.walk(os.path.join(root, top)):
            for name in files:
                path = os.path.join(folder, name)
                if not name.endswith((".yml", ".yaml", ".py", ".j2")):
                    continue
                with open(path, encoding="utf-8") as handle:
                    for number, line in enumerate(handle, 1):
                        code = line.split("#", 1)[0] if name.endswith((".yml", ".yaml", ".py")) else line
                        # A value: the path quoted (Python) or a YAML value of its own.
                        if re.search(r"[\"']/etc/docker/daemon\.json[\"']|:\s*/etc/docker/daemon\.json\s*$", code):
                            written.append("%s:%d" % (os.path.relpath(path, root), number))
    assert written == [os.path.join("collections", "ansible_collections", "fastchat_lab", "lab", "plugins",
                                    "module_utils", "docker_host.py") + ":%d" % _line_of_daemon_json()], written


def _line_of_daemon_json():
    import inspect

    from ansible_collections.fastchat_lab.lab.plugins.module_utils import docker_host

    lines = inspect.getsource(docker_host).splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith("DAEMON_JSON = "))
