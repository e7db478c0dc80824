# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Which image stack runs a worker, chosen from its GPUs, and which models each stack loads.

A stack is one FastChat image (roles/fastchat_image/files/stacks/<name>/): its torch
build decides which GPUs and drivers it runs on, its transformers which models' code it
loads. The versions here are the ones those constraints files pin
(tests/test_image_stacks.py keeps the two equal); the GPU and driver ranges are what
the torch builds carry:

- torch 2.0.1 from PyPI bundles CUDA 11.7 and has kernels for sm_37 ... sm_86 only
  (an H100/H200, sm_90, is refused by it); CUDA 11.7 runs on drivers >= 515.
- torch 2.1.2 from PyPI bundles CUDA 12.1 with kernels sm_50 ... sm_90; CUDA 12
  needs a driver >= 525 (CUDA's minor-version compatibility from 525.60.13).
- vLLM 0.6.2 brings torch 2.4.0 with CUDA 12.1 and needs compute capability >= 7.0.
- llama.cpp (backend llamacpp) is built into its own images: ``llamacpp-cuda`` from CUDA
  12.4 for the planned GPUs' compute capabilities (sm_50 and newer: Pascal's integer and
  FP32 kernels included, which is what P40 owners use), running on drivers >= 525 (CUDA
  12's minor-version compatibility); ``llamacpp-cpu`` for CPU workers and rehearsal labs.
  llama.cpp does not run the model's Python code, so ``requires`` does not apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from .grammar import version_in
from .llamacpp_architectures import ARCHITECTURES as LLAMACPP_ARCHITECTURES


@dataclass(frozen=True)
class Stack:
    name: str
    backend: str                 # hf | vllm
    device: str                  # cuda | cpu
    torch: str
    cuda: str | None
    transformers: str
    min_driver: int | None = None
    min_cc: tuple | None = None
    max_cc: tuple | None = None

    def runs_on(self, cc: tuple, driver_major: int) -> bool:
        return (self.device == "cuda" and driver_major >= self.min_driver
                and self.min_cc <= cc <= self.max_cc)

    def describe(self) -> str:
        if self.device == "cpu":
            return "%s (torch %s, CPU)" % (self.name, self.torch)
        return "%s (torch %s, CUDA %s: driver >= %d, compute capability %d.%d-%d.%d)" % (
            self.name, self.torch, self.cuda, self.min_driver, *self.min_cc, *self.max_cc)


STACKS = {
    "cpu": Stack("cpu", "hf", "cpu", torch="2.13.0+cpu", cuda=None, transformers="4.33.3"),
    "cuda117": Stack("cuda117", "hf", "cuda", torch="2.0.1", cuda="11.7", transformers="4.33.3",
                     min_driver=515, min_cc=(3, 7), max_cc=(8, 6)),
    "cuda121": Stack("cuda121", "hf", "cuda", torch="2.1.2", cuda="12.1", transformers="4.33.3",
                     min_driver=525, min_cc=(5, 0), max_cc=(9, 0)),
    "vllm": Stack("vllm", "vllm", "cuda", torch="2.4.0", cuda="12.1", transformers="4.45.2",
                  min_driver=525, min_cc=(7, 0), max_cc=(9, 0)),
    "llamacpp-cpu": Stack("llamacpp-cpu", "llamacpp", "cpu", torch="-", cuda=None,
                          transformers="-"),
    "llamacpp-cuda": Stack("llamacpp-cuda", "llamacpp", "cuda", torch="-", cuda="12.4",
                           transformers="-", min_driver=525, min_cc=(5, 0), max_cc=(9, 0)),
}
# hf workers on GPUs: the first stack in this order that runs on every GPU of the worker
# (the CUDA 12 stack where the driver allows it: it runs every GPU generation cuda117
# does, and Hopper).
HF_CUDA_ORDER = ("cuda121", "cuda117")
# The driver branch the nvidia_driver role installs for a stack (its README's table).
DRIVER_BRANCH_FOR = {"cuda117": "515", "cuda121": "535", "vllm": "535", "llamacpp-cuda": "535"}
# What the plan table and the leaderboard call each backend's engine.
ENGINES = {"hf": "transformers", "vllm": "vLLM", "llamacpp": "llama.cpp"}


def choose(backend: str, device: str, gpus: list):
    """(stack, None) or (None, (what is wrong, fix)) for a worker on ``gpus``."""
    if device == "cpu":
        return STACKS["llamacpp-cpu" if backend == "llamacpp" else "cpu"], None
    candidates = {"vllm": ("vllm",), "llamacpp": ("llamacpp-cuda",)}.get(backend, HF_CUDA_ORDER)
    for name in candidates:
        stack = STACKS[name]
        if all(stack.runs_on(g.compute_capability, g.driver_major) for g in gpus):
            return stack, None
    return None, _refusal(backend, gpus)


def driver_fix(branch: str) -> str:
    """The settings that move a host to driver ``branch``: the branch and a version in it
    (the nvidia_driver role refuses a pinned version of another branch)."""
    return ('set nvidia_driver_branch: "%s" and nvidia_driver_version: "" (the branch\'s '
            'newest driver, or a %s version to pin)' % (branch, branch))


def _refusal(backend: str, gpus: list):
    gpu = gpus[0]
    worst_cc = max(g.compute_capability for g in gpus)
    low_cc = min(g.compute_capability for g in gpus)
    driver = min(g.driver_major for g in gpus)
    label = "GPU %d (%s, compute capability %s, driver %s)" % (
        gpu.index, gpu.name, gpu.cc_text, gpu.driver_version)
    if backend == "llamacpp":
        stack = STACKS["llamacpp-cuda"]
        if low_cc < stack.min_cc:
            old = min(gpus, key=lambda g: g.compute_capability)
            return ("the llama.cpp CUDA build needs compute capability %d.%d or newer but GPU "
                    "%d (%s) has %s" % (*stack.min_cc, old.index, old.name, old.cc_text),
                    "use newer GPUs, or device: cpu")
        if worst_cc > stack.max_cc:
            return ("the pinned llama.cpp CUDA build (CUDA %s) has no kernels for compute "
                    "capability %d.%d (%s)" % (stack.cuda, *worst_cc, label),
                    "use other GPUs for this worker")
        return ("the llama.cpp image is built with CUDA %s, which needs NVIDIA driver %d or "
                "newer, but GPU %d (%s) has driver %s" % (stack.cuda, stack.min_driver,
                                                         gpu.index, gpu.name, gpu.driver_version),
                "%s for this host and re-run site.yml (535 still drives every generation "
                "from Maxwell on: a Tesla P40 included)"
                % driver_fix(DRIVER_BRANCH_FOR["llamacpp-cuda"]))
    if backend == "vllm":
        stack = STACKS["vllm"]
        if low_cc < stack.min_cc:
            old = min(gpus, key=lambda g: g.compute_capability)
            return ("vllm needs compute capability 7.0 or newer but GPU %d (%s) has %s"
                    % (old.index, old.name, old.cc_text),
                    "use backend: hf on this GPU (e.g. a Tesla P40 is 6.1)")
        if worst_cc > stack.max_cc:
            return ("no pinned vllm stack has kernels for compute capability %d.%d (%s)"
                    % (*worst_cc, label), "use other GPUs for this worker")
        return ("the vllm image needs CUDA 12, i.e. NVIDIA driver %d or newer, but GPU %d "
                "(%s) has driver %s" % (stack.min_driver, gpu.index, gpu.name,
                                        gpu.driver_version),
                "upgrade the driver or use backend: hf (%s for this host installs one)"
                % driver_fix(DRIVER_BRANCH_FOR["vllm"]))
    new, old = STACKS["cuda121"], STACKS["cuda117"]
    if worst_cc > new.max_cc:
        return ("no pinned stack has kernels for compute capability %d.%d (%s): %s stops at "
                "%d.%d" % (*worst_cc, label, new.name, *new.max_cc),
                "use other GPUs for this worker")
    if low_cc < old.min_cc:
        return ("compute capability %d.%d (%s) is older than any pinned torch supports "
                "(%d.%d)" % (*low_cc, label, *old.min_cc), "use newer GPUs for this worker")
    if worst_cc > old.max_cc:
        return ("%s needs the CUDA 12 stack %s (torch %s; the CUDA 11.7 stack has no kernels "
                "past compute capability %d.%d), which needs NVIDIA driver %d or newer, but "
                "the host has driver %s" % (label, new.name, new.torch, *old.max_cc,
                                            new.min_driver, gpu.driver_version),
                "%s for this host and re-run site.yml (it installs the driver; the worker "
                "then runs the %s stack)" % (driver_fix(DRIVER_BRANCH_FOR["cuda121"]), new.name))
    return ("%s: the stacks need NVIDIA driver %d or newer (CUDA %s), the host has %s"
            % (label, old.min_driver, old.cuda, gpu.driver_version),
            "%s (or a newer branch) for this host and re-run site.yml"
            % driver_fix(DRIVER_BRANCH_FOR["cuda117"]))


def library_problem(model, stack: Stack):
    """(what, fix) when ``stack``'s libraries cannot load ``model``; None when they can."""
    spec = model.requires.get("transformers")
    if stack.backend == "llamacpp" or not spec or version_in(stack.transformers, spec):
        return None
    able = sorted(s.name for s in STACKS.values()
                  if s.backend != "llamacpp" and version_in(s.transformers, spec))
    fix = ("use a worker on one of the stacks that can: %s (backend: hf)" % ", ".join(able)
           if able else "widen or correct fastchat_models_extra['%s'].requires" % model.name)
    return ("%s needs transformers %s, but the %s stack has transformers %s"
            % (model.name, spec, stack.name, stack.transformers), fix)


GENERATIONS = [((3, 7), "Kepler"), ((5, 0), "Maxwell"), ((6, 0), "Pascal"), ((7, 0), "Volta"),
               ((7, 5), "Turing"), ((8, 0), "Ampere"), ((8, 9), "Ada"), ((9, 0), "Hopper")]


def _generation(cc):
    return [name for first, name in GENERATIONS if first <= cc][-1]


def _loads(entry, stack):
    """Whether ``stack`` can serve the catalogue ``entry``: its transformers loads the model's
    code (hf, vllm), or llama.cpp's converter converts the model's class (llamacpp)."""
    if stack.backend == "llamacpp":
        return entry.get("hf_architecture") in LLAMACPP_ARCHITECTURES
    spec = (entry.get("requires") or {}).get("transformers")
    return bool(spec is None or version_in(stack.transformers, spec))


def compatibility_rows(catalogue):
    """Model x stack x GPU generation x driver: the README's compatibility table.

    ``catalogue``: {model: entry} as in group_vars/all.yml. One row per model and stack:
    the engine, whether the stack can serve the model (its transformers loads the model's
    code; for llama.cpp, its converter converts the model's class), and on which GPUs and
    drivers the stack runs.
    """
    rows = []
    for model in sorted(catalogue):
        for stack in STACKS.values():
            if stack.device == "cpu":
                gpus = ("CPU (device: cpu, rehearsal labs)" if stack.backend == "llamacpp"
                        else "CPU (head services, device: cpu, rehearsal labs)")
            else:
                gpus = "compute capability %d.%d-%d.%d (%s ... %s), driver >= %d" % (
                    *stack.min_cc, *stack.max_cc, _generation(stack.min_cc),
                    _generation(stack.max_cc), stack.min_driver)
            rows.append({"model": model, "stack": stack.name, "backend": stack.backend,
                         "engine": ENGINES[stack.backend], "torch": stack.torch,
                         "transformers": stack.transformers,
                         "loads": _loads(catalogue[model], stack), "gpus": gpus})
    return rows


def compatibility_markdown(catalogue):
    """The compatibility table as README.md prints it (tests/test_readme.py compares)."""
    lines = ["| model | stack | engine (backend) | torch | transformers | serves the model | "
             "GPUs and driver |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in compatibility_rows(catalogue):
        lines.append("| %s | `%s` | %s (`%s`) | %s | %s | %s | %s |" % (
            row["model"], row["stack"], row["engine"], row["backend"], row["torch"],
            row["transformers"], "yes" if row["loads"] else "**no** (refused)", row["gpus"]))
    return "\n".join(lines)
