"""Verify the deployed lab on the test hosts: every service of the compose project is
running and healthy on each host, and the API key stays out of docker inspect's
Cmd/Args and out of the process list on the head (playbooks/verify.yml, run by
converge, already asked every model through the API)."""

import json

import pytest

testinfra_hosts = ["fcl-lab-head", "fcl-lab-gpu1"]
API_KEY = "fcl-lab-key-2718"
EXPECTED = {
    "fcl-lab-head": {"controller", "openai-api", "web-ui", "tiny-chat-cpu"},
    "fcl-lab-gpu1": {"tiny-remote-cpu"},
}


def containers(host):
    ids = host.check_output("docker ps -aq --filter label=fastchat-lab.service").split()
    if not ids:
        return []
    return json.loads(host.check_output("docker inspect %s" % " ".join(ids)))


def test_every_planned_service_runs_healthy(host):
    name = host.backend.get_hostname()
    found = {c["Config"]["Labels"]["fastchat-lab.service"]: c for c in containers(host)}
    assert set(found) == EXPECTED[name], sorted(found)
    for svc, c in found.items():
        assert c["State"]["Status"] == "running", (svc, c["State"])
        assert c["State"]["Health"]["Status"] == "healthy", (svc, c["State"]["Health"])


def test_workers_are_healthy_and_pinned_to_no_gpu(host):
    workers = [c for c in containers(host)
               if c["Config"]["Labels"]["fastchat-lab.kind"] == "model_worker"]
    assert workers
    for c in workers:
        assert c["State"]["Health"]["Status"] == "healthy", c["Name"]
        assert not c["HostConfig"].get("DeviceRequests"), c["Name"]
        assert c["RestartCount"] == 0, c["Name"]


@pytest.mark.parametrize("field", ["Path", "Args"])
def test_the_api_key_is_not_in_any_command_line_docker_shows(host, field):
    for c in containers(host):
        assert API_KEY not in json.dumps(c[field]), (c["Name"], field)
        assert API_KEY not in json.dumps(c["Config"]["Cmd"]), c["Name"]
        assert API_KEY not in json.dumps(c["Config"].get("Healthcheck")), c["Name"]


def test_the_api_key_is_not_in_the_process_list(host):
    out = host.check_output("ps -eo args")
    assert "fastchat.serve.openai_api_server" in out or host.backend.get_hostname() != "fcl-lab-head"
    assert API_KEY not in out


def test_the_api_key_file_is_readable_by_root_only(host):
    if host.backend.get_hostname() != "fcl-lab-head":
        pytest.skip("the API server runs on the head")
    f = host.file("/etc/fastchat-lab/api.env")
    assert f.user == "root" and f.mode == 0o600
    assert host.file("/etc/fastchat-lab").mode == 0o700
