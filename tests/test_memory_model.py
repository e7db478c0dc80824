"""The memory model (module_utils/lab_plan/memory.py) against what the reference models
really use: issue 9's measurements on one H200 (the real hub code, full size, random fp16
weights, FastChat 0.2.36's model_worker with --device cuda --num-gpus 1, the peak of
nvidia-smi memory.used)."""

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import memory
from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan.model import (
    Architecture,
    Gpu,
)
from labs import CATALOGUE, plan_of, reference_lab

MIB = 2 ** 20
H200 = Gpu(index=0, uuid=None, name="NVIDIA H200", memory_mib=143771,
           compute_capability=(9, 0), driver_version="580.159.04")
P40 = Gpu(index=1, uuid=None, name="Tesla P40", memory_mib=23040,
          compute_capability=(6, 1), driver_version="515.105.01")


def arch(model, **override):
    return Architecture(**dict(CATALOGUE[model]["architecture"], **override))


# (model, tokens, measured peak MiB)
MEASURED = [
    ("Qwen-7B-Chat", 2074, 20981),
    ("Qwen-7B-Chat", 7986, 28731),
    ("Baichuan-13B-Chat", 1547, 32433),
    ("Baichuan-13B-Chat", 3686, 36829),
]


@pytest.mark.parametrize("model, tokens, peak_mib", MEASURED)
def test_the_model_reproduces_the_measured_peaks_within_ten_percent(model, tokens, peak_mib):
    a = arch(model, context_tokens=tokens)
    estimate = memory.estimate_hf(a, [H200])
    predicted = estimate.need / MIB
    # The ALiBi mask is built at the model's own maximum (4,096), not at the prompt's.
    if a.alibi:
        predicted += (memory.alibi_bytes(arch(model)) - memory.alibi_bytes(a)) / MIB
    assert abs(predicted - peak_mib) / peak_mib <= 0.10, (predicted, peak_mib)
    # And in fact within 1 % (the calibration's residuals, memory.py's docstring).
    assert abs(predicted - peak_mib) / peak_mib <= 0.01, (predicted, peak_mib)


def test_weights_after_load_match_the_measurement():
    # After load: Qwen 15,323 MiB, Baichuan 25,861 MiB (weights + CUDA context).
    for model, after_load in (("Qwen-7B-Chat", 15323), ("Baichuan-13B-Chat", 25861)):
        loaded = (memory.weights_bytes(arch(model)) / MIB + memory.CUDA_CONTEXT_MIB)
        assert abs(loaded - after_load) / after_load < 0.02, (model, loaded)


def test_qwen_on_one_p40_fits_about_3600_tokens_of_8192():
    """The reference lab: Qwen-7B-Chat on one Tesla P40 runs out of memory once a
    conversation passes roughly 3,600 tokens (the catalogue said 17 of 24 GB)."""
    estimate = memory.estimate_hf(arch("Qwen-7B-Chat"), [P40])
    assert estimate.fits and estimate.weights_fit
    assert estimate.context_tokens == 8192
    assert 3400 <= estimate.max_context_tokens <= 3900
    assert estimate.need > estimate.available  # at the served context it does not fit


def test_the_reference_lab_warns_about_the_qwen_worker():
    plan = plan_of(*reference_lab())
    qwen = [w for w in plan["warnings"] if "fastchat_workers[0]" in w]
    assert len(qwen) == 1
    assert "Qwen-7B-Chat on GPU 1 (Tesla P40) of gpu01 holds about 3,728 of its 8,192" in qwen[0]
    assert "Fix: to serve all 8,192 tokens, give the worker more GPUs" in qwen[0]


def test_kv_cache_per_token_from_the_architecture():
    assert memory.kv_bytes_per_token(arch("Qwen-7B-Chat")) == 0.5 * MIB
    assert memory.kv_bytes_per_token(arch("Baichuan-13B-Chat")) == 0.78125 * MIB
    # Grouped-query attention: 8 key/value heads of 32 keep a quarter.
    assert memory.kv_bytes_per_token(arch("Qwen-7B-Chat", kv_heads=8)) == 0.125 * MIB


def test_eight_bit_weights_keep_the_embeddings_in_fp16():
    a = arch("Baichuan-13B-Chat")
    embeddings = a.vocab_size * a.hidden_size
    assert memory.weights_bytes(a, load_8bit=True) == pytest.approx(
        (a.parameters - embeddings) * (1 + 2 / 256) + embeddings * 2)
    assert memory.weights_bytes(a, load_8bit=True) < 0.55 * memory.weights_bytes(a)


def test_several_gpus_split_the_layers_and_each_holds_its_share_of_the_cache():
    gpus = [Gpu(index=i, uuid=None, name="Tesla P40", memory_mib=23040,
                compute_capability=(6, 1), driver_version="515.105.01") for i in (2, 3)]
    a = arch("Baichuan-13B-Chat")
    balanced = memory.estimate_hf(a, gpus, cap_bytes=24 * 10 ** 9)
    assert [g["layers"] for g in balanced.per_gpu] == [21, 19]
    assert balanced.fits
    # Without max_gpu_memory FastChat packs 85 % of GPU 2 with weights (sequential):
    # no room is left for the mask, the workspace and the cache.
    sequential = memory.estimate_hf(a, gpus)
    assert sequential.per_gpu[0]["layers"] > 30
    assert not sequential.fits


def test_vllm_takes_ninety_percent_and_shortens_the_context_when_it_must():
    a = arch("Qwen-7B-Chat")
    small = Gpu(index=0, uuid=None, name="NVIDIA A10", memory_mib=23028,
                compute_capability=(8, 6), driver_version="535.161.08")
    estimate = memory.estimate_vllm(a, [small])
    assert estimate.available == pytest.approx(23028 * MIB * 0.9)
    assert estimate.context_tokens == estimate.max_context_tokens < 8192
    assert memory.estimate_vllm(a, [H200]).context_tokens == 8192


def test_a_model_whose_weights_do_not_fit_is_refused_not_warned():
    estimate = memory.estimate_hf(arch("Baichuan-13B-Chat"), [P40])
    assert not estimate.fits and not estimate.weights_fit
