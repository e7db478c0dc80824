"""module_utils/handout.py: the items a receiver pulls and the paths the serving host lists,
for the weights (directories), the GGUF files (files into incoming/) and the image archives;
names, addresses and ports of another shape are refused before they reach a command line."""

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
