"""The compose project of each host, rendered from the lab plan, and its launcher."""

import copy
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.compose import (
    LAUNCHER,
    render_compose,
)

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import merge_catalogue
from labs import CATALOGUE, H100, ROOT, plan_of, reference_lab

IMAGES = {"cpu": "fastchat-lab/fastchat:cpu-x", "cuda117": "fastchat-lab/fastchat:cuda117-x",
          "vllm": "fastchat-lab/fastchat:vllm-x"}
LAUNCH = os.path.join(ROOT, "roles", "fastchat_deploy", "files", "launch.py")


def bind(source, target):
    # Read-only, and the source must exist: Docker makes no empty directory in its place.
    return {"type": "bind", "source": source, "target": target, "read_only": True,
            "bind": {"create_host_path": False}}


def two_host_lab():
    hosts, groups = reference_lab()
    hosts["gpu02"] = {"ansible_host": "192.0.2.11", "fastchat_gpus": dict(H100),
                      "fastchat_workers": [{"model": "Qwen-7B-Chat", "gpus": [0, 1],
                                            "name": "qwen-7b-chat-gpu02", "backend": "vllm"}]}
    groups["gpu_hosts"].append("gpu02")
    return plan_of(hosts, groups)


def test_no_mount_lets_docker_make_a_missing_source():
    plan = plan_of(*reference_lab())
    project = render_compose(plan, "gpu01", {"images": IMAGES})
    mounts = [m for svc in project["services"].values() for m in svc["volumes"]]
    assert len(mounts) >= len(project["services"]) + 3
    for mount in mounts:
        assert isinstance(mount, dict), mount  # the short syntax creates missing sources
        assert mount["type"] == "bind" and mount["bind"] == {"create_host_path": False}, mount
        # Read-only but for the web UI's logs directory (a host directory: no volume that
        # `compose down -v` or a prune could remove).
        assert mount.get("read_only") or mount["target"] == "/logs", mount


def test_head_and_workers_of_the_reference_lab():
    plan = plan_of(*reference_lab())
    project = render_compose(plan, "gpu01", {"images": IMAGES})
    svcs = project["services"]
    assert set(svcs) == {s["name"] for s in plan["hosts"]["gpu01"]["services"]}
    for svc, planned in zip(svcs.values(), plan["hosts"]["gpu01"]["services"]):
        # The plan's argv, exactly, behind the launcher.
        assert svc["command"][-len(planned["argv"]):] == planned["argv"]
        assert svc["command"][:3] == ["python3", LAUNCHER, "run"]
        assert svc["restart"] == "unless-stopped"
        assert svc["healthcheck"]["test"][:3] == ["CMD", "python3", LAUNCHER]
        assert bind("/etc/fastchat-lab/launch.py", LAUNCHER) in svc["volumes"]
    qwen, baichuan = svcs["qwen-7b-chat-gpu1"], svcs["baichuan-13b-chat-gpu2-3"]
    assert qwen["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "device_ids": ["1"], "capabilities": ["gpu"]}]
    assert baichuan["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["2", "3"]
    assert qwen["image"] == IMAGES["cuda117"] and svcs["controller"]["image"] == IMAGES["cpu"]
    assert bind("/srv/fastchat-lab/models/Qwen-7B-Chat", "/models/Qwen-7B-Chat") in qwen["volumes"]
    assert qwen["ports"] == ["0.0.0.0:21002:21002"]
    assert "POST" in qwen["healthcheck"]["test"]
    assert qwen["healthcheck"]["start_period"] == "900s"
    for name in ("openai-api", "web-ui", "qwen-7b-chat-gpu1"):
        assert svcs[name]["depends_on"] == {"controller": {"condition": "service_healthy"}}
        assert svcs[name]["command"][3:5] == ["--wait-for", "http://192.0.2.10:21001"]
    assert "depends_on" not in svcs["controller"]
    api = svcs["openai-api"]
    # The keys' file, read-only; the environment holds its path only.
    assert "env_file" not in api
    assert bind("/etc/fastchat-lab/secrets/api-keys", "/opt/fastchat-lab/secrets/api-keys") in api["volumes"]
    assert api["environment"]["FASTCHAT_LAB_API_KEYS_FILE"] == "/opt/fastchat-lab/secrets/api-keys"
    assert "--api-key" in api["healthcheck"]["test"]
    assert not any("api-key" in part for part in api["command"])
    assert svcs["web-ui"]["environment"]["LOGDIR"] == "/logs"
    assert {"type": "bind", "source": "/var/lib/fastchat-lab/logs", "target": "/logs",
                        "bind": {"create_host_path": False}} in svcs["web-ui"]["volumes"]
    # Behind the TLS proxy FastChat's own API and web UI ports are on loopback only.
    assert api["ports"] == ["127.0.0.1:18000:8000"]
    assert svcs["web-ui"]["ports"] == ["127.0.0.1:17860:7860"]
    # The web UI's page, logins and leaderboard files, read-only, found by the launcher.
    assert bind("/etc/fastchat-lab/web-ui", "/opt/fastchat-lab/web-ui") in svcs["web-ui"]["volumes"]
    assert svcs["web-ui"]["environment"]["FASTCHAT_LAB_WEB_UI_DIR"] == "/opt/fastchat-lab/web-ui"
    assert "volumes" not in project  # nothing the project owns holds the votes
    assert "FASTCHAT_LAB_REQUIRE_LOGIN" not in svcs["web-ui"]["environment"]
    assert {svc["environment"]["FASTCHAT_LAB_LOG_DAYS"] for svc in svcs.values()} == {"14"}
    json.dumps(project)


def test_a_web_ui_with_logins_refuses_to_start_without_them():
    hosts, groups = reference_lab()
    # The host paths are the plan's: the deploy directory and the arena's logs.
    plan = plan_of(hosts, groups, settings={"logs_dir": "/data/votes", "deploy_dir": "/srv/lab/deploy"})
    project = render_compose(plan, "gpu01", {"images": IMAGES, "web_ui_login": True, "log_days": 3})
    web = project["services"]["web-ui"]
    assert web["environment"]["FASTCHAT_LAB_REQUIRE_LOGIN"] == "1"
    assert {"type": "bind", "source": "/data/votes", "target": "/logs",
            "bind": {"create_host_path": False}} in web["volumes"]
    assert {svc["environment"]["FASTCHAT_LAB_LOG_DAYS"]
            for svc in project["services"].values()} == {"3"}
    assert bind("/srv/lab/deploy/web-ui", "/opt/fastchat-lab/web-ui") in web["volumes"]
    assert bind("/srv/lab/deploy/secrets/api-keys", "/opt/fastchat-lab/secrets/api-keys") in \
        project["services"]["openai-api"]["volumes"]
    for svc in project["services"].values():
        assert bind("/srv/lab/deploy/launch.py", LAUNCHER) in svc["volumes"]
        assert not any(m["source"].startswith("/etc/") for m in svc["volumes"]), svc["volumes"]


def test_a_second_gpu_host_waits_for_the_head_controller():
    plan = two_host_lab()
    project = render_compose(plan, "gpu02", {"images": IMAGES})
    (name, svc), = project["services"].items()
    assert name == "qwen-7b-chat-gpu02"
    assert "depends_on" not in svc  # no controller on this host
    assert svc["command"][3:5] == ["--wait-for", "http://192.0.2.10:21001"]
    assert svc["image"] == IMAGES["vllm"]
    assert svc["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["0", "1"]
    assert "volumes" not in project


def test_options_bind_addresses_open_api_and_local_weights():
    hosts, groups = reference_lab()
    catalogue = merge_catalogue(copy.deepcopy(CATALOGUE),
                                {"Qwen-7B-Chat": {"local_path": "/data/Qwen-7B-Chat"}})
    # Without TLS FastChat's own ports are the public ones, where the plan binds them.
    plan = plan_of(hosts, groups, catalogue=catalogue, settings={
        "tls": False, "api_bind": "127.0.0.1", "web_ui_bind": "10.1.2.3"})
    assert plan["models"]["Qwen-7B-Chat"]["host_path"] == "/data/Qwen-7B-Chat"
    assert plan["summary"]["api_url"] == "http://192.0.2.10:8000/v1"
    project = render_compose(plan, "gpu01", {"images": IMAGES, "api_keys": False,
                                             "web_ui_files": False})
    svcs = project["services"]
    assert svcs["openai-api"]["ports"] == ["127.0.0.1:8000:8000"]
    assert svcs["web-ui"]["ports"] == ["10.1.2.3:7860:7860"]
    assert "env_file" not in svcs["openai-api"]
    assert "--api-key" not in svcs["openai-api"]["healthcheck"]["test"]
    assert "FASTCHAT_LAB_WEB_UI_DIR" not in svcs["web-ui"]["environment"]
    assert bind("/data/Qwen-7B-Chat", "/models/Qwen-7B-Chat") in svcs["qwen-7b-chat-gpu1"]["volumes"]


def test_lab_hosts_by_name_are_pinned_in_every_service_and_gradio_stays_offline():
    plan = two_host_lab()
    for host in ("gpu01", "gpu02"):
        project = render_compose(plan, host, {"images": IMAGES, "extra_hosts": {
            "gpu02": "10.0.0.12", "gpu01": "10.0.0.11"}})
        for svc in project["services"].values():
            assert svc["extra_hosts"] == ["gpu01:10.0.0.11", "gpu02:10.0.0.12"]
    project = render_compose(plan, "gpu01", {"images": IMAGES})
    assert not any("extra_hosts" in svc for svc in project["services"].values())
    assert project["services"]["web-ui"]["environment"]["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_missing_image_and_unknown_host_are_refused():
    plan = plan_of(*reference_lab())
    with pytest.raises(ValueError, match=r"gpu01: no image for stack\(s\) cuda117"):
        render_compose(plan, "gpu01", {"images": {"cpu": "x"}})
    with pytest.raises(ValueError, match="gpu09: not in the lab plan"):
        render_compose(plan, "gpu09", {"images": IMAGES})


# --- the launcher --------------------------------------------------------------

FAKE_API = """
import json, os, sys
with open(os.environ["OUT"], "w") as fh:
    json.dump({"argv": sys.argv[1:], "cmdline": open("/proc/self/cmdline").read().split("\\0")}, fh)
"""


def fake_fastchat(tmp_path, module):
    """A stand-in fastchat.serve.<module> that records what it was started with."""
    pkg = tmp_path / "fastchat" / "serve"
    pkg.mkdir(parents=True, exist_ok=True)
    (tmp_path / "fastchat" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / (module + ".py")).write_text(FAKE_API)
    return tmp_path / "out.json"


def start(tmp_path, module, argv, **env):
    return subprocess.run([sys.executable, LAUNCH, "run", "--", "python3", "-m",
                           "fastchat.serve." + module] + argv,
                          env=dict(os.environ, PYTHONPATH=str(tmp_path),
                                   OUT=str(tmp_path / "out.json"), **env),
                          capture_output=True, text=True, timeout=30, check=False)


def test_launcher_passes_no_key_through_any_argument_list(tmp_path):
    # The hardening patch makes the API server read the file itself: the keys are in no
    # argv (FastChat logs its parsed arguments), command line or environment.
    out = fake_fastchat(tmp_path, "openai_api_server")
    keys = tmp_path / "api-keys"
    keys.write_text("sk-one-1234567890\n sk-two-1234567890 \n\n")
    result = start(tmp_path, "openai_api_server", ["--port", "8000"],
                   FASTCHAT_LAB_API_KEYS_FILE=str(keys))
    assert result.returncode == 0, result.stderr
    seen = json.loads(out.read_text())
    assert seen["argv"] == ["--port", "8000"]
    assert not any("sk-" in part for part in seen["cmdline"])
    assert "sk-" not in result.stdout + result.stderr


@pytest.mark.parametrize("content", [None, "", "\n  \n", b"\xff\xfe"])
def test_launcher_refuses_an_api_server_without_its_keys(tmp_path, content):
    out = fake_fastchat(tmp_path, "openai_api_server")
    keys = tmp_path / "api-keys"
    if isinstance(content, bytes):
        keys.write_bytes(content)
    elif content is not None:
        keys.write_text(content)
    result = start(tmp_path, "openai_api_server", ["--port", "8000"],
                   FASTCHAT_LAB_API_KEYS_FILE=str(keys))
    assert result.returncode != 0
    assert "the API keys file %s is missing or empty" % keys in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_launcher_refuses_a_web_ui_without_its_logins(tmp_path, content):
    out = fake_fastchat(tmp_path, "gradio_web_server_multi")
    web = tmp_path / "web-ui"
    web.mkdir()
    if content is not None:
        (web / "auth").write_text(content)
    result = start(tmp_path, "gradio_web_server_multi", ["--port", "7860"],
                   FASTCHAT_LAB_WEB_UI_DIR=str(web), FASTCHAT_LAB_REQUIRE_LOGIN="1")
    assert result.returncode != 0
    assert "the web UI's logins file %s is missing or empty" % (web / "auth") in result.stderr
    assert not out.exists()
    # With its logins file it starts, and gets the file's path only.
    (web / "auth").write_text("alice:a-long-password\n")
    result = start(tmp_path, "gradio_web_server_multi", ["--port", "7860"],
                   FASTCHAT_LAB_WEB_UI_DIR=str(web), FASTCHAT_LAB_REQUIRE_LOGIN="1")
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["argv"] == ["--port", "7860", "--gradio-auth-path",
                                                    str(web / "auth")]


def test_an_open_web_ui_starts_without_a_logins_file(tmp_path):
    out = fake_fastchat(tmp_path, "gradio_web_server_multi")
    web = tmp_path / "web-ui"
    web.mkdir()
    result = start(tmp_path, "gradio_web_server_multi", ["--port", "7860"],
                   FASTCHAT_LAB_WEB_UI_DIR=str(web))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["argv"] == ["--port", "7860"]


class _Handler(http.server.BaseHTTPRequestHandler):
    seen = []

    def _answer(self):
        _Handler.seen.append((self.command, self.path, self.headers.get("Authorization")))
        self.send_response(200 if self.path != "/broken" else 500)
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(name="server")
def fixture_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def launch(*args, **env):
    return subprocess.run([sys.executable, LAUNCH, *args], env=dict(os.environ, **env),
                          capture_output=True, text=True, timeout=60, check=False)


def test_launcher_health_check(server, tmp_path):
    _Handler.seen.clear()
    keys = tmp_path / "api-keys"
    keys.write_text("sk-one\nsk-two\n")
    assert launch("health", server + "/worker_get_status", "POST").returncode == 0
    assert launch("health", server + "/v1/models", "GET", "--api-key",
                  FASTCHAT_LAB_API_KEYS_FILE=str(keys)).returncode == 0
    assert launch("health", server + "/broken").returncode == 1
    assert _Handler.seen[:2] == [("POST", "/worker_get_status", None),
                                 ("GET", "/v1/models", "Bearer sk-one")]
    # Nothing listens on port 9 of loopback: unhealthy, not a crash.
    assert launch("health", "http://127.0.0.1:9/").returncode == 1


def test_launcher_waits_for_the_controller_then_gives_up(server):
    result = launch("run", "--wait-for", "http://127.0.0.1:9", "--", "python3", "-m", "json.tool",
                    FASTCHAT_LAB_WAIT_SECONDS="3")
    assert result.returncode != 0
    assert "did not answer within 3 s" in result.stderr
    ok = launch("run", "--wait-for", server, "--", "python3", "-m", "platform")
    assert ok.returncode == 0, ok.stderr
    assert "Linux" in ok.stdout


def test_the_filter_turns_refusals_into_filter_errors():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.fastchat_lab.lab.plugins.filter.compose import FilterModule

    compose_project = FilterModule().filters()["compose_project"]
    plan = plan_of(*reference_lab())
    assert compose_project(plan, "gpu01", {"images": IMAGES}) == render_compose(
        plan, "gpu01", {"images": IMAGES})
    with pytest.raises(AnsibleFilterError, match="no image for stack"):
        compose_project(plan, "gpu01", {"images": {}})


def test_a_rehearsal_worker_runs_the_cpu_image_with_its_gpus_pinned():
    plan = plan_of(*reference_lab(), settings={"rehearsal": True})
    svcs = render_compose(plan, "gpu01", {"images": {"cpu": IMAGES["cpu"]}})["services"]
    baichuan = svcs["baichuan-13b-chat-gpu2-3"]
    assert baichuan["image"] == IMAGES["cpu"]
    assert baichuan["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "device_ids": ["2", "3"], "capabilities": ["gpu"]}]
    assert baichuan["command"][-4:-2] == ["--device", "cpu"]


def test_the_launcher_hands_the_web_ui_its_files(tmp_path):
    """launch.py's web_ui_args: the page by FASTCHAT_LAB_PAGE, the logins and the
    leaderboard tab by FastChat's own flags, and nothing that is not there."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("launch", LAUNCH)
    launch_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_module)
    web_ui_args = launch_module.web_ui_args
    assert web_ui_args(str(tmp_path)) == []
    (tmp_path / "page.json").write_text("{}")
    (tmp_path / "auth").write_text("alice:secret-password\n")
    (tmp_path / "leaderboard").mkdir()
    (tmp_path / "leaderboard" / "elo_results.pkl").write_bytes(b"")
    assert web_ui_args(str(tmp_path)) == ["--gradio-auth-path", str(tmp_path / "auth")]
    (tmp_path / "leaderboard" / "leaderboard_table.csv").write_text("key\n")
    assert web_ui_args(str(tmp_path))[2:] == [
        "--elo-results-file", str(tmp_path / "leaderboard" / "elo_results.pkl"),
        "--leaderboard-table-file", str(tmp_path / "leaderboard" / "leaderboard_table.csv")]
    assert os.environ.pop("FASTCHAT_LAB_PAGE") == str(tmp_path / "page.json")
    assert "secret-password" not in " ".join(web_ui_args(str(tmp_path)))
    os.environ.pop("FASTCHAT_LAB_PAGE", None)


def test_workers_beat_often_enough_to_come_back_after_a_controller_restart():
    svcs = render_compose(plan_of(*reference_lab()), "gpu01", {"images": IMAGES})["services"]
    for name in ("controller", "qwen-7b-chat-gpu1", "baichuan-13b-chat-gpu2-3"):
        env = svcs[name]["environment"]
        assert env["FASTCHAT_WORKER_HEART_BEAT_INTERVAL"] == "5", name
        assert env["FASTCHAT_CONTROLLER_HEART_BEAT_EXPIRATION"] == "20", name
    assert "FASTCHAT_WORKER_HEART_BEAT_INTERVAL" not in svcs["web-ui"]["environment"]


@pytest.mark.parametrize("api, quick", [("1.45", True), ("1.44", True), ("2.0", True),
                                        ("1.43", False), ("1.41", False), (None, False),
                                        ("", False), ("garbage", False)])
def test_starting_services_are_checked_every_second_where_the_engine_can(api, quick):
    # Docker Engine 25 (API 1.44) takes start_interval; older engines refuse the key, and an
    # unknown engine (check mode on a new host) gets the file every engine takes.
    svcs = render_compose(plan_of(*reference_lab()), "gpu01",
                          {"images": IMAGES, "docker_api_version": api})["services"]
    assert len(svcs) >= 4
    for name, svc in svcs.items():
        health = svc["healthcheck"]
        assert health["interval"] == "15s", name
        if quick:
            assert health["start_interval"] == "1s", name
        else:
            assert "start_interval" not in health, name


def test_container_states_read_health_from_docker_ps():
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.compose import container_states

    ps = "\n".join([
        "controller\trunning\tUp 3 minutes (healthy)",
        "web-ui\trunning\tUp 2 seconds (health: starting)",
        "openai-api\trunning\tUp 1 minute (unhealthy)",
        "tiny-chat\texited\tExited (1) 5 seconds ago",
        "plain\trunning\tUp 4 hours",
        # a service with two containers: the worse counts
        "twice\trunning\tUp 3 minutes (healthy)",
        "twice\tcreated\tCreated",
        # not a compose container, and garbage
        "\trunning\tUp 1 minute",
        "garbage",
        "",
    ])
    assert container_states(ps) == {"controller": "healthy", "web-ui": "starting",
                                    "openai-api": "unhealthy", "tiny-chat": "exited",
                                    "plain": "running", "twice": "created"}
    assert container_states("") == {} and container_states(None) == {}


def test_every_host_s_project_network_is_the_bridge_the_firewall_names():
    import re

    from ansible_collections.fastchat_lab.lab.plugins.module_utils.compose import BRIDGE

    # A Linux interface name: at most 15 bytes, no '/', ':' or white space; lab_firewall
    # matches it exactly (-i fastchat-lab), where Docker's own name is br-<network id>.
    assert BRIDGE == "fastchat-lab" and re.fullmatch(r"[a-z0-9-]{1,15}", BRIDGE)
    plan = two_host_lab()
    for host in ("gpu01", "gpu02"):
        project = render_compose(plan, host, {"images": IMAGES})
        assert project["networks"] == {
            "default": {"driver_opts": {"com.docker.network.bridge.name": "fastchat-lab"}}}
        # Every service is on the project's default network only (no network of its own).
        assert not any("networks" in svc or "network_mode" in svc
                       for svc in project["services"].values())


@pytest.mark.parametrize("inspected, outdated", [
    # docker network inspect --format '{{index .Options "com.docker.network.bridge.name"}}'
    ({"rc": 0, "stdout": "fastchat-lab"}, False),
    ({"rc": 0, "stdout": "fastchat-lab\n"}, False),
    # A network made before the bridge had a name: the option is not there.
    ({"rc": 0, "stdout": "<no value>"}, True),
    ({"rc": 0, "stdout": ""}, True),
    ({"rc": 0, "stdout": "br-1a2b3c4d5e6f"}, True),
    ({"rc": 0, "stdout": "fastchat-lab0"}, True),
    # No network yet (first deploy), no Docker, a timeout: nothing to take down.
    ({"rc": 1, "stdout": "", "stderr": "Error: No such network: fastchat-lab_default"}, False),
    ({"rc": 127, "stdout": ""}, False),
    ({"rc": 124, "stdout": ""}, False),
    (None, False), ({}, False)])
def test_a_network_with_another_bridge_is_taken_down_once(inspected, outdated):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.compose import bridge_outdated

    assert bridge_outdated(inspected) is outdated
