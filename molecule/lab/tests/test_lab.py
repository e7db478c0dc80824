"""The rehearsal lab after site.yml (converge, which ended with playbooks/verify.yml asking
every model through the API), in the order a lab admin lives it:

1. every planned service runs healthy; each worker holds exactly its planned GPUs
   (/proc/1/environ); the API key stays out of command lines and the process list;
2. the controller and worker ports refuse this machine (not a lab host), the API and
   web UI answer it;
3. playbooks/verify.yml fails, naming the model, its host and the fix, when a worker
   does not answer;
4. a GPU host joins (inventory/joining.yml) by re-running site.yml: its worker registers
   and answers, and no container on the other hosts was recreated or restarted;
5. a headless Chromium screenshot of the arena (saved under test-output/lab/) whose
   page offers every model.
The tests run in this order (pytest keeps a module's order) and share the lab.
"""

import json
import os
import re
import socket
import subprocess
import time

import pytest

testinfra_hosts = ["fcl-lab-head", "fcl-lab-gpu1"]
API_KEY = "fcl-lab-key-2718"
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                         os.path.dirname(os.path.dirname(os.path.dirname(
                             os.path.dirname(os.path.abspath(__file__))))))
OUTPUT = os.path.join(PROJECT, "test-output", "lab")
# Planned workers and their GPUs (molecule.yml, inventory/joining.yml): NVIDIA_VISIBLE_DEVICES.
WORKERS = {
    "fcl-lab-head": {"tiny-chat-cpu": None},
    "fcl-lab-gpu1": {"tiny-remote-gpu1-2": "1,2", "tiny-chat-gpu3": "3"},
    "fcl-lab-gpu2": {"tiny-joined-gpu0-1": "0,1"},
}
HEAD_SERVICES = {"controller", "openai-api", "web-ui"}
MODELS = ["tiny-chat", "tiny-joined", "tiny-remote"]


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True,
                          text=True).stdout


def on(host, *cmd):
    """Run a command on a test host (docker exec), return stdout."""
    return docker("exec", host, *cmd)


def containers(host):
    """docker inspect of the lab's containers on a test host, by service name."""
    ids = on(host, "docker", "ps", "-aq", "--filter", "label=fastchat-lab.service").split()
    if not ids:
        return {}
    found = json.loads(on(host, "docker", "inspect", *ids))
    return {c["Config"]["Labels"]["fastchat-lab.service"]: c for c in found}


def address(host):
    return docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                  host).strip()


def environ(host, container_id):
    raw = on(host, "docker", "exec", container_id, "cat", "/proc/1/environ")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def ansible_playbook(*args, timeout=1800):
    """ansible-playbook from the project, on Molecule's inventory (plus *args)."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(["ansible-playbook", "-i", inventory, *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def wait_healthy(host, service, timeout=300):
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = containers(host)[service]["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return
        time.sleep(3)
    raise AssertionError("%s on %s is not healthy: %s" % (service, host, state))


def snapshot(hosts):
    """What must not change when a host joins: each container's id, start and restarts."""
    return {(h, name): (c["Id"], c["State"]["StartedAt"], c["RestartCount"])
            for h in hosts for name, c in containers(h).items()}


# ---------------------------------------------------------------------------
# 1. The converged lab
# ---------------------------------------------------------------------------

def test_every_planned_service_runs_healthy(host):
    name = host.backend.get_hostname()
    expected = set(WORKERS[name]) | (HEAD_SERVICES if name == "fcl-lab-head" else set())
    found = containers(name)
    assert set(found) == expected, sorted(found)
    for svc, c in found.items():
        assert c["State"]["Status"] == "running", (svc, c["State"])
        assert c["State"]["Health"]["Status"] == "healthy", (svc, c["State"]["Health"])
        assert c["RestartCount"] == 0, svc


def test_each_worker_holds_exactly_its_planned_gpus(host):
    name = host.backend.get_hostname()
    found = containers(name)
    for worker, gpus in WORKERS[name].items():
        env = environ(name, found[worker]["Id"])
        # What the GPU driver sees (Docker's device request through the NVIDIA hook).
        assert env.get("NVIDIA_VISIBLE_DEVICES") == gpus, (worker, env)
        requests = found[worker]["HostConfig"].get("DeviceRequests") or []
        assert [r["DeviceIDs"] for r in requests] == ([gpus.split(",")] if gpus else [])
    for svc in HEAD_SERVICES & set(found):
        assert "NVIDIA_VISIBLE_DEVICES" not in environ(name, found[svc]["Id"]), svc


def test_the_nvidia_stack_is_on_the_gpu_host_only(host):
    name = host.backend.get_hostname()
    has_smi = host.exists("nvidia-smi")
    assert has_smi == (name == "fcl-lab-gpu1")
    if has_smi:
        assert host.package("nvidia-container-toolkit").is_installed
        assert "Tesla P40" in host.check_output("nvidia-smi -L")


@pytest.mark.parametrize("field", ["Path", "Args"])
def test_the_api_key_is_not_in_any_command_line_docker_shows(host, field):
    for name, c in containers(host.backend.get_hostname()).items():
        assert API_KEY not in json.dumps(c[field]), (name, field)
        assert API_KEY not in json.dumps(c["Config"]["Cmd"]), name
        assert API_KEY not in json.dumps(c["Config"].get("Healthcheck")), name


def test_the_api_key_is_not_in_the_process_list(host):
    out = host.check_output("ps -eo args")
    if host.backend.get_hostname() == "fcl-lab-head":
        assert "fastchat.serve.openai_api_server" in out
    assert API_KEY not in out


def test_the_api_key_file_is_readable_by_root_only(host):
    if host.backend.get_hostname() != "fcl-lab-head":
        pytest.skip("the API server runs on the head")
    f = host.file("/etc/fastchat-lab/api.env")
    assert f.user == "root" and f.mode == 0o600
    assert host.file("/etc/fastchat-lab").mode == 0o700


# ---------------------------------------------------------------------------
# 2. Firewall: controller and worker ports for the lab's hosts only
# ---------------------------------------------------------------------------

def connect(ip, port):
    """'open', 'refused' or 'timeout' for a TCP connection from this machine."""
    try:
        with socket.create_connection((ip, port), timeout=5):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "timeout"


def test_the_firewall_unit_and_rules_are_in_place(host):
    name = host.backend.get_hostname()
    assert host.service("fastchat-lab-firewall").is_enabled
    assert host.run("/usr/local/sbin/fastchat-lab-firewall check").rc == 0
    rules = host.check_output("iptables -S FASTCHAT-LAB")
    for peer in ("fcl-lab-head", "fcl-lab-gpu1"):
        assert "-s %s/32" % address(peer) in rules, (name, peer, rules)
    assert "-j FASTCHAT-LAB" in host.check_output("iptables -S DOCKER-USER")


def test_internal_ports_refuse_this_machine_but_api_and_web_ui_answer():
    head, gpu1 = address("fcl-lab-head"), address("fcl-lab-gpu1")
    # This machine reaches the test hosts like any other machine on their network.
    assert connect(head, 8000) == "open"
    assert connect(head, 7860) == "open"
    assert connect(head, 21001) == "refused"   # controller
    assert connect(head, 21002) == "refused"   # tiny-chat-cpu
    assert connect(gpu1, 21002) == "refused"   # tiny-remote-gpu1-2
    assert connect(gpu1, 21003) == "refused"   # tiny-chat-gpu3
    # ... while the lab's hosts reach them: gpu1's workers are registered at the head.
    listed = on("fcl-lab-gpu1", "python3", "-c",
                "import urllib.request as u; print(u.urlopen(u.Request("
                "'http://%s:21001/list_models', data=b'', method='POST'), timeout=10)"
                ".read().decode())" % head)
    assert sorted(json.loads(listed)["models"]) == ["tiny-chat", "tiny-remote"]


def test_a_flushed_rule_set_is_reported_and_restored(host):
    assert host.run("iptables -F FASTCHAT-LAB").rc == 0
    assert host.run("/usr/local/sbin/fastchat-lab-firewall check").rc == 1
    # What the role does on its next run when the check fails.
    assert host.run("/usr/local/sbin/fastchat-lab-firewall apply").rc == 0
    assert host.run("/usr/local/sbin/fastchat-lab-firewall check").rc == 0


# ---------------------------------------------------------------------------
# 3. verify.yml fails clearly when a model does not answer
# ---------------------------------------------------------------------------

def test_verify_names_a_model_that_does_not_answer():
    worker = containers("fcl-lab-gpu1")["tiny-remote-gpu1-2"]["Id"]
    on("fcl-lab-gpu1", "docker", "stop", worker)
    try:
        result = ansible_playbook("playbooks/verify.yml", timeout=900)
    finally:
        on("fcl-lab-gpu1", "docker", "start", worker)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    # Either the controller still lists it and the completion fails, or the controller
    # dropped it already: both name the model, its host and the fix.
    assert ("Model tiny-remote (on fcl-lab-gpu1) did not answer" in out
            or "Missing: tiny-remote (worker tiny-remote-gpu1-2 on fcl-lab-gpu1" in out), out
    assert "Fix: look at the worker" in out
    wait_healthy("fcl-lab-gpu1", "tiny-remote-gpu1-2")


# ---------------------------------------------------------------------------
# 4. A GPU host joins the lab
# ---------------------------------------------------------------------------

def test_a_joining_gpu_host_changes_nothing_on_the_others():
    before = snapshot(["fcl-lab-head", "fcl-lab-gpu1"])
    assert len(before) == 6
    joining = os.path.join(PROJECT, "molecule", "lab", "inventory", "joining.yml")
    result = ansible_playbook("-i", joining, "site.yml")
    out = result.stdout + result.stderr
    os.makedirs(OUTPUT, exist_ok=True)
    with open(os.path.join(OUTPUT, "join.log"), "w", encoding="utf-8") as fh:
        fh.write(out)
    assert result.returncode == 0, out[-20000:]
    # verify.yml (the end of site.yml) saw the joined model answer.
    assert "tiny-joined answered" in out, out[-5000:]
    assert "The controller lists %s." % ", ".join(MODELS) in out
    assert snapshot(["fcl-lab-head", "fcl-lab-gpu1"]) == before
    joined = containers("fcl-lab-gpu2")
    assert set(joined) == set(WORKERS["fcl-lab-gpu2"])
    worker = joined["tiny-joined-gpu0-1"]
    assert worker["State"]["Health"]["Status"] == "healthy"
    assert environ("fcl-lab-gpu2", worker["Id"]).get("NVIDIA_VISIBLE_DEVICES") == "0,1"
    # The other hosts' firewalls now let the new host in.
    rules = on("fcl-lab-head", "iptables", "-S", "FASTCHAT-LAB")
    assert "-s %s/32" % address("fcl-lab-gpu2") in rules


# ---------------------------------------------------------------------------
# 5. The arena in a browser
# ---------------------------------------------------------------------------

def test_the_arena_page_offers_every_model():
    """scripts/arena-screenshot: headless Chromium opens the side-by-side arena, opens its
    model list, waits until every model is offered, then saves the screenshot."""
    url = "http://%s:7860/" % address("fcl-lab-head")
    os.makedirs(OUTPUT, exist_ok=True)
    png, html = os.path.join(OUTPUT, "arena.png"), os.path.join(OUTPUT, "arena.html")
    for path in (png, html):
        if os.path.exists(path):
            os.remove(path)
    shot = subprocess.run([os.path.join(PROJECT, "scripts", "arena-screenshot"), url, png,
                           "--html", html, "--expect", *MODELS, "--timeout", "90"],
                          capture_output=True, text=True, timeout=180)
    assert shot.returncode == 0, shot.stdout + shot.stderr
    report = json.loads(shot.stdout)
    assert report["models"] == MODELS, report
    with open(png, "rb") as fh:
        data = fh.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000, len(data)
    with open(html, encoding="utf-8") as fh:
        page = fh.read()
    assert "Arena (side-by-side)" in page
    # The opened model list, as rendered: one option element per model.
    listed = re.findall(r'<li\b[^>]*\baria-label="([^"]+)"[^>]*data-testid="dropdown-option"', page)
    assert sorted(listed) == MODELS, listed
