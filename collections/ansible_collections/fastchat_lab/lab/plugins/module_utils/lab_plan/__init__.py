# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The fastchat-lab planner: one owner for the lab plan.

Pure Python (standard library only, no Ansible import): pytest imports it directly, the
``fastchat_lab.lab.lab_plan`` action plugin calls :func:`build_plan`. A map of the
package, in the order a plan is made:

=================  =======================================================================
``problems.py``    Problem, PlanError: every refusal names host, variable, what and fix
``grammar.py``     the shapes of names, addresses, revisions, URLs, paths, sizes
``model.py``       the lab model (dataclasses): Settings, CatalogueModel, Gpu, Worker, Host
``inputs.py``      reading and checking settings, catalogue, hosts and workers
``gpus.py``        one GPU check for gathered facts and declared GPUs
``stacks.py``      which image stack runs a worker; which models a stack can load
``memory.py``      GPU memory a worker needs at its context, per GPU (calibrated)
``argv.py``        FastChat's command lines, as argv lists
``placement.py``   build_plan: names, GPUs, ports, stacks, memory -> the plan
``table.py``       the plan as the table plan.yml prints
=================  =======================================================================

(``nvidia_smi.py`` beside this package parses nvidia-smi; the GPU facts module ships it.)

Inputs of :func:`build_plan`
----------------------------
``hosts``      {inventory_hostname: vars}. Vars read per host: ``fastchat_workers``,
               ``fastchat_address``, ``ansible_host``, ``fastchat_gpus`` (declared GPUs),
               ``fastchat_gpu_facts`` / ``ansible_facts.fastchat_gpu_facts`` (gathered
               by the gpu_facts role; win when non-empty), ``ansible_facts.default_ipv4``.
``groups``     {group: [hostnames]}; ``fastchat_head`` and ``gpu_hosts`` are read.
``catalogue``  {model name: entry} (``fastchat_models`` merged with
               ``fastchat_models_extra``, :func:`merge_catalogue`); entry keys: source,
               revision, architecture or gpu_memory_gb, conv_template,
               trust_remote_code, local_path, requires, aliases (group_vars/all.yml).
``settings``   {key: value} for every key of ``model.SETTING_KEYS`` (the lab_plan
               role's defaults own the values).
``templates``  set of FastChat conversation template names, or None to skip that check.

Output (JSON-serialisable; ``playbooks/plan.yml -e fastchat_lab_plan_file=PATH`` writes it)
----------------------------------------------------------------------------------------
::

    {
      "summary": {
        "head": "gpu01", "head_address": "192.0.2.10",
        "controller_address": "http://192.0.2.10:21001",
        "api_url": "https://192.0.2.10:8000/v1", "web_ui_url": "https://192.0.2.10:7860",
        "tls": true,                       # the head's TLS proxy serves the API and web UI
        "models": ["Baichuan-13B-Chat", "Qwen-7B-Chat"],        # served model names
        "workers": ["qwen-7b-chat-gpu1", ...], "gpu_hosts": ["gpu01"],
        "hosts": ["gpu01"],                                     # every host in the plan
        "addresses": ["192.0.2.10"],                            # their addresses, sorted
        "named_addresses": [],                                  # those that are names
        "stacks": ["cpu", "cuda117"],                           # image stacks of the lab
        "weights_dir": "/srv/fastchat-lab/models",              # on the hosts
        "logs_dir": "/var/lib/fastchat-lab/logs",               # the arena's votes, on the head
        "deploy_dir": "/etc/fastchat-lab",     # compose project, secrets, TLS files, on each host
        "models_dir": "/models",                                # in the containers
        "rehearsal": false,
        "llamacpp": {"commit": "0c1e5709...",     # llama.cpp the images build, GGUFs name
                     "cuda_archs": ["61"],         # the llama.cpp CUDA build's GPUs
                     "gguf_dir": "/srv/fastchat-lab/models/.gguf"},  # on the hosts
      },
      "models": {                       # only the catalogue entries that some worker uses
        "Qwen-7B-Chat": {"source", "revision", "gpu_memory_gb", "architecture",
                         "conv_template", "trust_remote_code", "local_path",
                         "container_path", "host_path", "requires", "aliases",
                         "hf_architecture",       # config.json's class (llama.cpp)
                         "hosts",                 # hosts needing the HF weights (hf, vllm)
                         "engine": "llama.cpp", "precision": "q8_0",   # as served
                         # llamacpp workers' GGUF files, made once on the cache host:
                         "gguf": {"q8_0": {"model", "quantization", "file", "host_path",
                                           "container_path", "hosts"}},
                         # The template every worker of the model is started with
                         # (--conv-template: the worker's conv_template, else the
                         # catalogue's; null: FastChat's adapter chooses by name). The web
                         # UI prompts the model with it too (module_utils/lab_page.py
                         # conv_templates); workers of one model with different
                         # templates are refused.
                         "served_conv_template": "qwen-7b-chat"},
      },
      "hosts": {
        "gpu01": {
          "address": "192.0.2.10", "is_head": true, "is_gpu_host": true,
          "gpu_source": "declared" | "facts" | "none",
          "gpus": [{"index", "uuid", "name", "memory_mib", "compute_capability",
                    "driver_version"}],
          "stacks": ["cpu", "cuda117"],   # image stacks this host needs, sorted
          "models": ["Baichuan-13B-Chat", "Qwen-7B-Chat"],  # HF weights this host needs
          "gguf": [{"model", "quantization", "file", "host_path", "container_path"}],
          "internal_ports": [21001, 21002, 21003],  # controller + workers: lab hosts only
          "services": [                   # head services first, then workers in order
            {"name": "qwen-7b-chat-gpu1", "kind": "model_worker",
             # kind: controller | openai_api | web_ui | model_worker
             "port": 21002, "stack": "cuda117",   # cpu | cuda117 | cuda121 | vllm |
                                                  # llamacpp-cpu | llamacpp-cuda
             "gpus": ["1"],                        # host GPU indices (Docker device ids)
             "argv": ["python3", "-m", "fastchat.serve.model_worker", ...],
             "url": "http://192.0.2.10:21002",    # how others reach this service
             "controller_address": "http://192.0.2.10:21001",
             "model": "Qwen-7B-Chat" | null, "model_path": "/models/Qwen-7B-Chat" | null,
             "backend": "hf" | "vllm" | "llamacpp" | null,
             "engine": "transformers" | "vLLM" | "llama.cpp" | null,
             "precision": "fp16" | "int8" | "q8_0" | "q4_k_m" | null,
             "quantization": "q8_0" | null,       # llamacpp
             "parallel": 4 | null,                # llamacpp: llama-server's slots
             "device": "cuda" | "cpu" | null,
             "num_gpus": 1,
             "memory": {"need_gb": 28.79,          # at the served context (all its GPUs)
                        "available_gb": 24.16,     # null: host RAM (cpu workers)
                        "context_tokens": 8192,    # the context served
                        "max_context_tokens": 3728,  # the most that fits
                        "model_context_tokens": 8192,
                        "gpus": [{"index", "need_gb", "available_gb", "layers"}],
                        "basis": "architecture" | "catalogue",
                        "slots": 4 | null} | null,      # llamacpp: slots at that context
             "rehearsal": false,           # true: GPUs pinned, FastChat on CPU
             "bind": "0.0.0.0",            # where its port listens (the proxy's, with TLS)
             "backend_port": null},        # with TLS (API, web UI): FastChat's own port,
                                           # published on the head's 127.0.0.1 only
          ],
        },
      },
      "warnings": ["gpu01: fastchat_workers[0].gpus: ... Fix: ..."],
    }

Head services (controller, openai_api, web_ui) use stack ``cpu``: they need no GPU.

Every problem found is collected; :class:`PlanError` is raised once with all of them.
Each message reads ``<host or all>: <variable>: <what is wrong>. Fix: <what to do>.``
Nothing but a plan or a PlanError comes out, whatever the input
(tests/test_planner_properties.py).
"""

from __future__ import annotations

from .grammar import parse_memory_size
from .inputs import merge_catalogue
from .model import GPU_GROUP, HEAD_GROUP, SETTING_KEYS
from .placement import build_plan
from .problems import PlanError, Problem
from .table import format_plan_table

__all__ = ["GPU_GROUP", "HEAD_GROUP", "PlanError", "Problem", "SETTING_KEYS", "build_plan",
           "format_plan_table", "merge_catalogue", "parse_memory_size"]
