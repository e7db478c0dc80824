"""The host_probe module through Ansible (ad-hoc, local connection): one read-only task
that answers a role's questions about a host."""

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def probe(args, *extra, expect_failure=False):
    env = dict(os.environ, PATH="%s:/usr/bin:/bin:/usr/sbin:/sbin" % os.path.dirname(sys.executable),
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local",
         "-m", "fastchat_lab.lab.host_probe", "-a", json.dumps(args), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    document, _end = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])
    result = document["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert bool(result.get("failed")) == expect_failure, result
    return result


def test_files_paths_and_globs(tmp_path):
    (tmp_path / "daemon.json").write_text('{"a": 1}\n')
    (tmp_path / "dir").mkdir(mode=0o750)
    os.chmod(tmp_path / "dir", 0o750)
    (tmp_path / "link").symlink_to(tmp_path / "daemon.json")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "big").write_bytes(b"x" * (1024 * 1024 + 1))
    for n, vendor in enumerate(["0x10de\n", "0x8086\n"]):
        (tmp_path / "pci" / str(n)).mkdir(parents=True)
        (tmp_path / "pci" / str(n) / "vendor").write_text(vendor)
    result = probe({
        "paths": [str(tmp_path / p) for p in ("daemon.json", "dir", "link", "dangling", "missing")],
        "read": [str(tmp_path / "daemon.json"), str(tmp_path / "missing"), str(tmp_path / "big")],
        "read_glob": [str(tmp_path / "pci" / "*" / "vendor"), str(tmp_path / "none" / "*")],
    })
    assert result["changed"] is False
    paths = result["paths"]
    me = (pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name)
    assert paths[str(tmp_path / "daemon.json")] == {"exists": True, "type": "file", "mode": "0644", "size": 9,
                                                    "owner": me[0], "group": me[1]}
    assert paths[str(tmp_path / "dir")]["type"] == "directory" and paths[str(tmp_path / "dir")]["mode"] == "0750"
    assert paths[str(tmp_path / "link")]["type"] == "link" and paths[str(tmp_path / "link")]["exists"]
    assert paths[str(tmp_path / "dangling")] == {"exists": False, "type": "link", "mode": None, "size": None,
                                                 "owner": None, "group": None}
    assert paths[str(tmp_path / "missing")] == {"exists": False, "type": None, "mode": None, "size": None,
                                                "owner": None, "group": None}
    assert result["files"] == {str(tmp_path / "daemon.json"): '{"a": 1}\n', str(tmp_path / "missing"): None,
                               str(tmp_path / "big"): None}
    assert result["globbed"] == {str(tmp_path / "pci" / "*" / "vendor"): {
        str(tmp_path / "pci" / "0" / "vendor"): "0x10de\n", str(tmp_path / "pci" / "1" / "vendor"): "0x8086\n"},
        str(tmp_path / "none" / "*"): {}}


def test_commands_are_argv_lists_never_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    result = probe({"commands": {
        "ok": ["printf", "%s\\n", "a b"],
        "fails": ["sh", "-c", "echo out; echo err >&2; exit 3"],
        "missing": ["/nonexistent/tool", "--version"],
        # A shell string as one argument is a file name, not shell code.
        "hostile": ["touch %s; true" % marker],
        "model-1.5_b": ["true"],
    }, "command_timeout": 20})
    commands = result["commands"]
    assert commands["ok"] == {"rc": 0, "stdout": "a b", "stderr": ""}
    assert commands["fails"] == {"rc": 3, "stdout": "out", "stderr": "err"}
    assert commands["missing"]["rc"] == 127
    assert commands["hostile"]["rc"] == 127 and not marker.exists()
    assert commands["model-1.5_b"]["rc"] == 0


def test_a_command_that_hangs_is_stopped():
    result = probe({"commands": {"slow": ["sleep", "30"]}, "command_timeout": 1})
    assert result["commands"]["slow"]["rc"] == 124


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg")
def test_packages_installed_missing_and_at_another_version():
    have = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "bash"], capture_output=True,
                          text=True, check=True).stdout
    result = probe({"packages": ["bash", "bash=%s" % have, "bash=0.0.1-*", "fastchat-lab-no-such-package"]})
    assert result["packages"] == {"bash": have}
    assert result["missing_packages"] == ["bash=0.0.1-*", "fastchat-lab-no-such-package"]


def test_services_without_systemd_are_unknown_or_not_found():
    result = probe({"services": ["fastchat-lab-no-such.service"]})
    answer = result["services"]["fastchat-lab-no-such.service"]
    if shutil.which("systemctl") is None:
        assert answer == {"active": "unknown", "enabled": "unknown"}
    else:
        assert answer["active"] != "active" and answer["enabled"] in ("not-found", "unknown", "disabled")


def test_check_mode_answers_as_a_real_run(tmp_path):
    (tmp_path / "f").write_text("x")
    result = probe({"read": [str(tmp_path / "f")], "commands": {"t": ["true"]}}, "--check")
    assert result["files"][str(tmp_path / "f")] == "x" and result["commands"]["t"]["rc"] == 0


@pytest.mark.parametrize("args, words", [
    ({"paths": ["relative/path"]}, "paths: 'relative/path' must be an absolute path"),
    ({"read": ["etc/passwd"]}, "read: 'etc/passwd' must be an absolute path"),
    ({"packages": ["Bad Name;rm"]}, "is not a Debian package name"),
    ({"services": ["docker; reboot"]}, "is not a systemd unit name"),
    ({"services": ["docker.service\n"]}, "is not a systemd unit name"),
    ({"commands": {"name\n": ["true"]}}, "is not a name"),
    ({"commands": {"x": "docker version"}}, "commands.x: must be a non-empty argv list"),
    ({"commands": {"x": []}}, "commands.x: must be a non-empty argv list"),
    ({"commands": {"bad name": ["true"]}}, "is not a name"),
    ({"command_timeout": 0}, "command_timeout: must be at least 1 second"),
])
def test_a_malformed_request_fails_naming_the_option(args, words):
    result = probe(args, expect_failure=True)
    assert "host_probe:" in result["msg"] and words in result["msg"], result["msg"]
