"""roles/lab_transfer/files/fastchat_lab_transfer.py: the fence around rsync --delete, and a
real daemon and pull on loopback."""

import importlib.util
import json
import os
import shutil
import socket

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


@pytest.mark.parametrize("source", [
    "rsync://192.0.2.1:8731/fastchat-models/../etc/", "http://192.0.2.1/x",
    "rsync://192.0.2.1:8731/fastchat-models/a b/", "rsync://192.0.2.1:99999/m/x",
    "rsync://192.0.2.1:8731/m/x;rm",
])
def test_pull_refuses_sources_of_another_shape(owned, source):
    with pytest.raises(transfer.TransferError, match="is not an rsync:// source"):
        transfer.pull(source, str(owned / "m"), str(owned), delete=True)


def test_serve_refuses_names_and_addresses_of_another_shape(tmp_path):
    with pytest.raises(transfer.TransferError, match="not a valid transfer name"):
        transfer.serve("../x", str(tmp_path), 8731, ["192.0.2.1"], [])
    with pytest.raises(transfer.TransferError, match="is not an IP address"):
        transfer.serve("models", str(tmp_path), 8731, ["host name"], [])
    with pytest.raises(transfer.TransferError, match="exclude pattern"):
        transfer.serve("models", str(tmp_path), 8731, ["192.0.2.1"], ["x y"])


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@needs_rsync
def test_serve_pull_with_delete_and_stop_on_loopback(tmp_path, owned, monkeypatch, capsys):
    monkeypatch.setattr(transfer, "STATE", str(tmp_path / "state"))
    served = tmp_path / "served"
    (served / "tiny" / ".git").mkdir(parents=True)
    (served / "tiny" / "config.json").write_text("{}")
    (served / "tiny" / ".git" / "HEAD").write_text("ref")
    stale = owned / "tiny"
    stale.mkdir()
    (stale / "old.bin").write_text("left from another revision")
    outside = tmp_path / "keep.txt"
    outside.write_text("not the lab's")
    port = _free_port()
    try:
        assert transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [".git/"]) == \
            {"changed": True, "state": "started"}
        assert transfer.serve("fcl-test", str(served), port, ["127.0.0.1"], [])["changed"] is False
        result = transfer.pull("rsync://127.0.0.1:%d/fcl-test/tiny/" % port, str(stale),
                               str(owned), delete=True)
        assert result["changed"] is True
        assert sorted(os.listdir(stale)) == ["config.json"]  # .git excluded, old.bin deleted
        again = transfer.pull("rsync://127.0.0.1:%d/fcl-test/tiny/" % port, str(stale),
                              str(owned), delete=True)
        assert again["changed"] is False
    finally:
        assert transfer.stop("fcl-test")["changed"] is True
    assert transfer.stop("fcl-test")["changed"] is False
    assert outside.read_text() == "not the lab's"
    # The command line prints one JSON object and exits 1 on a refusal.
    assert transfer.main(["pull", "rsync://127.0.0.1:1/m/x/", str(tmp_path), "--owned-root",
                          str(tmp_path)]) == 1
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["ok"] is False
