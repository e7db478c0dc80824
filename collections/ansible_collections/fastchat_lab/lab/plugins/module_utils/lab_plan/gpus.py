# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""A host's GPUs, from gathered facts or the inventory's declaration, checked one way.

Gathered facts (``fastchat_gpu_facts``, set by the gpu_facts role from nvidia-smi) win
when the host has any; otherwise ``fastchat_gpus`` declares them, as
``{count, name, memory_mib, compute_capability, driver_version}`` for identical GPUs
or a list of per-GPU mappings (``index`` optional: the position). Both become the same
entries and pass :func:`check_entries`: an index that is a non-negative integer given
once, a positive memory size, a compute capability "X.Y" and a driver version.
"""

from __future__ import annotations

import re

from .grammar import is_int, is_number
from .model import Gpu
from .problems import key as keyed, show

GPU_KEYS = ("index", "uuid", "name", "memory_mib", "compute_capability", "driver_version")
DECLARED_KEYS = ("count", "name", "memory_mib", "compute_capability", "driver_version")
DECLARE_FIX = ("declare fastchat_gpus as {count, name, memory_mib, compute_capability, "
               "driver_version} for identical GPUs, or a list of {index, name, memory_mib, "
               "compute_capability, driver_version} per GPU")
FACTS_FIX = ("check the driver on the host (nvidia-smi -q shows what it cannot read); the "
             "facts win over fastchat_gpus, so they must be right")
CC_RE = re.compile(r"^(\d{1,2})\.(\d)\Z")
DRIVER_RE = re.compile(r"^(\d{3,4})(?:\.\d{1,3}){1,2}\Z")
MAX_GPUS = 64


def _cc(value):
    if isinstance(value, float) and is_number(value):
        value = "%.1f" % value
    match = CC_RE.match(value) if isinstance(value, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def _driver(value):
    if isinstance(value, float) and is_number(value):
        value = repr(value)
    return value if isinstance(value, str) and DRIVER_RE.match(value) else None


def host_gpus(host: str, hvars: dict, problems):
    """(list of Gpu, source) with source "facts", "declared" or "none"."""
    facts = hvars.get("fastchat_gpu_facts")
    if not facts and isinstance(hvars.get("ansible_facts"), dict):
        facts = hvars["ansible_facts"].get("fastchat_gpu_facts")
    if facts:
        if not isinstance(facts, list) or not all(isinstance(g, dict) for g in facts):
            problems.add(host, "fastchat_gpu_facts", "must be the list the gpu_facts role sets, "
                         "got %s" % show(facts), "do not set it by hand; re-run the gpu_facts role")
            return [], "none"
        return check_entries(host, "fastchat_gpu_facts", facts, FACTS_FIX, problems), "facts"
    declared = hvars.get("fastchat_gpus")
    if declared in (None, [], {}):
        return [], "none"
    var = "fastchat_gpus"
    if isinstance(declared, dict):
        unknown = sorted((k for k in declared if k not in DECLARED_KEYS), key=repr)
        if unknown:
            problems.add(host, var + keyed(unknown[0]), "unknown key", DECLARE_FIX)
            return [], "none"
        count = declared.get("count")
        if not is_int(count) or not 1 <= count <= MAX_GPUS:
            problems.add(host, var + ".count", "must be a whole number of GPUs from 1 to %d, "
                         "got %s" % (MAX_GPUS, show(count)), DECLARE_FIX)
            return [], "none"
        entries = [dict(declared, index=i) for i in range(count)]
        for entry in entries:
            entry.pop("count")
    elif isinstance(declared, list):
        entries = []
        for pos, item in enumerate(declared):
            if not isinstance(item, dict):
                problems.add(host, "%s[%d]" % (var, pos), "must be a mapping, got %s"
                             % show(item), DECLARE_FIX)
                return [], "none"
            unknown = sorted((k for k in item if k not in DECLARED_KEYS + ("index",)), key=repr) \
                or (["count"] if "count" in item else [])
            if unknown:
                problems.add(host, "%s[%d]%s" % (var, pos, keyed(unknown[0])),
                             "unknown key in a per-GPU entry", DECLARE_FIX)
                return [], "none"
            entries.append(dict(item, index=item.get("index", pos)))
        if len(entries) > MAX_GPUS:
            problems.add(host, var, "lists %d GPUs, more than %d" % (len(entries), MAX_GPUS),
                         DECLARE_FIX)
            return [], "none"
    else:
        problems.add(host, var, "must be a mapping or a list, got %s" % show(declared),
                     DECLARE_FIX)
        return [], "none"
    return check_entries(host, var, entries, DECLARE_FIX, problems), "declared"


def check_entries(host: str, var: str, entries: list, fix: str, problems) -> list:
    """Gpu objects for valid entries; a problem (and no GPUs) for any invalid one."""
    gpus, seen, before = [], set(), len(problems)
    for pos, item in enumerate(entries):
        where = "%s[%d]" % (var, pos)
        index = item.get("index")
        if not is_int(index) or not 0 <= index < MAX_GPUS:
            problems.add(host, where + ".index", "must be a GPU index (a whole number from 0 "
                         "to %d), got %s" % (MAX_GPUS - 1, show(index)), fix)
            continue
        if index in seen:
            problems.add(host, where + ".index", "GPU %d is listed twice" % index, fix)
            continue
        seen.add(index)
        mem = item.get("memory_mib")
        if not is_number(mem) or mem <= 0 or mem > 2 ** 24:
            problems.add(host, where + ".memory_mib", "GPU %d: memory must be a positive number "
                         "of MiB (as nvidia-smi shows it), got %s" % (index, show(mem)), fix)
            continue
        cc = _cc(item.get("compute_capability"))
        if cc is None:
            problems.add(host, where + ".compute_capability", "GPU %d: must look like \"6.1\", "
                         "got %s" % (index, show(item.get("compute_capability"))), fix)
            continue
        driver = _driver(item.get("driver_version"))
        if driver is None:
            problems.add(host, where + ".driver_version", "GPU %d: must look like "
                         "\"515.105.01\", got %s" % (index, show(item.get("driver_version"))), fix)
            continue
        name = item.get("name")
        uuid = item.get("uuid")
        gpus.append(Gpu(index=index, uuid=uuid if isinstance(uuid, str) else None,
                        name=name if isinstance(name, str) and name.strip() else "GPU",
                        memory_mib=int(mem), compute_capability=cc, driver_version=driver))
    if len(problems) > before:
        return []
    drivers = sorted({g.driver_version for g in gpus})
    if len(drivers) > 1:
        problems.add(host, var, "the GPUs name different drivers (%s); one host has one "
                     "driver" % ", ".join(drivers), fix)
        return []
    return sorted(gpus, key=lambda g: g.index)
