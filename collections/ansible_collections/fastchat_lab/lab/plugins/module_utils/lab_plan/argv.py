# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The FastChat command lines of the lab's services, as argv lists of plain strings.

Every value placed here has been checked by grammar.py (names, paths, URLs, sizes),
so no argument can smuggle a second one in: each list element is one argument.
Flags are FastChat 0.2.36's (fastchat/serve/*.py argparse).
"""

from __future__ import annotations

import json

BASE = ["python3", "-m"]


def controller(port: int, dispatch_method: str) -> list:
    return BASE + ["fastchat.serve.controller", "--host", "0.0.0.0", "--port", str(port),
                   "--dispatch-method", dispatch_method]


def openai_api(port: int, controller_url: str, web_ui_url: str) -> list:
    # The API keys are read by the server itself from a root-only file (the project's
    # hardening patch), never given here. Browsers may call the API from the lab's web UI
    # only (FastChat allows every origin by default, so any page a lab user opens could
    # drive the models with a key the browser holds).
    return BASE + ["fastchat.serve.openai_api_server", "--host", "0.0.0.0", "--port", str(port),
                   "--controller-address", controller_url,
                   "--allowed-origins", json.dumps([web_ui_url])]


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


# llama-server inside the llama.cpp images (roles/fastchat_image, stacks llamacpp-*), and the
# port it listens on inside the worker's container (127.0.0.1 only: the worker adds
# --host, --port and a key of its own making).
LLAMA_SERVER = "/opt/llamacpp/bin/llama-server"
LLAMA_SERVER_PORT = 8090
LLAMACPP_WORKER = "fastchat_lab_llamacpp_worker"


def llamacpp_worker(worker, run_device: str, gguf_path: str, port: int, url: str,
                    controller_url: str, conv_template, slots: int, context: int,
                    tensor_split=None) -> list:
    """A llamacpp worker: FastChat's worker protocol in front of llama-server, which serves
    ``slots`` requests at once, each up to ``context`` tokens (the KV cache holds them all)."""
    argv = BASE + [LLAMACPP_WORKER, "--model-path", gguf_path,
                   "--model-names", worker.model.name, "--host", "0.0.0.0", "--port", str(port),
                   "--worker-address", url, "--controller-address", controller_url]
    if conv_template:
        argv += ["--conv-template", conv_template]
    argv += ["--limit-worker-concurrency", str(slots), "--server-port", str(LLAMA_SERVER_PORT),
             # How prompts must reach llama-server (model_weights writes it beside the GGUF).
             "--gguf-record", gguf_path + ".json",
             "--", LLAMA_SERVER, "--model", gguf_path, "--alias", worker.model.name,
             "--ctx-size", str(slots * context), "--parallel", str(slots),
             "--n-gpu-layers", "999" if run_device == "cuda" else "0"]
    if tensor_split:
        argv += ["--split-mode", "layer", "--tensor-split", ",".join(map(str, tensor_split))]
    # llama-server keeps a cache of prompts in host RAM (8 GiB by default, per worker).
    argv += ["--cache-ram", "2048"]
    return argv + ["--no-webui", "--metrics"]
