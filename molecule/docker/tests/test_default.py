"""Verify the docker role on its test host: real state, not the role's word."""

import json

import pytest

testinfra_hosts = ["fcl-docker-engine"]

# What molecule.yml's host_vars asked for, and what prepare.yml left behind.
EXPECTED_DAEMON_JSON = {
    # Kept: written by "another tool" (nvidia-ctk) before the role ran.
    "runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}},
    # Owned by the role: replaced with the variables' values.
    "log-driver": "json-file",
    "log-opts": {"max-size": "50m", "max-file": "5"},
    "registry-mirrors": ["https://mirror.lab.example"],
    "data-root": "/srv/docker",
}


def test_dockerd_is_running_and_enabled(host):
    service = host.service("docker")
    assert service.is_running
    assert service.is_enabled
    assert host.process.filter(comm="dockerd"), "no dockerd process"


def test_compose_is_v2(host):
    out = host.check_output("docker compose version --short")
    assert int(out.lstrip("v").split(".")[0]) >= 2, out


def test_the_lab_modules_can_ask_the_daemon(host):
    # community.docker's API modules (fastchat_image's docker_image_info) need requests,
    # installed whatever docker_install_python_sdk says.
    assert host.package("python3-requests").is_installed
    assert host.run("python3 -c 'import requests'").rc == 0


def test_daemon_json_is_what_the_variables_say(host):
    content = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert content == EXPECTED_DAEMON_JSON


def test_the_daemon_uses_the_configuration(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["DockerRootDir"] == "/srv/docker"
    assert info["LoggingDriver"] == "json-file"
    assert "https://mirror.lab.example/" in info["RegistryConfig"]["Mirrors"]
    assert "nvidia" in info["Runtimes"]


def test_a_locally_loaded_image_runs(host):
    # No registry is reachable: make an image from the host's static busybox.
    host.check_output(
        "set -e; d=$(mktemp -d); mkdir -p $d/bin; cp /bin/busybox $d/bin/busybox;"
        " ln -s busybox $d/bin/sh; tar -C $d -c . | docker import - fastchat-lab/busybox:test;"
        " rm -rf $d"
    )
    out = host.check_output("docker run --rm fastchat-lab/busybox:test /bin/busybox echo hello-from-nested")
    assert out.strip() == "hello-from-nested"


@pytest.mark.parametrize("user", ["labadmin"])
def test_listed_users_are_in_the_docker_group(host, user):
    assert "docker" in host.user(user).groups
