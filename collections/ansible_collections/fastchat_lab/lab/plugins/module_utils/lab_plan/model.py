# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The lab model: what the inventory says, once it has been checked (inputs.py).

Every value here has its shape already (grammar.py): later steps -- placement, the
memory model, the command lines -- use them without checking again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The group names the playbooks use (fixed: every play names them).
HEAD_GROUP = "fastchat_head"
GPU_GROUP = "gpu_hosts"
BACKENDS = ("hf", "vllm", "llamacpp")
# llama.cpp's quantizations the lab makes GGUF files of (llama-quantize's names, lower case).
QUANTIZATIONS = ("q8_0", "q4_k_m", "f16")
DEFAULT_QUANTIZATION = "q8_0"
# llama-server's slots (requests decoded together, continuous batching) when a worker does
# not say: as many as fit at the model's whole context, up to this.
DEFAULT_PARALLEL = 4
DEVICES = ("cuda", "cpu")
DISPATCH_METHODS = ("shortest_queue", "lottery")
# Names of the head's services (compose service names); workers may not take them.
HEAD_SERVICES = {"controller": "controller", "openai_api": "openai-api", "web_ui": "web-ui"}
# Names reserved for services the head may gain (the TLS proxy).
RESERVED_NAMES = frozenset(HEAD_SERVICES.values()) | {"proxy", "tls-proxy", "leaderboard"}
# The settings the planner needs; roles/lab_plan/defaults/main.yml owns their values.
SETTING_KEYS = ("controller_port", "worker_base_port", "api_port", "web_ui_port",
                "api_bind", "web_ui_bind", "tls", "api_backend_port", "web_ui_backend_port",
                "dispatch_method", "models_dir", "weights_dir", "logs_dir", "deploy_dir",
                "rehearsal", "llamacpp_commit")


@dataclass(frozen=True)
class Settings:
    controller_port: int
    worker_base_port: int
    api_port: int
    web_ui_port: int
    api_bind: str          # where the API port listens (the TLS proxy's, or FastChat's)
    web_ui_bind: str
    tls: bool              # a TLS proxy on the head serves api_port and web_ui_port
    api_backend_port: int  # with tls: FastChat's own API port, on the head's loopback
    web_ui_backend_port: int
    dispatch_method: str
    models_dir: str        # weights directory inside the containers
    weights_dir: str       # weights directory on the hosts (<dir>/<model name>)
    logs_dir: str          # the web UI's conversation and vote logs on the head
    deploy_dir: str        # every host's compose project, launcher, secrets and TLS files
    rehearsal: bool        # fake GPUs: keep the assignment, run FastChat on CPU
    llamacpp_commit: str   # the llama.cpp commit the images build and the GGUF files name


@dataclass(frozen=True)
class Architecture:
    """What the memory model needs from a model's config.json and model card."""

    parameters: int        # number of weights
    layers: int            # num_hidden_layers
    hidden_size: int
    attention_heads: int
    kv_heads: int          # key/value heads (= attention_heads without grouped-query attention)
    context_tokens: int    # the longest context FastChat serves it at (its config's maximum)
    vocab_size: int
    alibi: bool            # keeps an ALiBi mask of heads x context^2 (Baichuan-13B)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.attention_heads


@dataclass(frozen=True)
class CatalogueModel:
    name: str
    source: str
    revision: str
    conv_template: str | None
    trust_remote_code: bool
    local_path: str | None
    architecture: Architecture | None
    gpu_memory_gb: float | None      # a flat figure, for models without architecture
    requires: dict                   # {"transformers": ">=4.32,<4.34"}
    aliases: tuple                   # other names an answer may reveal the model by
    hf_architecture: str | None = None   # config.json's architectures[0] (llama.cpp's converter)


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str | None
    name: str
    memory_mib: int
    compute_capability: tuple        # (major, minor)
    driver_version: str

    @property
    def cc_text(self) -> str:
        return "%d.%d" % self.compute_capability

    @property
    def driver_major(self) -> int:
        return int(self.driver_version.split(".")[0])

    def as_dict(self) -> dict:
        return {"index": self.index, "uuid": self.uuid, "name": self.name,
                "memory_mib": self.memory_mib, "compute_capability": self.cc_text,
                "driver_version": self.driver_version}


@dataclass(frozen=True)
class Worker:
    """One entry of a host's fastchat_workers, checked."""

    host: str
    position: int
    model: CatalogueModel
    gpus: tuple                      # host GPU indices
    backend: str
    device: str
    name: str | None                 # None: derived from the model and GPUs
    port: int | None                 # None: the next free port
    max_gpu_memory: str | None
    cap_bytes: int | None
    load_8bit: bool
    conv_template: str | None
    limit_worker_concurrency: int | None
    quantization: str | None = None  # llamacpp: q8_0 | q4_k_m | f16
    parallel: int | None = None      # llamacpp: llama-server's slots (None: as many as fit)

    @property
    def var(self) -> str:
        return "fastchat_workers[%d]" % self.position


@dataclass
class Host:
    name: str
    address: str
    is_head: bool
    is_gpu_host: bool
    gpu_source: str                  # "facts" | "declared" | "none"
    gpus: list = field(default_factory=list)
    workers: list = field(default_factory=list)
