# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""How much GPU memory a worker needs, at which context, on which of its GPUs.

need(S) = weights + CUDA context + KV cache for S tokens + the forward pass's workspace
          (+ Baichuan-13B's ALiBi mask), S = the context FastChat serves the model at
          (its config's maximum: FastChat 0.2.36 serves every model at its own maximum,
          and the API server refuses longer requests).

Calibration (issue 9's table: one H200, the REAL hub code of both reference models,
full size, random fp16 weights, FastChat 0.2.36's model_worker with --device cuda
--num-gpus 1, the peak of nvidia-smi memory.used):

    model              weights    after load   peak (tokens)     this model   error
    Qwen-7B-Chat       14,727 MiB 15,323 MiB   20,981 (2,074)    20,803       -0.8 %
                                               28,731 (7,986)    28,793       +0.2 %
    Baichuan-13B-Chat  25,301 MiB 25,861 MiB   32,433 (1,547)    32,710       +0.9 %
                                               36,829 (3,686)    36,658       -0.5 %

- CUDA_CONTEXT_MIB: after load minus the weights (596 and 560 MiB; their mean).
- KV cache: 2 (keys, values) x layers x KV heads x head size x 2 bytes per token, as
  FastChat keeps it (fp16 past_key_values): 0.5 MiB per token for Qwen-7B-Chat, 0.78
  for Baichuan-13B-Chat.
- The ALiBi mask: Baichuan-13B's code builds a heads x 4096 x 4096 fp16 buffer at the
  first forward pass (1,280 MiB).
- WORKSPACE_MIB and ACTIVATION_BYTES: a least-squares fit of what remains (peak minus
  after-load minus KV cache minus the mask) to W + a x hidden size x tokens over the four
  points: W = 2,695 MiB (the caching allocator's blocks, cuBLAS workspace), a = 218 bytes
  per hidden unit per token (hidden states, MLP activations and the logits of a
  prefill). The growth is linear: neither model materialises heads x S^2 attention
  scores at these lengths (Qwen's code uses torch's scaled_dot_product_attention).
  The residuals are the last column above (all within 1 %).

Several GPUs (hf): accelerate splits the weights layer by layer. With max_gpu_memory,
FastChat 0.2.36 asks for device_map "auto" with that cap per GPU (accelerate balances
the layers); without it, device_map "sequential" with 85 % of each GPU's memory (whole
GiB). Every GPU that holds layers holds their KV cache and needs the CUDA context and
the forward pass's workspace; the mask sits with the first layer.

vLLM: tensor parallel splits weights and KV cache evenly; vLLM takes 90 % of each GPU
(gpu_memory_utilization) and refuses to start when one sequence of the context does
not fit, so the plan passes --max-model-len when it must (with a warning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIB = 2 ** 20
GIB = 2 ** 30
GB = 10 ** 9
FP16 = 2
CUDA_CONTEXT_MIB = 578
WORKSPACE_MIB = 2695
ACTIVATION_BYTES = 218
# FastChat's --load-8bit (fastchat/model/compression.py): every Linear weight as int8
# with an fp16 scale per group of 256; the input embeddings stay fp16.
INT8_BYTES = 1 + FP16 / 256
# FastChat 0.2.36 model_adapter.load_model without max_gpu_memory: 85 % of each GPU.
SEQUENTIAL_SHARE = 0.85
VLLM_UTILIZATION = 0.9
# Fewer tokens than this is no chat: the worker is refused.
MIN_CONTEXT = 256
# Models given only a flat figure (catalogue gpu_memory_gb): the model card's 8-bit
# figure is about 0.6 of fp16 (Baichuan-13B-Chat: 26.0 -> 15.8 GB).
LOAD_8BIT_FACTOR = 0.6


@dataclass
class Estimate:
    """What the plan records as a worker's ``memory`` (see :meth:`as_dict`)."""

    need: float                  # bytes at the served context, over the worker's GPUs
    available: float | None      # bytes (None: host RAM, not checked)
    context_tokens: int | None   # the context served
    max_context_tokens: int | None   # the most that fits (<= the model's own maximum)
    model_context_tokens: int | None
    per_gpu: list                # [{"index", "need", "available", "layers"}]
    basis: str                   # "architecture" | "catalogue"
    fits: bool                   # at least MIN_CONTEXT tokens fit (or the flat figure)
    weights_fit: bool = True
    slots: int | None = None     # llamacpp: llama-server's slots that fit at the context served

    def as_dict(self) -> dict:
        return {
            "need_gb": round(self.need / GB, 2),
            "available_gb": None if self.available is None else round(self.available / GB, 2),
            "context_tokens": self.context_tokens,
            "max_context_tokens": self.max_context_tokens,
            "model_context_tokens": self.model_context_tokens,
            "gpus": [{"index": g["index"], "need_gb": round(g["need"] / GB, 2),
                      "available_gb": round(g["available"] / GB, 2), "layers": g["layers"]}
                     for g in self.per_gpu],
            "basis": self.basis,
            "slots": self.slots,
        }


def weights_bytes(arch, load_8bit: bool = False) -> float:
    if not load_8bit:
        return arch.parameters * FP16
    embeddings = min(arch.vocab_size * arch.hidden_size, arch.parameters)
    return (arch.parameters - embeddings) * INT8_BYTES + embeddings * FP16


def kv_bytes_per_token(arch) -> float:
    return 2 * arch.layers * arch.kv_heads * arch.head_dim * FP16


def alibi_bytes(arch) -> float:
    return arch.attention_heads * arch.context_tokens ** 2 * FP16 if arch.alibi else 0


def _blocks(arch, load_8bit):
    """Weights as accelerate places them: embeddings, the layers, the output head."""
    total = weights_bytes(arch, load_8bit)
    head = arch.vocab_size * arch.hidden_size * FP16
    if total - 2 * head <= 0:
        head = total / (arch.layers + 2)
    layer = (total - 2 * head) / arch.layers
    return [("embed", head)] + [("layer", layer)] * arch.layers + [("head", head)]


def _place(blocks, budgets):
    """Fill GPUs in order (accelerate's infer_auto_device_map); None if they overflow."""
    used = [0.0] * len(budgets)
    layers = [0] * len(budgets)
    first = [False] * len(budgets)
    last = [False] * len(budgets)
    gpu = 0
    seen_layer = False
    for kind, size in blocks:
        while gpu < len(budgets) and used[gpu] + size > budgets[gpu]:
            gpu += 1
        if gpu == len(budgets):
            return None
        used[gpu] += size
        if kind == "layer":
            layers[gpu] += 1
            if not seen_layer:
                first[gpu] = seen_layer = True
        if kind == "head":
            last[gpu] = True
    return used, layers, first, last


def estimate_hf(arch, gpus, cap_bytes=None, load_8bit=False) -> Estimate:
    """An hf worker on ``gpus`` (lab_plan.model.Gpu), FastChat 0.2.36's placement."""
    available = [g.memory_mib * MIB for g in gpus]
    blocks = _blocks(arch, load_8bit)
    weights = sum(size for _, size in blocks)
    if len(gpus) == 1:
        placement = _place(blocks, [available[0] - CUDA_CONTEXT_MIB * MIB])
    elif cap_bytes is not None:
        # device_map "auto": accelerate balances, every GPU but the last at about an even
        # share (plus one layer of slack), all within the cap.
        share = weights / len(gpus) + max(size for _, size in blocks)
        budgets = [min(cap_bytes, share)] * (len(gpus) - 1) + [cap_bytes]
        placement = _place(blocks, budgets)
    else:
        budgets = [math.floor(m / GIB * SEQUENTIAL_SHARE) * GIB for m in available]
        placement = _place(blocks, budgets)
    context = arch.context_tokens
    if placement is None:
        return Estimate(need=weights + CUDA_CONTEXT_MIB * MIB * len(gpus),
                        available=sum(available), context_tokens=context,
                        max_context_tokens=0, model_context_tokens=context,
                        per_gpu=[], basis="architecture", fits=False, weights_fit=False)
    used, layers, first, last = placement
    kv = kv_bytes_per_token(arch)
    per_gpu, most = [], context
    for gpu, avail, w, n, is_first, is_last in zip(gpus, available, used, layers, first, last):
        active = n > 0 or is_last
        fixed = (CUDA_CONTEXT_MIB * MIB + w
                 + (WORKSPACE_MIB * MIB if active else 0)
                 + (alibi_bytes(arch) if is_first else 0))
        per_token = kv * n / arch.layers + (ACTIVATION_BYTES * arch.hidden_size if active else 0)
        if per_token > 0:
            most = min(most, math.floor((avail - fixed) / per_token))
        elif fixed > avail:
            most = -1
        per_gpu.append({"index": gpu.index, "need": fixed + per_token * context,
                        "available": avail, "layers": n})
    most = max(min(most, context), 0)
    return Estimate(need=sum(g["need"] for g in per_gpu), available=sum(available),
                    context_tokens=context, max_context_tokens=most,
                    model_context_tokens=context, per_gpu=per_gpu, basis="architecture",
                    fits=most >= min(MIN_CONTEXT, context))


def estimate_vllm(arch, gpus) -> Estimate:
    """A vLLM worker, tensor parallel over ``gpus``."""
    tp = len(gpus)
    available = [g.memory_mib * MIB * VLLM_UTILIZATION for g in gpus]
    fixed = weights_bytes(arch) / tp + CUDA_CONTEXT_MIB * MIB + WORKSPACE_MIB * MIB
    per_token = (kv_bytes_per_token(arch) + ACTIVATION_BYTES * arch.hidden_size) / tp
    context = arch.context_tokens
    most = max(min(min(math.floor((a - fixed) / per_token) for a in available), context), 0)
    served = min(context, most)
    per_gpu = [{"index": g.index, "need": fixed + per_token * served, "available": a,
                "layers": arch.layers} for g, a in zip(gpus, available)]
    return Estimate(need=sum(g["need"] for g in per_gpu), available=sum(available),
                    context_tokens=served, max_context_tokens=most,
                    model_context_tokens=context, per_gpu=per_gpu, basis="architecture",
                    fits=most >= min(MIN_CONTEXT, context))


def estimate_cpu(arch, load_8bit=False) -> Estimate:
    """A worker on CPU: host RAM, which the plan does not check."""
    context = arch.context_tokens
    need = (weights_bytes(arch, load_8bit) + kv_bytes_per_token(arch) * context
            + ACTIVATION_BYTES * arch.hidden_size * context + alibi_bytes(arch))
    return Estimate(need=need, available=None, context_tokens=context,
                    max_context_tokens=context, model_context_tokens=context, per_gpu=[],
                    basis="architecture", fits=True)


def estimate_flat(gpu_memory_gb, gpus, cap_bytes=None, load_8bit=False) -> Estimate:
    """A model with only a flat catalogue figure: no context is modelled."""
    need = gpu_memory_gb * GB * (LOAD_8BIT_FACTOR if load_8bit else 1.0)
    if not gpus:
        return Estimate(need=need, available=None, context_tokens=None,
                        max_context_tokens=None, model_context_tokens=None, per_gpu=[],
                        basis="catalogue", fits=True)
    per = [min(cap_bytes, g.memory_mib * MIB) if cap_bytes else g.memory_mib * MIB
           for g in gpus]
    share = need / len(gpus)
    per_gpu = [{"index": g.index, "need": share, "available": a, "layers": None}
               for g, a in zip(gpus, per)]
    return Estimate(need=need, available=sum(per), context_tokens=None,
                    max_context_tokens=None, model_context_tokens=None, per_gpu=per_gpu,
                    basis="catalogue", fits=need <= sum(per))


# ---------------------------------------------------------------------------
# llama.cpp (backend llamacpp)
# ---------------------------------------------------------------------------
# Calibration (tests/bench/results/llamacpp-memory.md: llama-server at the pinned commit on
# CPU, models of both reference architectures at full size and with 4 layers, 76 runs of
# context 512-8,192, 1-8 slots, micro-batches 128-2,048, f16/q8_0/q4_k_m):
#
# - GGUF (llama-server's model buffer): the sum over tensors of elements x bits/8, the 2-D
#   ones at the type llama-quantize gives them (below), 1-D ones (norms, biases) in f32.
#   Reproduces every measured size to 0.01 MiB: Qwen-7B-Chat q8_0 7,825.70 MiB, q4_k_m
#   4,672.59; Baichuan-13B-Chat q8_0 13,442.21, q4_k_m 8,162.62 (this model: within 0.1 %,
#   from the catalogue's parameters alone).
# - KV cache (f16): 2 x layers x context x kv heads x head size x 2 bytes, exact.
# - Output buffer (the logits): vocabulary x 4 bytes x slots.
# - Compute buffer, flash attention on (llama.cpp's default where it runs): micro-batch x
#   (12 x MLP width + k x hidden + 2 x the context a slot attends to), k = 12 for a fused
#   q/k/v tensor (Qwen v1), 16 otherwise; fitted, residuals at most 0.05 MiB.
# - On a GPU llama.cpp also needs the CUDA context and cuBLAS's workspace
#   (LLAMACPP_GPU_OVERHEAD_MIB) and keeps the token embeddings in host memory; the compute
#   buffer there is taken to be the CPU one. Not calibrated yet: the one GPU run so far
#   loaded no CUDA backend (tests/bench/results/README.md), so 400 MiB is an estimate
#   (a CUDA context is about 300 MiB, cuBLAS's workspace a few tens) that a lent GPU must
#   check: scripts/gpu-worker-check's way, llama-server's "CUDA0 ... buffer size" lines
#   against nvidia-smi's memory.used.
BITS = {"f32": 32, "f16": 16, "q8_0": 8.5, "q5_0": 5.5, "q4_k": 4.5, "q5_k": 5.5, "q6_k": 6.5625}
# A k-quant tensor whose rows are not a multiple of 256 falls back to these.
FALLBACK = {"q4_k": "q5_0", "q5_k": "q5_0", "q6_k": "q8_0"}
# Model classes whose attention's q, k and v are one tensor in the GGUF (llama-quantize
# treats it under q4_k_m as it treats attn_v).
FUSED_QKV = frozenset({"QWenLMHeadModel"})
# llama-server's default micro-batch, which the plan keeps.
UBATCH = 512
LLAMACPP_GPU_OVERHEAD_MIB = 400
# The context a slot serves is a multiple of 256 (llama.cpp pads it so).
CONTEXT_STEP = 256


def _more_bits(layer, layers):
    """llama-quantize's use_more_bits (src/llama-quant.cpp): the layers whose attn_v (or
    fused qkv) and ffn_down get q6_k under q4_k_m."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def _tensor(elements, kind, row):
    if kind in FALLBACK and row % 256:
        kind = FALLBACK[kind]
    return elements * BITS[kind] / 8


def mlp_width(arch):
    """The gated MLP's width, from the layer's share of the parameters (its three matrices
    are hidden x width; norms and biases make the share a little larger), rounded to a
    multiple of 32 as MLP widths are: Qwen-7B-Chat 11,008, Baichuan-13B-Chat 13,696."""
    head = arch.vocab_size * arch.hidden_size
    kv_width = arch.kv_heads * arch.head_dim
    attn = 2 * arch.hidden_size ** 2 + 2 * arch.hidden_size * kv_width
    per_layer = (arch.parameters - 2 * head) / arch.layers
    return max(32, int(round((per_layer - attn) / (3 * arch.hidden_size) / 32)) * 32)


def gguf_layout(arch, quantization, hf_architecture=None):
    """Bytes of a model's GGUF tensors as llama.cpp lays them out: {"embed": the token
    embeddings (llama.cpp keeps them in host memory), "output": the output head and the
    final norm, "layers": [bytes of each layer]}."""
    hidden = arch.hidden_size
    head = arch.vocab_size * hidden
    kv_width = arch.kv_heads * arch.head_dim
    width = mlp_width(arch)
    fused = hf_architecture in FUSED_QKV
    norms = 2 * hidden * 4 + (3 * hidden * 4 if fused else 0)  # f32: two norms, qkv bias
    if quantization in ("f16", "q8_0"):
        layer = _tensor(2 * hidden * hidden + 2 * hidden * kv_width + 3 * hidden * width,
                        quantization, hidden) + norms
        return {"embed": _tensor(head, quantization, hidden),
                "output": _tensor(head, quantization, hidden) + hidden * 4,
                "layers": [layer] * arch.layers}
    if quantization != "q4_k_m":
        raise ValueError("unknown quantization %r" % quantization)
    layers = []
    for i in range(arch.layers):
        more = "q6_k" if _more_bits(i, arch.layers) else "q4_k"
        if fused:
            attn = (_tensor(hidden * (hidden + 2 * kv_width), more, hidden)
                    + _tensor(hidden * hidden, "q4_k", hidden))
        else:
            attn = (_tensor(2 * hidden * hidden + hidden * kv_width, "q4_k", hidden)
                    + _tensor(hidden * kv_width, more, hidden))
        mlp = _tensor(2 * hidden * width, "q4_k", hidden) + _tensor(hidden * width, more, width)
        layers.append(attn + mlp + norms)
    return {"embed": _tensor(head, "q4_k", hidden),
            "output": _tensor(head, "q6_k", hidden) + hidden * 4, "layers": layers}


def gguf_bytes(arch, quantization, hf_architecture=None):
    """The GGUF file's tensor data (bytes); its header adds a few MB (the vocabulary)."""
    layout = gguf_layout(arch, quantization, hf_architecture)
    return layout["embed"] + layout["output"] + sum(layout["layers"])


def llamacpp_compute_bytes(arch, context, slots, hf_architecture=None):
    """llama.cpp's compute buffer for one micro-batch, and the logits of every slot, on the
    device that holds the output (flash attention on)."""
    k = 12 if hf_architecture in FUSED_QKV else 16
    return (UBATCH * (12 * mlp_width(arch) + k * arch.hidden_size + 2 * context)
            + arch.vocab_size * 4 * slots)


def _split_layers(layers, gpus):
    """llama.cpp's --tensor-split by each GPU's memory: layers per GPU, in order."""
    total = sum(g.memory_mib for g in gpus)
    counts, given = [], 0
    for pos, g in enumerate(gpus):
        if pos == len(gpus) - 1:
            counts.append(layers - given)
        else:
            share = int(round(layers * g.memory_mib / total))
            counts.append(share)
            given += share
    return counts


def estimate_llamacpp(arch, gpus, quantization, parallel, hf_architecture=None):
    """A llamacpp worker: llama-server with every layer on ``gpus`` (or on the CPU when there
    are none), ``parallel`` slots each serving the model's context (the KV cache, f16, holds
    slots x context tokens). Fewer slots are served when they do not fit, then a shorter
    context; ``slots`` says how many."""
    layout = gguf_layout(arch, quantization, hf_architecture)
    kv = kv_bytes_per_token(arch)
    context = arch.context_tokens
    if not gpus:
        need = (layout["embed"] + layout["output"] + sum(layout["layers"])
                + kv * context * parallel
                + llamacpp_compute_bytes(arch, context, parallel, hf_architecture))
        return Estimate(need=need, available=None, context_tokens=context,
                        max_context_tokens=context, model_context_tokens=context, per_gpu=[],
                        basis="architecture", fits=True, slots=parallel)
    counts = _split_layers(arch.layers, gpus)
    available = [g.memory_mib * MIB for g in gpus]
    fixed, per_token, start = [], [], 0
    for pos, (g, n) in enumerate(zip(gpus, counts)):
        weights = sum(layout["layers"][start:start + n])
        start += n
        last = pos == len(gpus) - 1
        fixed.append(LLAMACPP_GPU_OVERHEAD_MIB * MIB + weights
                     + (layout["output"] + llamacpp_compute_bytes(arch, context, parallel,
                                                                  hf_architecture)
                        if last else 0))
        per_token.append(kv * n / arch.layers)
    # The most tokens of KV cache every GPU holds.
    room = min(int((a - f) / t) if t > 0 else (10 ** 12 if a >= f else -1)
               for a, f, t in zip(available, fixed, per_token))
    weights_fit = all(f <= a for f, a in zip(fixed, available))
    slots = max(0, min(parallel, room // context)) if room >= 0 else 0
    if slots >= 1:
        served = context
    else:
        slots = 1
        served = max(0, (room // CONTEXT_STEP) * CONTEXT_STEP) if room > 0 else 0
        served = min(served, context)
    tokens = slots * served
    per_gpu = [{"index": g.index, "need": f + t * tokens, "available": a, "layers": n}
               for g, f, t, a, n in zip(gpus, fixed, per_token, available, counts)]
    return Estimate(need=sum(p["need"] for p in per_gpu), available=sum(available),
                    context_tokens=served if served else context,
                    max_context_tokens=served, model_context_tokens=context, per_gpu=per_gpu,
                    basis="architecture",
                    fits=weights_fit and served >= min(MIN_CONTEXT, context),
                    weights_fit=weights_fit, slots=slots)
