"""The Debian 12 host was refused before the role changed anything on it."""

import json

testinfra_hosts = ["fcl-docker-bookworm"]


def test_no_docker_package_was_installed(host):
    for name in ("docker.io", "docker-compose", "python3-docker"):
        assert not host.package(name).is_installed, name


def test_daemon_json_is_as_prepare_left_it(host):
    content = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert content["registry-mirrors"] == ["https://stale.example"]
    assert "log-driver" not in content
