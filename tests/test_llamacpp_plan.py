"""The planner's llama.cpp engine (backend llamacpp): GGUF sizes and buffers against what
llama-server allocated at the pinned commit (tests/bench/results/llamacpp-memory-cpu.json,
measured on CPU with models of both reference architectures), the P40 lab of issue 22,
the GGUF files and slots the plan gives, and its refusals."""

import copy
import json
import os

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import (
    PlanError,
    format_plan_table,
    memory,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan.inputs import read_catalogue
from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan.model import Architecture
from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan.problems import Problems
from labs import CATALOGUE, ROOT, plan_of, reference_lab

MIB = 2 ** 20
MODELS, _ = read_catalogue(CATALOGUE, None, Problems())
QWEN, BAICHUAN = MODELS["Qwen-7B-Chat"], MODELS["Baichuan-13B-Chat"]
COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
with open(os.path.join(ROOT, "tests", "bench", "results", "llamacpp-memory-cpu.json"),
          encoding="utf-8") as fh:
    RUNS = json.load(fh)


# --- the memory model against llama-server ----------------------------------------------

@pytest.mark.parametrize("model, quant, mib", [
    (QWEN, "q8_0", 7825.70), (QWEN, "q4_k_m", 4672.59), (QWEN, "f16", 14728.52),
    (BAICHUAN, "q8_0", 13442.21), (BAICHUAN, "q4_k_m", 8162.62), (BAICHUAN, "f16", 25301.58)])
def test_gguf_sizes_are_llama_quantizes(model, quant, mib):
    # Measured: llama-quantize --dry-run on the full-size models (llamacpp-memory.md).
    got = memory.gguf_bytes(model.architecture, quant, model.hf_architecture) / MIB
    assert abs(got - mib) < 0.05, got


def arch_of(info, catalogue_model):
    """The catalogue architecture of a measured model (4-layer runs: the real layer shapes
    with fewer layers, so their parameters are recounted)."""
    full = catalogue_model.architecture
    layers = int(info["n_layer"])
    head = full.vocab_size * full.hidden_size
    per_layer = (full.parameters - 2 * head) / full.layers
    return Architecture(parameters=int(2 * head + per_layer * layers), layers=layers,
                        hidden_size=full.hidden_size, attention_heads=full.attention_heads,
                        kv_heads=full.kv_heads, context_tokens=full.context_tokens,
                        vocab_size=full.vocab_size, alibi=full.alibi)


MEASURED = [r for r in RUNS if r["loaded"] and r["info"].get("n_embd") in ("4096", "5120")
            and r["flash_attn"] == "on" and r["ubatch"] == 512
            and r["context"]["kv_unified"] == "false"]


def test_the_calibration_covers_both_architectures():
    assert {r["info"]["n_embd"] for r in MEASURED} == {"4096", "5120"}
    assert len(MEASURED) >= 10


@pytest.mark.parametrize("run", MEASURED, ids=lambda r: "%s-c%d-np%d" % (r["gguf"], r["ctx"], r["parallel"]))
def test_buffers_are_llama_servers(run):
    model = QWEN if run["info"]["n_embd"] == "4096" else BAICHUAN
    arch = arch_of(run["info"], model)
    quant = {"F16": "f16", "Q8_0": "q8_0", "Q4_K - Medium": "q4_k_m"}[run["info"]["file type"]]
    buffers = run["buffers"]
    if "CPU_REPACK model" not in buffers:
        # (On CPU only, q4_K tensors are repacked into a buffer of their own, which moves
        # some of them out of the mapped one; a GPU holds the file's tensors as they are.)
        assert abs(memory.gguf_bytes(arch, quant, model.hf_architecture) / MIB
                   - buffers["CPU_Mapped model"]) < 0.05
    kv = memory.kv_bytes_per_token(arch) * run["ctx"] / MIB
    assert abs(kv - buffers["CPU KV"]) < 0.01
    slot_context = run["ctx"] // run["parallel"]
    compute = memory.llamacpp_compute_bytes(arch, slot_context, run["parallel"],
                                            model.hf_architecture) / MIB
    assert abs(compute - buffers["CPU compute"] - buffers["CPU output"]) < 0.1, compute


# --- the plan -------------------------------------------------------------------------------

def p40_lab(**worker):
    """The reference lab (4 x Tesla P40) with both models on llama.cpp, one GPU each."""
    hosts, groups = reference_lab()
    hosts["gpu01"]["fastchat_gpus"]["driver_version"] = "535.183.01"
    hosts["gpu01"]["fastchat_workers"] = [
        dict({"model": "Qwen-7B-Chat", "gpus": [0], "backend": "llamacpp"}, **worker),
        dict({"model": "Baichuan-13B-Chat", "gpus": [1], "backend": "llamacpp"}, **worker)]
    return hosts, groups


def workers(plan):
    return {s["model"]: s for s in plan["hosts"]["gpu01"]["services"] if s["kind"] == "model_worker"}


def test_a_p40_lab_serves_both_models_on_one_gpu_each_with_their_whole_context():
    plan = plan_of(*p40_lab())
    qwen, baichuan = workers(plan)["Qwen-7B-Chat"], workers(plan)["Baichuan-13B-Chat"]
    for svc, context in ((qwen, 8192), (baichuan, 4096)):
        assert svc["stack"] == "llamacpp-cuda" and svc["engine"] == "llama.cpp"
        assert svc["quantization"] == "q8_0" and svc["precision"] == "q8_0"
        assert svc["memory"]["context_tokens"] == svc["memory"]["max_context_tokens"] == context
        assert svc["memory"]["slots"] >= 1 and svc["parallel"] == svc["memory"]["slots"]
        assert svc["memory"]["need_gb"] <= svc["memory"]["available_gb"]
    assert plan["warnings"] == []
    assert plan["summary"]["llamacpp"] == {
        "commit": COMMIT, "cuda_archs": ["61"], "gguf_dir": "/srv/fastchat-lab/models/.gguf"}
    table = "\n".join(format_plan_table(plan))
    assert "| llamacpp-cuda | llama.cpp q8_0 | 21002 |" in table


def test_the_plan_names_each_gguf_file_and_the_worker_serves_it():
    plan = plan_of(*p40_lab())
    name = "Qwen-7B-Chat-218aa3240fd5-q8_0-llamacpp-0c1e57098b.gguf"
    assert plan["models"]["Qwen-7B-Chat"]["gguf"] == {"q8_0": {
        "model": "Qwen-7B-Chat", "quantization": "q8_0", "file": name,
        "host_path": "/srv/fastchat-lab/models/.gguf/" + name,
        "container_path": "/models/" + name, "hosts": ["gpu01"]}}
    # No worker needs the HF weights: only the cache host fetches them (to convert).
    assert plan["models"]["Qwen-7B-Chat"]["hosts"] == []
    assert [g["file"] for g in plan["hosts"]["gpu01"]["gguf"]][1] == name
    qwen = workers(plan)["Qwen-7B-Chat"]
    slots = qwen["memory"]["slots"]
    assert qwen["argv"] == [
        "python3", "-m", "fastchat_lab_llamacpp_worker", "--model-path", "/models/" + name,
        "--model-names", "Qwen-7B-Chat", "--host", "0.0.0.0", "--port", "21002",
        "--worker-address", "http://192.0.2.10:21002",
        "--controller-address", "http://192.0.2.10:21001", "--conv-template", "qwen-7b-chat",
        "--limit-worker-concurrency", str(slots), "--server-port", "8090",
        "--gguf-record", "/models/" + name + ".json", "--",
        "/opt/llamacpp/bin/llama-server", "--model", "/models/" + name, "--alias",
        "Qwen-7B-Chat", "--ctx-size", str(slots * 8192), "--parallel", str(slots),
        "--n-gpu-layers", "999", "--cache-ram", "2048", "--no-webui", "--metrics"]


def test_layers_split_over_several_gpus():
    hosts, groups = p40_lab()
    hosts["gpu01"]["fastchat_workers"][1]["gpus"] = [1, 2]
    baichuan = workers(plan_of(hosts, groups))["Baichuan-13B-Chat"]
    assert [g["layers"] for g in baichuan["memory"]["gpus"]] == [20, 20]
    argv = baichuan["argv"]
    assert argv[argv.index("--tensor-split") + 1] == "20,20"
    assert baichuan["memory"]["slots"] == 4


def test_too_many_slots_asked_are_a_warning_and_the_plan_serves_what_fits():
    plan = plan_of(*p40_lab(parallel=16))
    baichuan = workers(plan)["Baichuan-13B-Chat"]
    assert 1 <= baichuan["memory"]["slots"] < 16
    assert any("has room for %d of the 16 slots asked for" % baichuan["memory"]["slots"] in w
               for w in plan["warnings"]), plan["warnings"]


def test_a_model_that_does_not_fit_is_refused_with_a_smaller_quantization_as_the_fix():
    hosts, groups = p40_lab(quantization="f16")
    with pytest.raises(PlanError) as info:
        plan_of(hosts, groups)
    text = str(info.value)
    assert "gpu01: fastchat_workers[1].gpus: Baichuan-13B-Chat's f16 weights" in text
    assert "Fix: give the worker more GPUs or a smaller quantization (quantization: q8_0)" in text


def test_q4_k_m_leaves_more_room_than_q8_0():
    q8 = workers(plan_of(*p40_lab()))["Baichuan-13B-Chat"]["memory"]
    q4 = workers(plan_of(*p40_lab(quantization="q4_k_m")))["Baichuan-13B-Chat"]["memory"]
    assert q4["slots"] > q8["slots"]


def test_models_at_different_precisions_are_a_warning():
    hosts, groups = p40_lab()
    hosts["gpu01"]["fastchat_workers"][1]["quantization"] = "q4_k_m"
    plan = plan_of(hosts, groups)
    assert any("the lab's models are compared at different precisions (Baichuan-13B-Chat: "
               "q4_k_m (llama.cpp), Qwen-7B-Chat: q8_0 (llama.cpp))" in w for w in plan["warnings"])


def test_one_model_at_two_precisions_is_refused():
    hosts, groups = p40_lab()
    hosts["gpu01"]["fastchat_workers"].append(
        {"model": "Qwen-7B-Chat", "gpus": [2], "backend": "llamacpp", "quantization": "q4_k_m",
         "name": "qwen-q4"})
    with pytest.raises(PlanError, match="worker qwen-q4 serves Qwen-7B-Chat at q4_k_m "
                       r"\(llama.cpp\), but worker qwen-7b-chat-gpu0 on gpu01 serves it at q8_0"):
        plan_of(hosts, groups)


def test_a_rehearsal_runs_llamacpp_on_cpu_with_the_planned_gpus():
    hosts, groups = p40_lab()
    plan = plan_of(hosts, groups, settings={"rehearsal": True})
    qwen = workers(plan)["Qwen-7B-Chat"]
    assert qwen["stack"] == "llamacpp-cpu" and qwen["device"] == "cpu" and qwen["gpus"] == ["0"]
    assert qwen["argv"][qwen["argv"].index("--n-gpu-layers") + 1] == "0"
    assert plan["summary"]["llamacpp"]["cuda_archs"] == []


@pytest.mark.parametrize("change, expected", [
    ({"quantization": "q3_k"}, "fastchat_workers[0].quantization: 'q3_k' is not a quantization "
                               "the lab makes. Fix: use one of q8_0, q4_k_m, f16"),
    ({"quantization": "q8_0\n"}, "is not a quantization"),
    ({"parallel": 0}, "fastchat_workers[0].parallel: must be a whole number of slots from 1 to 64"),
    ({"parallel": "4"}, "fastchat_workers[0].parallel: must be a whole number"),
    ({"parallel": True}, "fastchat_workers[0].parallel: must be a whole number"),
    ({"load_8bit": True}, "fastchat_workers[0].load_8bit: the llamacpp worker has no such option"),
    ({"limit_worker_concurrency": 3}, "fastchat_workers[0].limit_worker_concurrency: a llamacpp "
                                      "worker passes llama-server exactly as many requests"),
    ({"backend": "hf", "quantization": "q8_0"}, "fastchat_workers[0].quantization: only llamacpp "
                                                "workers have quantization"),
    ({"backend": "vllm", "parallel": 2}, "fastchat_workers[0].parallel: only llamacpp workers"),
])
def test_bad_worker_settings_are_refused(change, expected):
    hosts, groups = p40_lab()
    hosts["gpu01"]["fastchat_workers"][0].update(change)
    with pytest.raises(PlanError) as info:
        plan_of(hosts, groups)
    assert expected in str(info.value)


def catalogue_with(**entry):
    cat = copy.deepcopy(CATALOGUE)
    cat["Qwen-7B-Chat"].update(entry)
    return cat


@pytest.mark.parametrize("entry, expected", [
    ({"hf_architecture": None}, "llama.cpp's converter needs to know Qwen-7B-Chat's model class"),
    ({"hf_architecture": "GPT9ForEverything"}, "does not convert Qwen-7B-Chat (GPT9ForEverything). "
                                               "Fix: use backend: hf or vllm"),
    ({"hf_architecture": "QWen; rm -rf /"}, "fastchat_models['Qwen-7B-Chat'].hf_architecture: "),
    ({"conv_template": None}, "fastchat_workers[0].conv_template: a llamacpp worker builds"),
    ({"local_path": "/data/qwen"}, "weights are a local_path: the lab makes GGUF files"),
])
def test_bad_catalogue_entries_for_llamacpp_are_refused(entry, expected):
    cat = catalogue_with(**entry)
    if entry.get("hf_architecture", "x") is None:
        del cat["Qwen-7B-Chat"]["hf_architecture"]
    if "conv_template" in entry:
        del cat["Qwen-7B-Chat"]["conv_template"]
    with pytest.raises(PlanError) as info:
        plan_of(*p40_lab(), catalogue=cat)
    assert expected in str(info.value)


def test_an_old_driver_is_refused_with_the_branch_to_install():
    hosts, groups = p40_lab()
    hosts["gpu01"]["fastchat_gpus"]["driver_version"] = "515.105.01"
    with pytest.raises(PlanError, match=r"built with CUDA 12.4, which needs NVIDIA driver 525 or "
                       r"newer, but GPU 0 \(Tesla P40\) has driver 515.105.01. Fix: set "
                       r"nvidia_driver_branch: \"535\" and nvidia_driver_version: \"\""):
        plan_of(hosts, groups)


def test_the_llamacpp_commit_is_checked():
    with pytest.raises(PlanError, match="all: fastchat_llamacpp_commit: "):
        plan_of(*p40_lab(), settings={"llamacpp_commit": "0c1e570"})


def test_a_cpu_worker_runs_llamacpp_on_the_cpu_build():
    # The rehearsal labs' head: tiny-qwen with device: cpu.
    hosts, groups = p40_lab(device="cpu", gpus=[], parallel=2)
    hosts["gpu01"]["fastchat_workers"] = hosts["gpu01"]["fastchat_workers"][:1]
    qwen = workers(plan_of(hosts, groups))["Qwen-7B-Chat"]
    assert qwen["stack"] == "llamacpp-cpu" and qwen["gpus"] == [] and qwen["parallel"] == 2
    argv = qwen["argv"]
    assert argv[argv.index("--ctx-size") + 1] == str(2 * 8192)
    assert argv[argv.index("--n-gpu-layers") + 1] == "0"
    assert qwen["memory"]["available_gb"] is None and qwen["memory"]["slots"] == 2
