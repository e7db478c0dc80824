"""module_utils/handout.py: the items a receiver pulls and the paths the serving host lists,
for the weights (directories), the GGUF files (files into incoming/) and the image archives;
names, addresses and ports of another shape are refused before they reach a command line."""

import importlib.util
import os

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils import handout

DIR = "/srv/fastchat-lab/models"


def test_directories_replace_a_directory_of_the_same_name():
    assert handout.items(["Qwen-7B-Chat", "tiny@v1"], "10.0.0.5", 8731, "fastchat-models", DIR) == [
        {"source": "rsync://10.0.0.5:8731/fastchat-models/Qwen-7B-Chat/", "dest": DIR + "/Qwen-7B-Chat"},
        {"source": "rsync://10.0.0.5:8731/fastchat-models/tiny@v1/", "dest": DIR + "/tiny@v1"},
    ]
    assert handout.served_paths(["b", "a", "b"]) == ["a/", "b/"]


def test_files_with_their_companions_go_into_one_directory():
    got = handout.items(["q.gguf"], "head.lab", "8731", "fastchat-gguf", DIR + "/.gguf",
                        into=DIR + "/.gguf/incoming", suffixes=["", ".json", ".sha256"])
    assert got == [{"source": "rsync://head.lab:8731/fastchat-gguf/q.gguf" + s,
                    "dest": DIR + "/.gguf/incoming"} for s in ("", ".json", ".sha256")]
    assert handout.served_paths(["q.gguf"], directories=False, suffixes=["", ".sha256"]) == \
        ["q.gguf", "q.gguf.sha256"]
    assert handout.items([], "10.0.0.5", 8731, "m", DIR) == []


@pytest.mark.parametrize("kwargs, why", [
    ({"names": ["../etc"]}, "is not a name the hand-out serves"),
    ({"names": ["a b"]}, "is not a name the hand-out serves"),
    ({"names": ["-rf"]}, "is not a name the hand-out serves"),
    ({"names": "Qwen"}, "is not a name the hand-out serves"),
    ({"address": "10.0.0.5;id"}, "is not the serving host's address"),
    ({"address": "2001:db8::1"}, "serves over IPv4"),
    ({"port": 0}, "is not a port"),
    ({"port": True}, "is not a port"),
    ({"module": "a/b"}, "is not a transfer name"),
    ({"module": "a..b"}, "is not a transfer name"),
    ({"dest_root": "relative"}, "is not a normalised absolute directory"),
    ({"dest_root": DIR + "/../etc"}, "is not a normalised absolute directory"),
    ({"into": "/etc"}, "is not a directory directly inside"),
    ({"into": DIR + "/a/b"}, "is not a directory directly inside"),
    ({"into": DIR + "/in", "suffixes": ".json"}, "are not file name suffixes"),
    ({"into": DIR + "/in", "suffixes": ["/x"]}, "are not file name suffixes"),
])
def test_items_of_another_shape_are_refused(kwargs, why):
    args = {"names": ["Qwen-7B-Chat"], "address": "10.0.0.5", "port": 8731,
            "module": "fastchat-models", "dest_root": DIR}
    args.update(kwargs)
    with pytest.raises(handout.HandoutError, match=why):
        handout.items(**args)


def _transfer_helper():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "roles", "lab_transfer", "files", "fastchat_lab_transfer.py")
    spec = importlib.util.spec_from_file_location("fastchat_lab_transfer_for_handout", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_lease_is_where_the_transfer_helper_keeps_it():
    helper = _transfer_helper()
    assert handout.TRANSFER_STATE == helper.STATE
    for name in ("fastchat-images", "fastchat-models", "fastchat-gguf"):
        assert handout.lease(name) == helper._lease_file(name)  # pylint: disable=protected-access


@pytest.mark.parametrize("name", ["../x", "a/b", "", "-x", "x.", None, 7, ["fastchat-models"], "a" * 65])
def test_a_lease_of_another_name_is_refused(name):
    with pytest.raises(handout.HandoutError, match="is not a transfer name"):
        handout.lease(name)


def _probe(*leases):
    """A host_probe answer that asked for the three leases and found LEASES."""
    return {"paths": {handout.lease(n): {"exists": n in leases, "type": "file" if n in leases else None}
                      for n in ("fastchat-images", "fastchat-models", "fastchat-gguf")}}


@pytest.mark.parametrize("host, wanted, probe, work, runs", [
    # A converged lab: no host runs the hand-out, the serving host neither.
    ("head", [], _probe(), [], False),
    ("gpu1", [], _probe(), [], False),
    ("head", [], {}, [], False),
    ("head", [], None, (), False),
    # Some host lacks something: every host (the serving host serves, the others pull).
    ("head", ["Qwen-7B-Chat"], _probe(), [], True),
    ("gpu1", ["Qwen-7B-Chat"], {}, [], True),
    # The serving host's own work (a model it lacks and fetches first).
    ("head", [], _probe(), ["Qwen-7B-Chat"], True),
    ("gpu1", [], _probe(), ["Qwen-7B-Chat"], False),
    # A daemon an interrupted run left: the serving host runs it for the stop.
    ("head", [], _probe("fastchat-models"), [], True),
    ("gpu1", [], _probe("fastchat-models"), [], False),
    # Another hand-out's lease, a dangling link, a probe that did not ask: not this one's.
    ("head", [], _probe("fastchat-gguf"), [], False),
    ("head", [], {"paths": {handout.lease("fastchat-models"): {"exists": False, "type": "link"}}}, [], False),
    ("head", [], {"paths": {"/run/fastchat-lab/transfer/fastchat-models": {"exists": True}}}, [], False),
    ("head", [], {"skipped": True, "changed": False}, [], False),
])
def test_who_runs_a_hand_out(host, wanted, probe, work, runs):
    assert handout.runs(host, "head", wanted, "fastchat-models", probe, work) is runs


@pytest.mark.parametrize("kwargs, why", [
    ({"wanted": "Qwen-7B-Chat"}, "wanted: .* is not a list"),
    ({"wanted": {"Qwen-7B-Chat": 1}}, "wanted: .* is not a list"),
    ({"serving_work": None}, "serving_work: .* is not a list"),
    ({"name": "../etc/passwd"}, "is not a transfer name"),
    ({"name": "a/b", "wanted": ["Qwen-7B-Chat"]}, "is not a transfer name"),
])
def test_a_hand_out_question_of_another_shape_is_refused(kwargs, why):
    args = {"host": "head", "serving_host": "head", "wanted": [], "name": "fastchat-models",
            "probe": {}, "serving_work": []}
    args.update(kwargs)
    with pytest.raises(handout.HandoutError, match=why):
        handout.runs(**args)
