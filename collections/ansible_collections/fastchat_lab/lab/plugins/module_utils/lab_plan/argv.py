# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The FastChat command lines of the lab's services, as argv lists of plain strings.

Every value placed here has been checked by grammar.py (names, paths, URLs, sizes),
so no argument can smuggle a second one in: each list element is one argument.
Flags are FastChat 0.2.36's (fastchat/serve/*.py argparse).
"""

from __future__ import annotations

BASE = ["python3", "-m"]


def controller(port: int, dispatch_method: str) -> list:
    return BASE + ["fastchat.serve.controller", "--host", "0.0.0.0", "--port", str(port),
                   "--dispatch-method", dispatch_method]


def openai_api(port: int, controller_url: str) -> list:
    # The API keys are added by the launcher from a root-only env file, never here.
    return BASE + ["fastchat.serve.openai_api_server", "--host", "0.0.0.0", "--port", str(port),
                   "--controller-address", controller_url]


def web_ui(port: int, controller_url: str) -> list:
    return BASE + ["fastchat.serve.gradio_web_server_multi", "--host", "0.0.0.0",
                   "--port", str(port), "--controller-url", controller_url,
                   "--model-list-mode", "reload"]


def worker(worker, run_device: str, model_path: str, port: int, url: str,
           controller_url: str, conv_template, max_model_len=None) -> list:
    """A model worker: ``worker`` is a checked lab_plan.model.Worker."""
    backend = worker.backend
    module = "fastchat.serve.vllm_worker" if backend == "vllm" else "fastchat.serve.model_worker"
    argv = BASE + [module, "--model-path", model_path, "--model-names", worker.model.name,
                   "--host", "0.0.0.0", "--port", str(port), "--worker-address", url,
                   "--controller-address", controller_url]
    if backend == "vllm":
        # FastChat 0.2.36 vllm_worker: --num-gpus sets vLLM's tensor_parallel_size, and its
        # --trust_remote_code is store_false with default True (passing it turns it OFF).
        argv += ["--num-gpus", str(len(worker.gpus))]
        if not worker.model.trust_remote_code:
            argv.append("--trust_remote_code")
        if max_model_len is not None:
            argv += ["--max-model-len", str(max_model_len)]
    else:
        argv += ["--device", run_device]
        if run_device == "cuda":
            argv += ["--num-gpus", str(len(worker.gpus))]
            if len(worker.gpus) > 1 and worker.max_gpu_memory is not None:
                argv += ["--max-gpu-memory", worker.max_gpu_memory]
        if worker.load_8bit:
            argv.append("--load-8bit")
    if conv_template:
        argv += ["--conv-template", conv_template]
    if worker.limit_worker_concurrency is not None:
        argv += ["--limit-worker-concurrency", str(worker.limit_worker_concurrency)]
    return argv
