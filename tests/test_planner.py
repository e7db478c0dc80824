"""The planner (module_utils/lab_plan/): valid labs and every rejection."""

import copy
import json
import re

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import (
    PlanError,
    format_plan_table,
    merge_catalogue,
    parse_memory_size,
)

from labs import CATALOGUE, H100, P40, TEMPLATES, plan_of, reference_lab


def services(plan, host):
    return {s["name"]: s for s in plan["hosts"][host]["services"]}


# ---------------------------------------------------------------------------
# Valid labs
# ---------------------------------------------------------------------------

def test_reference_lab_plan():
    plan = plan_of(*reference_lab())
    json.dumps(plan)  # JSON-serialisable
    gpu01 = plan["hosts"]["gpu01"]
    assert gpu01["address"] == "192.0.2.10"
    assert gpu01["is_head"] and gpu01["is_gpu_host"]
    assert gpu01["gpu_source"] == "declared"
    assert [g["index"] for g in gpu01["gpus"]] == [0, 1, 2, 3]
    assert gpu01["stacks"] == ["cpu", "cuda117"]
    svc = services(plan, "gpu01")
    assert list(svc) == ["controller", "openai-api", "web-ui", "qwen-7b-chat-gpu1",
                         "baichuan-13b-chat-gpu2-3"]
    ctl = "http://192.0.2.10:21001"
    assert svc["controller"]["argv"] == [
        "python3", "-m", "fastchat.serve.controller", "--host", "0.0.0.0", "--port", "21001",
        "--dispatch-method", "shortest_queue"]
    assert svc["openai-api"]["argv"] == [
        "python3", "-m", "fastchat.serve.openai_api_server", "--host", "0.0.0.0",
        "--port", "8000", "--controller-address", ctl,
        # Cross-origin calls from the lab's web UI only (FastChat allows any origin).
        "--allowed-origins", '["https://192.0.2.10:7860"]']
    assert not any("api-key" in a for a in svc["openai-api"]["argv"])
    assert svc["web-ui"]["argv"] == [
        "python3", "-m", "fastchat.serve.gradio_web_server_multi", "--host", "0.0.0.0",
        "--port", "7860", "--controller-url", ctl, "--model-list-mode", "reload"]
    qwen = svc["qwen-7b-chat-gpu1"]
    assert qwen["argv"] == [
        "python3", "-m", "fastchat.serve.model_worker",
        "--model-path", "/models/Qwen-7B-Chat", "--model-names", "Qwen-7B-Chat",
        "--host", "0.0.0.0", "--port", "21002",
        "--worker-address", "http://192.0.2.10:21002", "--controller-address", ctl,
        "--device", "cuda", "--num-gpus", "1", "--conv-template", "qwen-7b-chat"]
    assert (qwen["gpus"], qwen["stack"], qwen["port"]) == (["1"], "cuda117", 21002)
    # One P40 holds Qwen-7B-Chat's weights but not its whole 8,192-token context.
    assert qwen["memory"]["available_gb"] == 24.16
    assert (qwen["memory"]["context_tokens"], qwen["memory"]["max_context_tokens"]) == (8192, 3728)
    assert qwen["memory"]["need_gb"] == 30.48
    baichuan = svc["baichuan-13b-chat-gpu2-3"]
    assert baichuan["argv"] == [
        "python3", "-m", "fastchat.serve.model_worker",
        "--model-path", "/models/Baichuan-13B-Chat", "--model-names", "Baichuan-13B-Chat",
        "--host", "0.0.0.0", "--port", "21003",
        "--worker-address", "http://192.0.2.10:21003", "--controller-address", ctl,
        "--device", "cuda", "--num-gpus", "2", "--max-gpu-memory", "24GB",
        "--conv-template", "baichuan-chat"]
    assert baichuan["gpus"] == ["2", "3"]
    assert baichuan["memory"]["available_gb"] == 48.32
    # accelerate balances the 40 layers under the 24GB cap (embeddings on GPU 2, the
    # output head on GPU 3).
    assert [g["layers"] for g in baichuan["memory"]["gpus"]] == [21, 19]
    assert plan["summary"] == {
        "head": "gpu01", "head_address": "192.0.2.10", "controller_address": ctl,
        "api_url": "https://192.0.2.10:8000/v1", "web_ui_url": "https://192.0.2.10:7860",
        "tls": True, "models": ["Baichuan-13B-Chat", "Qwen-7B-Chat"],
        "workers": ["qwen-7b-chat-gpu1", "baichuan-13b-chat-gpu2-3"],
        "gpu_hosts": ["gpu01"], "hosts": ["gpu01"],
        "addresses": ["192.0.2.10"], "named_addresses": [], "stacks": ["cpu", "cuda117"],
        "weights_dir": "/srv/fastchat-lab/models", "logs_dir": "/var/lib/fastchat-lab/logs",
        "deploy_dir": "/etc/fastchat-lab", "models_dir": "/models", "rehearsal": False,
        "llamacpp": {"commit": "0c1e57098bba43ac29e6e3b677cdceebdd22334f", "cuda_archs": [],
                     "gguf_dir": "/srv/fastchat-lab/models/.gguf"}}
    assert plan["models"]["Qwen-7B-Chat"]["container_path"] == "/models/Qwen-7B-Chat"
    assert plan["models"]["Baichuan-13B-Chat"]["hosts"] == ["gpu01"]
    assert plan["models"]["Qwen-7B-Chat"]["host_path"] == "/srv/fastchat-lab/models/Qwen-7B-Chat"
    assert [w.split(": ")[:2] for w in plan["warnings"]] == [
        ["gpu01", "fastchat_workers[0].gpus"], ["gpu01", "fastchat_workers[1].gpus"]]
    assert "holds about 3,728 of its 8,192 context tokens" in plan["warnings"][0]


def test_reference_lab_table():
    lines = format_plan_table(plan_of(*reference_lab()))
    assert lines[0].split(" | ")[0].strip() == "host"
    bars = {tuple(i for i, c in enumerate(line) if c == "|") for line in lines[:1] + lines[2:7]}
    assert len(bars) == 1 and len(next(iter(bars))) == 8  # fixed-width columns
    text = "\n".join(lines)
    assert "1 (Tesla P40)" in text and "2,3 (Tesla P40 x2)" in text
    assert "| cuda117 | transformers fp16 | 21002 | 30.5 / 24.2 GB" in text
    assert "3,728 / 8,192 tokens (short)" in text
    assert "warning: gpu01: fastchat_workers[0].gpus: Qwen-7B-Chat on GPU 1" in text
    assert "controller: http://192.0.2.10:21001" in text


def test_two_hosts_addresses_and_ports():
    hosts, groups = reference_lab()
    hosts["gpu02"] = {"ansible_host": "192.0.2.11", "fastchat_address": "10.0.0.12",
                      "fastchat_gpus": H100,
                      "fastchat_workers": [
                          {"model": "Qwen-7B-Chat", "gpus": [0], "name": "qwen-b",
                           "backend": "vllm"},
                          {"model": "Baichuan-13B-Chat", "gpus": [1], "port": 21002}]}
    groups["gpu_hosts"].append("gpu02")
    plan = plan_of(hosts, groups)
    svc = services(plan, "gpu02")
    assert not plan["hosts"]["gpu02"]["is_head"]
    # An H100 on driver 550: the CUDA 12 stack for hf, vllm as asked.
    assert plan["hosts"]["gpu02"]["stacks"] == ["cuda121", "vllm"]
    # The explicit port 21002 is kept; the default port skips it.
    assert svc["baichuan-13b-chat-gpu1"]["port"] == 21002
    assert svc["qwen-b"]["port"] == 21003
    assert svc["qwen-b"]["url"] == "http://10.0.0.12:21003"
    assert svc["qwen-b"]["argv"] == [
        "python3", "-m", "fastchat.serve.vllm_worker",
        "--model-path", "/models/Qwen-7B-Chat", "--model-names", "Qwen-7B-Chat",
        "--host", "0.0.0.0", "--port", "21003",
        "--worker-address", "http://10.0.0.12:21003",
        "--controller-address", "http://192.0.2.10:21001",
        "--num-gpus", "1", "--conv-template", "qwen-7b-chat"]
    assert svc["qwen-b"]["stack"] == "vllm"
    assert "--worker-address" in svc["baichuan-13b-chat-gpu1"]["argv"]
    assert "http://10.0.0.12:21002" in svc["baichuan-13b-chat-gpu1"]["argv"]
    assert plan["models"]["Qwen-7B-Chat"]["hosts"] == ["gpu01", "gpu02"]
    assert plan["summary"]["hosts"] == ["gpu01", "gpu02"]
    assert plan["summary"]["addresses"] == ["10.0.0.12", "192.0.2.10"]
    assert plan["hosts"]["gpu01"]["internal_ports"] == [21001, 21002, 21003]
    assert plan["hosts"]["gpu02"]["internal_ports"] == [21002, 21003]


def test_head_only_host_and_settings():
    hosts, groups = reference_lab()
    hosts["head"] = {}
    groups["fastchat_head"] = ["head"]
    plan = plan_of(hosts, groups, settings={"controller_port": 31001, "api_port": 9000,
                                            "dispatch_method": "lottery",
                                            "worker_base_port": 31002})
    assert plan["summary"]["controller_address"] == "http://head:31001"
    assert [s["kind"] for s in plan["hosts"]["head"]["services"]] == [
        "controller", "openai_api", "web_ui"]
    assert "lottery" in plan["hosts"]["head"]["services"][0]["argv"]
    assert services(plan, "gpu01")["qwen-7b-chat-gpu1"]["port"] == 31002
    assert plan["hosts"]["gpu01"]["stacks"] == ["cuda117"]


def test_gathered_facts_override_declared_gpus():
    hosts, groups = reference_lab()
    hosts["gpu01"]["fastchat_gpu_facts"] = [
        {"index": i, "uuid": "GPU-%d" % i, "name": "NVIDIA H200", "memory_mib": 143771,
         "compute_capability": "9.0", "driver_version": "580.159.04"} for i in range(4)]
    hosts["gpu01"]["fastchat_workers"][1]["max_gpu_memory"] = "100GiB"
    hosts["gpu01"]["fastchat_workers"][0]["backend"] = "vllm"  # fine on an H200
    plan = plan_of(hosts, groups)
    assert plan["hosts"]["gpu01"]["gpu_source"] == "facts"
    assert plan["hosts"]["gpu01"]["gpus"][0]["uuid"] == "GPU-0"
    svc = services(plan, "gpu01")
    assert svc["baichuan-13b-chat-gpu2-3"]["memory"]["available_gb"] == 301.51
    assert svc["baichuan-13b-chat-gpu2-3"]["stack"] == "cuda121"
    assert svc["qwen-7b-chat-gpu1"]["stack"] == "vllm"


def test_empty_facts_fall_back_to_declared():
    hosts, groups = reference_lab()
    hosts["gpu01"]["ansible_facts"] = {"fastchat_gpu_facts": []}
    hosts["gpu01"]["fastchat_gpu_facts"] = []
    assert plan_of(hosts, groups)["hosts"]["gpu01"]["gpu_source"] == "declared"


def test_cpu_worker_and_options():
    hosts = {"lab": {"fastchat_workers": [
        {"model": "Qwen-7B-Chat", "device": "cpu", "gpus": [],
         "limit_worker_concurrency": 2, "conv_template": "qwen-7b-chat", "load_8bit": True}]}}
    groups = {"all": ["lab"], "fastchat_head": ["lab"], "gpu_hosts": ["lab"]}
    plan = plan_of(hosts, groups)
    worker = services(plan, "lab")["qwen-7b-chat-cpu"]
    assert worker["stack"] == "cpu" and worker["gpus"] == [] and worker["num_gpus"] == 0
    assert worker["argv"][-7:] == ["--device", "cpu", "--load-8bit", "--conv-template",
                                   "qwen-7b-chat", "--limit-worker-concurrency", "2"]
    assert worker["argv"][2] == "fastchat.serve.model_worker"
    assert "--num-gpus" not in worker["argv"]
    assert worker["memory"]["available_gb"] is None
    assert "host RAM" in "\n".join(format_plan_table(plan))


def test_rehearsal_keeps_the_gpus_and_runs_on_cpu():
    hosts, groups = reference_lab()
    plan = plan_of(hosts, groups, settings={"rehearsal": True})
    svc = services(plan, "gpu01")
    baichuan = svc["baichuan-13b-chat-gpu2-3"]
    # The assignment (and its memory check) is the real lab's ...
    assert baichuan["gpus"] == ["2", "3"] and baichuan["num_gpus"] == 2
    assert baichuan["memory"]["need_gb"] == 47.23 and baichuan["memory"]["available_gb"]
    # ... but FastChat runs on CPU from the cpu image.
    assert baichuan["device"] == "cpu" and baichuan["stack"] == "cpu"
    assert baichuan["rehearsal"] is True
    assert baichuan["argv"][-4:-2] == ["--device", "cpu"]
    assert "--num-gpus" not in baichuan["argv"] and "--max-gpu-memory" not in baichuan["argv"]
    assert plan["hosts"]["gpu01"]["stacks"] == ["cpu"]
    assert not svc["controller"]["rehearsal"]
    assert any("rehearsal lab" in w for w in plan["warnings"])
    table = "\n".join(format_plan_table(plan))
    assert "2,3 (Tesla P40 x2)" in table and "47.2 / 48.3 GB" in table
    assert "Baichuan-13B-Chat (rehearsal, on CPU)" in table
    # A rehearsal still refuses what the real lab would refuse.
    hosts["gpu01"]["fastchat_workers"][0]["gpus"] = [2]
    with pytest.raises(PlanError, match="GPU 2 is already given"):
        plan_of(hosts, groups, settings={"rehearsal": True})


def test_rehearsal_refuses_vllm_and_non_booleans():
    hosts, groups = reference_lab()
    hosts["gpu01"]["fastchat_gpus"] = dict(H100, count=4)
    hosts["gpu01"]["fastchat_workers"][0]["backend"] = "vllm"
    with pytest.raises(PlanError) as info:
        plan_of(hosts, groups, settings={"rehearsal": True})
    assert "gpu01: fastchat_workers[0].backend: a rehearsal lab" in str(info.value)
    with pytest.raises(PlanError, match="all: fastchat_rehearsal: must be a boolean"):
        plan_of(*reference_lab(), settings={"rehearsal": "yes"})


@pytest.mark.parametrize("hvars, expected", [
    # fastchat_address always wins.
    ({"fastchat_address": "lab-head.example", "ansible_host": "192.0.2.7"}, "lab-head.example"),
    # An IP ansible_host beats the facts.
    ({"ansible_host": "192.0.2.7", "ansible_facts": {"default_ipv4": {"address": "10.1.1.1"}}},
     "192.0.2.7"),
    # A name (ssh alias, container name) gives way to the gathered default IPv4 ...
    ({"ansible_host": "fcl-lab-head", "ansible_facts": {"default_ipv4": {"address": "10.1.1.1"}}},
     "10.1.1.1"),
    ({"ansible_facts": {"default_ipv4": {"address": "10.1.1.2"}}}, "10.1.1.2"),
    # ... and without facts the name is used.
    ({"ansible_host": "fcl-lab-head", "ansible_facts": {"default_ipv4": {}}}, "fcl-lab-head"),
    ({}, "solo"),
])
def test_host_address(hvars, expected):
    hosts = {"solo": dict(hvars, fastchat_workers=[{"model": "Qwen-7B-Chat", "device": "cpu"}])}
    groups = {"all": ["solo"], "fastchat_head": ["solo"], "gpu_hosts": ["solo"]}
    plan = plan_of(hosts, groups)
    assert plan["hosts"]["solo"]["address"] == expected
    assert plan["summary"]["named_addresses"] == ([] if expected[0].isdigit() else [expected])
    assert plan["summary"]["controller_address"] == "http://%s:21001" % expected


def test_load_8bit_makes_a_big_model_fit_one_gpu():
    hosts, groups = reference_lab()
    hosts["gpu01"]["fastchat_workers"] = [
        {"model": "Baichuan-13B-Chat", "gpus": [0], "load_8bit": True}]
    svc = services(plan_of(hosts, groups), "gpu01")["baichuan-13b-chat-gpu0"]
    assert "--load-8bit" in svc["argv"]
    # 8-bit weights (13.7 GB instead of 26.5) fit one P40, with about 2,900 tokens.
    assert svc["memory"]["need_gb"] == 26.4
    assert svc["memory"]["max_context_tokens"] == 2940


def test_catalogue_extra_merges_by_name():
    extra = {"Qwen-7B-Chat": {"local_path": "/srv/models/qwen"},
             "Tiny": {"source": "org/tiny", "revision": "1" * 40, "gpu_memory_gb": 1}}
    merged = merge_catalogue(CATALOGUE, extra)
    assert merged["Qwen-7B-Chat"]["revision"] == CATALOGUE["Qwen-7B-Chat"]["revision"]
    assert merged["Qwen-7B-Chat"]["local_path"] == "/srv/models/qwen"
    assert "local_path" not in CATALOGUE["Qwen-7B-Chat"]  # shipped catalogue untouched
    hosts, groups = reference_lab()
    hosts["gpu01"]["fastchat_workers"].append({"model": "Tiny", "gpus": [0]})
    plan = plan_of(hosts, groups, catalogue=merged)
    assert plan["models"]["Qwen-7B-Chat"]["local_path"] == "/srv/models/qwen"
    assert services(plan, "gpu01")["tiny-gpu0"]["port"] == 21004
    assert plan["models"]["Tiny"]["architecture"] is None
    assert services(plan, "gpu01")["tiny-gpu0"]["memory"]["basis"] == "catalogue"


@pytest.mark.parametrize("text,expected", [
    ("24GB", 24 * 10 ** 9), ("22GiB", 22 * 2 ** 30), ("13Gib", 13 * 2 ** 30),
    ("500MB", 500 * 10 ** 6), ("512MiB", 512 * 2 ** 20), ("8Gb", 10 ** 9),
    ("23.5GB", 23_500_000_000),
])
def test_parse_memory_size_like_accelerate(text, expected):
    assert parse_memory_size(text) == expected


@pytest.mark.parametrize("text", ["24", "lots", "GB", "-3GB", "0GiB", True])
def test_parse_memory_size_rejects(text):
    with pytest.raises(ValueError):
        parse_memory_size(text)


def test_p40_fits_24gb_but_not_25gb():
    assert parse_memory_size("24GB") < 23040 * 2 ** 20 < parse_memory_size("25GB")


# ---------------------------------------------------------------------------
# Rejections: each case edits the reference lab, then checks the message parts.
# ---------------------------------------------------------------------------

def w(hosts, pos):
    return hosts["gpu01"]["fastchat_workers"][pos]


def add_worker(**worker):
    def edit(hosts, groups):
        hosts["gpu01"]["fastchat_workers"].append(worker)
    return edit


def set_key(pos, key, value):
    def edit(hosts, groups):
        w(hosts, pos)[key] = value
    return edit


def del_key(pos, key):
    def edit(hosts, groups):
        del w(hosts, pos)[key]
    return edit


def set_gpus(key, value):
    def edit(hosts, groups):
        hosts["gpu01"]["fastchat_gpus"] = dict(hosts["gpu01"]["fastchat_gpus"], **{key: value})
    return edit


def second_host(workers, **hvars):
    def edit(hosts, groups):
        hosts["gpu02"] = dict({"fastchat_gpus": H100, "fastchat_workers": workers}, **hvars)
        groups["gpu_hosts"].append("gpu02")
        groups["all"].append("gpu02")
    return edit


def catalogue_edit(name, key, value):
    def edit(catalogue):
        if value is None:
            del catalogue[name][key]
        else:
            catalogue[name][key] = value
    return edit


INVALID = {
    "gpu_twice_across_workers": (
        add_worker(model="Qwen-7B-Chat", gpus=[1], name="q2"),
        ["gpu01: fastchat_workers[2].gpus", "GPU 1 is already given to worker "
         "qwen-7b-chat-gpu1", "Fix: give each GPU to one worker only"]),
    "gpu_twice_in_one_worker": (
        set_key(1, "gpus", [2, 2]),
        ["gpu01: fastchat_workers[1].gpus", "GPU 2 is listed twice", "Fix: list each GPU once"]),
    "index_beyond_declared": (
        set_key(0, "gpus", [4]),
        ["gpu01: fastchat_workers[0].gpus", "GPU 4 does not exist", "4 GPUs: 0, 1, 2, 3",
         "Fix: use an index"]),
    "negative_index": (
        set_key(0, "gpus", [-1]),
        ["gpu01: fastchat_workers[0].gpus", "GPU -1 is negative", "Fix:"]),
    "gpus_as_string": (
        set_key(1, "gpus", "2,3"),
        ["gpu01: fastchat_workers[1].gpus", "must be a list", "'2,3'",
         "Fix: write gpus: [1, 2], not a string"]),
    "gpus_not_integers": (
        set_key(0, "gpus", ["1"]),
        ["gpu01: fastchat_workers[0].gpus", "'1' is not a whole-number GPU index", "Fix:"]),
    "gpus_bool": (
        set_key(0, "gpus", [True]),
        ["gpu01: fastchat_workers[0].gpus", "True is not a whole-number GPU index", "Fix:"]),
    "unknown_model": (
        set_key(0, "model", "Llama-2-7b-chat"),
        ["gpu01: fastchat_workers[0].model", "'Llama-2-7b-chat' is not in the model catalogue",
         "Baichuan-13B-Chat, Qwen-7B-Chat", "fastchat_models_extra"]),
    "missing_model": (
        del_key(0, "model"),
        ["gpu01: fastchat_workers[0].model: missing", "Fix:"]),
    "duplicate_worker_ports": (
        lambda hosts, groups: (w(hosts, 0).update(port=21010), w(hosts, 1).update(port=21010)),
        ["gpu01: fastchat_workers[1].port", "port 21010 is already used by qwen-7b-chat-gpu1",
         "Fix: give each service on a host its own port"]),
    "port_of_head_service": (
        set_key(0, "port", 8000),
        ["gpu01: fastchat_workers[0].port", "port 8000 is already used by openai-api", "Fix:"]),
    "duplicate_worker_names_lab_wide": (
        second_host([{"model": "Qwen-7B-Chat", "gpus": [1]}]),
        ["gpu02: fastchat_workers[0].name", "'qwen-7b-chat-gpu1' is already used by gpu01",
         "Fix: set a unique name"]),
    "no_head": (
        lambda hosts, groups: groups.pop("fastchat_head"),
        ["all: groups.fastchat_head: no head host", "Fix: put exactly one host"]),
    "two_heads": (
        lambda hosts, groups: (hosts.update(h2={}), groups.update(fastchat_head=["gpu01", "h2"])),
        ["all: groups.fastchat_head: 2 head hosts (gpu01, h2)", "Fix: put exactly one host"]),
    "group_member_not_a_name": (
        lambda hosts, groups: groups["gpu_hosts"].append({"index": 0}),
        ["all: groups.gpu_hosts: {'index': 0} is not a host name", "Fix: list only inventory"]),
    "group_not_a_list": (
        lambda hosts, groups: groups.update(fastchat_head="gpu01"),
        ["all: groups.fastchat_head: a list of host names is expected, not str",
         "all: groups.fastchat_head: no head host"]),
    "worker_host_not_in_gpu_hosts": (
        lambda hosts, groups: hosts.update(stray={"fastchat_workers": [
            {"model": "Qwen-7B-Chat", "gpus": [0]}]}),
        ["stray: fastchat_workers", "not in the gpu_hosts group", "Fix: add it to gpu_hosts"]),
    "gpu_host_without_workers": (
        second_host([]),
        ["gpu02: fastchat_workers", "runs no worker", "Fix: give it at least one worker"]),
    "not_enough_gpu_memory": (
        set_key(0, "model", "Baichuan-13B-Chat"),
        ["gpu01: fastchat_workers[0].gpus", "Baichuan-13B-Chat's weights (26.5 GB) do not fit",
         "GPU 1 (Tesla P40), which gives 24.2 GB", "Fix: give the worker more GPUs",
         "load_8bit: true"]),
    "cap_too_small_for_model": (
        set_key(1, "max_gpu_memory", "12GB"),
        ["gpu01: fastchat_workers[1].gpus", "weights (26.5 GB) do not fit on GPUs 2,3",
         "which give 24.0 GB under max_gpu_memory 12GB", "raise max_gpu_memory"]),
    "max_gpu_memory_above_gpu": (
        set_key(1, "max_gpu_memory", "25GB"),
        ["gpu01: fastchat_workers[1].max_gpu_memory", "25GB (25.00 GB) is more than GPU memory",
         "23040 MiB", "Fix: set at most 23040MiB"]),
    "max_gpu_memory_gib_above_gpu": (
        set_key(1, "max_gpu_memory", "23GiB"),
        ["gpu01: fastchat_workers[1].max_gpu_memory", "23GiB", "more than GPU memory"]),
    "max_gpu_memory_unparseable": (
        set_key(1, "max_gpu_memory", "24 gigs"),
        ["gpu01: fastchat_workers[1].max_gpu_memory", "'24 gigs' cannot be read as a size",
         "Fix: write it like \"22GiB\" or \"24GB\""]),
    "max_gpu_memory_single_gpu": (
        set_key(0, "max_gpu_memory", "20GB"),
        ["gpu01: fastchat_workers[0].max_gpu_memory", "only when a worker has more than one GPU",
         "Fix: remove it"]),
    "vllm_on_p40": (
        set_key(0, "backend", "vllm"),
        ["gpu01: fastchat_workers[0].backend", "compute capability 7.0", "has 6.1",
         "Fix: use backend: hf", "Tesla P40"]),
    "vllm_old_driver": (
        second_host([{"model": "Qwen-7B-Chat", "gpus": [0], "backend": "vllm", "name": "q"}],
                    fastchat_gpus=dict(H100, driver_version="515.105.01")),
        ["gpu02: fastchat_workers[0].backend", "driver 525 or newer", "driver 515.105.01",
         "Fix: upgrade the driver or use backend: hf"]),
    "vllm_load_8bit": (
        lambda hosts, groups: w(hosts, 0).update(backend="vllm", load_8bit=True),
        ["gpu01: fastchat_workers[0].load_8bit", "vllm worker has no 8-bit option", "Fix:"]),
    "cuda_without_gpus": (
        set_key(0, "gpus", []),
        ["gpu01: fastchat_workers[0].gpus", "a cuda worker needs at least one GPU",
         "Fix: list its GPUs"]),
    "cpu_with_gpus": (
        set_key(0, "device", "cpu"),
        ["gpu01: fastchat_workers[0].gpus", "a cpu worker cannot have GPUs (1)",
         "Fix: set gpus: []"]),
    "load_8bit_string": (
        set_key(0, "load_8bit", "yes"),
        ["gpu01: fastchat_workers[0].load_8bit", "must be a boolean, got 'yes'",
         "Fix: write true or false without quotes"]),
    "load_8bit_no_string": (
        set_key(0, "load_8bit", "no"),
        ["gpu01: fastchat_workers[0].load_8bit", "got 'no'"]),
    "unknown_backend": (
        set_key(0, "backend", "tgi"),
        ["gpu01: fastchat_workers[0].backend", "'tgi' is not known", "Fix: use hf, vllm, llamacpp"]),
    "unknown_device": (
        set_key(0, "device", "gpu"),
        ["gpu01: fastchat_workers[0].device", "'gpu' is not known", "Fix: use cuda or cpu"]),
    "unknown_worker_key": (
        set_key(0, "max_gpu_memroy", "20GB"),
        ["gpu01: fastchat_workers[0].max_gpu_memroy: unknown key", "Fix: use only model, gpus"]),
    "unknown_conv_template": (
        set_key(0, "conv_template", "qwen-chat-v9"),
        ["gpu01: fastchat_workers[0].conv_template", "'qwen-chat-v9' is not a template",
         "qwen-7b-chat"]),
    "limit_concurrency_string": (
        set_key(0, "limit_worker_concurrency", "5"),
        ["gpu01: fastchat_workers[0].limit_worker_concurrency", "positive whole number"]),
    "gpus_unknown": (
        lambda hosts, groups: hosts["gpu01"].pop("fastchat_gpus"),
        ["gpu01: fastchat_workers[0].gpus", "the GPUs of gpu01 are unknown",
         "Fix: declare fastchat_gpus", "gather facts"]),
    "declared_gpus_bad_memory": (
        set_gpus("memory_mib", "24GB"),
        ["gpu01: fastchat_gpus[0].memory_mib: GPU 0: memory must be a positive number",
         "Fix: declare"]),
    "declared_gpus_typo": (
        set_gpus("compute_cap", "6.1"),
        ["gpu01: fastchat_gpus.compute_cap: unknown key", "Fix: declare"]),
    "workers_not_a_list": (
        lambda hosts, groups: hosts["gpu01"].update(fastchat_workers={"model": "Qwen-7B-Chat"}),
        ["gpu01: fastchat_workers: must be a list", "Fix: write it as a YAML list"]),
    "worker_not_a_mapping": (
        add_worker and (lambda hosts, groups: hosts["gpu01"]["fastchat_workers"].append(
            "Qwen-7B-Chat")),
        ["gpu01: fastchat_workers[2]: must be a mapping", "Fix:"]),
}

CATALOGUE_INVALID = {
    "missing_revision": (
        catalogue_edit("Qwen-7B-Chat", "revision", None),
        ["all: fastchat_models['Qwen-7B-Chat'].revision: missing", "pinned commit"]),
    "missing_source": (
        catalogue_edit("Baichuan-13B-Chat", "source", None),
        ["all: fastchat_models['Baichuan-13B-Chat'].source: missing", "Fix:"]),
    "missing_architecture": (
        catalogue_edit("Qwen-7B-Chat", "architecture", None),
        ["all: fastchat_models['Qwen-7B-Chat'].architecture: missing (and no gpu_memory_gb)",
         "config.json", "model card"]),
    "memory_string": (
        catalogue_edit("Qwen-7B-Chat", "gpu_memory_gb", "17GB"),
        ["all: fastchat_models['Qwen-7B-Chat'].gpu_memory_gb: must be a positive number"]),
    "revision_not_pinned": (
        catalogue_edit("Qwen-7B-Chat", "revision", "main"),
        ["all: fastchat_models['Qwen-7B-Chat'].revision: 'main' is not a pinned commit",
         "Fix: pin the full commit id"]),
    "trust_remote_code_string": (
        catalogue_edit("Qwen-7B-Chat", "trust_remote_code", "yes"),
        ["all: fastchat_models['Qwen-7B-Chat'].trust_remote_code: must be a boolean",
         "Fix: write true or false"]),
    "catalogue_template_unknown": (
        catalogue_edit("Baichuan-13B-Chat", "conv_template", "baichuan-v0"),
        ["all: fastchat_models['Baichuan-13B-Chat'].conv_template: 'baichuan-v0' is not a "
         "template", "baichuan-chat"]),
    "catalogue_unknown_key": (
        catalogue_edit("Qwen-7B-Chat", "revison", "abc"),
        ["all: fastchat_models['Qwen-7B-Chat'].revison: unknown key"]),
}


def _raises(hosts, groups, catalogue, expected):
    with pytest.raises(PlanError) as info:
        plan_of(hosts, groups, catalogue=catalogue)
    message = str(info.value)
    for part in expected:
        assert part in message, "%r not in:\n%s" % (part, message)
    for error in info.value.errors:
        assert "Fix:" in error or "fix" in error.lower(), error
        assert error.split(":")[0] in ("all", "gpu01", "gpu02", "stray"), error
    return info.value


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_inventory(case):
    edit, expected = INVALID[case]
    hosts, groups = reference_lab()
    edit(hosts, groups)
    _raises(hosts, groups, None, expected)


@pytest.mark.parametrize("case", sorted(CATALOGUE_INVALID))
def test_invalid_catalogue(case):
    edit, expected = CATALOGUE_INVALID[case]
    catalogue = copy.deepcopy(CATALOGUE)
    edit(catalogue)
    _raises(*reference_lab(), catalogue, expected)


def test_all_errors_are_reported_at_once():
    hosts, groups = reference_lab()
    w(hosts, 0).update(gpus=[7], load_8bit="yes")
    w(hosts, 1).update(model="Nope")
    hosts["gpu01"]["fastchat_workers"].append({"model": "Qwen-7B-Chat", "gpus": [0],
                                               "backend": "vllm"})
    groups["fastchat_head"].append("ghost")
    error = _raises(hosts, groups, None, [
        "all: groups.fastchat_head: 2 head hosts", "GPU 7 does not exist",
        "load_8bit: must be a boolean", "'Nope' is not in the model catalogue",
        "vllm needs compute capability 7.0"])
    assert len(error.errors) >= 5
    assert str(error).startswith("The lab plan has %d problems:" % len(error.errors))


def test_the_shipped_catalogue_is_pinned():
    for name, entry in CATALOGUE.items():
        assert re.fullmatch(r"[0-9a-f]{40}", entry["revision"]), name
        assert entry["conv_template"] in TEMPLATES, name


# ---------------------------------------------------------------------------
# Hostile and careless inventories, one case per class of failure (the property-based
# test in test_planner_properties.py throws thousands more at the planner).
# ---------------------------------------------------------------------------

def facts(**override):
    def edit(hosts, groups):
        gpus = [{"index": i, "uuid": "GPU-%d" % i, "name": "Tesla P40", "memory_mib": 23040,
                 "compute_capability": "6.1", "driver_version": "515.105.01"} for i in range(4)]
        gpus[1].update(override)
        hosts["gpu01"]["fastchat_gpu_facts"] = gpus
    return edit


def declared_list(*entries):
    def edit(hosts, groups):
        base = {"name": "Tesla P40", "memory_mib": 23040, "compute_capability": "6.1",
                "driver_version": "515.105.01"}
        hosts["gpu01"]["fastchat_gpus"] = [dict(base, **e) for e in entries]
    return edit


def setting(**values):
    return values


HOSTILE = {
    # Gathered GPU facts are checked like declared ones: nvidia-smi's [N/A] is None.
    "facts_memory_not_available": (
        facts(memory_mib=None), None,
        ["gpu01: fastchat_gpu_facts[1].memory_mib: GPU 1: memory must be a positive number",
         "got None", "Fix: check the driver on the host (nvidia-smi -q"]),
    "facts_compute_capability_not_available": (
        facts(compute_capability="[N/A]"), None,
        ["gpu01: fastchat_gpu_facts[1].compute_capability", "got '[N/A]'"]),
    "declared_index_quoted": (
        declared_list({"index": "0"}, {"index": 1}), None,
        ["gpu01: fastchat_gpus[0].index: must be a GPU index (a whole number", "got '0'"]),
    "declared_index_twice": (
        declared_list({"index": 1}, {"index": 1}), None,
        ["gpu01: fastchat_gpus[1].index: GPU 1 is listed twice"]),
    "declared_index_float": (
        declared_list({"index": 1.5}), None, ["fastchat_gpus[0].index", "got 1.5"]),
    "declared_memory_infinite": (
        set_gpus("memory_mib", float("inf")), None,
        ["gpu01: fastchat_gpus[0].memory_mib", "got inf"]),
    "declared_memory_nan": (
        set_gpus("memory_mib", float("nan")), None, ["fastchat_gpus[0].memory_mib", "got nan"]),
    "max_gpu_memory_infinite": (
        set_key(1, "max_gpu_memory", "infGB"), None,
        ["gpu01: fastchat_workers[1].max_gpu_memory: 'infGB' cannot be read as a size"]),
    "max_gpu_memory_bare_number": (
        set_key(1, "max_gpu_memory", 24), None,
        ["gpu01: fastchat_workers[1].max_gpu_memory: 24 cannot be read as a size with a unit",
         "Fix: write it like \"22GiB\""]),
    "max_gpu_memory_bare_text": (
        set_key(1, "max_gpu_memory", "24"), None,
        ["fastchat_workers[1].max_gpu_memory: '24' cannot be read"]),
    "model_name_with_dots": (
        set_key(0, "model", "../../../etc"), None,
        ["gpu01: fastchat_workers[0].model: '../../../etc' is not a model name"]),
    "worker_name_with_slash": (
        set_key(0, "name", "a/b"), None,
        ["gpu01: fastchat_workers[0].name: 'a/b' is not a valid worker name"]),
    "worker_name_with_colon": (
        set_key(0, "name", "a:b"), None, ["fastchat_workers[0].name: 'a:b' is not a valid"]),
    "worker_name_with_comma": (
        set_key(0, "name", "a,b"), None, ["fastchat_workers[0].name: 'a,b' is not a valid"]),
    "worker_named_like_the_controller": (
        set_key(0, "name", "controller"), None,
        ["gpu01: fastchat_workers[0].name: 'controller' is the name of a head service"]),
    "address_with_scheme": (
        lambda hosts, groups: hosts["gpu01"].update(fastchat_address="http://192.0.2.10"), None,
        ["gpu01: fastchat_address: 'http://192.0.2.10' is neither an IPv4 address nor a host "
         "name", "Fix: set fastchat_address"]),
    "address_octet_out_of_range": (
        lambda hosts, groups: hosts["gpu01"].update(ansible_host="192.0.2.300"), None,
        ["gpu01: ansible_host: '192.0.2.300' looks like an IPv4 address but is not one"]),
    "address_ipv6": (
        lambda hosts, groups: hosts["gpu01"].update(ansible_host="2001:db8::10"), None,
        ["gpu01: ansible_host: 2001:db8::10 is an IPv6 address", "IPv4 only"]),
    "address_loopback": (
        lambda hosts, groups: hosts["gpu01"].update(ansible_host="127.0.0.1"), None,
        ["gpu01: ansible_host: 127.0.0.1 is a loopback"]),
    "two_hosts_one_address": (
        second_host([{"model": "Qwen-7B-Chat", "gpus": [0], "name": "q2"}],
                    ansible_host="192.0.2.10"), None,
        ["gpu02: fastchat_address: 192.0.2.10 is also the address of gpu01"]),
    "ports_past_65535": (
        lambda hosts, groups: None, setting(worker_base_port=65535),
        ["gpu01: fastchat_workers[1].port: no free port is left"]),
    "web_ui_and_api_on_one_port": (
        lambda hosts, groups: None, setting(web_ui_port=8000),
        ["all: fastchat_web_ui_port: port 8000 is also fastchat_api_port"]),
    "rehearsal_as_text": (
        lambda hosts, groups: None, setting(rehearsal="yes"),
        ["all: fastchat_rehearsal: must be a boolean, got 'yes'", "-e '{\"fastchat_rehearsal\""]),
    "port_as_text": (
        lambda hosts, groups: None, setting(api_port="8000"),
        ["all: fastchat_api_port: must be a port number (1-65535), got '8000'"]),
    "weights_dir_system": (
        lambda hosts, groups: None, setting(weights_dir="/etc"),
        ["all: fastchat_weights_dir: '/etc' is a system directory"]),
    "weights_dir_relative": (
        lambda hosts, groups: None, setting(weights_dir="models"),
        ["all: fastchat_weights_dir: 'models' is not an absolute path"]),
    "weights_dir_with_dots": (
        lambda hosts, groups: None, setting(weights_dir="/srv/../etc"),
        ["all: fastchat_weights_dir: '/srv/../etc' is not a normalised path"]),
    "logs_dir_system": (
        lambda hosts, groups: None, setting(logs_dir="/var/lib/docker/volumes"),
        ["all: fastchat_logs_dir: '/var/lib/docker/volumes' is a system directory",
         "Fix: use a directory the lab owns, e.g. /var/lib/fastchat-lab/logs (the votes live there)"]),
    "logs_dir_with_newline": (
        lambda hosts, groups: None, setting(logs_dir="/var/lib/fastchat-lab/logs\n"),
        ["all: fastchat_logs_dir: "]),
    "logs_dir_inside_the_weights": (
        lambda hosts, groups: None, setting(logs_dir="/srv/fastchat-lab/models/votes"),
        ["all: fastchat_logs_dir: '/srv/fastchat-lab/models/votes' and fastchat_weights_dir "
         "'/srv/fastchat-lab/models' overlap", "Fix: give it a directory of its own"]),
    "logs_dir_holding_the_weights": (
        lambda hosts, groups: None, setting(logs_dir="/srv/fastchat-lab"),
        ["all: fastchat_logs_dir: '/srv/fastchat-lab' and fastchat_weights_dir"]),
    "deploy_dir_relative": (
        lambda hosts, groups: None, setting(deploy_dir="etc/fastchat-lab"),
        ["all: fastchat_deploy_dir: 'etc/fastchat-lab' is not an absolute path"]),
    "deploy_dir_with_a_space": (
        lambda hosts, groups: None, setting(deploy_dir="/etc/fastchat lab"),
        ["all: fastchat_deploy_dir: '/etc/fastchat lab' has characters"]),
    "deploy_dir_inside_the_weights": (
        lambda hosts, groups: None, setting(deploy_dir="/srv/fastchat-lab/models/deploy"),
        ["all: fastchat_deploy_dir: '/srv/fastchat-lab/models/deploy' and fastchat_weights_dir "
         "'/srv/fastchat-lab/models' overlap"]),
    "models_dir_is_the_venv": (
        lambda hosts, groups: None, setting(models_dir="/opt/fastchat/venv"),
        ["all: fastchat_models_dir: '/opt/fastchat/venv' is a directory the FastChat image"]),
    "load_8bit_with_several_gpus": (
        set_key(1, "load_8bit", True), None,
        ["gpu01: fastchat_workers[1].load_8bit: FastChat 0.2.36 ignores load_8bit with several "
         "GPUs", "Fix: give the worker one GPU"]),
    "vllm_tensor_parallel_does_not_divide_heads": (
        second_host([{"model": "Baichuan-13B-Chat", "gpus": [0, 1, 2], "backend": "vllm"}],
                    fastchat_gpus=dict(H100, count=4)), None,
        ["gpu02: fastchat_workers[0].gpus: vLLM's tensor parallelism over 3 GPUs must divide "
         "Baichuan-13B-Chat's 40 attention heads", "Fix: give it a number of GPUs that "
         "divides them: 1, 2, 4, 5, 8"]),
    "sequential_placement_overfills_the_first_gpu": (
        del_key(1, "max_gpu_memory"), None,
        ["gpu01: fastchat_workers[1].gpus: Baichuan-13B-Chat needs about", "on GPU 2",
         "without max_gpu_memory FastChat fills each GPU to 85 %", "Fix: set max_gpu_memory"]),
}

CATALOGUE_HOSTILE = {
    "model_named_like_a_path": (
        {"../../../etc": {"source": "org/x", "revision": "a" * 40, "gpu_memory_gb": 1}},
        ["all: fastchat_models['../../../etc']: '../../../etc' is not a valid model name"]),
    "model_name_with_comma": (
        {"a,b": {"source": "org/x", "revision": "a" * 40, "gpu_memory_gb": 1}},
        ["all: fastchat_models['a,b']: 'a,b' is not a valid model name"]),
    "model_key_read_as_a_number": (
        {7: {"source": "org/x", "revision": "a" * 40, "gpu_memory_gb": 1}},
        ["all: fastchat_models[7]: 7 is not a text name"]),
    "models_differing_in_case": (
        {"qwen-7b-chat": {"source": "org/x", "revision": "a" * 40, "gpu_memory_gb": 1}},
        ["differs from Qwen-7B-Chat only in case"]),
    "revision_with_spaces": (
        {"Qwen-7B-Chat": {"revision": "abc --upload-pack=touch /tmp/x"}},
        ["all: fastchat_models['Qwen-7B-Chat'].revision: 'abc --upload-pack=touch /tmp/x' is "
         "not a pinned commit"]),
    "revision_upper_case": (
        {"Qwen-7B-Chat": {"revision": "218AA3240FD5A5D1E80BB6C47D5D774361913706"}},
        ["revision: '218AA3240FD5A5D1E80BB6C47D5D774361913706' is not a pinned commit"]),
    "local_path_relative": (
        {"Qwen-7B-Chat": {"local_path": "models/qwen"}},
        ["all: fastchat_models['Qwen-7B-Chat'].local_path: 'models/qwen' is not an absolute path"]),
    "local_path_system_dir": (
        {"Qwen-7B-Chat": {"local_path": "/etc"}},
        ["local_path: '/etc' is a system directory (under /etc)"]),
    "local_path_with_colon": (
        {"Qwen-7B-Chat": {"local_path": "/srv/a:b"}},
        ["local_path: '/srv/a:b' has characters a path here cannot have"]),
    "source_with_dots": (
        {"Qwen-7B-Chat": {"source": "Qwen/../../x"}}, ["source: 'Qwen/../../x' is not a hub id"]),
    "source_ssh_url": (
        {"Qwen-7B-Chat": {"source": "ssh://git@hub/x"}}, ["only https://, http:// and file://"]),
    "memory_nan": (
        {"Tiny": {"source": "org/x", "revision": "a" * 40, "gpu_memory_gb": float("nan")}},
        ["all: fastchat_models['Tiny'].gpu_memory_gb: must be a positive number of GB, got nan"]),
    "architecture_heads_do_not_divide": (
        {"Qwen-7B-Chat": {"architecture": dict(CATALOGUE["Qwen-7B-Chat"]["architecture"],
                                               kv_heads=5)}},
        ["architecture: hidden_size 4096, attention_heads 32 and kv_heads 5 do not divide"]),
    "requires_not_a_range": (
        {"Qwen-7B-Chat": {"requires": {"transformers": "latest"}}},
        ["requires.transformers: 'latest' is not a version range"]),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_inventory(case):
    edit, cfg, expected = HOSTILE[case]
    hosts, groups = reference_lab()
    edit(hosts, groups)
    with pytest.raises(PlanError) as info:
        plan_of(hosts, groups, settings=cfg)
    message = str(info.value)
    for part in expected:
        assert part in message, "%r not in:\n%s" % (part, message)
    for error in info.value.errors:
        assert " Fix: " in error and error.endswith("."), error


@pytest.mark.parametrize("case", sorted(CATALOGUE_HOSTILE))
def test_hostile_catalogue(case):
    extra, expected = CATALOGUE_HOSTILE[case]
    catalogue = merge_catalogue(copy.deepcopy(CATALOGUE), copy.deepcopy(extra))
    with pytest.raises(PlanError) as info:
        plan_of(*reference_lab(), catalogue=catalogue)
    message = str(info.value)
    for part in expected:
        assert part in message, "%r not in:\n%s" % (part, message)


def test_ipv4_and_host_names_are_accepted():
    for address in ("10.1.2.3", "gpu01.lab.example", "gpu01"):
        hosts, groups = reference_lab()
        hosts["gpu01"]["fastchat_address"] = address
        plan = plan_of(hosts, groups)
        assert plan["summary"]["controller_address"] == "http://%s:21001" % address


def test_worker_names_that_would_be_too_long_ask_for_a_name():
    extra = {"M" * 60: {"source": "org/x", "revision": "a" * 40, "gpu_memory_gb": 1}}
    catalogue = merge_catalogue(copy.deepcopy(CATALOGUE), extra)
    hosts, groups = reference_lab()
    hosts["gpu01"]["fastchat_workers"].append({"model": "M" * 60, "gpus": [0]})
    with pytest.raises(PlanError, match=r"fastchat_workers\[2\].name: the name made from the "
                                        r"model and GPUs, 'm{60}-gpu0', is too long"):
        plan_of(hosts, groups, catalogue=catalogue)
    hosts["gpu01"]["fastchat_workers"][2]["name"] = "long-model"
    assert "long-model" in plan_of(hosts, groups, catalogue=catalogue)["summary"]["workers"]


@pytest.mark.parametrize("bind, refused", [
    ("0.0.0.0", False), ("127.0.0.1", False), ("10.1.1.1", False), ("10.2.2.2", False),
    ("192.0.2.99", True)])
def test_the_api_and_web_ui_bind_where_the_head_has_an_address(bind, refused):
    """Issue 24: an address that is not the head's cannot be published; refused at the plan,
    when the head's facts list its addresses."""
    facts = {"default_ipv4": {"address": "10.1.1.1"}, "all_ipv4_addresses": ["10.1.1.1", "10.2.2.2"]}
    hosts = {"solo": {"ansible_facts": facts,
                      "fastchat_workers": [{"model": "Qwen-7B-Chat", "device": "cpu"}]}}
    groups = {"all": ["solo"], "fastchat_head": ["solo"], "gpu_hosts": ["solo"]}
    for key in ("api_bind", "web_ui_bind"):
        if refused:
            with pytest.raises(PlanError, match="solo: fastchat_%s: 192.0.2.99 is not an address "
                                                "of the head solo" % key):
                plan_of(hosts, groups, settings={key: bind})
        else:
            plan_of(hosts, groups, settings={key: bind})


@pytest.mark.parametrize("alias", ["a", "ai", " ", "The", "model", "x\n", "q\nwen", "Assistant",
                                   "千"])
def test_an_alias_that_matches_nearly_every_answer_is_refused(alias):
    """Issue 24: the leaderboard drops a blind vote whose answers hold an alias."""
    catalogue = copy.deepcopy(CATALOGUE)
    catalogue["Qwen-7B-Chat"]["aliases"] = ["通义千问", alias]
    with pytest.raises(PlanError, match=r"all: fastchat_models\['Qwen-7B-Chat'\]\.aliases(\[1\])?: "):
        plan_of(*reference_lab(), catalogue=catalogue)


def test_real_aliases_pass():
    catalogue = copy.deepcopy(CATALOGUE)
    catalogue["Qwen-7B-Chat"]["aliases"] = ["千问", "Alibaba", "qwen", "tongyi"]
    plan_of(*reference_lab(), catalogue=catalogue)


def test_hundreds_of_workers_on_a_host_are_refused():
    workers = [{"model": "Qwen-7B-Chat", "device": "cpu", "name": "w%d" % i} for i in range(65)]
    hosts = {"solo": {"fastchat_address": "10.0.0.1", "fastchat_workers": workers}}
    groups = {"all": ["solo"], "fastchat_head": ["solo"], "gpu_hosts": ["solo"]}
    with pytest.raises(PlanError, match="solo: fastchat_workers: has 65 workers; a host runs at most 64"):
        plan_of(hosts, groups)
    hosts["solo"]["fastchat_workers"] = workers[:64]
    assert len(plan_of(hosts, groups)["hosts"]["solo"]["services"]) == 67
