"""roles/lab_transfer/files/fastchat_lab_transfer.py: the fence, the manifest (sha256 of what
is served, excludes as rsync applies them), and a real daemon and pulls on loopback: exactly
the listed files arrive, a tampered one is refused with nothing half-replaced, one run serves
a name at a time, the daemon ends by itself."""

import hashlib
import importlib.util
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = importlib.util.spec_from_file_location(
    "fastchat_lab_transfer", os.path.join(ROOT, "roles", "lab_transfer", "files",
                                          "fastchat_lab_transfer.py"))
transfer = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(transfer)
needs_rsync = pytest.mark.skipif(shutil.which("rsync") is None or os.geteuid() != 0,
                                 reason="needs rsync and root (scripts/test installs rsync)")


@pytest.fixture(name="owned")
def fixture_owned(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    (root / transfer.OWNED_MARKER).write_text("")
    return root


@pytest.mark.parametrize("dest, why", [
    ("{root}", "is not a directory directly inside"),
    ("{root}/a/b", "is not a directory directly inside"),
    ("{tmp}/elsewhere", "is not a directory directly inside"),
    ("{root}/../etc", "is not a normalised absolute path"),
    ("relative/dir", "is not a normalised absolute path"),
    ("{root}/escape", "is not a directory directly inside"),  # a symlink out of the root
    ("{root}/a,b", "is not a valid transfer name"),
])
def test_the_fence_refuses_destinations_outside_the_owned_directory(owned, tmp_path, dest, why):
    (tmp_path / "elsewhere").mkdir()
    os.symlink(str(tmp_path / "elsewhere"), str(owned / "escape"))
    dest = dest.format(root=owned, tmp=tmp_path)
    with pytest.raises(transfer.TransferError, match=why):
        transfer.fence(dest, str(owned))


def test_the_fence_needs_the_owner_marker(tmp_path):
    (tmp_path / "etc").mkdir()
    with pytest.raises(transfer.TransferError, match="is not a directory the lab owns"):
        transfer.fence(str(tmp_path / "etc" / "passwd.d"), str(tmp_path / "etc"))


def test_the_fence_gives_the_real_destination(owned):
    assert transfer.fence(str(owned / "Qwen-7B-Chat"), str(owned)) == \
        os.path.realpath(str(owned / "Qwen-7B-Chat"))


MANIFEST = {"name": "m", "files": {"x/a": "0" * 64}}


@pytest.mark.parametrize("source", [
    "rsync://192.0.2.1:8731/fastchat-models/../etc/", "http://192.0.2.1/x",
    "rsync://192.0.2.1:8731/fastchat-models/a b/", "rsync://192.0.2.1:99999/m/x",
    "rsync://192.0.2.1:8731/m/x;rm",
])
def test_pull_refuses_sources_of_another_shape(owned, source):
    with pytest.raises(transfer.TransferError, match="is not an rsync:// source"):
        transfer.pull(source, str(owned / "m"), str(owned), MANIFEST)


@pytest.mark.parametrize("listed, why", [
    ({"name": "other", "files": {}}, "is not the serving host's list for m"),
    ("files", "is not the serving host's list"),
    ({"name": "m", "files": {"../etc/passwd": "0" * 64}}, "is not a relative path"),
    ({"name": "m", "files": {"x//a": "0" * 64}}, "is not a relative path"),
    ({"name": "m", "files": {"x/a\nb": "0" * 64}}, "is not a relative path"),
    ({"name": "m", "files": {"x/a": "abc"}}, "is not a sha256"),
    ({"name": "m", "files": {"y/a": "0" * 64}}, "lists nothing under x/"),
])
def test_pull_refuses_a_manifest_of_another_shape_before_rsync_runs(owned, listed, why):
    with pytest.raises(transfer.TransferError, match=why):
        transfer.pull("rsync://192.0.2.1:8731/m/x/", str(owned / "x"), str(owned), listed)
    assert sorted(os.listdir(owned)) == [transfer.OWNED_MARKER]


def test_serve_refuses_names_addresses_patterns_and_paths_of_another_shape(tmp_path):
    (tmp_path / "tiny").mkdir()
    os.chmod(str(tmp_path), 0o700)
    with pytest.raises(transfer.TransferError, match="is not searchable by nobody"):
        transfer.serve("models", str(tmp_path), 8731, ["192.0.2.1"], [], ["tiny/"])
    os.chmod(str(tmp_path), 0o755)
    with pytest.raises(transfer.TransferError, match="not a valid transfer name"):
        transfer.serve("../x", str(tmp_path), 8731, ["192.0.2.1"], [], ["tiny/"])
    with pytest.raises(transfer.TransferError, match="is not an IP address"):
        transfer.serve("models", str(tmp_path), 8731, ["host name"], [], ["tiny/"])
    with pytest.raises(transfer.TransferError, match="exclude pattern"):
        transfer.serve("models", str(tmp_path), 8731, ["192.0.2.1"], ["x y"], ["tiny/"])
    with pytest.raises(transfer.TransferError, match="no path to serve"):
        transfer.serve("models", str(tmp_path), 8731, ["192.0.2.1"], [], [])
    for path in ("../etc/", "/etc/", "tiny/../../etc/"):
        with pytest.raises(transfer.TransferError, match="is not a relative path"):
            transfer.serve("models", str(tmp_path), 8731, ["192.0.2.1"], [], [path])


@pytest.mark.parametrize("pattern, rel, is_dir, out", [
    (".git/", "tiny/.git", True, True),
    (".git/", "tiny/.git", False, False),      # a file named .git is not the directory
    (".git/", ".git", True, True),
    ("/.fastchat-lab-owned", ".fastchat-lab-owned", False, True),
    ("/.fastchat-lab-owned", "tiny/.fastchat-lab-owned", False, False),  # anchored at the root
    ("/.*.progress.json", ".tiny.progress.json", False, True),
    ("/.*.progress.json", "tiny/.x.progress.json", False, False),
    (".*", "a/.hidden", False, True),
    (".*", "a/visible", False, False),
    ("*.tmp", "a/b.tmp", False, True),
    ("*.tmp", "a.tmp/b", False, False),         # * never crosses a /
    ("/incoming/", "incoming", True, True),
    ("/incoming/", "x/incoming", True, False),
    ("sub/x", "a/sub/x", False, True),          # a pattern with / matches the path's end
    ("sub/x", "a/bsub/x", False, False),
])
def test_excludes_follow_rsyncs_rules(pattern, rel, is_dir, out):
    assert transfer.excluded(rel, is_dir, [pattern]) is out


@pytest.fixture(name="served")
def fixture_served(tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "STATE", str(tmp_path / "state"))
    monkeypatch.setattr(transfer, "CACHE", str(tmp_path / "cache"))
    served = tmp_path / "served"
    (served / "tiny" / ".git").mkdir(parents=True)
    (served / "tiny" / "sub").mkdir()
    (served / "tiny" / "config.json").write_text("{}")
    (served / "tiny" / "sub" / "Baichuan-13B 模型社区许可协议.pdf").write_text("license")
    (served / "tiny" / ".git" / "HEAD").write_text("ref")
    (served / "tiny.gguf").write_text("GGUF")
    os.chmod(served, 0o755)
    return served


def test_the_manifest_lists_regular_files_with_their_sha256_excludes_applied(served):
    listed = transfer.manifest("fcl-test", str(served), ["tiny/", "tiny.gguf"], [".git/"])
    assert listed == {"name": "fcl-test", "files": {
        "tiny/config.json": hashlib.sha256(b"{}").hexdigest(),
        "tiny/sub/Baichuan-13B 模型社区许可协议.pdf": hashlib.sha256(b"license").hexdigest(),
        "tiny.gguf": hashlib.sha256(b"GGUF").hexdigest()}}


def test_the_manifest_hashes_a_file_again_only_when_it_changed(served, monkeypatch):
    hashed = []
    real = transfer._sha256  # pylint: disable=protected-access
    monkeypatch.setattr(transfer, "_sha256", lambda path: hashed.append(path) or real(path))
    transfer.manifest("fcl-test", str(served), ["tiny/"], [".git/"])
    assert len(hashed) == 2
    hashed.clear()
    transfer.manifest("fcl-test", str(served), ["tiny/"], [".git/"])
    assert hashed == []
    (served / "tiny" / "config.json").write_text('{"changed": 1}')
    listed = transfer.manifest("fcl-test", str(served), ["tiny/"], [".git/"])
    assert hashed == [str(served / "tiny" / "config.json")]
    assert listed["files"]["tiny/config.json"] == hashlib.sha256(b'{"changed": 1}').hexdigest()


def test_the_manifest_refuses_symlinks_unreadable_excluded_and_absent_paths(served, tmp_path):
    os.symlink("/etc/passwd", str(served / "tiny" / "passwd"))
    with pytest.raises(transfer.TransferError, match="neither symlinks nor special files"):
        transfer.manifest("fcl-test", str(served), ["tiny/"], [".git/"])
    os.remove(str(served / "tiny" / "passwd"))
    os.chmod(str(served / "tiny" / "config.json"), 0o600)
    with pytest.raises(transfer.TransferError, match="is not readable by nobody"):
        transfer.manifest("fcl-test", str(served), ["tiny/"], [".git/"])
    with pytest.raises(transfer.TransferError, match="excluded from the hand-out"):
        transfer.manifest("fcl-test", str(served), ["tiny/.git/"], [".git/"])
    with pytest.raises(transfer.TransferError, match="is not there to serve"):
        transfer.manifest("fcl-test", str(served), ["absent/"], [])
    os.symlink(str(tmp_path), str(served / "link"))
    with pytest.raises(transfer.TransferError, match="is not a directory"):
        transfer.manifest("fcl-test", str(served), ["link/"], [])


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tree(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)


@needs_rsync
def test_serve_and_pull_exactly_the_listed_files_without_the_senders_modes(served, owned, tmp_path):
    stale = owned / "tiny"
    stale.mkdir()
    (stale / "old.bin").write_text("left from another revision")
    os.chmod(str(served / "tiny" / "config.json"), 0o4755)  # setuid, executable: never kept
    outside = tmp_path / "keep.txt"
    outside.write_text("not the lab's")
    port = _free_port()
    result = transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [".git/"],
                            ["tiny/", "tiny.gguf"])
    try:
        assert result["changed"] is True and len(result["lease"]) == 16
        listed = result["manifest"]
        source = "rsync://127.0.0.1:%d/fcl-test/tiny/" % port
        got = transfer.pull(source, str(stale), str(owned), listed)
        assert got["changed"] is True
        # .git excluded, old.bin gone: exactly the manifest.
        assert _tree(stale) == ["config.json", "sub/Baichuan-13B 模型社区许可协议.pdf"]
        assert stat.S_IMODE(os.stat(str(stale / "config.json")).st_mode) == 0o644
        assert os.stat(str(stale / "config.json")).st_uid == 0
        assert transfer.pull(source, str(stale), str(owned), listed)["changed"] is False
        # A file pulled into a directory (the GGUF hand-out's incoming/).
        gguf = "rsync://127.0.0.1:%d/fcl-test/tiny.gguf" % port
        assert transfer.pull(gguf, str(owned / "incoming"), str(owned), listed)["changed"] is True
        assert (owned / "incoming" / "tiny.gguf").read_text() == "GGUF"
        assert transfer.pull(gguf, str(owned / "incoming"), str(owned), listed)["changed"] is False
        # Nothing of the hand-out's own is left beside the destinations but the locks.
        assert sorted(n for n in os.listdir(owned) if not n.startswith(".fastchat-lab-lock-")) == \
            [transfer.OWNED_MARKER, "incoming", "tiny"]
    finally:
        assert transfer.stop("fcl-test", result["lease"])["changed"] is True
    assert transfer.stop("fcl-test")["changed"] is False
    assert outside.read_text() == "not the lab's"


@needs_rsync
def test_a_tampered_or_swapped_file_is_refused_and_nothing_is_half_replaced(served, owned):
    port = _free_port()
    result = transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [".git/"], ["tiny/"])
    try:
        source = "rsync://127.0.0.1:%d/fcl-test/tiny/" % port
        dest = owned / "tiny"
        dest.mkdir()
        (dest / "config.json").write_text("the good old one")
        # After the manifest was made: one file changes, another becomes a symlink out.
        (served / "tiny" / "config.json").write_text('{"evil": true}')
        lic = served / "tiny" / "sub" / "Baichuan-13B 模型社区许可协议.pdf"
        os.remove(str(lic))
        os.symlink("/etc/shadow", str(lic))
        with pytest.raises(transfer.TransferError) as caught:
            transfer.pull(source, str(dest), str(owned), result["manifest"])
        assert "2 file(s) did not arrive as the serving host listed them" in str(caught.value)
        assert "config.json: sha256 differs" in str(caught.value)
        assert "missing" in str(caught.value)
        assert _tree(dest) == ["config.json"]
        assert (dest / "config.json").read_text() == "the good old one"
        staging = owned / (transfer.STAGING_PREFIX + "tiny")
        assert _tree(staging) == []  # the bad file is not kept for a resume
        # The serving host puts things right: the next pull completes.
        (served / "tiny" / "config.json").write_text("{}")
        os.remove(str(lic))
        lic.write_text("license")
        assert transfer.pull(source, str(dest), str(owned), result["manifest"])["changed"] is True
        assert (dest / "config.json").read_text() == "{}"
        assert not staging.exists()
    finally:
        transfer.stop("fcl-test", result["lease"])


@needs_rsync
def test_one_run_serves_a_name_at_a_time_and_the_next_waits_for_it(served, monkeypatch):
    port = _free_port()
    first = transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [], ["tiny.gguf"])
    try:
        with pytest.raises(transfer.TransferError, match="another run serves fcl-test"):
            transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [], ["tiny.gguf"], wait=0)
        # Another run's stop, with its own lease or none, leaves this run's daemon alone.
        assert transfer.stop("fcl-test")["state"] == "served by another run"
        assert transfer.stop("fcl-test", "0" * 16)["state"] == "served by another run"
        assert transfer._daemon_pid("fcl-test")  # pylint: disable=protected-access
        # The second run waits: the first stops a second later, and the second serves.
        timer = threading.Timer(1.0, transfer.stop, ("fcl-test", first["lease"]))
        timer.start()
        started = time.monotonic()
        second = transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [], ["tiny.gguf"],
                                wait=30)
        timer.join()
        assert 0.9 < time.monotonic() - started < 20
        assert second["lease"] != first["lease"]
        # A run left behind (its daemon idle past IDLE_S) is taken over without waiting.
        monkeypatch.setattr(transfer, "IDLE_S", 0)
        time.sleep(1.1)
        third = transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [], ["tiny.gguf"],
                               wait=0)
        assert transfer.stop("fcl-test", second["lease"])["changed"] is False
        assert transfer.stop("fcl-test", third["lease"])["changed"] is True
    finally:
        monkeypatch.setattr(transfer, "IDLE_S", 0)
        transfer.stop("fcl-test")


@needs_rsync
def test_the_daemon_ends_by_itself_after_its_lifetime(served):
    port = _free_port()
    transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [], ["tiny.gguf"], lifetime=2)
    assert transfer._daemon_pid("fcl-test")  # pylint: disable=protected-access
    deadline = time.monotonic() + 15
    while transfer._daemon_pid("fcl-test") and time.monotonic() < deadline:  # pylint: disable=protected-access
        time.sleep(0.2)
    assert transfer._daemon_pid("fcl-test") is None  # pylint: disable=protected-access
    # Its lease is over: the next run serves at once, and a lease-less stop cleans up.
    again = transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [], ["tiny.gguf"], wait=0)
    assert transfer.stop("fcl-test", again["lease"])["changed"] is True


def test_stop_signals_only_the_daemons_own_process(tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "STATE", str(tmp_path))
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "fcl-test.pid").write_text(str(sleeper.pid))
        assert transfer.stop("fcl-test") == {"changed": False, "state": "stopped"}
        assert sleeper.poll() is None
        assert not (tmp_path / "fcl-test.pid").exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_command_line_prints_one_json_object_and_exits_1_on_a_refusal(tmp_path, capsys):
    (tmp_path / transfer.OWNED_MARKER).write_text("")
    assert transfer.main(["pull", "rsync://127.0.0.1:1/m/x/", str(tmp_path / "x"), "--owned-root",
                          str(tmp_path)], stdin=io.StringIO("not json")) == 1
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["ok"] is False and "the manifest on stdin is not JSON" in out["error"]


@needs_rsync
def test_a_daemon_left_without_a_lease_is_ended_by_the_next_serve(served):
    """An interrupted run of an older helper left NAME's daemon (pid file, no lease): the
    next serve ends it instead of failing on the port it keeps."""
    port = _free_port()
    first = transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [], ["tiny.gguf"])
    old = transfer._daemon_pid("fcl-test")  # pylint: disable=protected-access
    os.remove(transfer._lease_file("fcl-test"))  # pylint: disable=protected-access
    second = transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [], ["tiny.gguf"], wait=0)
    try:
        new = transfer._daemon_pid("fcl-test")  # pylint: disable=protected-access
        assert new and new != old and second["lease"] != first["lease"]
    finally:
        assert transfer.stop("fcl-test", second["lease"])["changed"] is True
