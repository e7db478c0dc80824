"""The lab_files module through Ansible (ad-hoc, local connection): the one task that
ensures a role's directories and small files."""

import grp
import json
import os
import pwd
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def run(files, *extra):
    env = dict(os.environ, PATH="%s:/usr/bin:/bin" % os.path.dirname(sys.executable),
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    for entry in files:
        entry.setdefault("owner", OWNER)
        entry.setdefault("group", GROUP)
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local",
         "-m", "fastchat_lab.lab.lab_files", "-a", json.dumps({"files": files}), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    document, _end = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])
    return document["plays"][0]["tasks"][0]["hosts"]["localhost"]


def mode(path):
    return "%04o" % (os.stat(path).st_mode & 0o7777)


def wanted(tmp_path, content="a = 1\n", file_mode="0600"):
    return [{"path": str(tmp_path / "lab"), "state": "directory", "mode": "0750"},
            {"path": str(tmp_path / "lab" / "conf"), "content": content, "mode": file_mode},
            {"path": str(tmp_path / "old.env"), "state": "absent"}]


def test_creates_then_changes_nothing(tmp_path):
    (tmp_path / "old.env").write_text("KEY=x\n")
    first = run(wanted(tmp_path))
    assert first["changed"] is True, first
    assert first["changed_paths"] == [str(tmp_path / "lab"), str(tmp_path / "lab" / "conf"),
                                      str(tmp_path / "old.env")]
    assert (tmp_path / "lab" / "conf").read_text() == "a = 1\n"
    assert mode(tmp_path / "lab") == "0750" and mode(tmp_path / "lab" / "conf") == "0600"
    assert not (tmp_path / "old.env").exists()
    again = run(wanted(tmp_path))
    assert again["changed"] is False and again["changed_paths"] == [], again
    assert not [name for name in os.listdir(tmp_path / "lab") if name.startswith(".lab_files")]


def test_check_mode_writes_nothing_and_reports_what_it_would_do(tmp_path):
    result = run(wanted(tmp_path), "--check", "--diff")
    assert result["changed"] is True, result
    # The file counts as created under the directory that would be made.
    assert result["changed_paths"] == [str(tmp_path / "lab"), str(tmp_path / "lab" / "conf")]
    assert not (tmp_path / "lab").exists()
    assert any(d.get("after") == "a = 1\n" for d in result["diff"])


def test_a_changed_content_and_a_changed_mode_are_each_one_change_with_a_diff(tmp_path):
    run(wanted(tmp_path))
    result = run(wanted(tmp_path, content="a = 2\n"), "--diff")
    assert result["changed_paths"] == [str(tmp_path / "lab" / "conf")]
    assert result["diff"] == [{"before_header": str(tmp_path / "lab" / "conf"),
                               "after_header": str(tmp_path / "lab" / "conf"),
                               "before": "a = 1\n", "after": "a = 2\n"}]
    assert (tmp_path / "lab" / "conf").read_text() == "a = 2\n"
    (tmp_path / "lab" / "conf").chmod(0o644)
    result = run(wanted(tmp_path, content="a = 2\n"))
    assert result["changed_paths"] == [str(tmp_path / "lab" / "conf")]
    assert mode(tmp_path / "lab" / "conf") == "0600"
    # Check mode reports a wrong mode without fixing it.
    (tmp_path / "lab").chmod(0o755)
    result = run(wanted(tmp_path, content="a = 2\n"), "--check")
    assert result["changed_paths"] == [str(tmp_path / "lab")]
    assert mode(tmp_path / "lab") == "0755"


def test_absent_removes_a_whole_directory(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "f").write_text("x")
    result = run([{"path": str(tmp_path / "d"), "state": "absent"}])
    assert result["changed"] is True and not (tmp_path / "d").exists()


def test_bad_entries_are_refused_before_anything_is_written(tmp_path):
    files = [{"path": str(tmp_path / "a"), "content": "x", "mode": "0644"},
             {"path": "relative/b", "content": "x", "mode": "0644"},
             {"path": str(tmp_path / "c"), "content": "x", "mode": "rw-r--r--"},
             {"path": str(tmp_path / "d"), "mode": "0644"},
             {"path": str(tmp_path / "a"), "content": "y", "mode": "0644"},
             {"path": str(tmp_path / "e") + "/../f", "content": "x", "mode": "0644"},
             {"path": str(tmp_path / "g"), "state": "directory", "mode": "0755", "content": "x"}]
    result = run(files)
    assert result.get("failed") is True, result
    msg = result["msg"]
    for part in ("files[1] (relative/b): path must be a normalised absolute path",
                 "files[2] (%s): mode must be an octal string" % (tmp_path / "c"),
                 "files[3] (%s): a file needs its content" % (tmp_path / "d"),
                 "files[4] (%s): the path is listed twice" % (tmp_path / "a"),
                 "files[5] (%s/../f): path must be a normalised" % (tmp_path / "e"),
                 "files[6] (%s): content is only for state file" % (tmp_path / "g")):
        assert part in msg, msg
    assert not (tmp_path / "a").exists()


def test_a_file_whose_directory_is_missing_fails_naming_the_fix(tmp_path):
    result = run([{"path": str(tmp_path / "no" / "f"), "content": "x", "mode": "0644"}])
    assert result.get("failed") is True
    assert "its directory %s does not exist. Fix: list the directory" % (tmp_path / "no") in result["msg"]


def test_a_directory_where_a_file_is_wanted_is_not_replaced(tmp_path):
    (tmp_path / "f").mkdir()
    result = run([{"path": str(tmp_path / "f"), "content": "x", "mode": "0644"}])
    assert result.get("failed") is True and "is not a plain file" in result["msg"]
    assert (tmp_path / "f").is_dir()


def test_a_template_entry_is_refused_as_an_unknown_option(tmp_path):
    """Templates are written by ansible.builtin.template (the collection README's rule)."""
    dest = tmp_path / "out.conf"
    result = run([{"path": str(dest), "template": "conf.j2", "mode": "0644"}])
    assert result.get("failed") is True, result
    assert "template" in result["msg"] and "Unsupported parameters" in result["msg"], result["msg"]
    assert not dest.exists()
