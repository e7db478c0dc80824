"""module_utils/deploy_host.py: whether fastchat_deploy starts (compose up) or restarts a host's
services, and why. A converged host (its compose file unchanged, every service running
healthy, no file a service reads at start changed) needs nothing; each drift (the compose
file rewritten, a container stopped, removed, unhealthy or still starting, the network
with an unnamed bridge, a page or keys file changed) asks for what repairs it."""

import copy

import pytest

from ansible_collections.fastchat_lab.lab.plugins.filter.deploy import FilterModule
from ansible_collections.fastchat_lab.lab.plugins.module_utils.deploy_host import needs

D = "/etc/fastchat-lab"
HEAD = [{"name": "controller", "kind": "controller"}, {"name": "openai-api", "kind": "openai_api"},
        {"name": "web-ui", "kind": "web_ui"}, {"name": "qwen-gpu0", "kind": "model_worker"}]
HEALTHY = "\n".join("%s\trunning\tUp 3 minutes (healthy)" % svc["name"] for svc in HEAD) + "\n"


def probe(ps=HEALTHY, network=None, ps_rc=0):
    return {"commands": {"network": network or {"rc": 0, "stdout": "fastchat-lab\n"},
                         "containers": {"rc": ps_rc, "stdout": ps}}}


def test_a_converged_host_needs_nothing():
    assert needs(HEAD, D, probe(), {"files": [], "secrets": []}) == {
        "up": False, "down_first": False, "restart": [], "why": []}


@pytest.mark.parametrize("host, changed, up, down, restart, words", [
    (probe(), {"files": [D + "/compose.yaml"]}, True, False, [], D + "/compose.yaml was written in this run"),
    (probe(HEALTHY.replace("qwen-gpu0\trunning\tUp 3 minutes (healthy)", "qwen-gpu0\texited\tExited (137)")), {},
     True, False, [], "service qwen-gpu0 is exited"),
    (probe(HEALTHY.replace("openai-api\trunning\tUp 3 minutes (healthy)\n", "")), {},
     True, False, [], "service openai-api is not there"),
    (probe(HEALTHY.replace("web-ui\trunning\tUp 3 minutes (healthy)", "web-ui\trunning\tUp 1 hour (unhealthy)")), {},
     True, False, [], "service web-ui is unhealthy"),
    (probe(HEALTHY.replace("controller\trunning\tUp 3 minutes (healthy)", "controller\trunning\tUp 2 s (health: starting)")),
     {}, True, False, [], "service controller is starting"),
    (probe(network={"rc": 0, "stdout": "br-1a2b3c4d5e6f"}), {}, True, True, [],
     "the project's network has an unnamed bridge: taken down once"),
    (probe(), {"files": [D + "/web-ui/page.json"]}, False, False, ["web-ui"],
     "restarted for files they read at start: web-ui"),
    (probe(), {"secrets": [D + "/secrets/api-keys", D + "/web-ui/auth"]}, False, False, ["openai-api", "web-ui"],
     "restarted for files they read at start: openai-api, web-ui"),
    (probe(), {"files": [D + "/web-ui/conv_templates.json", D + "/launch.py"]}, False, False, [], None),
])
def test_each_drift_is_repaired_by_what_it_needs(host, changed, up, down, restart, words):
    got = needs(HEAD, D, host, changed)
    assert (got["up"], got["down_first"], got["restart"]) == (up, down, restart)
    assert (words in got["why"]) if words else got["why"] == []


def test_no_docker_or_no_project_yet_starts_everything():
    for host in (probe(ps="", ps_rc=127, network={"rc": 127, "stdout": ""}), probe(ps="")):
        got = needs(HEAD, D, host)
        assert got["up"] and not got["down_first"]
        assert got["why"] == ["service %s is not there" % svc["name"] for svc in HEAD]


def test_containers_of_services_no_longer_planned_do_not_count():
    ps = HEALTHY + "old-worker\texited\tExited (0)\n"
    assert needs(HEAD, D, probe(ps))["up"] is False  # compose up --remove-orphans runs when the file changes


def test_the_probe_is_not_changed_and_the_filter_is_registered():
    host = probe()
    before = copy.deepcopy(host)
    assert FilterModule().filters()["deploy_needs"](HEAD, D, host, {})["up"] is False
    assert host == before
