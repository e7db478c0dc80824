"""The model_weights role's helper (roles/model_weights/files/fastchat_weights.py):
checks of a weights directory, and a resumable, verified git-lfs fetch from a local
hub repository made here (needs git and git-lfs, as the role does)."""

import importlib.util
import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPER = os.path.join(ROOT, "roles", "model_weights", "files", "fastchat_weights.py")
spec = importlib.util.spec_from_file_location("fastchat_weights", HELPER)
fw = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fw)

needs_lfs = pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs is not installed")
GIT_ENV = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t.invalid")


def git(cwd, *args):
    return subprocess.run(["git"] + list(args), cwd=cwd, env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout.strip()


def write(path, name, data):
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


def model_dir(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    write(d, "config.json", b'{"model_type": "llama"}')
    write(d, "model.safetensors", os.urandom(4096))
    return str(d)


def test_a_complete_directory_is_ok(tmp_path):
    assert fw.check(model_dir(tmp_path))["ok"]


def test_lfs_pointers_and_missing_shards_are_named(tmp_path):
    d = model_dir(tmp_path)
    write(d, "model.safetensors", b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n")
    write(d, "model.safetensors.index.json", json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors"}}).encode())
    problems = " ".join(fw.check(d)["problems"])
    assert "model.safetensors is a git-lfs pointer" in problems
    assert "model-00001-of-00002.safetensors, which is missing" in problems


def test_the_marker_pins_revision_and_sizes(tmp_path):
    d = model_dir(tmp_path)
    assert fw.check(d, "a" * 40, write_marker=True)["ok"]
    assert fw.check(d, "a" * 40)["ok"]
    assert "not " + "b" * 40 in " ".join(fw.check(d, "b" * 40)["problems"])
    write(d, "model.safetensors", os.urandom(100))
    assert "files changed since verified: model.safetensors" in " ".join(fw.check(d, "a" * 40)["problems"])


@pytest.fixture()
def hub(tmp_path):
    """A bare hub repository with two LFS objects, and its commit."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "lfs", "install", "--local")
    write(work, ".gitattributes", b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    write(work, "config.json", b"{}")
    write(work, "model-1.safetensors", os.urandom(30000))
    write(work, "model-2.safetensors", os.urandom(20000))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "weights")
    bare = tmp_path / "hub" / "org" / "model"
    bare.parent.mkdir(parents=True)
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(work, "push", "-q", "file://%s" % bare, "main")
    return "file://%s" % bare, git(work, "rev-parse", "HEAD"), bare


def open_text(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


@needs_lfs
def test_fetch_verifies_and_a_second_fetch_does_nothing(tmp_path, hub):
    url, rev, _bare = hub
    dest, status = str(tmp_path / "cache" / "model"), str(tmp_path / "status.json")
    first = fw.fetch(dest, url, rev, status, 0)
    assert first["changed"] and first["fetched_objects"] == 2 and first["fetched_bytes"] == 50000
    assert os.path.getsize(os.path.join(dest, "model-1.safetensors")) == 30000
    assert json.loads(open_text(status)) == {"phase": "done", "done": 50000, "total": 50000, "resumed_from": 0}
    again = fw.fetch(dest, url, rev, status, 0)
    assert not again["changed"] and again["fetched_objects"] == 0


@needs_lfs
def test_an_interrupted_fetch_resumes_without_the_finished_object(tmp_path, hub):
    url, rev, bare = hub
    dest = tmp_path / "cache" / "model"
    dest.mkdir(parents=True)
    git(dest, "init", "-q")
    git(dest, "remote", "add", "origin", url)
    git(dest, "fetch", "-q", "--depth", "1", "origin", rev)
    git(dest, "lfs", "fetch", "origin", rev, "--include=model-1.safetensors")
    # The hub loses that object: only a resumed fetch can still succeed.
    oid = git(dest, "cat-file", "blob", "%s:model-1.safetensors" % rev).split("sha256:")[1].split()[0]
    for root, _dirs, files in os.walk(bare / "lfs"):
        if oid in files:
            os.remove(os.path.join(root, oid))
    result = fw.fetch(str(dest), url, rev, str(tmp_path / "s.json"), 0)
    assert result["ok"] and result["fetched_objects"] == 1 and result["fetched_bytes"] == 20000
    assert json.loads(open_text(tmp_path / "s.json"))["resumed_from"] == 30000


@needs_lfs
def test_the_token_reaches_git_only_through_its_environment(tmp_path, hub):
    url, rev, _bare = hub
    token = tmp_path / "token"
    token.write_text("hf_secret_123\n")
    env = fw.git_env("https://hub.example/org/model", str(token))
    assert env["GIT_CONFIG_KEY_0"] == "http.https://hub.example/.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"] == "Authorization: Bearer hf_secret_123"
    dest = str(tmp_path / "cache" / "model")
    fw.fetch(dest, url, rev, str(tmp_path / "s.json"), 0, str(token))
    for root, _dirs, files in os.walk(dest):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                assert b"hf_secret_123" not in f.read(), os.path.join(root, name)


@needs_lfs
def test_too_little_disk_space_stops_before_the_download(tmp_path, hub):
    url, rev, _bare = hub
    with pytest.raises(fw.WeightsError, match="not enough disk space .* Fix: free space"):
        fw.fetch(str(tmp_path / "m"), url, rev, str(tmp_path / "s.json"), 10 ** 9)
    assert not os.path.exists(tmp_path / "m" / "model-1.safetensors")


def test_missing_names_the_models_without_a_verified_copy(tmp_path):
    """The role's probe asks once for all of a host's models: a verified copy of the pinned
    revision is not missing; no directory, no marker, another revision or a changed file is."""
    rev, other = "a" * 40, "b" * 40
    dirs = []
    for name in ("good", "unverified", "changed"):
        (tmp_path / name).mkdir()
        dirs.append(model_dir(tmp_path / name))
    good, unverified, changed = dirs
    assert fw.check(good, rev, write_marker=True)["ok"]
    assert fw.check(changed, rev, write_marker=True)["ok"]
    write(changed, "model.safetensors", os.urandom(100))
    models = [("good", good, rev), ("gone", str(tmp_path / "gone"), rev), ("unverified", unverified, rev),
              ("old", good, other), ("changed", changed, rev)]
    out = subprocess.run(["python3", HELPER, "missing"] + [a for m in models for a in ["--model"] + list(m)],
                         capture_output=True, text=True, check=True)
    answer = json.loads(out.stdout)
    assert answer["missing"] == ["gone", "unverified", "old", "changed"]
    assert "does not exist" in answer["problems"]["gone"][0]
    assert "no verified copy yet" in " ".join(answer["problems"]["unverified"])
    assert "has revision %s, not %s" % (rev, other) in answer["problems"]["old"]
    assert "files changed since verified: model.safetensors" in answer["problems"]["changed"]
    empty = subprocess.run(["python3", HELPER, "missing"], capture_output=True, text=True, check=True)
    assert json.loads(empty.stdout) == {"missing": [], "problems": {}}
