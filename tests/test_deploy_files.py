"""module_utils/deploy_files.py: the fastchat_deploy role's files on a host (a head with the
web UI and API, a worker host, check mode without images), its secret files (keys, logins,
a web UI opened on purpose) and which services restart for a changed file."""

import pytest

from ansible_collections.fastchat_lab.lab.plugins.filter.deploy import FilterModule
from ansible_collections.fastchat_lab.lab.plugins.module_utils.deploy_files import (
    deploy_files,
    restarts,
    secret_files,
)

D = "/etc/fastchat-lab"
LOGS = "/var/lib/fastchat-lab/logs"
SERVICES = [{"name": "controller", "kind": "controller"}, {"name": "openai-api", "kind": "openai_api"},
            {"name": "web-ui", "kind": "web_ui"}, {"name": "qwen-gpu1", "kind": "model_worker"}]


def paths(files):
    return [(f["path"], f.get("state", "file"), f.get("mode")) for f in files]


def test_a_head_gets_its_directories_launcher_web_ui_files_and_project_in_order():
    files = deploy_files(D, "#!launcher", LOGS, {"page": "{}", "conv_templates": "[]"}, "services: {}\n")
    assert paths(files) == [
        (D, "directory", "0700"), (D + "/launch.py", "file", "0755"), (D + "/secrets", "directory", "0700"),
        (D + "/api.env", "absent", None), (LOGS, "directory", "0700"), (D + "/web-ui", "directory", "0700"),
        (D + "/web-ui/page.json", "file", "0644"), (D + "/web-ui/conv_templates.json", "file", "0644"),
        (D + "/compose.yaml", "file", "0600")]
    assert files[1]["content"] == "#!launcher" and files[-1]["content"] == "services: {}\n"
    assert all(f.get("owner") == "root" and f.get("group") == "root" for f in files if f.get("state") != "absent")


def test_a_worker_host_has_no_web_ui_files_and_check_mode_without_images_no_project():
    assert paths(deploy_files(D, "x", LOGS, None, "p")) == [
        (D, "directory", "0700"), (D + "/launch.py", "file", "0755"), (D + "/secrets", "directory", "0700"),
        (D + "/api.env", "absent", None), (D + "/compose.yaml", "file", "0600")]
    assert D + "/compose.yaml" not in [f["path"] for f in deploy_files(D, "x", LOGS, None, None)]


def test_a_web_ui_without_a_logs_directory_is_a_bug_said_plainly():
    with pytest.raises(ValueError, match="logs_dir"):
        deploy_files(D, "x", None, {"page": "{}", "conv_templates": "[]"}, None)


def test_the_secret_files_are_root_only_and_an_opened_web_ui_loses_its_logins_file():
    files = secret_files(D, "key-file", True, "auth-file")
    assert paths(files) == [(D, "directory", "0700"), (D + "/secrets", "directory", "0700"),
                            (D + "/secrets/api-keys", "file", "0600"), (D + "/web-ui", "directory", "0700"),
                            (D + "/web-ui/auth", "file", "0600")]
    assert paths(secret_files(D, None, True, None))[-1] == (D + "/web-ui/auth", "absent", None)
    assert paths(secret_files(D, None, False, None)) == [(D, "directory", "0700"), (D + "/secrets", "directory", "0700")]


@pytest.mark.parametrize("files, secrets, expected", [
    ([], [], []),
    ([D + "/compose.yaml", D + "/launch.py"], [], []),
    ([D + "/web-ui/page.json"], [], ["web-ui"]),
    ([D + "/web-ui/conv_templates.json"], [], []),          # read per conversation
    ([], [D + "/web-ui/auth"], ["web-ui"]),
    ([], [D + "/secrets/api-keys"], ["openai-api"]),
    ([D + "/web-ui/page.json"], [D + "/secrets/api-keys"], ["openai-api", "web-ui"]),
])
def test_only_the_services_that_read_a_changed_file_at_start_restart(files, secrets, expected):
    assert restarts(SERVICES, D, files, secrets) == expected


def test_a_worker_host_restarts_nothing_for_the_head_s_files():
    assert restarts([SERVICES[3]], D, [D + "/web-ui/page.json"], [D + "/secrets/api-keys"]) == []


def test_the_role_reads_them_through_its_filters():
    filters = FilterModule().filters()
    args = (D, "#!launcher", LOGS, None, "services: {}\n")
    assert filters["deploy_files"](*args) == deploy_files(*args)
    assert filters["deploy_secret_files"](D, "k\n", True, None) == secret_files(D, "k\n", True, None)
    assert filters["deploy_web_ui_dir"](D) == D + "/web-ui"
