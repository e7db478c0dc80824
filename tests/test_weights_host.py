"""module_utils/weights_host.py: the model_weights role asks each host once which hub models
it lacks (the weights helper's `missing`), and reads the answer by name. A helper that cannot
answer fails the run naming the host, except in check mode on a new host (no helper yet)."""

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fastchat_lab.lab.plugins.filter.hub import FilterModule

FILTERS = FilterModule().filters()
HELPER = "/usr/local/libexec/fastchat-lab/fastchat_weights.py"
MODELS = {"tiny-chat": {"host_path": "/var/lib/fastchat-lab/models/tiny-chat", "revision": "a" * 40},
          "qwen-7b": {"host_path": "/var/lib/fastchat-lab/models/qwen-7b", "revision": "b" * 40}}


def answer(rc, stdout="", stderr=""):
    return {"commands": {"weights": {"rc": rc, "stdout": stdout, "stderr": stderr}}}


def test_one_question_for_all_of_a_host_s_models():
    assert FILTERS["weights_probe_commands"](HELPER, MODELS, ["qwen-7b", "tiny-chat"]) == {"weights": [
        HELPER, "missing", "--model", "qwen-7b", MODELS["qwen-7b"]["host_path"], "b" * 40,
        "--model", "tiny-chat", MODELS["tiny-chat"]["host_path"], "a" * 40]}
    assert FILTERS["weights_probe_commands"](HELPER, MODELS, []) == {}


def test_the_answer_is_read_by_name():
    found = json.dumps({"missing": ["qwen-7b"], "problems": {"qwen-7b": ["no verified copy yet"]}})
    assert FILTERS["weights_missing"](answer(0, found)) == ["qwen-7b"]
    assert FILTERS["weights_missing"](answer(0, json.dumps({"missing": [], "problems": {}}))) == []


def test_a_host_that_asked_nothing_lacks_nothing():
    for probe in ({}, None, {"commands": {}}, {"skipped": True, "changed": False}):
        assert FILTERS["weights_missing"](probe) == []


@pytest.mark.parametrize("probe", [answer(127, stderr="No such file or directory"), answer(1, stderr="Traceback"),
                                   answer(0, "not json"), answer(0, json.dumps({"ok": True}))])
def test_a_helper_that_cannot_answer_fails_the_run_unless_check_mode_falls_back(probe):
    with pytest.raises(AnsibleFilterError, match="gpu1: the weights helper"):
        FILTERS["weights_missing"](probe, None, "gpu1")
    assert FILTERS["weights_missing"](probe, ["tiny-chat", "qwen-7b"], "gpu1") == ["tiny-chat", "qwen-7b"]
