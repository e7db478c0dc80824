"""Stacks that match the GPUs and the models (module_utils/lab_plan/stacks.py): the planner
chooses each worker's image from its GPUs' compute capability and driver, and refuses a
model on a stack whose libraries cannot load it."""

import copy

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import (
    PlanError,
    merge_catalogue,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan.stacks import (
    STACKS,
    compatibility_rows,
)
from labs import A100, CATALOGUE, H100, P40, plan_of

H200 = {"count": 1, "name": "NVIDIA H200", "memory_mib": 143771,
        "compute_capability": "9.0", "driver_version": "580.159.04"}


def lab(gpus, *workers):
    hosts = {"gpu01": {"ansible_host": "192.0.2.10", "fastchat_gpus": gpus,
                       "fastchat_workers": list(workers)}}
    groups = {"all": ["gpu01"], "fastchat_head": ["gpu01"], "gpu_hosts": ["gpu01"]}
    return hosts, groups


def workers(plan):
    return {s["name"]: s for s in plan["hosts"]["gpu01"]["services"]
            if s["kind"] == "model_worker"}


@pytest.mark.parametrize("gpus, stack", [
    (P40, "cuda117"),                                      # Pascal on 515: CUDA 11.7
    (dict(P40, driver_version="535.161.08"), "cuda121"),   # the same GPU on a CUDA 12 driver
    (A100, "cuda121"),                                     # Ampere on 535
    (dict(A100, driver_version="515.105.01"), "cuda117"),  # Ampere on 515
    (H100, "cuda121"),                                     # Hopper: the only hf stack
    (H200, "cuda121"),
])
def test_the_hf_stack_follows_the_gpu_generation_and_driver(gpus, stack):
    plan = plan_of(*lab(gpus, {"model": "Qwen-7B-Chat", "gpus": [0]}))
    assert workers(plan)["qwen-7b-chat-gpu0"]["stack"] == stack
    assert stack in plan["hosts"]["gpu01"]["stacks"]


def test_an_h200_plans_its_worker_on_the_cuda_12_stack_with_the_table_showing_it():
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import (
        format_plan_table,
    )
    plan = plan_of(*lab(H200, {"model": "Qwen-7B-Chat", "gpus": [0]}))
    worker = workers(plan)["qwen-7b-chat-gpu0"]
    assert worker["argv"][2] == "fastchat.serve.model_worker"
    assert worker["argv"][-6:] == ["--device", "cuda", "--num-gpus", "1",
                                   "--conv-template", "qwen-7b-chat"]
    assert worker["memory"]["max_context_tokens"] == 8192
    assert "| cuda121 | transformers fp16 | 21002 |" in "\n".join(format_plan_table(plan))


def test_an_h100_on_a_515_driver_is_refused_with_the_driver_fix():
    hopper_515 = dict(H100, driver_version="515.105.01")
    with pytest.raises(PlanError) as info:
        plan_of(*lab(hopper_515, {"model": "Qwen-7B-Chat", "gpus": [0]}))
    message = str(info.value)
    assert "gpu01: fastchat_workers[0].gpus: GPU 0 (NVIDIA H100 80GB HBM3, compute " \
           "capability 9.0, driver 515.105.01) needs the CUDA 12 stack cuda121" in message
    assert "no kernels past compute capability 8.6" in message
    # Both settings: the nvidia_driver role refuses a pinned version of another branch.
    assert ("Fix: set nvidia_driver_branch: \"535\" and nvidia_driver_version: \"\" (the "
            "branch's newest driver, or a 535 version to pin) for this host and re-run "
            "site.yml") in message


def test_a_rehearsal_still_refuses_what_the_real_lab_would():
    hopper_515 = dict(H100, driver_version="515.105.01")
    with pytest.raises(PlanError, match="needs the CUDA 12 stack"):
        plan_of(*lab(hopper_515, {"model": "Qwen-7B-Chat", "gpus": [0]}),
                settings={"rehearsal": True})


def test_baichuan_on_vllm_is_refused_with_the_stacks_that_load_it():
    with pytest.raises(PlanError) as info:
        plan_of(*lab(H100, {"model": "Baichuan-13B-Chat", "gpus": [0], "backend": "vllm"}))
    assert ("gpu01: fastchat_workers[0].backend: Baichuan-13B-Chat needs transformers "
            ">=4.29,<4.34, but the vllm stack has transformers 4.45.2. Fix: use a worker on one "
            "of the stacks that can: cpu, cuda117, cuda121 (backend: hf).") in str(info.value)


def test_qwen_on_vllm_is_fine():
    plan = plan_of(*lab(H100, {"model": "Qwen-7B-Chat", "gpus": [0, 1], "backend": "vllm"}))
    worker = workers(plan)["qwen-7b-chat-gpu0-1"]
    assert worker["stack"] == "vllm" and "--max-model-len" not in worker["argv"]


def test_a_model_whose_code_needs_newer_libraries_than_any_stack_is_refused():
    catalogue = merge_catalogue(copy.deepcopy(CATALOGUE), {
        "Qwen-7B-Chat": {"requires": {"transformers": ">=4.60"}}})
    with pytest.raises(PlanError, match="Fix: widen or correct "
                                        r"fastchat_models_extra\['Qwen-7B-Chat'\].requires"):
        plan_of(*lab(P40, {"model": "Qwen-7B-Chat", "gpus": [0]}), catalogue=catalogue)


def test_the_cpu_stack_serves_every_catalogue_model():
    for name, entry in CATALOGUE.items():
        spec = entry["requires"]["transformers"]
        from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan.grammar import (
            version_in,
        )
        assert version_in(STACKS["cpu"].transformers, spec), name
        plan = plan_of(*lab(P40, {"model": name, "device": "cpu", "gpus": []}))
        assert workers(plan)[name.lower() + "-cpu"]["stack"] == "cpu"


def test_the_compatibility_table_covers_every_model_stack_and_generation():
    rows = compatibility_rows(CATALOGUE)
    by = {(r["model"], r["stack"]): r for r in rows}
    assert by[("Baichuan-13B-Chat", "vllm")]["loads"] is False
    assert by[("Qwen-7B-Chat", "vllm")]["loads"] is True
    assert by[("Qwen-7B-Chat", "cuda121")]["gpus"] == "compute capability 5.0-9.0 " \
        "(Maxwell ... Hopper), driver >= 525"
    assert by[("Qwen-7B-Chat", "cuda117")]["gpus"] == "compute capability 3.7-8.6 " \
        "(Kepler ... Ampere), driver >= 515"
    assert {r["stack"] for r in rows} == set(STACKS)
