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
# GGUF: bytes per weight of ggml's block types (a block's bytes / its weights).
BYTES_PER_WEIGHT = {"f16": 2.0, "q8_0": 34 / 32, "q4_k": 144 / 256, "q5_k": 176 / 256,
                    "q6_k": 210 / 256}
# Model classes whose attention's q, k and v are one tensor in the GGUF (llama-quantize
# gives that tensor q5_k under q4_k_m).
FUSED_QKV = frozenset({"QWenLMHeadModel"})
# llama-server's defaults the plan keeps: a micro-batch of 512 tokens.
UBATCH = 512
# Calibrated in LLAMACPP_CALIBRATION (below): what llama.cpp needs besides weights and KV
# cache on a GPU (the CUDA context, cuBLAS) and its compute buffer per micro-batch.
LLAMACPP_GPU_OVERHEAD_MIB = 400
COMPUTE_LOGIT_BYTES = 4          # the logits of a micro-batch: ubatch x vocab x f32
COMPUTE_HIDDEN_BYTES = 64        # activations: ubatch x hidden x this
# The context a slot serves is a multiple of 256 (llama.cpp pads it so).
CONTEXT_STEP = 256


def _more_bits(layer, layers):
    """llama-quantize's use_more_bits (src/llama-quant.cpp): the layers whose attn_v and
    ffn_down get q6_k under q4_k_m."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def gguf_layout(arch, quantization, hf_architecture=None):
    """Bytes of a model's GGUF file as llama.cpp lays it out: {"embed": the token
    embeddings (llama.cpp keeps them in host memory), "output": the output head,
    "layers": [bytes of each layer]}; the norms (f32 vectors) are left out.

    A layer's weights are split into attention (q and o: hidden x hidden; k and v: hidden
    x kv width) and the gated MLP (the rest of the layer's share of the parameters; its
    down projection a third of it), each at the type llama-quantize gives it.
    """
    bpw = BYTES_PER_WEIGHT
    head = arch.vocab_size * arch.hidden_size
    kv_width = arch.kv_heads * arch.head_dim
    attn = 2 * arch.hidden_size ** 2 + 2 * arch.hidden_size * kv_width
    per_layer = max((arch.parameters - 2 * head) / arch.layers, attn)
    mlp = per_layer - attn
    if quantization in ("f16", "q8_0"):
        b = bpw[quantization]
        return {"embed": head * b, "output": head * b, "layers": [per_layer * b] * arch.layers}
    if quantization != "q4_k_m":
        raise ValueError("unknown quantization %r" % quantization)
    layers = []
    for i in range(arch.layers):
        more = _more_bits(i, arch.layers)
        v = arch.hidden_size * kv_width
        if hf_architecture in FUSED_QKV:
            attn_bytes = (attn - arch.hidden_size ** 2) * bpw["q5_k"] + arch.hidden_size ** 2 * bpw["q4_k"]
        else:
            attn_bytes = (attn - v) * bpw["q4_k"] + v * bpw["q6_k" if more else "q4_k"]
        mlp_bytes = (2 * mlp / 3) * bpw["q4_k"] + (mlp / 3) * bpw["q6_k" if more else "q4_k"]
        layers.append(attn_bytes + mlp_bytes)
    return {"embed": head * bpw["q4_k"], "output": head * bpw["q6_k"], "layers": layers}


def gguf_bytes(arch, quantization, hf_architecture=None):
    """The GGUF file's size (bytes), about: its tensors."""
    layout = gguf_layout(arch, quantization, hf_architecture)
    return layout["embed"] + layout["output"] + sum(layout["layers"])


def llamacpp_compute_bytes(arch):
    """llama.cpp's compute buffer for one micro-batch (the device that holds the output)."""
    return UBATCH * (arch.vocab_size * COMPUTE_LOGIT_BYTES + arch.hidden_size * COMPUTE_HIDDEN_BYTES)


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
    compute = llamacpp_compute_bytes(arch)
    if not gpus:
        need = (layout["embed"] + layout["output"] + sum(layout["layers"])
                + kv * context * parallel + compute)
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
                     + (layout["output"] + compute if last else 0))
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
