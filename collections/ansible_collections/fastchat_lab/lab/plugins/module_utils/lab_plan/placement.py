# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Placement: the checked inventory becomes the plan (see the package docstring).

Order: settings and catalogue (inputs.py), the lab's hosts and their addresses and
GPUs, the head's services, then each host's workers: names, GPUs given once, ports,
the stack (stacks.py), the memory (memory.py) and the command line (argv.py).
Every problem is collected; PlanError is raised once, before any plan is returned.
"""

from __future__ import annotations

from . import argv as commands
from . import grammar, memory, stacks
from .inputs import read_address, read_catalogue, read_host_gpus, read_settings, read_worker
from .model import DEFAULT_PARALLEL, GPU_GROUP, HEAD_GROUP, HEAD_SERVICES, Host
from .problems import Problems, show

GB = memory.GB


# More workers than this on one host is a mistake (a generated inventory, a loop), not a
# lab: each is a container holding a model.
MAX_WORKERS_PER_HOST = 64


def build_plan(hosts, groups, catalogue, settings, templates=None):
    """Validate the lab inventory and compute the plan (see the package docstring).

    ``hosts``: {inventory name: vars}; ``groups``: {group: [names]}; ``catalogue``: the
    merged model catalogue; ``settings``: every key of model.SETTING_KEYS; ``templates``:
    FastChat's conversation template names, or None not to check them.
    """
    problems = Problems()
    hosts = hosts if isinstance(hosts, dict) else {}
    groups = groups if isinstance(groups, dict) else {}
    cfg = read_settings(settings, problems)
    models, model_names = read_catalogue(catalogue, templates, problems)
    heads = _group(groups, HEAD_GROUP, problems)
    gpu_hosts = _group(groups, GPU_GROUP, problems)
    if not heads:
        problems.add("all", "groups.%s" % HEAD_GROUP, "no head host", "put exactly one host in "
                     "the %s group (it runs the controller, API server and web UI)" % HEAD_GROUP)
    elif len(heads) > 1:
        problems.add("all", "groups.%s" % HEAD_GROUP, "%d head hosts (%s)" % (
            len(heads), ", ".join(heads)), "put exactly one host in the %s group" % HEAD_GROUP)
    if not gpu_hosts:
        problems.add("all", "groups.%s" % GPU_GROUP, "no GPU host", "put the hosts that run "
                     "model workers in the %s group" % GPU_GROUP)
    head = heads[0] if len(heads) == 1 else None
    for name, hvars in hosts.items():
        if isinstance(hvars, dict) and hvars.get("fastchat_workers") not in (None, []) \
                and name not in gpu_hosts:
            problems.add(name, "fastchat_workers", "this host has workers but is not in the "
                         "%s group" % GPU_GROUP, "add it to %s, or remove its fastchat_workers"
                         % GPU_GROUP)
    planned = list(dict.fromkeys(([head] if head else []) + gpu_hosts))
    lab = {}
    for name in planned:
        hvars = hosts.get(name)
        if not isinstance(hvars, dict):
            problems.add(name, "inventory", "the host is in a lab group but has no variables",
                         "check the host name in the inventory")
            hvars = {}
        address = read_address(name, hvars, problems)
        gpus, source = read_host_gpus(name, hvars, problems)
        lab[name] = (Host(name=name, address=address, is_head=name == head,
                          is_gpu_host=name in gpu_hosts, gpu_source=source, gpus=gpus), hvars)
    _check_addresses(lab, problems)
    if cfg is None:
        problems.raise_if_any()
    head_address = lab[head][0].address if head in lab else None
    controller = _url(head_address, cfg.controller_port) if head_address else None
    if head in lab:
        _check_binds(head, head_address, lab[head][1], cfg, problems)

    plan_hosts, worker_names, model_hosts, gguf_hosts = {}, {}, {}, {}
    for name, (host, hvars) in lab.items():
        services = _head_services(cfg, controller, host.address) if host.is_head else []
        used_ports = {s["port"]: s["name"] for s in services}
        used_ports.update({s["backend_port"]: s["name"] + " (on loopback, behind the TLS proxy)"
                           for s in services if s["backend_port"]})
        if host.is_gpu_host:
            services += _host_workers(host, hvars, models, model_names, templates, cfg,
                                      controller, used_ports, worker_names, problems)
        # The HF weights this host needs (hf and vllm workers); llamacpp workers need
        # their GGUF file only.
        host_models = sorted({s["model"] for s in services
                              if s["model"] and s["backend"] != "llamacpp"})
        for model in host_models:
            model_hosts.setdefault(model, []).append(name)
        host_gguf = sorted({(s["model"], s["quantization"]) for s in services
                            if s["backend"] == "llamacpp"})
        for model, quantization in host_gguf:
            gguf_hosts.setdefault((model, quantization), []).append(name)
        plan_hosts[name] = {
            "address": host.address, "is_head": host.is_head, "is_gpu_host": host.is_gpu_host,
            "gpu_source": host.gpu_source, "gpus": [g.as_dict() for g in host.gpus],
            "stacks": sorted({s["stack"] for s in services}), "models": host_models,
            "services": services,
            "gguf": [_gguf_file(cfg, models[m], q) for m, q in host_gguf],
            # Controller and worker ports: only the lab's hosts may reach them.
            "internal_ports": sorted(s["port"] for s in services
                                     if s["kind"] in ("controller", "model_worker")),
        }
    _check_engines(plan_hosts, problems)
    served_templates = _served_templates(plan_hosts, worker_names, problems)
    problems.raise_if_any()
    if cfg.rehearsal:
        problems.warn("all", "fastchat_rehearsal", "this is a rehearsal lab: workers keep "
                      "their planned GPUs (pinned by Docker) but run FastChat on CPU",
                      "set fastchat_rehearsal: false on real GPUs")
    served = sorted(set(model_hosts) | {m for m, _ in gguf_hosts})
    plan_models = {name: dict(_model_entry(models[name], cfg, model_hosts.get(name, []),
                                           {q: h for (m, q), h in gguf_hosts.items() if m == name}),
                              served_conv_template=served_templates[name])
                   for name in served}
    _warn_precisions(plan_hosts, problems)
    for hplan in plan_hosts.values():
        for svc in hplan["services"]:
            if svc["kind"] == "model_worker":
                # What the model is served with (one precision per model: _check_engines).
                plan_models[svc["model"]].setdefault("engine", svc["engine"])
                plan_models[svc["model"]].setdefault("precision", svc["precision"])
    addresses = sorted({h["address"] for h in plan_hosts.values()})
    return {
        "summary": {
            "head": head, "head_address": head_address, "controller_address": controller,
            "api_url": _url(head_address, cfg.api_port, cfg.tls) + "/v1",
            "web_ui_url": _url(head_address, cfg.web_ui_port, cfg.tls),
            "tls": cfg.tls,
            "models": sorted(plan_models),
            "workers": list(worker_names),
            "gpu_hosts": gpu_hosts,
            "hosts": planned,
            "addresses": addresses,
            # Addresses that are host names: each host resolves them (lab_plan resolve).
            "named_addresses": [a for a in addresses if not grammar.is_ip(a)],
            "stacks": sorted({s for h in plan_hosts.values() for s in h["stacks"]}),
            "weights_dir": cfg.weights_dir,
            "logs_dir": cfg.logs_dir,
            "deploy_dir": cfg.deploy_dir,
            "llamacpp": {
                "commit": cfg.llamacpp_commit,
                # The compute capabilities the llama.cpp CUDA image is built for.
                "cuda_archs": _llamacpp_cuda_archs(plan_hosts),
                "gguf_dir": _gguf_dir(cfg),
            },
            "models_dir": cfg.models_dir,
            "rehearsal": cfg.rehearsal,
        },
        "models": plan_models,
        "hosts": plan_hosts,
        "warnings": problems.warnings,
    }


def _group(groups, name, problems):
    """The group's host names; anything else in it is a problem named by the group."""
    members = groups.get(name) or []
    if not isinstance(members, (list, tuple)):
        problems.add("all", "groups.%s" % name, "a list of host names is expected, not %s"
                     % type(members).__name__, "list the group's hosts in the inventory")
        return []
    names = []
    for member in members:
        if isinstance(member, str) and member.strip():
            names.append(member)
        else:
            problems.add("all", "groups.%s" % name, "%r is not a host name" % (member,),
                         "list only inventory host names in the group")
    return list(dict.fromkeys(names))


def _url(address, port, tls=False):
    return "%s://%s:%d" % ("https" if tls else "http", address, port)


def _check_addresses(lab, problems):
    seen = {}
    for name, (host, _hvars) in lab.items():
        if host.address is None:
            continue
        if host.address in seen:
            problems.add(name, "fastchat_address", "%s is also the address of %s: two "
                         "inventory names for one machine would get the same GPUs and ports"
                         % (host.address, seen[host.address]),
                         "give each host its own address, or merge the two entries into one "
                         "host")
        seen.setdefault(host.address, name)


def _service(name, kind, port, argv, url, controller, stack="cpu", bind="0.0.0.0",
             backend_port=None):
    return {
        "name": name, "kind": kind, "port": port, "stack": stack, "gpus": [], "argv": argv,
        "url": url, "controller_address": controller, "model": None, "model_path": None,
        "backend": None, "engine": None, "quantization": None, "parallel": None,
        "precision": None, "device": None, "num_gpus": 0, "memory": None, "rehearsal": False,
        # Where its port listens; with TLS the proxy listens there and FastChat itself on
        # 127.0.0.1:backend_port only.
        "bind": bind, "backend_port": backend_port,
    }


def _check_binds(head, head_address, hvars, cfg, problems):
    """The API and the web UI listen on an address of the head: every interface, the
    loopback, or one the head has (when its facts list them); Docker cannot publish a port
    on another host's address."""
    facts = hvars.get("ansible_facts") if isinstance(hvars.get("ansible_facts"), dict) else {}
    known = facts.get("all_ipv4_addresses")
    if not isinstance(known, list) or not known:
        return
    for key in ("api_bind", "web_ui_bind"):
        bind = getattr(cfg, key)
        if bind == "0.0.0.0" or bind.startswith("127.") or bind == head_address or bind in known:
            continue
        problems.add(head, "fastchat_" + key, "%s is not an address of the head %s (it has %s), "
                     "so Docker cannot publish the port there" % (
                         bind, head, ", ".join(str(a) for a in known[:8])),
                     "use 0.0.0.0 (every interface), 127.0.0.1 (this host only) or one of the "
                     "head's own IPv4 addresses")


def _head_services(cfg, controller, address):
    return [
        _service(HEAD_SERVICES["controller"], "controller", cfg.controller_port,
                 commands.controller(cfg.controller_port, cfg.dispatch_method),
                 controller, controller),
        _service(HEAD_SERVICES["openai_api"], "openai_api", cfg.api_port,
                 commands.openai_api(cfg.api_port, controller,
                                     _url(address, cfg.web_ui_port, cfg.tls)),
                 _url(address, cfg.api_port, cfg.tls), controller, bind=cfg.api_bind,
                 backend_port=cfg.api_backend_port if cfg.tls else None),
        _service(HEAD_SERVICES["web_ui"], "web_ui", cfg.web_ui_port,
                 commands.web_ui(cfg.web_ui_port, controller),
                 _url(address, cfg.web_ui_port, cfg.tls), controller, bind=cfg.web_ui_bind,
                 backend_port=cfg.web_ui_backend_port if cfg.tls else None),
    ]


def _host_workers(host, hvars, models, model_names, templates, cfg, controller, used_ports,
                  worker_names, problems):
    raw = hvars.get("fastchat_workers")
    if raw in (None, []):
        problems.add(host.name, "fastchat_workers", "the host is in %s but runs no worker"
                     % GPU_GROUP, "give it at least one worker, or remove it from %s" % GPU_GROUP)
        return []
    if not isinstance(raw, list):
        problems.add(host.name, "fastchat_workers", "must be a list of workers, got %s"
                     % show(raw), "write it as a YAML list (\"- model: ...\")")
        return []
    if len(raw) > MAX_WORKERS_PER_HOST:
        problems.add(host.name, "fastchat_workers", "has %d workers; a host runs at most %d "
                     "(each is a container and a model in memory)" % (len(raw), MAX_WORKERS_PER_HOST),
                     "give the host fewer workers, or spread them over more hosts")
        return []
    taken_gpus, checked = {}, []
    # Pass 1: each worker on its own, then what workers share: GPUs, names, explicit ports.
    for pos, entry in enumerate(raw):
        worker = read_worker(host.name, pos, entry, models, model_names, templates, cfg,
                             host.gpus, host.gpu_source, problems)
        if worker is None:
            continue
        var = worker.var
        name = worker.name or _default_name(worker)
        bad = grammar.worker_name_problem(name)
        if bad:
            problems.add(host.name, var + ".name", "the name made from the model and GPUs, %s, "
                         "is too long" % show(name, 80), "set name: for this worker (at most 64 "
                         "characters)")
            continue
        clash = [i for i in worker.gpus if i in taken_gpus]
        for idx in clash:
            problems.add(host.name, var + ".gpus", "GPU %d is already given to worker %s on this "
                         "host" % (idx, taken_gpus[idx]), "give each GPU to one worker only")
        for idx in worker.gpus:
            taken_gpus.setdefault(idx, name)
        if name in worker_names:
            problems.add(host.name, var + ".name", "worker name %s is already used by %s"
                         % (show(name), worker_names[name]),
                         "set a unique name: on one of them (names are lab-wide)")
            continue
        worker_names[name] = "%s fastchat_workers[%d]" % (host.name, pos)
        if clash:
            continue
        if worker.port is not None:
            if worker.port in used_ports:
                problems.add(host.name, var + ".port", "port %d is already used by %s on this "
                             "host" % (worker.port, used_ports[worker.port]),
                             "give each service on a host its own port, or leave port out to "
                             "get the next free one")
                continue
            used_ports[worker.port] = name
        checked.append((worker, name))
    # Pass 2: default ports, stack, memory, command line.
    services, next_port = [], cfg.worker_base_port
    for worker, name in checked:
        port = worker.port
        if port is None:
            while next_port in used_ports:
                next_port += 1
            if next_port > 65535:
                problems.add(host.name, worker.var + ".port", "no free port is left between "
                             "fastchat_worker_base_port (%d) and 65535" % cfg.worker_base_port,
                             "lower fastchat_worker_base_port or give the workers ports")
                continue
            port = next_port
            used_ports[port] = name
        service = _worker_service(host, worker, name, port, cfg, controller, problems)
        if service is not None:
            services.append(service)
    return services


def _default_name(worker):
    suffix = "cpu" if worker.device == "cpu" else "gpu" + "-".join(map(str, worker.gpus))
    return "%s-%s" % (grammar.slug(worker.model.name), suffix)


def _worker_service(host, worker, name, port, cfg, controller, problems):
    var = worker.var
    gpus = [g for g in host.gpus if g.index in worker.gpus]
    gpus.sort(key=lambda g: worker.gpus.index(g.index))
    stack = None
    if worker.device == "cuda":
        stack, refusal = stacks.choose(worker.backend, worker.device, gpus)
        if refusal:
            what, fix = refusal
            problems.add(host.name, var + (".backend" if worker.backend == "vllm" else ".gpus"),
                         what, fix)
            return None
    else:
        stack = stacks.STACKS["cpu"]
    refusal = stacks.library_problem(worker.model, stack)
    if refusal:
        problems.add(host.name, var + ".backend", *refusal)
        return None
    estimate = _memory(host, worker, gpus, problems)
    if estimate is None:
        return None
    # A rehearsal keeps the GPU assignment (checked above, pinned by Docker) but runs
    # FastChat on CPU, so fake GPUs are enough.
    rehearsed = worker.device == "cuda" and cfg.rehearsal
    run_device = "cpu" if rehearsed else worker.device
    if rehearsed:
        stack = stacks.STACKS["cpu"]
    model = worker.model
    model_path = "%s/%s" % (cfg.models_dir, model.name)
    url = _url(host.address, port)
    template = worker.conv_template or model.conv_template
    if worker.backend == "llamacpp":
        if rehearsed or worker.device == "cpu":
            stack = stacks.STACKS["llamacpp-cpu"]
        gguf = _gguf_file(cfg, model, worker.quantization)
        split = ([g["layers"] for g in estimate.per_gpu]
                 if run_device == "cuda" and len(estimate.per_gpu) > 1 else None)
        argv = commands.llamacpp_worker(worker, run_device, gguf["container_path"], port, url,
                                        controller, template, estimate.slots,
                                        estimate.context_tokens, split)
        return dict(_worker_entry(host, worker, name, port, stack, argv, url, controller,
                                  gguf["container_path"], run_device, estimate, rehearsed),
                    quantization=worker.quantization, parallel=estimate.slots)
    max_model_len = None
    if worker.backend == "vllm" and estimate.context_tokens is not None \
            and estimate.model_context_tokens is not None \
            and estimate.context_tokens < estimate.model_context_tokens:
        max_model_len = estimate.context_tokens
    argv = commands.worker(worker, run_device, model_path, port, url, controller, template,
                           max_model_len)
    return _worker_entry(host, worker, name, port, stack, argv, url, controller, model_path,
                         run_device, estimate, rehearsed)


def _worker_entry(host, worker, name, port, stack, argv, url, controller, model_path,
                  run_device, estimate, rehearsed):
    return {
        "name": name, "kind": "model_worker", "port": port, "stack": stack.name,
        "gpus": [str(i) for i in worker.gpus], "argv": argv, "url": url,
        "controller_address": controller, "model": worker.model.name, "model_path": model_path,
        "backend": worker.backend, "engine": stacks.ENGINES[worker.backend],
        "quantization": None, "parallel": None, "precision": _precision(worker),
        "device": run_device, "num_gpus": len(worker.gpus),
        "memory": estimate.as_dict(), "rehearsal": rehearsed,
        "bind": "0.0.0.0", "backend_port": None,
    }


def _precision(worker):
    """What the model's weights are served as: llama.cpp's quantization, else fp16 (int8
    with load_8bit)."""
    if worker.backend == "llamacpp":
        return "fp16" if worker.quantization == "f16" else worker.quantization
    return "int8" if worker.load_8bit else "fp16"


def _gguf_dir(cfg):
    """The GGUF files' directory on the hosts: in the weights directory, under a name no
    model can have (model names begin with a letter or digit)."""
    return "%s/.gguf" % cfg.weights_dir


def _gguf_file(cfg, model, quantization):
    """A GGUF file, named by model, revision, quantization and the converter's commit."""
    name = "%s-%s-%s-llamacpp-%s.gguf" % (model.name, model.revision[:12], quantization,
                                          cfg.llamacpp_commit[:10])
    return {"model": model.name, "quantization": quantization, "file": name,
            "host_path": "%s/%s" % (_gguf_dir(cfg), name),
            "container_path": "%s/%s" % (cfg.models_dir, name)}


def _llamacpp_cuda_archs(plan_hosts):
    """The compute capabilities ("61", "86") of the GPUs llama.cpp's CUDA build serves."""
    archs = set()
    for hplan in plan_hosts.values():
        by_index = {str(g["index"]): g for g in hplan["gpus"]}
        for svc in hplan["services"]:
            if svc["stack"] == "llamacpp-cuda":
                archs.update(by_index[i]["compute_capability"].replace(".", "")
                             for i in svc["gpus"] if i in by_index)
    return sorted(archs, key=int)


def _check_engines(plan_hosts, problems):
    """One model name is served at one precision: FastChat sends a model's requests to any
    of its workers, and the leaderboard rates the name (engines of one precision, such as
    transformers and vLLM in fp16, give the same model)."""
    seen = {}
    for host, hplan in plan_hosts.items():
        for svc in (s for s in hplan["services"] if s["kind"] == "model_worker"):
            first = seen.setdefault(svc["model"], (svc, host))
            if first[0]["precision"] != svc["precision"]:
                problems.add(host, "fastchat_workers", "worker %s serves %s at %s (%s), but "
                             "worker %s on %s serves it at %s (%s): the arena would rate two "
                             "precisions under one name" % (
                                 svc["name"], svc["model"], svc["precision"], svc["engine"],
                                 first[0]["name"], first[1], first[0]["precision"],
                                 first[0]["engine"]),
                             "serve a model at one precision everywhere, or add the other as a "
                             "model of its own (fastchat_models_extra)")


def _served_templates(plan_hosts, worker_names, problems):
    """{model: the conversation template its workers are started with (their argv's
    --conv-template; None: FastChat's adapter chooses by name)}. The web UI builds a
    model's prompts itself with one template (page file conv_templates.json), and FastChat
    sends a model's requests to any of its workers: two workers of one model with
    different templates are refused."""
    served, first = {}, {}
    for host, hplan in plan_hosts.items():
        for svc in (s for s in hplan["services"] if s["kind"] == "model_worker"):
            argv = svc["argv"]
            own = argv[:argv.index("--")] if "--" in argv else argv  # not llama-server's
            at = own.index("--conv-template") + 1 if "--conv-template" in own else None
            template = own[at] if at is not None and at < len(own) else None
            model = svc["model"]
            if model not in first:
                first[model] = (svc["name"], host)
                served[model] = template
            elif template != served[model]:
                var = worker_names.get(svc["name"], "").partition(" ")[2] or "fastchat_workers"
                problems.add(host, var + ".conv_template", "worker %s serves %s with "
                             "conversation template %s, but worker %s on %s with %s: the web "
                             "UI prompts a model with one template" % (
                                 svc["name"], model, _template_name(template), first[model][0],
                                 first[model][1], _template_name(served[model])),
                             "give every worker of %s the same conv_template, or leave it out "
                             "on all of them to use the catalogue's" % model)
    return served


def _template_name(template):
    return repr(template) if template else "FastChat's choice by name (none set)"


def _warn_precisions(plan_hosts, problems):
    """The arena compares models; at different precisions it compares quantizations too."""
    by_model = {}
    for hplan in plan_hosts.values():
        for svc in hplan["services"]:
            if svc["kind"] == "model_worker":
                by_model.setdefault(svc["model"], svc)
    if len({svc["precision"] for svc in by_model.values()}) > 1:
        problems.warn("all", "fastchat_workers", "the lab's models are compared at different "
                      "precisions (%s): the leaderboard then rates each model as served, not "
                      "the model alone" % ", ".join(
                          "%s: %s (%s)" % (name, svc["precision"], svc["engine"])
                          for name, svc in sorted(by_model.items())),
                      "serve every model at the same precision (backend and quantization) to "
                      "compare the models themselves")


def _memory(host, worker, gpus, problems):
    """The worker's memory estimate; None (and a problem) when it does not fit."""
    model, arch, var = worker.model, worker.model.architecture, worker.var
    if worker.backend == "llamacpp":
        return _memory_llamacpp(host, worker, gpus, problems)
    if worker.device == "cpu":
        return memory.estimate_cpu(arch, worker.load_8bit) if arch else \
            memory.estimate_flat(model.gpu_memory_gb, [], None, worker.load_8bit)
    if worker.cap_bytes is not None:
        small = min(g.memory_mib * memory.MIB for g in gpus)
        if worker.cap_bytes > small:
            problems.add(host.name, var + ".max_gpu_memory", "%s (%.2f GB) is more than GPU "
                         "memory (%.2f GB = %d MiB)" % (worker.max_gpu_memory,
                                                         worker.cap_bytes / GB, small / GB,
                                                         small // memory.MIB),
                         "set at most %dMiB, e.g. \"%dGiB\"" % (small // memory.MIB,
                                                               small // memory.GIB))
            return None
    if arch is None:
        estimate = memory.estimate_flat(model.gpu_memory_gb, gpus, worker.cap_bytes,
                                        worker.load_8bit)
    elif worker.backend == "vllm":
        estimate = memory.estimate_vllm(arch, gpus)
    else:
        estimate = memory.estimate_hf(arch, gpus, worker.cap_bytes, worker.load_8bit)
    where = "GPU%s %s (%s)" % ("s" if len(gpus) > 1 else "", ",".join(str(g.index) for g in gpus),
                               "/".join(sorted({g.name for g in gpus})))
    gives = "give" if len(gpus) > 1 else "gives"
    more = "give the worker more GPUs%s%s" % (
        ", raise max_gpu_memory" if worker.cap_bytes else "",
        ", or set load_8bit: true (one GPU)" if worker.backend == "hf" and not worker.load_8bit
        and len(gpus) == 1 else "")
    if not estimate.fits:
        if not estimate.weights_fit:
            what = ("%s's weights (%.1f GB%s) do not fit on %s, which %s %.1f GB%s"
                    % (model.name, memory.weights_bytes(arch, worker.load_8bit) / GB,
                       ", 8-bit" if worker.load_8bit else "", where, gives,
                       _placement_room(gpus, worker.cap_bytes) / GB,
                       " under max_gpu_memory %s" % worker.max_gpu_memory
                       if worker.cap_bytes else " as FastChat places them"))
        elif estimate.basis == "catalogue":
            what = ("%s needs about %.1f GB of GPU memory but %s %s %.1f GB" % (
                model.name, estimate.need / GB, where, gives, estimate.available / GB))
        else:
            worst = _short_gpu(estimate, arch, memory.MIN_CONTEXT)
            what = ("%s needs about %.1f GB on GPU %d (which has %.1f GB) for even %d tokens of "
                    "context" % (model.name, worst["need"] / GB, worst["index"],
                                 worst["available"] / GB, memory.MIN_CONTEXT))
            if len(gpus) > 1 and worker.cap_bytes is None:
                what += (": without max_gpu_memory FastChat fills each GPU to %d %% with "
                         "weights, leaving too little for the rest"
                         % round(memory.SEQUENTIAL_SHARE * 100))
                more = ("set max_gpu_memory (e.g. \"%dGiB\") so that accelerate spreads the "
                        "weights evenly, or give the worker more GPUs"
                        % max(1, int(memory.weights_bytes(arch) / len(gpus) / memory.GIB) + 1))
        problems.add(host.name, var + ".gpus", what, more)
        return None
    if estimate.max_context_tokens is not None and \
            estimate.max_context_tokens < estimate.model_context_tokens:
        fits, full = estimate.max_context_tokens, estimate.model_context_tokens
        if worker.backend == "vllm":
            what = ("{} on {} holds about {:,} of its {:,} context tokens in vLLM's share of "
                    "GPU memory: the plan starts it with --max-model-len {}").format(
                        model.name, where, fits, full, fits)
        else:
            tight = max(estimate.per_gpu, key=lambda g: g["need"] - g["available"])
            what = ("{} on {} of {} holds about {:,} of its {:,} context tokens: a longer "
                    "conversation runs out of GPU memory (at {:,} tokens GPU {} needs {:.1f} GB "
                    "and has {:.1f} GB)").format(
                        model.name, where, host.name, fits, full, full, tight["index"],
                        tight["need"] / GB, tight["available"] / GB)
        if worker.backend == "hf" and len(gpus) > 1 and worker.cap_bytes is None:
            fix = ("set max_gpu_memory (e.g. \"{}GiB\") so that accelerate spreads the weights "
                   "over the GPUs instead of filling the first; or give the worker more GPUs"
                   ).format(max(1, int(memory.weights_bytes(arch) / len(gpus) / memory.GIB) + 2))
        else:
            fix = ("to serve all {:,} tokens, give the worker more GPUs or a GPU with more "
                   "memory{}").format(full, ", or set load_8bit: true (8-bit weights)"
                                      if worker.backend == "hf" and not worker.load_8bit
                                      and len(gpus) == 1 else "")
        problems.warn(host.name, var + ".gpus", what, fix)
    return estimate


def _memory_llamacpp(host, worker, gpus, problems):
    """A llamacpp worker's estimate; None (and a problem) when it does not fit. Fewer slots
    or a shorter context than asked are warnings."""
    model, arch, var = worker.model, worker.model.architecture, worker.var
    quant = worker.quantization
    asked = worker.parallel or DEFAULT_PARALLEL
    if worker.device == "cpu":
        return memory.estimate_llamacpp(arch, [], quant, asked, model.hf_architecture)
    estimate = memory.estimate_llamacpp(arch, gpus, quant, asked, model.hf_architecture)
    where = "GPU%s %s (%s)" % ("s" if len(gpus) > 1 else "", ",".join(str(g.index) for g in gpus),
                               "/".join(sorted({g.name for g in gpus})))
    smaller = {"f16": "q8_0", "q8_0": "q4_k_m"}.get(quant)
    more = "give the worker more GPUs%s" % (
        " or a smaller quantization (quantization: %s)" % smaller if smaller else "")
    if not estimate.fits:
        if not estimate.weights_fit:
            worst = max(estimate.per_gpu, key=lambda g: g["need"] - g["available"])
            what = ("%s's %s weights (%.1f GB in GGUF) and llama.cpp's buffers do not fit on "
                    "%s: GPU %d needs %.1f GB before any context and has %.1f GB" % (
                        model.name, quant, memory.gguf_bytes(arch, quant, model.hf_architecture)
                        / GB, where, worst["index"], worst["need"] / GB,
                        worst["available"] / GB))
        else:
            what = ("%s at %s holds fewer than %d tokens of context on %s" % (
                model.name, quant, memory.MIN_CONTEXT, where))
        problems.add(host.name, var + ".gpus", what, more)
        return None
    short = estimate.context_tokens < estimate.model_context_tokens
    if short or (worker.parallel is not None and estimate.slots < worker.parallel):
        if short:
            what = ("{} at {} on {} of {} holds about {:,} of its {:,} context tokens in one "
                    "slot: the plan serves one request at a time, at that context").format(
                        model.name, quant, where, host.name, estimate.context_tokens,
                        estimate.model_context_tokens)
        else:
            what = ("{} at {} on {} of {} has room for {} of the {} slots asked for (parallel) "
                    "at its whole context of {:,} tokens: the plan serves {} at once").format(
                        model.name, quant, where, host.name, estimate.slots, worker.parallel,
                        estimate.context_tokens, estimate.slots)
        problems.warn(host.name, var + ".parallel", what, more if smaller or len(gpus) else
                      "give the worker more GPUs")
    return estimate


def _placement_room(gpus, cap):
    if cap is not None:
        return cap * len(gpus)
    if len(gpus) == 1:
        return gpus[0].memory_mib * memory.MIB
    return sum(int(g.memory_mib / 1024 * memory.SEQUENTIAL_SHARE) * memory.GIB for g in gpus)


def _short_gpu(estimate, arch, tokens):
    """The per-GPU entry with the least room left at ``tokens`` of context."""
    rows = []
    for gpu in estimate.per_gpu:
        per_token = (memory.kv_bytes_per_token(arch) * gpu["layers"] / arch.layers
                     + memory.ACTIVATION_BYTES * arch.hidden_size) if gpu["layers"] else 0
        rows.append(dict(gpu, need=gpu["need"] - (estimate.context_tokens - tokens) * per_token))
    return max(rows, key=lambda g: g["need"] - g["available"])


def _model_entry(model, cfg, hosts, gguf):
    return {
        "source": model.source, "revision": model.revision,
        "gpu_memory_gb": model.gpu_memory_gb,
        "architecture": None if model.architecture is None else {
            k: getattr(model.architecture, k) for k in (
                "parameters", "layers", "hidden_size", "attention_heads", "kv_heads",
                "context_tokens", "vocab_size", "alibi")},
        "conv_template": model.conv_template, "trust_remote_code": model.trust_remote_code,
        "local_path": model.local_path,
        "container_path": "%s/%s" % (cfg.models_dir, model.name),
        # Where the weights are on every host that serves the model.
        "host_path": model.local_path or "%s/%s" % (cfg.weights_dir, model.name),
        "requires": dict(model.requires), "aliases": list(model.aliases),
        "hf_architecture": model.hf_architecture,
        # The hosts whose workers need the model's weights (hf, vllm).
        "hosts": hosts,
        # The GGUF files llamacpp workers need: {quantization: {file, host_path,
        # container_path, hosts}}, made once on the cache host (role model_weights).
        "gguf": {q: dict(_gguf_file(cfg, model, q), hosts=h) for q, h in sorted(gguf.items())},
    }
