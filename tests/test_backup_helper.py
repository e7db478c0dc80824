"""roles/lab_backup/files/fastchat_lab_backup.py: a backup is whole or absent, keeps the
newest N and touches no other file; a restore gives back every file, overwrites none,
and writes nothing outside the logs directory whatever the archive holds."""

import io
import json
import os
import subprocess
import sys
import tarfile
import time

import pytest

from labs import ROOT

HELPER = os.path.join(ROOT, "roles", "lab_backup", "files", "fastchat_lab_backup.py")
DAY = "2026-12-01-conv.json"


def run(*args):
    proc = subprocess.run([sys.executable, HELPER, *args], capture_output=True, text=True,
                          timeout=60, check=False)
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture
def dirs(tmp_path):
    logs, dest = tmp_path / "logs", tmp_path / "backups"
    logs.mkdir()
    dest.mkdir()
    (logs / DAY).write_text('{"type": "leftvote"}\n{"type": "chat"}\n')
    (logs / "2026-12-02-conv.json").write_text('{"type": "tievote"}\n')
    (logs / "gradio_web_server.log").write_text("log\n")
    (logs / "sub").mkdir()
    (logs / "sub" / "x").write_text("not taken")
    os.symlink("/etc/passwd", str(logs / "link"))
    return str(logs), str(dest)


def test_backup_then_restore_gives_back_every_file(dirs, tmp_path):
    logs, dest = dirs
    rc, out = run("backup", logs, dest, "--keep", "3")
    assert rc == 0 and out["files"] == 3 and out["removed"] == [], out
    assert os.path.basename(out["archive"]).startswith("fastchat-lab-logs-")
    assert oct(os.stat(out["archive"]).st_mode & 0o777) == "0o600"
    with tarfile.open(out["archive"]) as tar:
        assert sorted(tar.getnames()) == ["logs/2026-12-01-conv.json", "logs/2026-12-02-conv.json",
                                          "logs/gradio_web_server.log"]
    empty = tmp_path / "restored"
    empty.mkdir()
    rc, back = run("restore", out["archive"], str(empty))
    assert rc == 0 and back["restored"] == ["2026-12-01-conv.json", "2026-12-02-conv.json",
                                            "gradio_web_server.log"] and back["kept"] == []
    with open(os.path.join(logs, DAY)) as f:
        assert (empty / DAY).read_text() == f.read()
    assert sorted(os.listdir(str(empty))) == back["restored"]  # no temporary file left


def test_a_restore_overwrites_nothing(dirs):
    logs, dest = dirs
    _, out = run("backup", logs, dest)
    # Votes written since the backup stay.
    with open(os.path.join(logs, DAY), "a") as f:
        f.write('{"type": "rightvote"}\n')
    os.unlink(os.path.join(logs, "2026-12-02-conv.json"))
    rc, back = run("restore", out["archive"], logs)
    assert rc == 0 and back["restored"] == ["2026-12-02-conv.json"]
    assert back["kept"] == [DAY, "gradio_web_server.log"]
    with open(os.path.join(logs, DAY)) as f:
        assert f.read().endswith('{"type": "rightvote"}\n')


def test_retention_keeps_the_newest_and_nothing_else_is_touched(dirs):
    logs, dest = dirs
    for stamp in ("20260101T000000Z", "20260102T000000Z", "20260103T000000Z"):
        open(os.path.join(dest, "fastchat-lab-logs-%s.tar.gz" % stamp), "w").close()
    open(os.path.join(dest, "fastchat-lab-logs-notes.txt"), "w").close()
    open(os.path.join(dest, "other.tar.gz"), "w").close()
    rc, out = run("backup", logs, dest, "--keep", "2")
    assert rc == 0
    assert out["removed"] == ["fastchat-lab-logs-20260101T000000Z.tar.gz",
                              "fastchat-lab-logs-20260102T000000Z.tar.gz"]
    left = sorted(os.listdir(dest))
    assert "fastchat-lab-logs-20260103T000000Z.tar.gz" in left
    assert "fastchat-lab-logs-notes.txt" in left and "other.tar.gz" in left
    assert os.path.basename(out["archive"]) in left
    rc, listed = run("list", dest)
    assert listed["backups"][-1] == os.path.basename(out["archive"])


def test_two_backups_in_one_second_get_two_names(dirs):
    logs, dest = dirs
    first = run("backup", logs, dest)[1]["archive"]
    second = run("backup", logs, dest)[1]["archive"]
    assert first != second and os.path.exists(first) and os.path.exists(second)


def hostile(path, name, data=b"x", kind=tarfile.REGTYPE, link=""):
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return path


@pytest.mark.parametrize("name, kind, link", [
    ("logs/../../escaped", tarfile.REGTYPE, ""),
    ("/etc/cron.d/x", tarfile.REGTYPE, ""),
    ("logs/sub/deep", tarfile.REGTYPE, ""),
    ("logs/link", tarfile.SYMTYPE, "/etc/passwd"),
    ("logs/hard", tarfile.LNKTYPE, "/etc/passwd"),
    ("logs/dev", tarfile.CHRTYPE, ""),
    ("other/x", tarfile.REGTYPE, ""),
    ("logs/.hidden", tarfile.REGTYPE, ""),
    ("logs/a\nb", tarfile.REGTYPE, ""),
])
def test_a_hostile_archive_restores_nothing(tmp_path, name, kind, link):
    logs = tmp_path / "logs"
    logs.mkdir()
    archive = hostile(str(tmp_path / "evil.tar.gz"), name, kind=kind, link=link)
    rc, out = run("restore", archive, str(logs))
    assert rc == 1 and "nothing was restored" in out["error"], out
    assert os.listdir(str(logs)) == []
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize("args, expected", [
    (("backup", "relative/logs", "/tmp"), "is not an absolute, normalised path"),
    (("backup", "/nonexistent-logs", "/tmp"), "is not a directory"),
    (("restore", "/nonexistent.tar.gz", "/tmp"), "is not a file"),
])
def test_bad_arguments_are_errors_not_crashes(args, expected):
    rc, out = run(*args)
    assert rc == 1 and expected in out["error"]


def test_a_backup_directory_inside_the_logs_is_refused(dirs):
    logs, _ = dirs
    inner = os.path.join(logs, "backups")
    os.mkdir(inner)
    rc, out = run("backup", logs, inner)
    assert rc == 1 and "inside the logs directory" in out["error"]


def test_a_failed_backup_leaves_no_partial_file(dirs, monkeypatch):
    logs, dest = dirs
    sys.path.insert(0, os.path.dirname(HELPER))
    try:
        import fastchat_lab_backup as helper
    finally:
        sys.path.pop(0)

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(helper.tarfile.TarFile, "add", broken)
    with pytest.raises(OSError, match="disk full"):
        helper.backup(logs, dest, now=time.time())
    assert [n for n in os.listdir(dest) if not n.startswith(".fastchat-lab-backup.lock")] == []
