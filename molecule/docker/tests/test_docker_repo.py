"""Verify the docker role's default path (docker_install_source: docker_repo) on its test
host, after the drift of side_effect.yml was repaired: Docker's repository as the role
writes it (suite, signing key by fingerprint, pin), the pinned versions installed (the
fake repository also serves a newer docker-ce the pin must refuse), a real dockerd."""

import json
import os

testinfra_hosts = ["fcl-docker-repo"]
FINGERPRINT_FILE = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".cache", "fake-docker-repo",
                                "debian", "fingerprint")


def test_docker_sources_names_the_repository_suite_and_key(host):
    sources = host.file("/etc/apt/sources.list.d/docker.sources")
    assert sources.mode == 0o644 and sources.user == "root"
    fields = dict(line.split(": ", 1) for line in sources.content_string.splitlines() if ": " in line)
    assert fields["URIs"] == "file:///srv/fake-docker-repo/debian"
    assert fields["Suites"] == "trixie"
    assert fields["Components"] == "stable"
    assert fields["Signed-By"] == "/etc/apt/keyrings/docker.asc"


def test_the_signing_key_is_the_trusted_one(host):
    key = host.file("/etc/apt/keyrings/docker.asc")
    assert key.mode == 0o644
    with open(FINGERPRINT_FILE, encoding="utf-8") as handle:
        trusted = handle.read().strip()
    out = host.check_output("gpg --batch --with-colons --show-keys /etc/apt/keyrings/docker.asc")
    assert trusted in [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]


def test_the_pinned_versions_are_installed_not_the_newer_one(host):
    assert host.package("docker-ce").version == "5:27.5.1-1~debian.13~trixie"
    assert host.package("docker-ce-cli").version == "5:27.5.1-1~debian.13~trixie"
    assert host.package("containerd.io").version == "1.7.25-1"
    assert host.package("docker-compose-plugin").version == "2.32.4-1~debian.13~trixie"
    pref = host.file("/etc/apt/preferences.d/docker.pref")
    assert pref.mode == 0o644 and "Pin: version 5:27.5.1-*" in pref.content_string
    policy = host.check_output("apt-cache policy docker-ce")
    assert "Candidate: 5:27.5.1-1~debian.13~trixie" in policy, policy


def test_dockerd_runs_with_the_role_s_daemon_json(host):
    assert host.service("docker").is_running and host.service("docker").is_enabled
    content = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert content["log-opts"] == {"max-size": "100m", "max-file": "3"}
    assert content["runtimes"] == {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}
    assert int(host.check_output("docker compose version --short").lstrip("v").split(".")[0]) >= 2
    assert host.check_output("docker version --format '{{.Server.Version}}'").strip()
    assert "docker" in host.user("labadmin").groups
