"""The rehearsal lab after site.yml (converge, which ended with playbooks/verify.yml asking
every model through the API), in the order a lab admin lives it:

1. every planned service runs healthy; each worker holds exactly its planned GPUs
   (/proc/1/environ); the API key and the web UI's password stay out of docker inspect,
   the process list and the compose file;
2. the controller and worker ports refuse this machine (not a lab host); the API and the
   web UI answer it over HTTPS (the lab CA's certificate), plain HTTP reaches nothing of
   FastChat, and FastChat's own API and web UI ports are on the head's loopback only;
3. playbooks/verify.yml fails, naming the model, its host and the fix, when a worker
   does not answer;
4. a GPU host joins (inventory/joining.yml) by re-running site.yml: its worker registers
   and answers, and no container on the other hosts was recreated or restarted;
5. in a real browser (Debian's chromium): without a login the page shows no model and no
   arena; with one, the arena offers every model (screenshot under test-output/lab/) and
   none of the public arena's texts;
6. anonymous battles voted in the browser, then playbooks/leaderboard.yml: the votes are
   backed up, counted (the real vote lines of FastChat's web UI) and shown in the arena's
   Leaderboard tab, and only the web UI restarted; then playbooks/judge.yml on the
   arena's own questions with a lab model as the judge: its table joins the tab;
The tests run in this order (pytest keeps a module's order) and share the lab.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

testinfra_hosts = ["fcl-lab-head", "fcl-lab-gpu1"]
API_KEY = "fcl-lab-key-27182818"
LOGIN = ("tester", "fcl-lab-pass-31415")
HUB_TOKEN = "fcl-secret-token-4711"
SECRETS = (API_KEY, LOGIN[1], HUB_TOKEN)
# The lab's directory on the hosts (fastchat_deploy_dir in inventory/group_vars/all/lab.yml).
DEPLOY = "/srv/fastchat-lab/deploy"
CA = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"),
                  "fastchat-lab-ca", "ca.crt")
PUBLIC_ARENA = ("200K+", "lmsys", "LMSYS", "Bard is offered", "CC-BY", "discord", "Discord",
                "arxiv", "Elo-based LLM leaderboard")
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                         os.path.dirname(os.path.dirname(os.path.dirname(
                             os.path.dirname(os.path.abspath(__file__))))))
OUTPUT = os.path.join(PROJECT, "test-output", "lab")
# The project's collection: the browser check and its key pinning (module_utils/arena.py).
sys.path.insert(0, os.path.join(PROJECT, "collections"))
# Planned workers and their GPUs (molecule.yml, inventory/joining.yml): NVIDIA_VISIBLE_DEVICES.
WORKERS = {
    "fcl-lab-head": {"tiny-chat-cpu": None, "tiny-qwen-cpu": None},
    "fcl-lab-gpu1": {"tiny-remote-gpu1-2": "1,2", "tiny-chat-gpu3": "3"},
    "fcl-lab-gpu2": {"tiny-joined-gpu0-1": "0,1"},
}
HEAD_SERVICES = {"controller", "openai-api", "web-ui"}
MODELS = ["tiny-chat", "tiny-joined", "tiny-qwen", "tiny-remote"]


def docker(*args):
    """docker's stdout; an exec that runc could not start (a transient "OCI runtime exec
    failed" of nested Docker on a loaded machine, before the command ran) is tried once more."""
    for attempt in (1, 2):
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
        if proc.returncode == 126 and "OCI runtime exec failed" in proc.stdout + proc.stderr and attempt == 1:
            time.sleep(2)
            continue
        proc.check_returncode()
        return proc.stdout


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


def flat(text):
    """The play's output with its line wrapping undone (the callback folds long lines)."""
    return " ".join(text.split())


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


def test_no_key_or_password_in_docker_inspect(host):
    for name, c in containers(host.backend.get_hostname()).items():
        seen = json.dumps(c)  # Path, Args, Config.Cmd, Config.Env, Healthcheck, mounts ...
        for secret in SECRETS:
            assert secret not in seen, (name, secret)


def test_no_key_or_password_in_the_process_list_or_the_compose_file(host):
    out = host.check_output("ps -eo args")
    if host.backend.get_hostname() == "fcl-lab-head":
        assert "fastchat.serve.openai_api_server" in out
        assert "--gradio-auth-path" not in out  # the launcher adds it in the process
    compose = host.file(DEPLOY + "/compose.yaml").content_string
    for secret in SECRETS:
        assert secret not in out and secret not in compose


def secrets_in_container_files(host_name, container_id):
    """Files of a running container, written since it started, that hold a secret; and
    whether its docker logs do. The secret files mounted for it on purpose are bind
    mounts of another file system (find -xdev leaves them out); the rest is its own."""
    started = on(host_name, "docker", "inspect", "-f", "{{.State.StartedAt}}", container_id).strip()
    script = ("find / -xdev -type f -newermt %s -size -50M -print0 2>/dev/null "
              "| xargs -0 -r grep -lF %s 2>/dev/null || true") % (
                  started, " ".join("-e %s" % s for s in SECRETS))
    files = on(host_name, "docker", "exec", container_id, "sh", "-c", script).split()
    logs = subprocess.run(["docker", "exec", host_name, "docker", "logs", container_id],
                          capture_output=True, text=True, check=True)
    in_logs = [s for s in SECRETS if s in logs.stdout + logs.stderr]
    return files, in_logs


def test_no_secret_in_any_container_log_or_file(host):
    # FastChat logs its parsed arguments (the API keys were among them): the keys now
    # reach the API server from a file, and no service writes any secret anywhere.
    name = host.backend.get_hostname()
    for svc, c in containers(name).items():
        files, in_logs = secrets_in_container_files(name, c["Id"])
        assert files == [] and in_logs == [], (svc, files, in_logs)
    if name == "fcl-lab-head":
        # The arena's own logs (a host directory) and FastChat's log files there.
        found = host.run("grep -rlF %s /var/lib/fastchat-lab/logs" % " ".join(
            "-e %s" % s for s in SECRETS))
        assert found.rc == 1 and found.stdout == "", found.stdout


def test_the_secret_files_are_readable_by_root_only(host):
    if host.backend.get_hostname() != "fcl-lab-head":
        pytest.skip("the API server and the web UI run on the head")
    for path in ("/secrets/api-keys", "/web-ui/auth", "/tls/server.key"):
        f = host.file(DEPLOY + path)
        assert f.user == "root" and f.mode == 0o600, path
    assert host.file(DEPLOY).mode == 0o700
    assert host.file(DEPLOY + "/web-ui/auth").content_string == "%s:%s\n" % LOGIN
    # Nothing of the lab at the default place: every role took the plan's directory.
    assert not host.file("/etc/fastchat-lab").exists


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


def https(url, key=None):
    """(status, body) of a GET over HTTPS, verified against the lab CA."""
    import ssl
    import urllib.error
    import urllib.request
    context = ssl.create_default_context(cafile=CA)
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


def plain(url):
    """(status, body) of a plain-HTTP GET."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


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
    assert sorted(json.loads(listed)["models"]) == ["tiny-chat", "tiny-qwen", "tiny-remote"]


def test_the_api_and_web_ui_speak_https_with_the_lab_ca_only():
    head = address("fcl-lab-head")
    assert os.path.isfile(CA), CA
    status, body = https("https://%s:8000/v1/models" % head, API_KEY)
    assert status == 200 and "tiny-chat" in body, body
    assert https("https://%s:8000/v1/models" % head)[0] == 401
    assert https("https://%s:7860/" % head)[0] == 200
    # Plain HTTP on the public ports gets the proxy's refusal, never FastChat.
    for port in (8000, 7860):
        status, body = plain("http://%s:%d/v1/models" % (head, port))
        assert (status, body.strip()) == (400, "This port speaks HTTPS only."), (port, body)
    # FastChat's own API and web UI ports listen on the head's loopback only.
    assert connect(head, 18000) == "refused"
    assert connect(head, 17860) == "refused"
    assert on("fcl-lab-head", "python3", "-c",
              "import urllib.request as u; print(u.urlopen('http://127.0.0.1:17860/', "
              "timeout=10).status)").strip() == "200"


def test_the_lab_ca_signs_for_the_heads_names_only_and_stays_out_of_git(tmp_path):
    """The lab CA: critical name constraints of the head's names and addresses, three
    years, a .gitignore beside its key; a certificate its key makes for another name does
    not verify (what a thief of the key could do with it)."""
    ca_dir = os.path.dirname(CA)
    text = subprocess.run(["openssl", "x509", "-in", CA, "-noout", "-text"], check=True,
                          capture_output=True, text=True).stdout
    assert re.search(r"X509v3 Name Constraints: critical\s+Permitted:", text), text
    head = address("fcl-lab-head")
    for name in ("DNS:fcl-lab-head", "DNS:localhost", "IP:%s/255.255.255.255" % head,
                 "IP:127.0.0.1/255.255.255.255"):
        assert name in text, (name, text)
    end = subprocess.run(["openssl", "x509", "-in", CA, "-noout", "-checkend", str(1096 * 86400)],
                         capture_output=True, text=True)
    assert end.returncode == 1, "the lab CA is valid for more than three years"
    with open(os.path.join(ca_dir, ".gitignore"), encoding="utf-8") as fh:
        assert "*" in fh.read().split("\n")
    # The head's own certificate verifies; one for another name, signed by the CA's key, not.
    good = subprocess.run(["openssl", "verify", "-CAfile", CA, os.path.join(ca_dir, "fcl-lab-head.crt")],
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    key, csr, crt = (str(tmp_path / n) for n in ("evil.key", "evil.csr", "evil.crt"))
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=bank.example",
                    "-addext", "subjectAltName=DNS:bank.example"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", CA, "-CAkey",
                    os.path.join(ca_dir, "ca.key"), "-set_serial", "4711", "-out", crt, "-days", "30",
                    "-copy_extensions", "copy"], check=True, capture_output=True)
    evil = subprocess.run(["openssl", "verify", "-CAfile", CA, crt], capture_output=True, text=True)
    assert evil.returncode != 0 and "permitted subtree violation" in evil.stdout + evil.stderr, \
        evil.stdout + evil.stderr


def ask(url, method="GET", data=None, headers=None):
    """(status, headers, body) over HTTPS verified against the lab CA."""
    import ssl
    import urllib.error
    import urllib.request
    context = ssl.create_default_context(cafile=CA)
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read().decode()


# FastChat's API server's routes and what else it could answer: without a key, none may
# (FastChat 0.2.36 answered /api/v1/* without one; the proxy passes the lab's routes only).
KEYLESS = [("POST", "/api/v1/token_check", b'{"prompts": [{"model": "tiny-chat", "prompt": "x", "max_tokens": 1}]}'),
           ("POST", "/api/v1/chat/completions", b'{"model": "tiny-chat", "messages": [{"role": "user", "content": "x"}]}'),
           ("POST", "/v1/chat/completions", b'{"model": "tiny-chat", "messages": [{"role": "user", "content": "x"}]}'),
           ("POST", "/v1/completions", b'{"model": "tiny-chat", "prompt": "x"}'),
           ("POST", "/v1/embeddings", b'{"model": "tiny-chat", "input": "x"}'),
           ("GET", "/v1/models", None), ("GET", "/docs", None), ("GET", "/redoc", None),
           ("GET", "/openapi.json", None), ("GET", "/", None), ("POST", "/list_models", b"{}"),
           ("POST", "/worker_generate_stream", b"{}"), ("GET", "/v1//models", None)]


def test_no_route_of_the_api_port_answers_without_a_key():
    base = "https://%s:8000" % address("fcl-lab-head")
    for method, path, body in KEYLESS:
        status, _headers, text = ask(base + path, method, body,
                                     {"Content-Type": "application/json"})
        assert status in (401, 404), (method, path, status, text[:200])
        assert "choices" not in text and "tiny-chat" not in text, (path, text[:200])
    # FastChat itself (on the head's loopback, behind the proxy) refuses /api/v1 too.
    direct = on("fcl-lab-head", "python3", "-c",
                "import urllib.request as u, urllib.error as e\n"
                "try:\n  u.urlopen(u.Request('http://127.0.0.1:18000/api/v1/token_check', "
                "data=b'{\"prompts\": []}', headers={'Content-Type': 'application/json'}), timeout=10)\n"
                "  print(200)\nexcept e.HTTPError as x:\n  print(x.code)").strip()
    assert direct == "401", direct
    # Browsers may call the API from the lab's web UI only.
    status, headers, _ = ask(base + "/v1/models", headers={
        "Authorization": "Bearer " + API_KEY, "Origin": "https://evil.example"})
    assert status == 200 and "access-control-allow-origin" not in {k.lower() for k in headers}


def test_the_front_door_sends_its_security_headers():
    for port in (8000, 7860):
        _status, headers, _ = ask("https://%s:%d/" % (address("fcl-lab-head"), port))
        names = {k.lower(): v for k, v in headers.items()}
        assert names["strict-transport-security"].startswith("max-age="), names
        assert names["content-security-policy"] == "frame-ancestors 'none'", names
        assert names["server"] == "nginx", names
    # Debian's default site (nginx's welcome page on :80) is gone.
    assert connect(address("fcl-lab-head"), 80) == "refused"


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
        # A few attempts are enough: the stopped worker does not come back by itself.
        result = ansible_playbook("playbooks/verify.yml", "-e",
                                  '{"fastchat_verify_retries": 8}', timeout=900)
    finally:
        on("fcl-lab-gpu1", "docker", "start", worker)
    out = flat(result.stdout + result.stderr)
    assert result.returncode != 0, out
    for secret in SECRETS:
        assert secret not in out
    # Either the controller still lists it and the completion fails, or the controller
    # dropped it already: both name the model, its host and the fix.
    assert ("Model tiny-remote (on fcl-lab-gpu1) did not answer" in out
            or "Missing: tiny-remote (worker tiny-remote-gpu1-2 on fcl-lab-gpu1" in out), out
    assert "Fix: look at the worker" in out
    wait_healthy("fcl-lab-gpu1", "tiny-remote-gpu1-2")


def test_every_worker_llama_cpp_included_registers_again_after_a_controller_restart():
    controller = containers("fcl-lab-head")["controller"]["Id"]
    on("fcl-lab-head", "docker", "restart", controller)
    head = address("fcl-lab-head")
    deadline = time.monotonic() + 90
    listed = []
    while time.monotonic() < deadline:
        try:
            listed = sorted(json.loads(on("fcl-lab-gpu1", "python3", "-c",
                "import urllib.request as u; print(u.urlopen(u.Request('http://%s:21001/list_models', "
                "data=b'', method='POST'), timeout=10).read().decode())" % head))["models"])
        except (subprocess.CalledProcessError, ValueError):
            listed = []
        if listed == ["tiny-chat", "tiny-qwen", "tiny-remote"]:
            break
        time.sleep(2)
    assert listed == ["tiny-chat", "tiny-qwen", "tiny-remote"], listed
    status, _headers, body = ask("https://%s:8000/v1/chat/completions" % head, "POST", json.dumps({
        "model": "tiny-qwen", "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 8}).encode(), {"Authorization": "Bearer " + API_KEY,
                                     "Content-Type": "application/json"})
    assert status == 200 and '"choices"' in body, body[:300]


# ---------------------------------------------------------------------------
# 4. A GPU host joins the lab
# ---------------------------------------------------------------------------

def test_a_joining_gpu_host_changes_nothing_on_the_others():
    before = snapshot(["fcl-lab-head", "fcl-lab-gpu1"])
    assert len(before) == 7
    joining = os.path.join(PROJECT, "molecule", "lab", "inventory", "joining.yml")
    result = ansible_playbook("-i", joining, "site.yml")
    out = result.stdout + result.stderr
    os.makedirs(OUTPUT, exist_ok=True)
    with open(os.path.join(OUTPUT, "join.log"), "w", encoding="utf-8") as fh:
        fh.write(out)
    assert result.returncode == 0, out[-20000:]
    out = flat(out)
    # verify.yml (the end of site.yml) saw the joined model answer.
    assert "Model tiny-joined (on fcl-lab-gpu2) answered" in out, out[-5000:]
    assert "lists %s." % ", ".join(MODELS) in out
    for secret in SECRETS:
        assert secret not in out
    assert snapshot(["fcl-lab-head", "fcl-lab-gpu1"]) == before
    joined = containers("fcl-lab-gpu2")
    assert set(joined) == set(WORKERS["fcl-lab-gpu2"])
    worker = joined["tiny-joined-gpu0-1"]
    assert worker["State"]["Health"]["Status"] == "healthy"
    assert environ("fcl-lab-gpu2", worker["Id"]).get("NVIDIA_VISIBLE_DEVICES") == "0,1"
    # The other hosts' firewalls now let the new host in.
    rules = on("fcl-lab-head", "iptables", "-S", "FASTCHAT-LAB")
    assert "-s %s/32" % address("fcl-lab-gpu2") in rules


def _tree_sums(host, directory):
    """Mode and owner ("PATH MODE USER"), then sha256 ("SUM  ./PATH"), of every file under
    DIRECTORY on HOST, .git left out."""
    return on(host, "sh", "-c", 'cd "$1" && find . -path ./.git -prune -o -type f -printf "%P %m %u\\n" '
             '| sort && find . -path ./.git -prune -o -type f -exec sha256sum {} + | sort -k2',
             "sh", directory)


def test_the_hand_outs_arrived_as_listed_and_left_nothing_behind():
    """Weights and images reached gpu1 and gpu2 from the head through lab_transfer: the same
    bytes as the head's, root's with modes of the lab's choosing (never the sender's), no
    staging directory or old copy left, and no rsync daemon, lease or pid file on the head."""
    weights = "/srv/fastchat-lab/models"
    for host, model in (("fcl-lab-gpu1", "tiny-remote"), ("fcl-lab-gpu2", "tiny-joined")):
        got = _tree_sums(host, "%s/%s" % (weights, model))
        lines = got.splitlines()
        files = [line for line in lines if not re.match(r"^[0-9a-f]{64} ", line)]
        assert files and all(line.endswith(" 644 root") for line in files), files
        head = [line for line in _tree_sums("fcl-lab-head", "%s/%s" % (weights, model)).splitlines()
                if re.match(r"^[0-9a-f]{64} ", line)]
        mine = [line for line in lines if re.match(r"^[0-9a-f]{64} ", line)]
        # The head's copy has the verification marker too: every received file is the head's.
        assert mine and set(mine) <= set(head), (host, mine, head)
        left = on(host, "find", weights, "/var/lib/fastchat-lab", "-maxdepth", "2",
                  "(", "-name", ".fastchat-lab-staging-*", "-o", "-name", ".fastchat-lab-old-*", ")")
        assert left.strip() == "", (host, left)
    daemons = subprocess.run(["docker", "exec", "fcl-lab-head", "pgrep", "-x", "rsync"],
                             capture_output=True, text=True)
    assert daemons.returncode == 1, daemons.stdout
    state = on("fcl-lab-head", "sh", "-c", "ls -A /run/fastchat-lab/transfer 2>/dev/null || true")
    assert not [n for n in state.split() if n.endswith((".lease", ".pid", ".conf"))], state


# ---------------------------------------------------------------------------
# 5. The arena in a browser
# ---------------------------------------------------------------------------

def web_ui():
    return "https://%s:7860" % address("fcl-lab-head")


def test_without_a_login_the_page_shows_no_model_and_no_arena():
    """The same browser check verify.yml runs, without the login: nothing of the arena."""
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.arena import check_arena
    os.makedirs(OUTPUT, exist_ok=True)
    html = os.path.join(OUTPUT, "no-login.html")
    status, report = check_arena(web_ui() + "/", os.path.join(OUTPUT, "no-login.png"), html,
                                 MODELS, timeout=20, ca_file=CA)
    assert status == "missing" and report["models"] == [], report
    with open(html, encoding="utf-8") as fh:
        page = fh.read()
    assert "Arena (battle)" not in page and "Arena (side-by-side)" not in page
    for model in MODELS:
        assert model not in page
    assert "log in with the account" in page  # the lab's own login message


def test_with_the_login_the_arena_offers_every_model_and_no_public_arena_text(tmp_path):
    """scripts/arena-screenshot: headless Chromium logs in, opens the side-by-side arena,
    opens its model list, waits until every model is offered, then saves the screenshot."""
    login = tmp_path / "login"
    login.write_text("%s:%s\n" % LOGIN)
    os.makedirs(OUTPUT, exist_ok=True)
    png, html = os.path.join(OUTPUT, "arena.png"), os.path.join(OUTPUT, "arena.html")
    for path in (png, html):
        if os.path.exists(path):
            os.remove(path)
    shot = subprocess.run([os.path.join(PROJECT, "scripts", "arena-screenshot"), web_ui() + "/",
                           png, "--html", html, "--expect", *MODELS, "--timeout", "90",
                           "--login-file", str(login), "--ca", CA],
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
    # The lab's own page: its name, and none of the public arena's claims or links.
    assert "Rehearsal lab" in page
    for text in PUBLIC_ARENA:
        assert text not in page, text
    # Images only from the lab's own web UI (FastChat's example images), none from outside.
    sources = re.findall(r'<img[^>]+src="(https?://[^/"]+)', page)
    assert set(sources) <= {web_ui()}, sources


# ---------------------------------------------------------------------------
# 6. Votes in the arena, then the lab's own leaderboard
# ---------------------------------------------------------------------------

VOTES = ["A is better", "B is better", "Tie", "A is better", "Both are bad", "B is better"]


def browser_page(playwright):
    """A logged-in page of the arena in Debian's chromium (the lab CA's key pinned)."""
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.arena import pin_for
    browser = playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
              "--ignore-certificate-errors-spki-list=" + pin_for(web_ui(), CA)])
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.goto(web_ui() + "/")
    # The page's own login form posts to /login; so does this, from inside the page.
    status = page.evaluate(
        "([user, password]) => fetch('/login', {method: 'POST', credentials: 'include', "
        "body: new URLSearchParams({username: user, password: password})}).then(r => r.status)",
        list(LOGIN))
    assert status == 200, status
    page.goto(web_ui() + "/")
    return browser, page


def open_tab(page, name, seconds=60):
    """Click the tab ``name`` until the page says it is selected (``aria-selected``): a
    click that lands while gradio is still wiring the page up is dropped. (The "Judge"
    click that timed out twice was a sub-tab of a Leaderboard tab the page's load event
    had closed again: see still_open.)"""
    from playwright.sync_api import Error as PlaywrightError, expect
    tab = page.get_by_role("tab", name=name, exact=True)
    deadline = time.monotonic() + seconds
    while True:
        try:
            tab.click(timeout=10000)
            expect(tab).to_have_attribute("aria-selected", "true", timeout=5000)
            return
        except (AssertionError, PlaywrightError) as exc:
            if time.monotonic() > deadline:
                # What the page offered instead, for the report.
                raise AssertionError("no tab %r after %d s; the page's tabs: %s (%s)" % (
                    name, seconds, page.get_by_role("tab").all_inner_texts(), exc)) from exc


def still_open(page, name):
    """The tab ``name`` opened above is still the one shown: the page's load event, which
    may end after the click, leaves it open (fastchat-lab-page.patch; FastChat's selected
    the first tab again, hiding the table a test had just counted in the page)."""
    from playwright.sync_api import expect
    expect(page.get_by_role("tab", name=name, exact=True)).to_have_attribute(
        "aria-selected", "true", timeout=1000)


def test_anonymous_battles_voted_in_a_browser_make_the_leaderboard():
    from playwright.sync_api import expect, sync_playwright

    before = snapshot(["fcl-lab-head"])
    out_dir = os.path.join(OUTPUT, "leaderboard")
    # A leaderboard (and its log backup) left by an earlier run of this test is not this one's.
    shutil.rmtree(out_dir, ignore_errors=True)
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        try:
            open_tab(page, "Arena (battle)")
            for pos, vote in enumerate(VOTES):
                box = page.locator("textarea[placeholder*='Enter your prompt']:visible").first
                box.fill("Question %d: what is a GPU lab?" % pos)
                box.press("Enter")
                button = page.get_by_role("button", name=re.compile(re.escape(vote) + "$"))
                expect(button.first).to_be_enabled(timeout=180000)
                # The buttons come on with the answers' last step; gradio may still be
                # finishing that event, and a click then can be dropped (seen once in 24
                # votes). Wait for its "generating" marker to go, then vote; click again
                # only while the vote button is still enabled (a vote that was taken
                # disables it, so nothing is counted twice).
                expect(page.locator(".generating")).to_have_count(0, timeout=60000)
                revealed = page.get_by_text(re.compile("Model A: tiny-")).first
                for attempt in range(3):
                    if button.first.is_enabled():
                        button.first.click()
                    try:
                        # The vote reveals both models' names.
                        expect(revealed).to_be_visible(timeout=20000)
                        break
                    except AssertionError:
                        if attempt == 2:
                            raise
                # FastChat's vote handler shows the names in five steps 0.1 s apart (a
                # generator): a New Round clicked before its last step is overwritten by
                # it and the names stay (New Round is disabled then). Wait for gradio's
                # own "generating" marker to go, as a user sees the handler finish.
                expect(page.locator(".generating")).to_have_count(0, timeout=60000)
                page.get_by_role("button", name=re.compile("New Round")).first.click()
                expect(page.get_by_text(re.compile("Model A: tiny-"))).to_have_count(
                    0, timeout=60000)
        finally:
            browser.close()
    # The lab as it runs now: fcl-lab-gpu2 joined above, so its model is in the plan and
    # the table names the revision and image of every model voted on.
    joining = os.path.join(PROJECT, "molecule", "lab", "inventory", "joining.yml")
    result = ansible_playbook("-i", joining, "playbooks/leaderboard.yml", "-e",
                              "fastchat_leaderboard_out=%s" % out_dir, "-e",
                              '{"lab_leaderboard_min_battles": 1}', timeout=900)
    out = result.stdout + result.stderr
    with open(os.path.join(OUTPUT, "leaderboard.log"), "w", encoding="utf-8") as fh:
        fh.write(out)
    assert result.returncode == 0, out[-20000:]
    for secret in SECRETS:
        assert secret not in out
    with open(os.path.join(out_dir, "leaderboard.json"), encoding="utf-8") as fh:
        board = json.load(fh)
    # The real vote lines FastChat's web UI wrote for the votes above: all counted.
    assert board["battles_used"] == len(VOTES), board
    assert board["skipped"]["named"] == 0 and board["skipped"]["malformed"] == 0
    ranked = {m["model"]: m for m in board["models"]}
    assert set(ranked) <= set(MODELS) and len(ranked) >= 2
    assert sum(m["battles"] for m in ranked.values()) == 2 * len(VOTES)
    assert sum(m["ties"] for m in ranked.values()) == 2 * 2  # a tie and a both-bad
    for name, model in ranked.items():
        assert model["compared"]["revision"] and model["compared"]["image"] != "unknown", model
    for name in ("leaderboard.csv", "leaderboard.html", "leaderboard.png"):
        assert os.path.getsize(os.path.join(out_dir, name)) > 0, name
    backups = os.listdir(os.path.join(out_dir, "backups"))
    assert len(backups) == 1 and backups[0].startswith("fastchat-lab-logs-"), backups
    # Only the web UI restarted to read its new Leaderboard tab.
    after = snapshot(["fcl-lab-head"])
    changed = sorted(name for (_, name), state in after.items() if state != before[("fcl-lab-head", name)])
    assert changed == ["web-ui"], changed
    wait_healthy("fcl-lab-head", "web-ui")
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        try:
            open_tab(page, "Leaderboard")
            # A gradio Dataframe holds two tables: an invisible one (opacity 0) that
            # measures the columns with the first row only, and the one it draws (in
            # svelte-virtual-table-viewport). Read the drawn one, row by row.
            drawn = page.locator(
                "#arena_leaderboard_dataframe svelte-virtual-table-viewport table tbody tr")
            # FastChat's arena table lists the ranked models, best first.
            by_rank = sorted((m for m in ranked.values() if m["rank"] is not None),
                             key=lambda m: m["rank"])
            expect(drawn).to_have_count(len(by_rank), timeout=60000)
            rows = [row.inner_text() for row in drawn.all()]
            for row, model in zip(rows, by_rank):
                assert model["model"] in row, (model, rows)
            still_open(page, "Leaderboard")
            page.screenshot(path=os.path.join(OUTPUT, "leaderboard-tab.png"), full_page=True)
            text = page.content()
        finally:
            browser.close()
    for phrase in PUBLIC_ARENA:
        assert phrase not in text, phrase


def test_the_judge_asks_the_arenas_own_questions_and_joins_the_leaderboard_tab():
    """playbooks/judge.yml on the arena's own logs (the questions asked in the browser
    above), a lab model as the judge: judge.json and judge.html, the agreement with the
    votes' leaderboard, and a "Judge" table in the Leaderboard tab beside the votes' own
    (only the web UI restarts)."""
    from playwright.sync_api import expect, sync_playwright

    before = snapshot(["fcl-lab-head"])
    out_dir = os.path.join(OUTPUT, "judge")
    shutil.rmtree(out_dir, ignore_errors=True)
    joining = os.path.join(PROJECT, "molecule", "lab", "inventory", "joining.yml")
    result = ansible_playbook(
        "-i", joining, "playbooks/judge.yml", "-e", "fastchat_judge_out=%s" % out_dir,
        "-e", "fastchat_leaderboard_out=%s" % os.path.join(OUTPUT, "leaderboard"),
        "-e", '{"lab_judge_model": "tiny-chat", "lab_judge_max_questions": 4, '
        '"lab_judge_max_tokens": 12, "lab_judge_judge_max_tokens": 16, "lab_judge_resamples": 100}',
        timeout=900)
    out = result.stdout + result.stderr
    with open(os.path.join(OUTPUT, "judge.log"), "w", encoding="utf-8") as fh:
        fh.write(out)
    assert result.returncode == 0, out[-20000:]
    for secret in SECRETS:
        assert secret not in out
    with open(os.path.join(out_dir, "judge.json"), encoding="utf-8") as fh:
        verdict = json.load(fh)
    # The arena's own questions: first user turns of its logs, the browser's among them.
    questions = verdict["questions"]
    assert questions["count"] == 4 and questions["offered"] >= len(VOTES), questions
    assert all(qid.startswith("log-") for qid in questions["ids"]), questions
    assert {m["model"] for m in verdict["models"]} == set(MODELS)
    assert verdict["verdicts"]["pairs"] == 6 * 4, verdict["verdicts"]
    assert set(verdict["speed"]) == set(MODELS)
    assert os.path.getsize(os.path.join(out_dir, "judge.html")) > 0
    after = snapshot(["fcl-lab-head"])
    changed = sorted(name for (_, name), state in after.items() if state != before[("fcl-lab-head", name)])
    assert changed == ["web-ui"], changed
    wait_healthy("fcl-lab-head", "web-ui")
    with open(os.path.join(OUTPUT, "leaderboard", "leaderboard.json"), encoding="utf-8") as fh:
        ranked = [m for m in json.load(fh)["models"] if m["rank"] is not None]
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        try:
            open_tab(page, "Leaderboard")
            # The votes' table is still the votes' (the judge never replaces it) ...
            arena = page.locator(
                "#arena_leaderboard_dataframe svelte-virtual-table-viewport table tbody tr")
            expect(arena).to_have_count(len(ranked), timeout=60000)
            still_open(page, "Leaderboard")
            # ... and the judge's sits beside it, one row per model.
            try:
                open_tab(page, "Judge")
            except AssertionError as exc:
                # What the web UI had to read, and what it said, for the report.
                files = on("fcl-lab-head", "ls", "-l", "--time-style=+%T", DEPLOY + "/web-ui/leaderboard")
                web_ui = containers("fcl-lab-head")["web-ui"]
                raise AssertionError("%s\nthe web UI's leaderboard files:\n%s\nweb-ui started %s, log:\n%s" % (
                    exc, files, web_ui["State"].get("StartedAt"),
                    on("fcl-lab-head", "sh", "-c", "docker logs --tail 30 %s 2>&1" % web_ui["Id"])[-3000:])) from exc
            drawn = page.locator(
                "#judge_leaderboard_dataframe svelte-virtual-table-viewport table tbody tr")
            expect(drawn).to_have_count(len(MODELS), timeout=60000)
            rows = " ".join(row.inner_text() for row in drawn.all())
            for model in MODELS:
                assert model in rows, rows
            page.screenshot(path=os.path.join(OUTPUT, "judge-tab.png"), full_page=True)
        finally:
            browser.close()


# ---------------------------------------------------------------------------
# 7. Not one vote lost: a stuffed vote counts once, a restore gives the same leaderboard
# ---------------------------------------------------------------------------

LOGS = "/var/lib/fastchat-lab/logs"


def leaderboard(out_dir):
    joining = os.path.join(PROJECT, "molecule", "lab", "inventory", "joining.yml")
    result = ansible_playbook("-i", joining, "playbooks/leaderboard.yml", "-e",
                              "fastchat_leaderboard_out=%s" % out_dir, "-e",
                              '{"lab_leaderboard_min_battles": 1}', timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-20000:]
    with open(os.path.join(out_dir, "leaderboard.json"), encoding="utf-8") as fh:
        return json.load(fh)


def standings(board):
    return (board["battles_used"],
            sorted((m["model"], m["battles"], m["wins"], m["losses"], m["ties"], m["rating"])
                   for m in board["models"]))


def vote_lines():
    text = on("fcl-lab-head", "sh", "-c", "cat %s/*-conv.json" % LOGS)
    return [json.loads(line) for line in text.splitlines()
            if line.strip() and json.loads(line).get("type", "").endswith("vote")]


def test_every_vote_line_names_its_login_and_a_replayed_vote_counts_once():
    out_dir = os.path.join(OUTPUT, "leaderboard")
    votes = vote_lines()
    assert len(votes) == len(VOTES), votes
    assert {v.get("login") for v in votes} == {LOGIN[0]}, [v.get("login") for v in votes]
    first = standings(leaderboard(out_dir))
    # Vote stuffing: the same vote event written 50 times more.
    line = json.dumps(votes[0])
    on("fcl-lab-head", "python3", "-c",
       "import glob, sys; f = sorted(glob.glob('%s/*-conv.json'))[-1]; "
       "open(f, 'a').write(sys.argv[1] * 50)" % LOGS, line + "\n")
    board = leaderboard(out_dir)
    assert standings(board) == first
    assert board["skipped"]["duplicate_vote"] == 50, board["skipped"]


def test_a_restore_gives_back_the_same_leaderboard():
    """README, "Votes survive": back up (every leaderboard run does, as the timer does),
    lose the head's logs, restore, and the leaderboard is the same."""
    out_dir = os.path.join(OUTPUT, "leaderboard")
    before = leaderboard(out_dir)
    backups = sorted(os.listdir(os.path.join(out_dir, "backups")))
    newest = os.path.join(out_dir, "backups", backups[-1])
    # The head's backup timer is in place too.
    assert on("fcl-lab-head", "systemctl", "is-enabled", "fastchat-lab-backup.timer").strip() == "enabled"
    # The disk dies: every log file of the arena is gone.
    on("fcl-lab-head", "sh", "-c", "rm -f %s/*" % LOGS)
    assert on("fcl-lab-head", "sh", "-c", "ls %s | wc -l" % LOGS).strip() == "0"
    joining = os.path.join(PROJECT, "molecule", "lab", "inventory", "joining.yml")
    result = ansible_playbook("-i", joining, "playbooks/restore.yml", "-e",
                              "lab_backup_restore_from=%s" % newest, timeout=900)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-20000:]
    for secret in SECRETS:
        assert secret not in out
    after = leaderboard(out_dir)
    assert standings(after) == standings(before)
    assert after["skipped"] == before["skipped"]


# ---------------------------------------------------------------------------
# 8. Blind battles under load (last: it adds votes to the log the tests above count)
# ---------------------------------------------------------------------------

def test_blind_battles_under_load_show_no_names_and_every_vote_counts():
    from arena_blind import blind_battles_under_load

    report = blind_battles_under_load(
        web_ui(), LOGIN, vote_lines, api="https://%s:8000" % address("fcl-lab-head"),
        api_key=API_KEY, ca_file=CA)
    # At least a battle per browser; the whole report when not (what went unanswered).
    assert report["confirmed"] >= 3, json.dumps(report, indent=1)[:6000]


# ---------------------------------------------------------------------------
# 8b. A supply chain that holds: FastChat's ref moved upstream (or a mirror serves other code)
# ---------------------------------------------------------------------------

# A copy of the fixture's FastChat repository whose tag v0.2.36 was moved to a new commit.
MOVE_TAG = """set -eu
rm -rf /srv/fc-moved /srv/FastChat-moved.git
git clone -q /fixtures/git/FastChat.git /srv/fc-moved
cd /srv/fc-moved
echo 'print("not the reviewed FastChat")' >> fastchat/__init__.py
git -c user.name=mallory -c user.email=mallory@example.invalid commit -q -am moved
git tag -f v0.2.36 >/dev/null
git clone -q --bare /srv/fc-moved /srv/FastChat-moved.git
git --git-dir=/srv/FastChat-moved.git rev-parse 'v0.2.36^{commit}'
"""


def test_a_fastchat_clone_whose_ref_moved_is_refused_before_any_build():
    """The first build recorded the commit v0.2.36 resolved to (fastchat_image_fastchat_commit
    is empty in the rehearsal settings); a source where that tag is another commit is
    refused with both commits named, and no image, record or service changes."""
    record_file = "/var/lib/fastchat-lab/image/fastchat-commits.json"
    record = on("fcl-lab-head", "cat", record_file)
    first = json.loads(record)["v0.2.36"]
    moved = on("fcl-lab-head", "sh", "-c", MOVE_TAG).strip()
    assert re.fullmatch(r"[0-9a-f]{40}", moved) and moved != first
    images = on("fcl-lab-head", "docker", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    before = snapshot(["fcl-lab-head", "fcl-lab-gpu1"])
    joining = os.path.join(PROJECT, "molecule", "lab", "inventory", "joining.yml")
    result = ansible_playbook("-i", joining, "molecule/lab/images.yml",
                              "-e", "fastchat_image_repo_url=file:///srv/FastChat-moved.git", timeout=900)
    out = result.stdout + result.stderr
    with open(os.path.join(OUTPUT, "moved-ref.log"), "w", encoding="utf-8") as fh:
        fh.write(out)
    assert result.returncode != 0, out[-5000:]
    assert ("fastchat_image_fastchat_ref: v0.2.36 from file:///srv/FastChat-moved.git is commit %s, not %s"
            % (moved, first)) in flat(out), out[-5000:]
    assert "nothing was built" in flat(out)
    assert on("fcl-lab-head", "cat", record_file) == record
    assert on("fcl-lab-head", "docker", "images", "--no-trunc", "--format",
              "{{.Repository}}:{{.Tag}} {{.ID}}") == images
    assert snapshot(["fcl-lab-head", "fcl-lab-gpu1"]) == before
    for secret in SECRETS:
        assert secret not in out


# ---------------------------------------------------------------------------
# 9. Last, as it empties this machine's login allowance for a minute
# ---------------------------------------------------------------------------

def test_a_burst_of_wrong_logins_gets_429():
    url = "https://%s:7860/login" % address("fcl-lab-head")
    form = ("username=%s&password=wrong-password-123" % LOGIN[0]).encode()
    codes = [ask(url, "POST", form, {"Content-Type": "application/x-www-form-urlencoded"})[0]
             for _ in range(20)]
    assert codes.count(429) >= 12 and set(codes) <= {400, 401, 429}, codes
