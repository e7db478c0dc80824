# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Read and check the inventory: settings, the model catalogue, hosts and workers.

Each reader returns lab-model objects (model.py) for what is valid and records a
Problem for what is not; nothing here raises, whatever the input.
"""

from __future__ import annotations

from . import grammar
from .gpus import host_gpus
from .llamacpp_architectures import ARCHITECTURES as LLAMACPP_ARCHITECTURES
from .model import (
    BACKENDS, DEFAULT_PARALLEL, DEFAULT_QUANTIZATION, DEVICES, DISPATCH_METHODS, QUANTIZATIONS,
    RESERVED_NAMES, SETTING_KEYS, Architecture, CatalogueModel, Settings, Worker,
)
from .problems import key as keyed, show

CATALOGUE_KEYS = ("source", "revision", "gpu_memory_gb", "architecture", "conv_template",
                  "trust_remote_code", "local_path", "requires", "aliases", "hf_architecture")
ARCH_KEYS = ("parameters", "layers", "hidden_size", "attention_heads", "kv_heads",
             "context_tokens", "vocab_size", "alibi")
REQUIRES_KEYS = ("transformers",)
WORKER_KEYS = ("model", "gpus", "backend", "device", "name", "port", "max_gpu_memory",
               "load_8bit", "conv_template", "limit_worker_concurrency", "quantization",
               "parallel")
CATALOGUE_FIX = "correct it in fastchat_models_extra in your inventory"
BOOL_FIX = "write true or false without quotes"
# Settings also come from the command line, where -e key=value is always a string.
SETTING_BOOL_FIX = ("write true or false without quotes (on the command line: "
                    "-e '{\"%s\": true}')")
PORT_SETTINGS = ("controller_port", "worker_base_port", "api_port", "web_ui_port",
                 "api_backend_port", "web_ui_backend_port")


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------

def read_settings(raw, problems) -> Settings | None:
    """The lab-wide settings (roles/lab_plan/defaults/main.yml owns their defaults)."""
    raw = raw if isinstance(raw, dict) else {}
    missing = [k for k in SETTING_KEYS if k not in raw]
    for key in missing:
        problems.add("all", "fastchat_" + key, "is not set", "keep the lab_plan role's "
                     "defaults (roles/lab_plan/defaults/main.yml) or set it")
    if missing:
        return None
    before = len(problems)
    for key in PORT_SETTINGS:
        value = raw[key]
        if not grammar.is_int(value) or not 1 <= value <= 65535:
            problems.add("all", "fastchat_" + key, "must be a port number (1-65535), got %s"
                         % show(value), "set a whole number without quotes, e.g. 21001")
    if raw["dispatch_method"] not in DISPATCH_METHODS:
        problems.add("all", "fastchat_dispatch_method", "%s is not known" % show(
            raw["dispatch_method"]), "use one of %s" % ", ".join(DISPATCH_METHODS))
    for key in ("rehearsal", "tls"):
        if not isinstance(raw[key], bool):
            problems.add("all", "fastchat_" + key, "must be a boolean, got %s"
                         % show(raw[key]), SETTING_BOOL_FIX % ("fastchat_" + key))
    for key in ("api_bind", "web_ui_bind"):
        if not grammar.is_ipv4(raw[key]):
            problems.add("all", "fastchat_" + key, "%s is not an IPv4 address" % show(raw[key]),
                         "use 0.0.0.0 (every interface), 127.0.0.1 (this host only) or one "
                         "of the head's IPv4 addresses")
    bad = grammar.container_dir_problem(raw["models_dir"])
    if bad:
        problems.add("all", "fastchat_models_dir", bad, "use a directory of its own in the "
                     "containers, e.g. /models")
    bad = grammar.host_dir_problem(raw["weights_dir"])
    if bad:
        problems.add("all", "fastchat_weights_dir", bad, "use a directory the lab owns, e.g. "
                     "/srv/fastchat-lab/models (its model directories are replaced when "
                     "weights are copied)")
    bad = grammar.revision_problem(raw["llamacpp_commit"])
    if bad:
        problems.add("all", "fastchat_llamacpp_commit", bad, "pin llama.cpp's full commit id "
                     "(40 hex characters), e.g. the lab_plan role's default")
    # The deploy directory's shape only: the settings gate (module_utils/lab_settings.py,
    # owned_dir) refuses a system or shared directory before any host changes.
    for key, problem, example, holds in (
            ("logs_dir", grammar.host_dir_problem, "/var/lib/fastchat-lab/logs", "the votes"),
            ("deploy_dir", grammar.path_problem, "/etc/fastchat-lab", "the lab's secrets")):
        bad = problem(raw[key])
        if bad:
            problems.add("all", "fastchat_" + key, bad, "use a directory the lab owns, e.g. %s "
                         "(%s live there)" % (example, holds))
        elif not grammar.host_dir_problem(raw["weights_dir"]) and grammar.nested(raw[key], raw["weights_dir"]):
            problems.add("all", "fastchat_" + key, "%r and fastchat_weights_dir %r overlap: copying "
                         "weights replaces model directories, which must never touch %s"
                         % (raw[key], raw["weights_dir"], holds),
                         "give it a directory of its own, e.g. %s" % example)
    if len(problems) > before:
        return None
    ports = {}
    head_ports = ("controller_port", "api_port", "web_ui_port") + (
        ("api_backend_port", "web_ui_backend_port") if raw["tls"] else ())
    for key in head_ports:
        if raw[key] in ports:
            problems.add("all", "fastchat_" + key, "port %d is also fastchat_%s: the head's "
                         "services need a port each" % (raw[key], ports[raw[key]]),
                         "give each of %s its own port" % ", ".join(
                             "fastchat_" + k for k in head_ports))
        ports.setdefault(raw[key], key)
    return Settings(**{k: raw[k] for k in SETTING_KEYS})


# ---------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------

def merge_catalogue(base, extra):
    """``fastchat_models`` with ``fastchat_models_extra`` merged over it by model name.

    An extra entry for a known model overrides only the keys it sets (e.g. a
    ``local_path`` or a newer ``revision``); an entry for a new name adds a model.
    Inputs that are not mappings are passed on for :func:`read_catalogue` to report.
    """
    if not isinstance(base, dict):
        return base
    if not isinstance(extra, dict):
        return extra if extra else dict(base)
    merged = {name: (dict(entry) if isinstance(entry, dict) else entry)
              for name, entry in base.items()}
    for name, entry in extra.items():
        if isinstance(entry, dict) and isinstance(merged.get(name), dict):
            merged[name].update(entry)
        else:
            merged[name] = dict(entry) if isinstance(entry, dict) else entry
    return merged


def read_catalogue(catalogue, templates, problems) -> tuple:
    """({name: CatalogueModel} of valid entries, set of every name given)."""
    if not isinstance(catalogue, dict) or not catalogue:
        problems.add("all", "fastchat_models", "the model catalogue is empty or not a mapping "
                     "of model name to entry, got %s" % show(catalogue),
                     "keep group_vars/all.yml and add models with fastchat_models_extra")
        return {}, set()
    good, names, folded = {}, set(), {}
    for name, entry in catalogue.items():
        label = "fastchat_models[%s]" % show(name, 40)
        bad = grammar.model_name_problem(name)
        if bad:
            problems.add("all", label, bad, "rename the model in fastchat_models_extra (the "
                         "name becomes a directory, a volume and a FastChat model name)")
            continue
        names.add(name)
        if name.lower() in folded:
            problems.add("all", label, "differs from %s only in case: their weights "
                         "directories would clash on some file systems" % folded[name.lower()],
                         "give the models names that differ in more than case")
            continue
        folded[name.lower()] = name
        model = _read_entry(name, label, entry, templates, problems)
        if model is not None:
            good[name] = model
    return good, names


def _read_entry(name, label, entry, templates, problems):
    if not isinstance(entry, dict):
        problems.add("all", label, "the entry is not a mapping, got %s" % show(entry),
                     "give source, revision and architecture (or gpu_memory_gb)")
        return None
    before = len(problems)
    for key in sorted((k for k in entry if k not in CATALOGUE_KEYS), key=repr):
        problems.add("all", label + keyed(key), "unknown key", "use only %s"
                     % ", ".join(CATALOGUE_KEYS))
    for key in ("source", "revision"):
        if entry.get(key) in (None, ""):
            problems.add("all", "%s.%s" % (label, key), "missing", "every catalogue entry "
                         "needs source (hub id or git URL) and revision (a pinned commit)")
    if entry.get("source") not in (None, ""):
        bad = grammar.source_problem(entry["source"])
        if bad:
            problems.add("all", label + ".source", bad, "give a hub id like \"Qwen/Qwen-7B-Chat\" "
                         "or an https:// or file:// git URL")
    if entry.get("revision") not in (None, ""):
        bad = grammar.revision_problem(entry["revision"])
        if bad:
            problems.add("all", label + ".revision", bad, "pin the full commit id of the "
                         "model repository (git ls-remote, or the hub's commit history)")
    local_path = entry.get("local_path")
    if local_path is not None:
        bad = grammar.host_dir_problem(local_path)
        if bad:
            problems.add("all", label + ".local_path", bad, "give the absolute path of the "
                         "directory that holds the weights, e.g. /data/models/%s" % name)
    tmpl = entry.get("conv_template")
    if tmpl is not None:
        _check_template(tmpl, "all", label + ".conv_template", templates, problems)
    trc = entry.get("trust_remote_code", False)
    if not isinstance(trc, bool):
        problems.add("all", label + ".trust_remote_code", "must be a boolean, got %s"
                     % show(trc), BOOL_FIX)
    arch = _read_architecture(label, entry.get("architecture"), problems)
    mem = entry.get("gpu_memory_gb")
    if mem is not None and (not grammar.is_number(mem) or not 0 < mem <= 10000):
        problems.add("all", label + ".gpu_memory_gb", "must be a positive number of GB, got %s"
                     % show(mem), "use the fp16 figure from the model card, e.g. 17")
    if entry.get("architecture") is None and mem is None:
        problems.add("all", label + ".architecture", "missing (and no gpu_memory_gb)",
                     "give the architecture from the model's config.json (parameters, "
                     "layers, hidden_size, attention_heads, kv_heads, context_tokens, "
                     "vocab_size, alibi), or at least gpu_memory_gb from its model card")
    requires = _read_requires(label, entry.get("requires", {}), problems)
    hf_arch = entry.get("hf_architecture")
    if hf_arch is not None and (not isinstance(hf_arch, str)
                                or not grammar.HF_ARCH_RE.match(hf_arch)):
        problems.add("all", label + ".hf_architecture", "%s is not a model class name"
                     % show(hf_arch), "copy architectures[0] from the model's config.json, "
                     "e.g. QWenLMHeadModel")
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip()
                                                 for a in aliases):
        problems.add("all", label + ".aliases", "must be a list of names, got %s"
                     % show(aliases), "write e.g. aliases: [千问, Alibaba]")
    else:
        for pos, alias in enumerate(aliases):
            bad = grammar.alias_problem(alias)
            if bad:
                problems.add("all", "%s.aliases[%d]" % (label, pos), bad,
                             "give names only this model calls itself, e.g. [千问, Alibaba]")
    if len(problems) > before:
        return None
    return CatalogueModel(
        name=name, source=entry["source"], revision=entry["revision"], conv_template=tmpl,
        trust_remote_code=trc, local_path=local_path, architecture=arch,
        gpu_memory_gb=float(mem) if mem is not None else None, requires=requires,
        aliases=tuple(aliases), hf_architecture=hf_arch)


def _read_architecture(label, arch, problems):
    if arch is None:
        return None
    var = label + ".architecture"
    if not isinstance(arch, dict):
        problems.add("all", var, "must be a mapping, got %s" % show(arch),
                     "copy the numbers from the model's config.json")
        return None
    before = len(problems)
    for key in sorted((k for k in arch if k not in ARCH_KEYS), key=repr):
        problems.add("all", var + keyed(key), "unknown key", "use only %s"
                     % ", ".join(ARCH_KEYS))
    values = {}
    limits = {"parameters": 10 ** 13, "layers": 1000, "hidden_size": 10 ** 6,
              "attention_heads": 10 ** 4, "kv_heads": 10 ** 4, "context_tokens": 10 ** 7,
              "vocab_size": 10 ** 7}
    for key, top in limits.items():
        value = arch.get(key, arch.get("attention_heads") if key == "kv_heads" else None)
        if not grammar.is_int(value) or not 1 <= value <= top:
            problems.add("all", "%s.%s" % (var, key), "must be a whole number from 1 to %d, "
                         "got %s" % (top, show(value)), "copy it from the model's config.json")
        values[key] = value
    alibi = arch.get("alibi", False)
    if not isinstance(alibi, bool):
        problems.add("all", var + ".alibi", "must be a boolean, got %s" % show(alibi),
                     BOOL_FIX)
    if len(problems) > before:
        return None
    if values["hidden_size"] % values["attention_heads"] or \
            values["attention_heads"] % values["kv_heads"]:
        problems.add("all", var, "hidden_size %d, attention_heads %d and kv_heads %d do not "
                     "divide evenly" % (values["hidden_size"], values["attention_heads"],
                                        values["kv_heads"]),
                     "copy hidden_size, num_attention_heads and num_key_value_heads from the "
                     "model's config.json")
        return None
    return Architecture(alibi=alibi, **values)


def _read_requires(label, requires, problems) -> dict:
    if not isinstance(requires, dict):
        problems.add("all", label + ".requires", "must be a mapping like {transformers: "
                     "\">=4.32,<4.34\"}, got %s" % show(requires), "write it as a mapping")
        return {}
    out = {}
    for key, spec in requires.items():
        if key not in REQUIRES_KEYS:
            problems.add("all", label + ".requires" + keyed(key), "unknown library",
                         "use only %s" % ", ".join(REQUIRES_KEYS))
            continue
        bad = grammar.spec_problem(spec)
        if bad:
            problems.add("all", label + ".requires" + keyed(key), bad,
                         "write a range like \">=4.32,<4.34\"")
            continue
        out[key] = spec
    return out


def _check_template(tmpl, where, var, templates, problems) -> bool:
    if not isinstance(tmpl, str):
        problems.add(where, var, "must be a text, got %s" % show(tmpl),
                     "name one of FastChat's conversation templates")
        return False
    if templates is not None and tmpl not in templates:
        problems.add(where, var, "%s is not a template of the installed FastChat" % show(tmpl),
                     "use one of FastChat's templates (e.g. %s)" % _some(templates, tmpl))
        return False
    return True


def _some(templates, near):
    names = sorted(templates)
    key = grammar.slug(near).split("-")[0]
    close = [n for n in names if key and key in n]
    return ", ".join((close or names)[:6])


# ---------------------------------------------------------------------------
# Hosts and workers
# ---------------------------------------------------------------------------

def read_address(host, hvars, problems) -> str | None:
    """How the other lab hosts (and their containers) reach ``host``.

    ``fastchat_address`` when set; else ``ansible_host`` when it is an IP address; else
    the host's default IPv4 address from its gathered facts (playbooks/gpu_facts.yml
    gathers them); else ``ansible_host`` or the inventory name. An IP address keeps
    the compose projects independent of name resolution, so a host joining the lab
    changes nothing on the others.
    """
    if hvars.get("fastchat_address") not in (None, ""):
        value, var = hvars["fastchat_address"], "fastchat_address"
    else:
        ansible_host = hvars.get("ansible_host")
        facts = hvars.get("ansible_facts") if isinstance(hvars.get("ansible_facts"), dict) else {}
        default_ipv4 = facts.get("default_ipv4") if isinstance(facts.get("default_ipv4"), dict) \
            else {}
        if ansible_host not in (None, "") and grammar.is_ip(ansible_host):
            value, var = ansible_host, "ansible_host"
        elif default_ipv4.get("address") and grammar.is_ip(default_ipv4["address"]):
            value, var = default_ipv4["address"], "ansible_facts.default_ipv4"
        elif ansible_host not in (None, ""):
            value, var = ansible_host, "ansible_host"
        else:
            value, var = host, "inventory_hostname"
    bad = grammar.address_problem(value)
    if bad:
        problems.add(host, var, "%s: the other hosts could not reach this one by it" % bad,
                     "set fastchat_address to the host's IPv4 address on the lab network "
                     "(or a host name that resolves to it)")
        return None
    return value


def read_host_gpus(host, hvars, problems):
    return host_gpus(host, hvars, problems)


def read_worker(host, pos, worker, models, names, templates, settings, gpus, gpu_source,
                problems) -> Worker | None:
    """One fastchat_workers entry checked against the host's GPUs and the catalogue."""
    var = "fastchat_workers[%d]" % pos
    if not isinstance(worker, dict):
        problems.add(host, var, "must be a mapping with at least model and gpus, got %s"
                     % show(worker), "write \"- model: NAME\" and \"gpus: [0]\"")
        return None
    before = len(problems)
    for key in sorted((k for k in worker if k not in WORKER_KEYS), key=repr):
        problems.add(host, var + keyed(key), "unknown key (a typo?)",
                     "use only %s" % ", ".join(WORKER_KEYS))
    model = _worker_model(host, var, worker.get("model"), models, names, problems)
    backend = worker.get("backend", "hf")
    if backend not in BACKENDS:
        problems.add(host, var + ".backend", "%s is not known" % show(backend),
                     "use %s" % ", ".join(BACKENDS))
    quantization, parallel = _llamacpp_keys(host, var, worker, backend, model, settings,
                                            problems)
    device = worker.get("device", "cuda")
    if device not in DEVICES:
        problems.add(host, var + ".device", "%s is not known" % show(device),
                     "use cuda or cpu")
    load_8bit = worker.get("load_8bit", False)
    if not isinstance(load_8bit, bool):
        problems.add(host, var + ".load_8bit", "must be a boolean, got %s" % show(load_8bit),
                     BOOL_FIX)
    limit = worker.get("limit_worker_concurrency")
    if limit is not None and (not grammar.is_int(limit) or not 1 <= limit <= 1024):
        problems.add(host, var + ".limit_worker_concurrency", "must be a positive whole "
                     "number (at most 1024), got %s" % show(limit), "e.g. 5")
    name = worker.get("name")
    if name is not None:
        bad = grammar.worker_name_problem(name, RESERVED_NAMES)
        if bad:
            problems.add(host, var + ".name", bad, "name it like qwen-7b-chat-gpu1 (it names "
                         "the container and the compose service)")
    tmpl = worker.get("conv_template")
    if tmpl is not None:
        _check_template(tmpl, host, var + ".conv_template", templates, problems)
    indices = _worker_gpus(host, var, worker.get("gpus", []), device, gpus, gpu_source, problems)
    port = worker.get("port")
    if port is not None and (not grammar.is_int(port) or not 1 <= port <= 65535):
        problems.add(host, var + ".port", "must be a port number (1-65535), got %s" % show(port),
                     "set a whole number without quotes, or leave port out to get the next "
                     "free one")
    max_mem = worker.get("max_gpu_memory")
    cap = None
    if max_mem is not None:
        try:
            cap = grammar.parse_memory_size(max_mem)
        except ValueError:
            problems.add(host, var + ".max_gpu_memory", "%s cannot be read as a size with a "
                         "unit" % show(max_mem), "write it like \"22GiB\" or \"24GB\" (GiB = "
                         "2^30 bytes, GB = 10^9 bytes), in quotes")
        if backend == "vllm":
            problems.add(host, var + ".max_gpu_memory", "the vllm worker has no such option "
                         "(vLLM reserves a share of each GPU itself)",
                         "remove it or use backend: hf")
        elif device == "cpu":
            problems.add(host, var + ".max_gpu_memory", "a cpu worker uses no GPU memory",
                         "remove it")
        elif indices is not None and len(indices) == 1:
            problems.add(host, var + ".max_gpu_memory", "FastChat uses --max-gpu-memory only "
                         "when a worker has more than one GPU; with one GPU it would be ignored",
                         "remove it, or give the worker several GPUs")
    if load_8bit is True:
        if backend == "vllm":
            problems.add(host, var + ".load_8bit", "the vllm worker has no 8-bit option",
                         "remove it or use backend: hf")
        elif indices is not None and len(indices) > 1:
            problems.add(host, var + ".load_8bit", "FastChat 0.2.36 ignores load_8bit with "
                         "several GPUs and loads fp16 weights instead",
                         "give the worker one GPU, or remove load_8bit")
    if backend == "vllm":
        if device == "cpu":
            problems.add(host, var + ".backend", "vllm workers need GPUs",
                         "use backend: hf with device: cpu")
        if settings.rehearsal:
            problems.add(host, var + ".backend", "a rehearsal lab (fastchat_rehearsal: true) "
                         "runs every worker on CPU, which vllm cannot",
                         "use backend: hf, or set fastchat_rehearsal: false on real GPUs")
        if model is not None and indices:
            _check_tensor_parallel(host, var, model, len(indices), problems)
    if backend == "llamacpp":
        for key in ("max_gpu_memory", "load_8bit"):
            if worker.get(key) not in (None, False):
                problems.add(host, var + "." + key, "the llamacpp worker has no such option "
                             "(llama.cpp splits layers over the GPUs by --tensor-split and "
                             "quantizes with quantization)", "remove it")
        if limit is not None:
            problems.add(host, var + ".limit_worker_concurrency", "a llamacpp worker passes "
                         "llama-server exactly as many requests as it has slots",
                         "remove it and set parallel (the slots) instead")
    if len(problems) > before or model is None or indices is None:
        return None
    return Worker(host=host, position=pos, model=model, gpus=tuple(indices), backend=backend,
                  quantization=quantization, parallel=parallel,
                  device=device, name=name, port=port,
                  max_gpu_memory=max_mem if cap is not None else None, cap_bytes=cap,
                  load_8bit=load_8bit, conv_template=tmpl, limit_worker_concurrency=limit)


def _llamacpp_keys(host, var, worker, backend, model, settings, problems):
    """(quantization, parallel) of a llamacpp worker; (None, None) for the others."""
    given = [k for k in ("quantization", "parallel") if k in worker]
    if backend != "llamacpp":
        for key in given:
            problems.add(host, var + "." + key, "only llamacpp workers have %s" % key,
                         "remove it, or set backend: llamacpp")
        return None, None
    quantization = worker.get("quantization", DEFAULT_QUANTIZATION)
    if quantization not in QUANTIZATIONS:
        problems.add(host, var + ".quantization", "%s is not a quantization the lab makes"
                     % show(quantization), "use one of %s (q8_0: about 8.5 bits a weight, "
                     "near fp16 answers; q4_k_m: about 4.9, smaller and faster)"
                     % ", ".join(QUANTIZATIONS))
        quantization = None
    parallel = worker.get("parallel")  # None: as many as fit, up to DEFAULT_PARALLEL
    if parallel is not None and (not grammar.is_int(parallel) or not 1 <= parallel <= 64):
        problems.add(host, var + ".parallel", "must be a whole number of slots from 1 to 64, "
                     "got %s" % show(parallel), "e.g. parallel: 4 (requests decoded together)")
        parallel = None
    if model is not None:
        if model.architecture is None:
            problems.add(host, var + ".backend", "llama.cpp's memory and GGUF size are "
                         "computed from the model's architecture, which %s's catalogue entry "
                         "does not give" % model.name, "add architecture (from config.json) "
                         "to its catalogue entry")
        if model.local_path is not None:
            problems.add(host, var + ".backend", "%s's weights are a local_path: the lab makes "
                         "GGUF files from the weights it fetches at a pinned revision"
                         % model.name, "use backend: hf for this model, or give it source "
                         "and revision instead of local_path")
        if worker.get("conv_template") is None and model.conv_template is None:
            problems.add(host, var + ".conv_template", "a llamacpp worker builds %s's prompts with "
                         "a FastChat conversation template, and neither the worker nor the "
                         "catalogue names one" % model.name, "set conv_template (e.g. "
                         "qwen-7b-chat) on the worker or in the model's catalogue entry")
        if model.hf_architecture is None:
            problems.add(host, var + ".backend", "llama.cpp's converter needs to know %s's "
                         "model class, which its catalogue entry does not give" % model.name,
                         "add hf_architecture (architectures[0] of its config.json, e.g. "
                         "QWenLMHeadModel) to its catalogue entry")
        elif model.hf_architecture not in LLAMACPP_ARCHITECTURES:
            problems.add(host, var + ".backend", "llama.cpp's converter (commit %s) does not "
                         "convert %s (%s)" % (settings.llamacpp_commit[:10], model.name,
                                              model.hf_architecture),
                         "use backend: hf or vllm for this model")
    return quantization, parallel


def _worker_model(host, var, model, models, names, problems):
    if model in (None, ""):
        problems.add(host, var + ".model", "missing", "name a model of the catalogue (%s)"
                     % (", ".join(sorted(models)) or "none"))
        return None
    if not isinstance(model, str) or grammar.model_name_problem(model):
        problems.add(host, var + ".model", "%s is not a model name" % show(model),
                     "name a model of the catalogue (%s)" % (", ".join(sorted(models)) or "none"))
        return None
    if model in models:
        return models[model]
    if model in names:
        problems.add(host, var + ".model", "%s has an invalid catalogue entry (see its own "
                     "problem)" % show(model), "correct the entry in fastchat_models_extra")
    else:
        problems.add(host, var + ".model", "%s is not in the model catalogue" % show(model),
                     "use one of %s, or add it to fastchat_models_extra"
                     % (", ".join(sorted(models)) or "(none)"))
    return None


def _worker_gpus(host, var, raw, device, gpus, gpu_source, problems):
    """The worker's GPU indices, or None when they are invalid."""
    if not isinstance(raw, list):
        problems.add(host, var + ".gpus", "must be a list of GPU indices like [1, 2], got %s"
                     % show(raw), "write gpus: [1, 2], not a string")
        return None
    indices, ok = [], True
    for item in raw:
        if not grammar.is_int(item):
            problems.add(host, var + ".gpus", "%s is not a whole-number GPU index" % show(item),
                         "write gpus: [1, 2] with plain whole numbers")
            ok = False
        elif item < 0:
            problems.add(host, var + ".gpus", "GPU %d is negative" % item,
                         "use the indices nvidia-smi shows (0, 1, ...)")
            ok = False
        elif item in indices:
            problems.add(host, var + ".gpus", "GPU %d is listed twice" % item,
                         "list each GPU once")
            ok = False
        else:
            indices.append(item)
    if device == "cpu" and indices:
        problems.add(host, var + ".gpus", "a cpu worker cannot have GPUs (%s)"
                     % ", ".join(map(str, indices)), "set gpus: [] or device: cuda")
        ok = False
    if device == "cuda" and not raw:
        problems.add(host, var + ".gpus", "a cuda worker needs at least one GPU",
                     "list its GPUs (e.g. gpus: [0]) or set device: cpu")
        ok = False
    if device == "cuda" and indices:
        if gpu_source == "none":
            problems.add(host, var + ".gpus", "the GPUs of %s are unknown" % host,
                         "declare fastchat_gpus for the host in the inventory, or gather "
                         "facts first (ansible-playbook playbooks/gpu_facts.yml / the "
                         "gpu_facts role)")
            ok = False
        elif gpus:
            known = [g.index for g in gpus]
            for idx in indices:
                if idx not in known:
                    problems.add(host, var + ".gpus", "GPU %d does not exist on this host (it "
                                 "has %d GPU%s: %s, %s)" % (
                                     idx, len(known), "" if len(known) == 1 else "s",
                                     ", ".join(map(str, known)), gpu_source),
                                 "use an index from that list")
                    ok = False
        else:
            ok = False  # the GPU entries themselves are invalid: reported there
    return indices if ok else None


def _check_tensor_parallel(host, var, model, tp, problems):
    arch = model.architecture
    if arch is None:
        if tp > 1:
            problems.add(host, var + ".gpus", "vLLM splits %s over %d GPUs by its attention "
                         "heads, but the catalogue does not give them" % (model.name, tp),
                         "add architecture (attention_heads, kv_heads, ...) to its catalogue "
                         "entry")
        return
    heads, kv = arch.attention_heads, arch.kv_heads
    if heads % tp or (kv >= tp and kv % tp) or (kv < tp and tp % kv):
        good = [n for n in range(1, 9) if not heads % n and (kv % n == 0 if kv >= n
                                                              else n % kv == 0)]
        problems.add(host, var + ".gpus", "vLLM's tensor parallelism over %d GPUs must divide "
                     "%s's %d attention heads (%d key/value heads)" % (tp, model.name, heads, kv),
                     "give it a number of GPUs that divides them: %s" % ", ".join(map(str, good)))
