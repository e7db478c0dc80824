# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The fastchat-lab planner: one owner for the lab plan.

Pure Python (standard library only, no Ansible import), so it is tested directly by
pytest and imported by the ``fastchat_lab.lab.lab_plan`` action plugin and the
``fastchat_lab.lab.nvidia_gpu_facts`` module.

Inputs of :func:`build_plan`
----------------------------
``hosts``      {inventory_hostname: vars}. Vars read per host: ``fastchat_workers``,
               ``fastchat_address``, ``ansible_host``, ``fastchat_gpus`` (declared GPUs),
               ``ansible_facts.fastchat_gpu_facts`` (gathered by the gpu_facts role; wins
               when non-empty), ``ansible_facts.default_ipv4`` (see :func:`_address`).
``groups``     {group: [hostnames]}; the head group and the GPU host group are read.
``catalogue``  {model name: {source, revision, gpu_memory_gb, conv_template,
               trust_remote_code, local_path}} (``fastchat_models`` merged with
               ``fastchat_models_extra``, see :func:`merge_catalogue`).
``settings``   see ``DEFAULT_SETTINGS``.
``templates``  set of FastChat conversation template names, or None to skip that check.

Output (JSON-serialisable)
--------------------------
::

    {
      "summary": {
        "head": "gpu01", "head_address": "192.0.2.10",
        "controller_address": "http://192.0.2.10:21001",
        "api_url": "http://192.0.2.10:8000/v1", "web_ui_url": "http://192.0.2.10:7860",
        "models": ["Baichuan-13B-Chat", "Qwen-7B-Chat"],        # served model names
        "workers": ["qwen-7b-chat-gpu1", ...], "gpu_hosts": ["gpu01"],
        "hosts": ["gpu01"],                                     # every host in the plan
        "addresses": ["192.0.2.10"],                            # their addresses, sorted
        "named_addresses": [],                                  # those that are names
      },
      "models": {                       # only the catalogue entries that some worker uses
        "Qwen-7B-Chat": {"source", "revision", "gpu_memory_gb", "conv_template",
                         "trust_remote_code", "local_path", "container_path", "hosts"},
      },
      "hosts": {
        "gpu01": {
          "address": "192.0.2.10", "is_head": true, "is_gpu_host": true,
          "gpu_source": "declared" | "facts" | "none",
          "gpus": [{"index", "uuid", "name", "memory_mib", "compute_capability",
                    "driver_version"}],
          "stacks": ["cpu", "cuda117"],   # image stacks this host needs, sorted
          "models": ["Baichuan-13B-Chat", "Qwen-7B-Chat"],  # models this host needs
          "internal_ports": [21001, 21002, 21003],  # controller + workers: lab hosts only
          "services": [                   # head services first, then workers in order
            {"name": "qwen-7b-chat-gpu1", "kind": "model_worker",
             # kind: controller | openai_api | web_ui | model_worker
             "port": 21002, "stack": "cuda117",   # cuda117 | cpu | vllm
             "gpus": ["1"],                        # host GPU indices (Docker device ids)
             "argv": ["python3", "-m", "fastchat.serve.model_worker", ...],
             "url": "http://192.0.2.10:21002",    # how others reach this service
             "controller_address": "http://192.0.2.10:21001",
             "model": "Qwen-7B-Chat" | null, "model_path": "/models/Qwen-7B-Chat" | null,
             "backend": "hf" | "vllm" | null, "device": "cuda" | "cpu" | null,
             "num_gpus": 1,
             "memory": {"need_gb": 17.0, "available_gb": 24.16} | null,
             "rehearsal": false},          # true: GPUs pinned, FastChat on CPU
          ],
        },
      },
      "warnings": ["..."],
    }

Head services (controller, openai_api, web_ui) use stack ``cpu``: they need no GPU.

Every problem found is collected; :class:`PlanError` is raised once with all of them.
Each message reads ``<host or all>: <variable>: <what is wrong>. Fix: <what to do>.``
"""

from __future__ import annotations

import ipaddress
import re

# Settings defaults; the lab_plan role's defaults/main.yml documents each.
DEFAULT_SETTINGS = {
    "controller_port": 21001,
    "worker_base_port": 21002,
    "api_port": 8000,
    "web_ui_port": 7860,
    "dispatch_method": "shortest_queue",
    "models_dir": "/models",
    "head_group": "fastchat_head",
    "gpu_group": "gpu_hosts",
    # Rehearsal lab (fake GPUs): workers keep their planned GPUs but run on CPU.
    "rehearsal": False,
}
DISPATCH_METHODS = ("shortest_queue", "lottery")
BACKENDS = ("hf", "vllm")
DEVICES = ("cuda", "cpu")
WORKER_KEYS = (
    "model", "gpus", "backend", "device", "name", "port", "max_gpu_memory",
    "load_8bit", "conv_template", "limit_worker_concurrency",
)
CATALOGUE_KEYS = (
    "source", "revision", "gpu_memory_gb", "conv_template", "trust_remote_code", "local_path",
)
CATALOGUE_REQUIRED = ("source", "revision", "gpu_memory_gb")
GPU_KEYS = ("index", "uuid", "name", "memory_mib", "compute_capability", "driver_version")
DECLARED_GPU_KEYS = ("count", "name", "memory_mib", "compute_capability", "driver_version")
# vLLM needs Volta or newer (compute capability 7.0) and a CUDA 12 image (driver >= 525).
VLLM_MIN_COMPUTE_CAPABILITY = (7, 0)
VLLM_MIN_DRIVER = 525
# 8-bit weights need about 0.6 of the fp16 memory (Baichuan-13B-Chat card: 26.0 -> 15.8 GB).
LOAD_8BIT_FACTOR = 0.6
STACK_BY = {("hf", "cuda"): "cuda117", ("vllm", "cuda"): "vllm"}
MIB = 2 ** 20
GB = 10 ** 9
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
NA_VALUES = ("", "[N/A]", "N/A", "[Not Supported]", "Not Supported", "[Unknown Error]")


class PlanError(Exception):
    """The inventory cannot be planned. ``errors`` lists every problem found."""

    def __init__(self, errors):
        self.errors = list(errors)
        count = len(self.errors)
        head = "The lab plan has %d problem%s:" % (count, "" if count == 1 else "s")
        super().__init__("\n".join([head] + ["- " + e for e in self.errors]))


# ---------------------------------------------------------------------------
# Small parsers
# ---------------------------------------------------------------------------

def parse_memory_size(value):
    """Bytes for a max-memory string, parsed the way accelerate does.

    accelerate.utils.convert_file_size_to_int: "GiB"/"MiB"/"KiB" are powers of two,
    "GB"/"MB"/"KB" powers of ten, a lower-case trailing "b" ("24Gb") means bits.
    Raises ValueError when it cannot be parsed.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("not a size string")
    if isinstance(value, int):
        size = value
    else:
        text = value.strip()
        upper = text.upper()
        size = -1
        for suffix, factor in (("GIB", 2 ** 30), ("MIB", 2 ** 20), ("KIB", 2 ** 10)):
            if upper.endswith(suffix):
                size = int(float(text[:-3]) * factor)
                break
        else:
            for suffix, factor in (("GB", 10 ** 9), ("MB", 10 ** 6), ("KB", 10 ** 3)):
                if upper.endswith(suffix):
                    size = int(float(text[:-2]) * factor)
                    if text.endswith("b"):
                        size //= 8
                    break
            else:
                raise ValueError("no unit")
    if size <= 0:
        raise ValueError("not positive")
    return size


def _na(field):
    field = field.strip()
    return None if field in NA_VALUES else field


def _int_or_none(field):
    field = _na(field)
    if field is None:
        return None
    field = re.sub(r"\s*MiB$", "", field)
    try:
        return int(float(field))
    except ValueError:
        return None


def parse_gpu_query(csv_text):
    """Parse ``nvidia-smi --query-gpu=index,uuid,name,memory.total,compute_cap
    --format=csv,noheader,nounits`` into a list of GPU dicts.

    With a header line (``--format=csv``) columns are found by name, so a wider query
    (``...,memory.used,compute_cap,driver_version,pci.bus_id``) parses too; "MiB" units
    are stripped and "[N/A]"/"[Not Supported]" become None. Each dict has ``index, uuid,
    name, memory_mib, compute_capability, driver_version`` (driver_version is None unless
    the query had it; see :func:`parse_driver_versions`). Raises ValueError on a line it
    cannot read.
    """
    columns = {"index": 0, "uuid": 1, "name": 2, "memory.total": 3, "compute_cap": 4}
    gpus = []
    for line in (csv_text or "").splitlines():
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if fields[0].lower() == "index":
            columns = {re.sub(r"\s*\[.*\]$", "", f).lower(): i for i, f in enumerate(fields)}
            missing = {"index", "memory.total", "compute_cap"} - set(columns)
            if missing:
                raise ValueError("nvidia-smi header lacks %s: %r" % (", ".join(sorted(missing)), line))
            continue
        if len(fields) <= max(columns.values()):
            raise ValueError("unexpected nvidia-smi line (want %d fields): %r" % (
                max(columns.values()) + 1, line))

        def col(name):
            return fields[columns[name]] if name in columns else ""

        index = _int_or_none(col("index"))
        if index is None:
            raise ValueError("unexpected nvidia-smi line (no GPU index): %r" % line)
        gpus.append({
            "index": index,
            "uuid": _na(col("uuid")),
            "name": _na(col("name")),
            "memory_mib": _int_or_none(col("memory.total")),
            "compute_capability": _na(col("compute_cap")),
            "driver_version": _na(col("driver_version")),
        })
    return gpus


def parse_driver_versions(text):
    """Driver version per line of ``nvidia-smi --query-gpu=driver_version --format=csv,noheader``."""
    out = []
    for line in (text or "").splitlines():
        if line.strip() and not line.strip().lower().startswith("driver_version"):
            out.append(_na(line))
    return out


def _cc_tuple(value):
    """(major, minor) from "6.1", 6.1 or "9.0"; None if unknown."""
    if value is None or isinstance(value, bool):
        return None
    match = re.match(r"^\s*(\d+)(?:\.(\d+))?\s*$", str(value))
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def _driver_major(value):
    match = re.match(r"^\s*(\d+)", str(value)) if value is not None else None
    return int(match.group(1)) if match else None


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _gb(num_bytes):
    return round(num_bytes / GB, 2)


# ---------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------

def merge_catalogue(base, extra):
    """``fastchat_models`` with ``fastchat_models_extra`` merged over it by model name.

    An extra entry for a known model overrides only the keys it sets (e.g. a
    ``local_path`` or a newer ``revision``); an entry for a new name adds a model.
    Non-mapping inputs are returned untouched for :func:`build_plan` to report.
    """
    if not isinstance(base, dict) or not isinstance(extra, dict):
        return base if not isinstance(base, dict) else dict(base)
    merged = {name: (dict(entry) if isinstance(entry, dict) else entry)
              for name, entry in base.items()}
    for name, entry in extra.items():
        if isinstance(entry, dict) and isinstance(merged.get(name), dict):
            merged[name].update(entry)
        else:
            merged[name] = dict(entry) if isinstance(entry, dict) else entry
    return merged


def _check_catalogue(catalogue, templates, errors, warnings):
    var = "fastchat_models"
    fix_where = "Fix: correct it in fastchat_models_extra in your inventory."
    if not isinstance(catalogue, dict) or not catalogue:
        errors.append("all: %s: the model catalogue is empty or not a mapping of model "
                      "name to entry. Fix: keep group_vars/all.yml and add models with "
                      "fastchat_models_extra." % var)
        return {}
    good = {}
    for name, entry in catalogue.items():
        where = "all: %s['%s']" % (var, name)
        if not isinstance(entry, dict):
            errors.append("%s: the entry is not a mapping. Fix: give source, revision and "
                          "gpu_memory_gb." % where)
            continue
        ok = True
        for key in sorted(set(entry) - set(CATALOGUE_KEYS)):
            errors.append("%s.%s: unknown key. Fix: use only %s." % (
                where, key, ", ".join(CATALOGUE_KEYS)))
            ok = False
        for key in CATALOGUE_REQUIRED:
            if entry.get(key) in (None, ""):
                errors.append("%s.%s: missing. Fix: every catalogue entry needs source (hub id "
                              "or git URL), revision (a pinned commit) and gpu_memory_gb (from "
                              "the model card)." % (where, key))
                ok = False
        for key in ("source", "revision", "local_path", "conv_template"):
            if entry.get(key) is not None and not isinstance(entry.get(key), str):
                errors.append("%s.%s: must be a string, got %r. %s" % (
                    where, key, entry.get(key), fix_where))
                ok = False
        mem = entry.get("gpu_memory_gb")
        if mem is not None and (not _is_number(mem) or mem <= 0):
            errors.append("%s.gpu_memory_gb: must be a positive number of GB, got %r. Fix: "
                          "use the fp16/bf16 figure from the model card, e.g. 17." % (where, mem))
            ok = False
        trc = entry.get("trust_remote_code", False)
        if not isinstance(trc, bool):
            errors.append("%s.trust_remote_code: must be a boolean (true/false), got %r. Fix: "
                          "write true or false without quotes." % (where, trc))
            ok = False
        tmpl = entry.get("conv_template")
        if isinstance(tmpl, str) and templates is not None and tmpl not in templates:
            errors.append("%s.conv_template: '%s' is not a template of the installed FastChat. "
                          "Fix: use one of FastChat's templates (e.g. %s)." % (
                              where, tmpl, _some(templates, tmpl)))
            ok = False
        if isinstance(entry.get("revision"), str) and entry["revision"] \
                and not SHA_RE.match(entry["revision"]):
            warnings.append("all: %s.revision: '%s' is not a pinned commit; a re-run may get "
                            "other weights. Pin it to a 40-character commit id." % (
                                where[5:], entry["revision"]))
        if ok:
            good[name] = entry
    return good


def _some(templates, near):
    names = sorted(templates)
    key = slug(near).split("-")[0]
    close = [n for n in names if key and key in n]
    return ", ".join((close or names)[:6])


# ---------------------------------------------------------------------------
# GPUs of a host
# ---------------------------------------------------------------------------

def _host_gpus(host, hvars, errors):
    """(gpus, source) for a host: gathered facts win over declared GPUs when non-empty."""
    facts = hvars.get("fastchat_gpu_facts")
    if not facts and isinstance(hvars.get("ansible_facts"), dict):
        facts = hvars["ansible_facts"].get("fastchat_gpu_facts")
    if facts:
        if not isinstance(facts, list) or not all(isinstance(g, dict) for g in facts):
            errors.append("%s: fastchat_gpu_facts: must be the list the gpu_facts role sets. "
                          "Fix: do not set it by hand; re-run the gpu_facts role." % host)
            return [], "none"
        gpus = [{k: g.get(k) for k in GPU_KEYS} for g in facts]
        return sorted(gpus, key=lambda g: (g["index"] is None, g["index"])), "facts"
    declared = hvars.get("fastchat_gpus")
    if declared in (None, [], {}):
        return [], "none"
    var = "%s: fastchat_gpus" % host
    fix = ("Fix: declare {count, name, memory_mib, compute_capability, driver_version} for "
           "identical GPUs, or a list of {name, memory_mib, compute_capability, "
           "driver_version} per GPU.")
    if isinstance(declared, dict):
        unknown = sorted(set(declared) - set(DECLARED_GPU_KEYS))
        if unknown:
            errors.append("%s.%s: unknown key. %s" % (var, unknown[0], fix))
            return [], "none"
        count = declared.get("count")
        if not _is_int(count) or count < 1:
            errors.append("%s.count: must be a positive integer, got %r. %s" % (var, count, fix))
            return [], "none"
        entries = [dict(declared, index=i) for i in range(count)]
    elif isinstance(declared, list):
        entries = []
        for pos, item in enumerate(declared):
            if not isinstance(item, dict):
                errors.append("%s[%d]: must be a mapping. %s" % (var, pos, fix))
                return [], "none"
            unknown = sorted(set(item) - set(DECLARED_GPU_KEYS + ("index",)) - {"count"})
            if unknown or "count" in item:
                errors.append("%s[%d].%s: unknown key in a per-GPU entry. %s" % (
                    var, pos, (unknown or ["count"])[0], fix))
                return [], "none"
            entries.append(dict(item, index=item.get("index", pos)))
    else:
        errors.append("%s: must be a mapping or a list, got %r. %s" % (var, declared, fix))
        return [], "none"
    gpus = []
    for item in entries:
        mem = item.get("memory_mib")
        if not _is_number(mem) or mem <= 0:
            errors.append("%s: memory_mib must be a positive number (MiB, as nvidia-smi "
                          "shows), got %r. %s" % (var, mem, fix))
            return [], "none"
        if _cc_tuple(item.get("compute_capability")) is None:
            errors.append("%s: compute_capability must look like \"6.1\", got %r. %s" % (
                var, item.get("compute_capability"), fix))
            return [], "none"
        if _driver_major(item.get("driver_version")) is None:
            errors.append("%s: driver_version must look like \"515.105.01\", got %r. %s" % (
                var, item.get("driver_version"), fix))
            return [], "none"
        gpus.append({
            "index": item["index"], "uuid": None, "name": str(item.get("name") or "GPU"),
            "memory_mib": mem, "compute_capability": str(item["compute_capability"]),
            "driver_version": str(item["driver_version"]),
        })
    return gpus, "declared"


# ---------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------

def _is_ip(text):
    try:
        ipaddress.ip_address(str(text))
    except ValueError:
        return False
    return True


def _address(host, hvars):
    """How the other lab hosts (and their containers) reach ``host``.

    ``fastchat_address`` when set; else ``ansible_host`` when it is an IP address; else
    the host's default IPv4 address from its gathered facts (playbooks/gpu_facts.yml
    gathers them); else ``ansible_host`` or the inventory name. An IP address keeps
    the compose projects independent of name resolution, so a host joining the lab
    changes nothing on the others.
    """
    if hvars.get("fastchat_address"):
        return str(hvars["fastchat_address"])
    ansible_host = hvars.get("ansible_host")
    if ansible_host and _is_ip(ansible_host):
        return str(ansible_host)
    facts = hvars.get("ansible_facts") or {}
    default_ipv4 = (facts.get("default_ipv4") or {}).get("address")
    if default_ipv4 and _is_ip(default_ipv4):
        return str(default_ipv4)
    return str(ansible_host or host)


def _check_settings(settings, errors):
    merged = dict(DEFAULT_SETTINGS)
    merged.update({k: v for k, v in (settings or {}).items() if v is not None})
    for key in ("controller_port", "worker_base_port", "api_port", "web_ui_port"):
        value = merged[key]
        if not _is_int(value) or not 1 <= value <= 65535:
            errors.append("all: fastchat_%s: must be a port number (1-65535), got %r. Fix: "
                          "set an integer port." % (key, value))
    if merged["dispatch_method"] not in DISPATCH_METHODS:
        errors.append("all: fastchat_dispatch_method: '%s' is not known. Fix: use one of %s." % (
            merged["dispatch_method"], ", ".join(DISPATCH_METHODS)))
    if not isinstance(merged["rehearsal"], bool):
        errors.append("all: fastchat_rehearsal: must be a boolean, got %r. Fix: write true or "
                      "false without quotes." % (merged["rehearsal"],))
    if not isinstance(merged["models_dir"], str) or not merged["models_dir"].startswith("/"):
        errors.append("all: fastchat_models_dir: must be an absolute path in the container, "
                      "got %r. Fix: e.g. /models." % (merged["models_dir"],))
    return merged


def build_plan(hosts, groups, catalogue, settings=None, templates=None):
    """Validate the lab inventory and compute the plan (see the module docstring)."""
    errors, warnings = [], []
    hosts = hosts or {}
    groups = groups or {}
    cfg = _check_settings(settings, errors)
    models = _check_catalogue(catalogue, templates, errors, warnings)
    head_group, gpu_group = cfg["head_group"], cfg["gpu_group"]

    heads = list(dict.fromkeys(groups.get(head_group) or []))
    gpu_hosts = list(dict.fromkeys(groups.get(gpu_group) or []))
    if not heads:
        errors.append("all: groups.%s: no head host. Fix: put exactly one host in the "
                      "%s group (it runs the controller, API server and web UI)." % (
                          head_group, head_group))
    elif len(heads) > 1:
        errors.append("all: groups.%s: %d head hosts (%s). Fix: put exactly one host in the "
                      "%s group." % (head_group, len(heads), ", ".join(heads), head_group))
    if not gpu_hosts:
        errors.append("all: groups.%s: no GPU host. Fix: put the hosts that run model "
                      "workers in the %s group." % (gpu_group, gpu_group))
    head = heads[0] if len(heads) == 1 else None

    with_workers = [h for h in hosts if hosts[h].get("fastchat_workers") not in (None, [])]
    for host in with_workers:
        if host not in gpu_hosts:
            errors.append("%s: fastchat_workers: this host has workers but is not in the %s "
                          "group. Fix: add it to %s, or remove its fastchat_workers." % (
                              host, gpu_group, gpu_group))
    planned = list(dict.fromkeys(([head] if head else []) + gpu_hosts))
    for host in planned:
        if host not in hosts:
            errors.append("%s: inventory: the host is in a lab group but has no variables. "
                          "Fix: check the host name in the inventory." % host)
    head_address = _address(head, hosts.get(head, {})) if head else None
    controller = "http://%s:%s" % (head_address, cfg["controller_port"]) if head else None

    plan_hosts, worker_names, model_hosts = {}, {}, {}
    for host in planned:
        hvars = hosts.get(host, {})
        address = _address(host, hvars)
        gpus, gpu_source = _host_gpus(host, hvars, errors)
        services, used_ports = [], {}
        if host == head:
            services.extend(_head_services(cfg, controller, address))
            for svc in services:
                used_ports[svc["port"]] = svc["name"]
        if host in gpu_hosts:
            workers = hvars.get("fastchat_workers")
            if workers in (None, []):
                errors.append("%s: fastchat_workers: the host is in %s but runs no worker. "
                              "Fix: give it at least one worker, or remove it from %s." % (
                                  host, gpu_group, gpu_group))
            elif not isinstance(workers, list):
                errors.append("%s: fastchat_workers: must be a list of workers, got %r. Fix: "
                              "write it as a YAML list (\"- model: ...\")." % (host, workers))
            else:
                services.extend(_plan_workers(host, workers, gpus, gpu_source, models,
                                              catalogue, templates, cfg, address, controller,
                                              used_ports, worker_names, errors))
        stacks = sorted({s["stack"] for s in services})
        host_models = sorted({s["model"] for s in services if s["model"]})
        for name in host_models:
            model_hosts.setdefault(name, []).append(host)
        plan_hosts[host] = {
            "address": address, "is_head": host == head, "is_gpu_host": host in gpu_hosts,
            "gpu_source": gpu_source, "gpus": gpus, "stacks": stacks,
            "models": host_models, "services": services,
            # Controller and worker ports: only the lab's hosts may reach them.
            "internal_ports": sorted(s["port"] for s in services
                                     if s["kind"] in ("controller", "model_worker")),
        }

    if errors:
        raise PlanError(errors)
    if cfg["rehearsal"]:
        warnings.append("all: fastchat_rehearsal: this is a rehearsal lab: workers keep their "
                        "planned GPUs (pinned by Docker) but run FastChat on CPU.")

    plan_models = {}
    for name in sorted(model_hosts):
        entry = models[name]
        plan_models[name] = {
            "source": entry["source"], "revision": entry["revision"],
            "gpu_memory_gb": entry["gpu_memory_gb"],
            "conv_template": entry.get("conv_template"),
            "trust_remote_code": entry.get("trust_remote_code", False),
            "local_path": entry.get("local_path"),
            "container_path": "%s/%s" % (cfg["models_dir"].rstrip("/"), name),
            "hosts": model_hosts[name],
        }
    return {
        "summary": {
            "head": head, "head_address": head_address, "controller_address": controller,
            "api_url": "http://%s:%s/v1" % (head_address, cfg["api_port"]),
            "web_ui_url": "http://%s:%s" % (head_address, cfg["web_ui_port"]),
            "models": sorted(plan_models),
            "workers": list(worker_names),
            "gpu_hosts": gpu_hosts,
            "hosts": planned,
            "addresses": sorted({h["address"] for h in plan_hosts.values()}),
            # Addresses that are host names: each host resolves them (lab_plan resolve.yml).
            "named_addresses": sorted({h["address"] for h in plan_hosts.values()
                                       if not _is_ip(h["address"])}),
        },
        "models": plan_models,
        "hosts": plan_hosts,
        "warnings": warnings,
    }


def _service(name, kind, port, argv, url, controller, stack="cpu"):
    return {
        "name": name, "kind": kind, "port": port, "stack": stack, "gpus": [], "argv": argv,
        "url": url, "controller_address": controller, "model": None, "model_path": None,
        "backend": None, "device": None, "num_gpus": 0, "memory": None, "rehearsal": False,
    }


def _head_services(cfg, controller, address):
    base = ["python3", "-m"]
    return [
        _service("controller", "controller", cfg["controller_port"],
                 base + ["fastchat.serve.controller", "--host", "0.0.0.0",
                         "--port", str(cfg["controller_port"]),
                         "--dispatch-method", cfg["dispatch_method"]],
                 controller, controller),
        _service("openai-api", "openai_api", cfg["api_port"],
                 base + ["fastchat.serve.openai_api_server", "--host", "0.0.0.0",
                         "--port", str(cfg["api_port"]), "--controller-address", controller],
                 "http://%s:%s" % (address, cfg["api_port"]), controller),
        _service("web-ui", "web_ui", cfg["web_ui_port"],
                 base + ["fastchat.serve.gradio_web_server_multi", "--host", "0.0.0.0",
                         "--port", str(cfg["web_ui_port"]), "--controller-url", controller,
                         "--model-list-mode", "reload"],
                 "http://%s:%s" % (address, cfg["web_ui_port"]), controller),
    ]


def _plan_workers(host, workers, gpus, gpu_source, models, catalogue, templates, cfg,
                  address, controller, used_ports, worker_names, errors):
    gpu_by_index = {g["index"]: g for g in gpus}
    taken_gpus = {}
    checked = []
    # Pass 1: validate each worker and fix explicit ports.
    for pos, worker in enumerate(workers):
        var = "%s: fastchat_workers[%d]" % (host, pos)
        if not isinstance(worker, dict):
            errors.append("%s: must be a mapping with at least model and gpus, got %r. Fix: "
                          "write \"- model: NAME\" and \"gpus: [0]\"." % (var, worker))
            continue
        n_err = len(errors)
        for key in sorted(set(worker) - set(WORKER_KEYS)):
            errors.append("%s.%s: unknown key (a typo?). Fix: use only %s." % (
                var, key, ", ".join(WORKER_KEYS)))
        model = worker.get("model")
        entry = None
        if not isinstance(model, str) or not model:
            errors.append("%s.model: missing. Fix: name a model of the catalogue (%s)." % (
                var, ", ".join(sorted(models)) or "none"))
        elif model not in models:
            if isinstance(catalogue, dict) and model in catalogue:
                errors.append("%s.model: '%s' has an invalid catalogue entry (see its own "
                              "error). Fix: correct the entry in fastchat_models_extra." % (
                                  var, model))
            else:
                errors.append("%s.model: '%s' is not in the model catalogue. Fix: use one of "
                              "%s, or add it to fastchat_models_extra." % (
                                  var, model, ", ".join(sorted(models)) or "(none)"))
        else:
            entry = models[model]
        backend = worker.get("backend", "hf")
        if backend not in BACKENDS:
            errors.append("%s.backend: '%s' is not known. Fix: use hf or vllm." % (var, backend))
        device = worker.get("device", "cuda")
        if device not in DEVICES:
            errors.append("%s.device: '%s' is not known. Fix: use cuda or cpu." % (var, device))
        for key in ("load_8bit",):
            if key in worker and not isinstance(worker[key], bool):
                errors.append("%s.%s: must be a boolean, got %r. Fix: write true or false "
                              "without quotes." % (var, key, worker[key]))
        for key in ("limit_worker_concurrency",):
            if key in worker and (not _is_int(worker[key]) or worker[key] < 1):
                errors.append("%s.%s: must be a positive integer, got %r. Fix: e.g. 5." % (
                    var, key, worker[key]))
        name = worker.get("name")
        if name is not None and (not isinstance(name, str) or not re.match(
                r"^[a-z0-9][a-z0-9_.-]*$", name)):
            errors.append("%s.name: %r is not a valid worker name. Fix: use lower-case "
                          "letters, digits, '-', '_' or '.' (it names the container)." % (
                              var, name))
            name = None
        tmpl = worker.get("conv_template")
        if tmpl is not None:
            if not isinstance(tmpl, str):
                errors.append("%s.conv_template: must be a string, got %r." % (var, tmpl))
            elif templates is not None and tmpl not in templates:
                errors.append("%s.conv_template: '%s' is not a template of the installed "
                              "FastChat. Fix: use one of FastChat's templates (e.g. %s)." % (
                                  var, tmpl, _some(templates, tmpl)))
        # GPUs
        raw = worker.get("gpus", [])
        indices = []
        if not isinstance(raw, list):
            errors.append("%s.gpus: must be a list of GPU indices like [1, 2], got %r. Fix: "
                          "write gpus: [1, 2], not a string." % (var, raw))
        else:
            for item in raw:
                if not _is_int(item):
                    errors.append("%s.gpus: %r is not an integer GPU index. Fix: write gpus: "
                                  "[1, 2] with plain integers." % (var, item))
                elif item < 0:
                    errors.append("%s.gpus: GPU %d is negative. Fix: use the indices "
                                  "nvidia-smi shows (0, 1, ...)." % (var, item))
                elif item in indices:
                    errors.append("%s.gpus: GPU %d is listed twice. Fix: list each GPU once." % (
                        var, item))
                else:
                    indices.append(item)
        if device == "cpu" and indices:
            errors.append("%s.gpus: a cpu worker cannot have GPUs (%s). Fix: set gpus: [] or "
                          "device: cuda." % (var, ", ".join(map(str, indices))))
        if device == "cuda" and isinstance(raw, list) and not raw:
            errors.append("%s.gpus: a cuda worker needs at least one GPU. Fix: list its GPUs "
                          "(e.g. gpus: [0]) or set device: cpu." % var)
        if device == "cuda" and indices:
            if gpu_source == "none":
                errors.append("%s.gpus: the GPUs of %s are unknown. Fix: declare fastchat_gpus "
                              "for the host in the inventory, or gather facts first "
                              "(ansible-playbook playbooks/gpu_facts.yml / the gpu_facts "
                              "role)." % (var, host))
            else:
                for idx in indices:
                    if idx not in gpu_by_index:
                        errors.append("%s.gpus: GPU %d does not exist on this host (it has %d "
                                      "GPU%s: %s, %s). Fix: use an index from that list." % (
                                          var, idx, len(gpus), "" if len(gpus) == 1 else "s",
                                          ", ".join(str(g["index"]) for g in gpus) or "none",
                                          gpu_source))
                    elif idx in taken_gpus:
                        errors.append("%s.gpus: GPU %d is already given to worker %s on this "
                                      "host. Fix: give each GPU to one worker only." % (
                                          var, idx, taken_gpus[idx]))
        if backend == "vllm" and device == "cuda":
            for gpu in [gpu_by_index[i] for i in indices if i in gpu_by_index]:
                cc = _cc_tuple(gpu["compute_capability"])
                drv = _driver_major(gpu["driver_version"])
                if cc is None or cc < VLLM_MIN_COMPUTE_CAPABILITY:
                    errors.append("%s.backend: vllm needs compute capability 7.0 or newer "
                                  "but GPU %s (%s) has %s. Fix: use backend: hf on this "
                                  "GPU (e.g. a Tesla P40 is 6.1)." % (
                                      var, gpu["index"], gpu["name"],
                                      gpu["compute_capability"] or "an unknown one"))
                    break
                if drv is None or drv < VLLM_MIN_DRIVER:
                    errors.append("%s.backend: the vllm image needs CUDA 12, i.e. NVIDIA "
                                  "driver %d or newer, but GPU %s has driver %s. Fix: "
                                  "upgrade the driver or use backend: hf." % (
                                      var, VLLM_MIN_DRIVER, gpu["index"],
                                      gpu["driver_version"] or "unknown"))
                    break
        # Port
        port = worker.get("port")
        if port is not None and (not _is_int(port) or not 1 <= port <= 65535):
            errors.append("%s.port: must be a port number (1-65535), got %r." % (var, port))
            port = None
        # Memory caps
        max_mem = worker.get("max_gpu_memory")
        cap = None
        if max_mem is not None:
            try:
                cap = parse_memory_size(max_mem)
            except ValueError:
                errors.append("%s.max_gpu_memory: %r cannot be parsed. Fix: write it like "
                              "\"22GiB\" or \"24GB\" (GiB = 2^30 bytes, GB = 10^9 bytes)." % (
                                  var, max_mem))
            if backend == "vllm":
                errors.append("%s.max_gpu_memory: the vllm worker has no such option (vLLM "
                              "reserves a share of each GPU itself). Fix: remove it or use "
                              "backend: hf." % var)
            elif device == "cpu":
                errors.append("%s.max_gpu_memory: a cpu worker uses no GPU memory. Fix: "
                              "remove it." % var)
            elif len(indices) == 1:
                errors.append("%s.max_gpu_memory: FastChat uses --max-gpu-memory only when a "
                              "worker has more than one GPU; with one GPU it would be ignored. "
                              "Fix: remove it, or give the worker several GPUs." % var)
        if backend == "vllm" and worker.get("load_8bit") is True:
            errors.append("%s.load_8bit: the vllm worker has no 8-bit option. Fix: remove it "
                          "or use backend: hf." % var)
        if backend == "vllm" and device == "cpu":
            errors.append("%s.backend: vllm workers need GPUs. Fix: use backend: hf with "
                          "device: cpu." % var)
        if backend == "vllm" and cfg["rehearsal"]:
            errors.append("%s.backend: a rehearsal lab (fastchat_rehearsal: true) runs every "
                          "worker on CPU, which vllm cannot. Fix: use backend: hf, or set "
                          "fastchat_rehearsal: false on real GPUs." % var)
        if len(errors) > n_err:
            # Still mark GPUs and names so later workers do not repeat this worker's errors.
            for idx in indices:
                taken_gpus.setdefault(idx, name or "at position %d" % pos)
            continue
        if name is None:
            name = "%s-%s" % (slug(model), "cpu" if device == "cpu" else
                              "gpu" + "-".join(str(i) for i in indices))
        for idx in indices:
            taken_gpus[idx] = name
        if name in worker_names:
            errors.append("%s.name: worker name '%s' is already used by %s. Fix: set a "
                          "unique name: on one of them (names are lab-wide)." % (
                              var, name, worker_names[name]))
            continue
        worker_names[name] = "%s fastchat_workers[%d]" % (host, pos)
        if port is not None:
            if port in used_ports:
                errors.append("%s.port: port %d is already used by %s on this host. Fix: give "
                              "each service on a host its own port, or leave port out to get "
                              "the next free one." % (var, port, used_ports[port]))
                continue
            used_ports[port] = name
        checked.append((pos, var, worker, entry, name, port, backend, device, indices, cap))

    # Pass 2: default ports, memory, argv.
    services = []
    next_port = cfg["worker_base_port"]
    for pos, var, worker, entry, name, port, backend, device, indices, cap in checked:
        if port is None:
            while next_port in used_ports:
                next_port += 1
            port = next_port
            used_ports[port] = name
        assigned = [gpu_by_index[i] for i in indices]
        memory = None
        need = float(entry["gpu_memory_gb"]) * (LOAD_8BIT_FACTOR if worker.get("load_8bit")
                                                 else 1.0)
        if device == "cuda":
            per_gpu = [g["memory_mib"] * MIB for g in assigned]
            if cap is not None:
                small = min(per_gpu)
                if cap > small:
                    errors.append("%s.max_gpu_memory: %s (%.2f GB) is more than GPU memory "
                                  "(%.2f GB = %d MiB). Fix: set at most %dMiB, e.g. \"%dGiB\"." % (
                                      var, worker["max_gpu_memory"], cap / GB, small / GB,
                                      small // MIB, small // MIB, small // 2 ** 30))
                    continue
            available = sum(min(cap, m) if cap else m for m in per_gpu)
            memory = {"need_gb": round(need, 2), "available_gb": _gb(available)}
            if need * GB > available:
                errors.append("%s.gpus: %s needs about %.1f GB of GPU memory but GPU%s %s "
                              "give%s %.1f GB. Fix: give the worker more GPUs%s, or set "
                              "load_8bit: true." % (
                                  var, worker["model"], need, "s" if len(indices) > 1 else "",
                                  ",".join(map(str, indices)),
                                  "" if len(indices) > 1 else "s", available / GB,
                                  ", raise max_gpu_memory" if cap else ""))
                continue
        else:
            memory = {"need_gb": round(need, 2), "available_gb": None}
        model = worker["model"]
        model_path = "%s/%s" % (cfg["models_dir"].rstrip("/"), model)
        url = "http://%s:%d" % (address, port)
        tmpl = worker.get("conv_template") or entry.get("conv_template")
        # A rehearsal keeps the GPU assignment (checked above, pinned by Docker) but
        # runs FastChat on CPU, so fake GPUs are enough.
        rehearsed = device == "cuda" and cfg["rehearsal"]
        run_device = "cpu" if rehearsed else device
        argv = _worker_argv(backend, run_device, model, model_path, port, url, controller,
                            indices, worker, tmpl, entry)
        stack = "cpu" if run_device == "cpu" else STACK_BY[(backend, device)]
        services.append({
            "name": name, "kind": "model_worker", "port": port, "stack": stack,
            "gpus": [str(i) for i in indices], "argv": argv, "url": url,
            "controller_address": controller, "model": model, "model_path": model_path,
            "backend": backend, "device": run_device, "num_gpus": len(indices),
            "memory": memory, "rehearsal": rehearsed,
        })
    return services


def _worker_argv(backend, device, model, model_path, port, url, controller, indices,
                 worker, tmpl, entry):
    module = "fastchat.serve.vllm_worker" if backend == "vllm" else "fastchat.serve.model_worker"
    argv = ["python3", "-m", module, "--model-path", model_path, "--model-names", model,
            "--host", "0.0.0.0", "--port", str(port), "--worker-address", url,
            "--controller-address", controller or ""]
    if backend == "vllm":
        # FastChat 0.2.36 vllm_worker: --num-gpus sets vLLM's tensor_parallel_size, and its
        # --trust_remote_code is store_false with default True (passing it turns it OFF).
        argv += ["--num-gpus", str(len(indices))]
        if not entry.get("trust_remote_code", False):
            argv.append("--trust_remote_code")
    else:
        argv += ["--device", device]
        if device == "cuda":
            argv += ["--num-gpus", str(len(indices))]
            if len(indices) > 1 and worker.get("max_gpu_memory") is not None:
                argv += ["--max-gpu-memory", str(worker["max_gpu_memory"])]
        if worker.get("load_8bit"):
            argv.append("--load-8bit")
    if tmpl:
        argv += ["--conv-template", tmpl]
    if worker.get("limit_worker_concurrency") is not None:
        argv += ["--limit-worker-concurrency", str(worker["limit_worker_concurrency"])]
    return argv


# ---------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------

TABLE_HEADER = ("host", "GPU(s)", "model / service", "worker", "port",
                "memory used / available")


def _gpu_cell(host_plan, service):
    if not service["gpus"]:
        return "cpu" if service["kind"] == "model_worker" else "-"
    by_index = {str(g["index"]): g for g in host_plan["gpus"]}
    names = sorted({by_index[i]["name"] or "GPU" for i in service["gpus"] if i in by_index})
    count = len(service["gpus"])
    return "%s (%s%s)" % (",".join(service["gpus"]), "/".join(names),
                          " x%d" % count if count > 1 else "")


def _memory_cell(service):
    mem = service["memory"]
    if mem is None:
        return "-"
    if mem["available_gb"] is None:
        return "%.1f GB / host RAM" % mem["need_gb"]
    return "%.1f / %.1f GB" % (mem["need_gb"], mem["available_gb"])


def format_plan_table(plan):
    """The plan as fixed-width lines: one row per service, then the lab's URLs."""
    rows = []
    for host, hplan in plan["hosts"].items():
        for svc in hplan["services"]:
            what = svc["model"] or svc["kind"]
            if svc["backend"] == "vllm":
                what += " (vllm)"
            if svc.get("rehearsal"):
                what += " (rehearsal, on CPU)"
            rows.append((host, _gpu_cell(hplan, svc), what, svc["name"], str(svc["port"]),
                         _memory_cell(svc)))
    widths = [max(len(r[i]) for r in rows + [TABLE_HEADER]) for i in range(len(TABLE_HEADER))]

    def line(cells):
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = [line(TABLE_HEADER), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    summary = plan["summary"]
    out += [
        "",
        "controller: %s" % summary["controller_address"],
        "OpenAI API: %s" % summary["api_url"],
        "web UI:     %s" % summary["web_ui_url"],
    ]
    for warning in plan.get("warnings", []):
        out.append("warning: %s" % warning)
    return out
