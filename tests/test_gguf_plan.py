"""module_utils/gguf.py: which GGUF files each host of a (hand-made) lab plan checks,
what its probe found, the llama.cpp image the cache host converts with, the conversion's
docker run, and plans of another shape refused before they reach a path or a command."""

import copy
import json

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils import gguf

COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
QWEN_REV = "8d24619bab456ea5abe2823c1d05fc5edec19174"
BAICHUAN_REV = "e3f2f2bc8ab3c5a1a8f2e3a1c4b5d6e7f8091a2b"
DIR = "/srv/fastchat-lab/models"
GGUF_DIR = DIR + "/.gguf"
HELPER = "/usr/local/libexec/fastchat-lab/fastchat_gguf.py"
QWEN_Q8 = "Qwen-7B-Chat-8d24619bab45-q8_0-llamacpp-0c1e57098b.gguf"
BAICHUAN_Q8 = "Baichuan-13B-Chat-e3f2f2bc8ab3-q8_0-llamacpp-0c1e57098b.gguf"
BAICHUAN_Q4 = "Baichuan-13B-Chat-e3f2f2bc8ab3-q4_k_m-llamacpp-0c1e57098b.gguf"
REFS = {"cpu": "fastchat-lab:cpu-abc", "llamacpp-cpu": "fastchat-lab:llamacpp-cpu-0c1e57098b-1234",
        "llamacpp-cuda": "fastchat-lab:llamacpp-cuda-0c1e57098b-5678"}


def _gguf(file, hosts):
    return {"file": file, "host_path": GGUF_DIR + "/" + file, "container_path": "/models/" + file,
            "hosts": hosts}


def make_plan():
    """The design's shape: head (the cache host) serves nothing of llama.cpp; gpu01 runs
    Qwen and Baichuan at q8_0, gpu02 Baichuan at q4_k_m and q8_0; vicuna is an hf model."""
    return {
        "summary": {"head": "head", "weights_dir": DIR,
                    "llamacpp": {"commit": COMMIT, "cuda_archs": ["61"], "gguf_dir": GGUF_DIR}},
        "models": {
            "Qwen-7B-Chat": {"revision": QWEN_REV, "local_path": None, "hosts": [],
                             "host_path": DIR + "/Qwen-7B-Chat",
                             "gguf": {"q8_0": _gguf(QWEN_Q8, ["gpu01"])}},
            "Baichuan-13B-Chat": {"revision": BAICHUAN_REV, "local_path": "/data/baichuan",
                                  "hosts": [], "host_path": "/data/baichuan",
                                  "gguf": {"q8_0": _gguf(BAICHUAN_Q8, ["gpu02", "gpu01"]),
                                           "q4_k_m": _gguf(BAICHUAN_Q4, ["gpu02"])}},
            "vicuna-7b": {"revision": "a" * 40, "local_path": None, "hosts": ["gpu02"],
                          "host_path": DIR + "/vicuna-7b", "gguf": {}},
        },
        "hosts": {"head": {}, "gpu01": {}, "gpu02": {}, "gpu03": {}},
    }


def test_every_gguf_file_of_the_plan_with_what_making_it_needs():
    files = gguf.gguf_files(make_plan())
    assert list(files) == [BAICHUAN_Q4, BAICHUAN_Q8, QWEN_Q8]
    assert files[BAICHUAN_Q8] == {
        "model": "Baichuan-13B-Chat", "quantization": "q8_0", "file": BAICHUAN_Q8,
        "host_path": GGUF_DIR + "/" + BAICHUAN_Q8, "hosts": ["gpu01", "gpu02"],
        "revision": BAICHUAN_REV, "commit": COMMIT, "gguf_dir": GGUF_DIR,
        # A local_path model is converted from where its weights are.
        "weights_path": "/data/baichuan"}
    assert files[QWEN_Q8]["weights_path"] == DIR + "/Qwen-7B-Chat"


def test_a_plan_without_llamacpp_workers_has_no_gguf_files():
    plan = make_plan()
    for entry in plan["models"].values():
        entry["gguf"] = {}
    del plan["summary"]["llamacpp"]
    assert gguf.gguf_files(plan) == {}
    assert gguf.probe_commands({}, "head", "head", HELPER, REFS) == {}


def test_the_cache_host_checks_every_file_its_images_and_a_left_container():
    commands = gguf.probe_commands(gguf.gguf_files(make_plan()), "head", "head", HELPER, REFS)
    assert commands == {
        BAICHUAN_Q4: [HELPER, "check", GGUF_DIR + "/" + BAICHUAN_Q4, "--model", "Baichuan-13B-Chat",
                      "--revision", BAICHUAN_REV, "--quantization", "q4_k_m", "--commit", COMMIT],
        BAICHUAN_Q8: [HELPER, "check", GGUF_DIR + "/" + BAICHUAN_Q8, "--model", "Baichuan-13B-Chat",
                      "--revision", BAICHUAN_REV, "--quantization", "q8_0", "--commit", COMMIT],
        QWEN_Q8: [HELPER, "check", GGUF_DIR + "/" + QWEN_Q8, "--model", "Qwen-7B-Chat",
                  "--revision", QWEN_REV, "--quantization", "q8_0", "--commit", COMMIT],
        "_image.llamacpp-cpu": ["docker", "image", "inspect", REFS["llamacpp-cpu"]],
        "_image.llamacpp-cuda": ["docker", "image", "inspect", REFS["llamacpp-cuda"]],
        "_container": ["docker", "container", "inspect", "fastchat-lab-gguf"],
    }


@pytest.mark.parametrize("host, cache, expected", [
    ("gpu01", "head", [BAICHUAN_Q8, QWEN_Q8]),
    ("gpu02", "head", [BAICHUAN_Q4, BAICHUAN_Q8]),
    ("gpu03", "head", []),
    # The deploy-only check (no cache host): the head's own files, none.
    ("head", "", []),
    # A cache host that also serves llama.cpp checks every file, once.
    ("gpu01", "gpu01", [BAICHUAN_Q4, BAICHUAN_Q8, QWEN_Q8, "_image.llamacpp-cpu",
                        "_image.llamacpp-cuda", "_container"]),
])
def test_other_hosts_check_the_files_their_workers_need(host, cache, expected):
    files = gguf.gguf_files(make_plan())
    assert list(gguf.probe_commands(files, host, cache, HELPER, REFS)) == expected


def _answer(rc, out=None, stderr=""):
    return {"rc": rc, "stdout": json.dumps(out) if out is not None else "", "stderr": stderr}


def test_what_a_probe_found():
    probe = {"commands": {
        BAICHUAN_Q4: _answer(1, {"ok": False, "problems": ["it has 10 bytes, its record says 99 (truncated or changed)"]}),
        BAICHUAN_Q8: _answer(0, {"ok": True, "how": "sha256", "stale_mtime": True}),
        QWEN_Q8: _answer(127, stderr="No such file or directory: fastchat_gguf.py"),
        "_image.llamacpp-cuda": _answer(0, []),
        "_image.llamacpp-cpu": _answer(1, stderr="No such image"),
        "_container": _answer(0, []),
    }}
    assert gguf.probe_state(probe) == {
        "missing": [BAICHUAN_Q4, QWEN_Q8],
        "problems": {BAICHUAN_Q4: "it has 10 bytes, its record says 99 (truncated or changed)",
                     QWEN_Q8: "No such file or directory: fastchat_gguf.py"},
        "stale": [BAICHUAN_Q8], "images": ["llamacpp-cuda"], "container": True}


def test_a_verified_file_and_a_skipped_probe_need_nothing():
    probe = {"commands": {QWEN_Q8: _answer(0, {"ok": True, "how": "size and mtime"}),
                          "_container": _answer(1, stderr="No such container")}}
    nothing = {"missing": [], "problems": {}, "stale": [], "images": [], "container": False}
    assert gguf.probe_state(probe) == nothing
    assert gguf.probe_state({"skipped": True, "changed": False}) == nothing
    assert gguf.probe_state(None) == nothing


@pytest.mark.parametrize("images, expected", [
    (["llamacpp-cpu", "llamacpp-cuda"], ("llamacpp-cpu", REFS["llamacpp-cpu"])),
    (["llamacpp-cuda"], ("llamacpp-cuda", REFS["llamacpp-cuda"])),
    ([], (None, None)),
    (["cpu"], (None, None)),
])
def test_the_cpu_image_is_preferred_for_converting(images, expected):
    assert gguf.pick_image(images, REFS) == expected


def test_an_image_without_a_reference_is_not_picked():
    assert gguf.pick_image(["llamacpp-cpu"], {"llamacpp-cuda": REFS["llamacpp-cuda"]}) == (None, None)


def test_the_conversion_runs_in_the_image_without_network_with_the_weights_read_only():
    entry = gguf.gguf_files(make_plan())[BAICHUAN_Q8]
    argv = gguf.make_argv(entry, REFS["llamacpp-cpu"], HELPER, 5,
                          "/opt/llamacpp/convert/fastchat_lab_prepare.py")
    assert argv == [
        "docker", "run", "--rm", "--name", "fastchat-lab-gguf", "--network", "none",
        "--user", "0:0", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--read-only", "--tmpfs", "/tmp",
        "--env", "HOME=/tmp", "--env", "HF_HOME=/tmp/huggingface",
        "--env", "HF_HUB_OFFLINE=1", "--env", "TRANSFORMERS_OFFLINE=1",
        "--mount", "type=bind,src=/data/baichuan,dst=/fastchat-lab/weights,readonly",
        "--mount", "type=bind,src=%s,dst=/fastchat-lab/gguf" % GGUF_DIR,
        "--mount", "type=bind,src=%s,dst=/fastchat-lab/fastchat_gguf.py,readonly" % HELPER,
        "--entrypoint", "/opt/llamacpp/venv/bin/python", REFS["llamacpp-cpu"],
        "/fastchat-lab/fastchat_gguf.py", "make", "/fastchat-lab/gguf/" + BAICHUAN_Q8,
        "--hf-dir", "/fastchat-lab/weights", "--model", "Baichuan-13B-Chat",
        "--revision", BAICHUAN_REV, "--quantization", "q8_0", "--commit", COMMIT,
        "--min-free-gb", "5.0", "--prepare", "/opt/llamacpp/convert/fastchat_lab_prepare.py"]


def test_the_cuda_image_gets_the_nvidia_runtime():
    entry = gguf.gguf_files(make_plan())[QWEN_Q8]
    argv = gguf.make_argv(entry, REFS["llamacpp-cuda"], HELPER, 2.5, gpus=True)
    assert argv[argv.index("--gpus"):argv.index("--gpus") + 4] == [
        "--gpus", "all", "--entrypoint", "/opt/llamacpp/venv/bin/python"]
    assert argv[-2:] == ["--min-free-gb", "2.5"] and "--prepare" not in argv


def test_a_received_copy_is_verified_in_incoming():
    entry = gguf.gguf_files(make_plan())[QWEN_Q8]
    assert gguf.install_argv(entry, HELPER) == [
        HELPER, "install", GGUF_DIR + "/incoming/" + QWEN_Q8, GGUF_DIR + "/" + QWEN_Q8,
        "--model", "Qwen-7B-Chat", "--revision", QWEN_REV, "--quantization", "q8_0",
        "--commit", COMMIT]
    assert gguf.check_argv(entry, HELPER, "--restamp")[-1] == "--restamp"


def _edit(path, value):
    plan = make_plan()
    node = plan
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return plan


Q = ("models", "Qwen-7B-Chat")
QG = Q + ("gguf", "q8_0")


@pytest.mark.parametrize("path, value, what", [
    (QG + ("file",), "../../etc/passwd.gguf", "file"),
    (QG + ("file",), "Qwen 7B.gguf", "file"),
    (QG + ("file",), "qwen.bin", "file"),
    (QG + ("file",), "-rf.gguf", "file"),
    (QG + ("host_path",), "/etc/" + QWEN_Q8, "host_path"),
    (QG + ("host_path",), GGUF_DIR + "/../" + QWEN_Q8, "host_path"),
    (Q + ("revision",), "main", "revision"),
    (Q + ("revision",), QWEN_REV + "\n", "revision"),
    (Q + ("revision",), QWEN_REV.upper(), "revision"),
    (Q + ("revision",), None, "revision"),
    (Q + ("host_path",), "models/Qwen", "weights_path"),
    (Q + ("host_path",), "/srv/a b", "weights_path"),
    (Q + ("host_path",), "/srv/x:/etc", "weights_path"),
    (Q + ("host_path",), "/srv/x,dst=/etc", "weights_path"),
    (QG + ("hosts",), ["gpu01", "gpu 02"], "a host"),
    (("summary", "llamacpp", "commit"), "0c1e57098b", "commit"),
    (("summary", "llamacpp", "gguf_dir"), "/srv/../.gguf", "gguf_dir"),
])
def test_plans_of_another_shape_are_refused(path, value, what):
    with pytest.raises(gguf.GgufPlanError) as err:
        gguf.gguf_files(_edit(path, value))
    assert str(err.value).startswith("all: lab plan: models.")
    assert ": %s " % what in str(err.value) and "Fix: " in str(err.value)


@pytest.mark.parametrize("quantization", ["q5_0", "Q8_0", "f32", ""])
def test_unknown_quantizations_are_refused(quantization):
    plan = make_plan()
    models = plan["models"]["Qwen-7B-Chat"]["gguf"]
    models[quantization] = models.pop("q8_0")
    with pytest.raises(gguf.GgufPlanError, match="the quantization"):
        gguf.gguf_files(plan)


def test_a_model_name_with_dots_is_refused():
    plan = make_plan()
    plan["models"]["..x"] = copy.deepcopy(plan["models"]["Qwen-7B-Chat"])
    with pytest.raises(gguf.GgufPlanError, match="the model name"):
        gguf.gguf_files(plan)


@pytest.mark.parametrize("ref", ["--privileged", "img;rm -rf /", "Fastchat-lab:cpu", "img:tag with space",
                                 "img:tag\n"])
def test_image_references_of_another_shape_are_refused(ref):
    files = gguf.gguf_files(make_plan())
    with pytest.raises(gguf.GgufPlanError, match="fastchat_image_refs"):
        gguf.probe_commands(files, "head", "head", HELPER, {"llamacpp-cpu": ref})
    with pytest.raises(gguf.GgufPlanError, match="fastchat_image_refs"):
        gguf.make_argv(files[QWEN_Q8], ref, HELPER, 5)


def test_an_empty_image_reference_is_no_image():
    files = gguf.gguf_files(make_plan())
    assert "_image.llamacpp-cpu" not in gguf.probe_commands(files, "head", "head", HELPER, {"llamacpp-cpu": ""})
    with pytest.raises(gguf.GgufPlanError, match="fastchat_image_refs"):
        gguf.make_argv(files[QWEN_Q8], "", HELPER, 5)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, True, "5"])
def test_min_free_gb_must_be_a_number(value):
    entry = gguf.gguf_files(make_plan())[QWEN_Q8]
    with pytest.raises(gguf.GgufPlanError, match="model_weights_min_free_gb"):
        gguf.make_argv(entry, REFS["llamacpp-cpu"], HELPER, value)
