# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Parse what ``nvidia-smi`` prints about a host's GPUs.

Standard library only and nothing else of the project: the ``nvidia_gpu_facts`` module
ships this file (not the planner) to the GPU hosts. What the parsed values mean for the
lab -- is the memory known, the compute capability supported -- is the planner's
business (``lab_plan.gpus``); this file only turns text into fields, keeping anything
nvidia-smi could not tell (``[N/A]``, ``[Not Supported]``) as None.
"""

from __future__ import annotations

import re

NA_VALUES = ("", "[N/A]", "N/A", "[Not Supported]", "Not Supported", "[Unknown Error]",
             "[Unknown]", "Unknown", "[GPU requires reset]", "[Insufficient Permissions]")
# The query the facts module runs, and its columns in that order.
GPU_QUERY_FIELDS = ("index", "uuid", "name", "memory.total", "compute_cap")
FIELD_KEYS = {"index": "index", "uuid": "uuid", "name": "name", "memory.total": "memory_mib",
              "compute_cap": "compute_capability", "driver_version": "driver_version"}


def _na(field: str):
    field = field.strip()
    return None if field in NA_VALUES else field


def _int_or_none(field: str):
    field = _na(field)
    if field is None:
        return None
    field = re.sub(r"\s*MiB$", "", field)
    if not re.match(r"^\d+\Z", field):
        return None
    return int(field)


def parse_gpu_query(csv_text: str) -> list:
    """GPUs from ``nvidia-smi --query-gpu=index,uuid,name,memory.total,compute_cap
    --format=csv,noheader,nounits``.

    With a header line (``--format=csv``) columns are found by name, so a wider query
    (``...,memory.used,compute_cap,driver_version,pci.bus_id``) parses too; "MiB" units
    are stripped and "[N/A]"/"[Not Supported]" become None. Each dict has ``index, uuid,
    name, memory_mib, compute_capability, driver_version`` (driver_version None unless
    the query had it: see :func:`parse_driver_versions`). Raises ValueError on a line it
    cannot read.
    """
    columns = {name: pos for pos, name in enumerate(GPU_QUERY_FIELDS)}
    gpus = []
    for line in (csv_text or "").splitlines():
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if fields[0].lower() == "index":
            columns = {re.sub(r"\s*\[.*\]$", "", f).lower(): i for i, f in enumerate(fields)}
            missing = {"index", "memory.total", "compute_cap"} - set(columns)
            if missing:
                raise ValueError("nvidia-smi header lacks %s: %r" % (
                    ", ".join(sorted(missing)), line))
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


def parse_driver_versions(text: str) -> list:
    """Driver version per line of ``nvidia-smi --query-gpu=driver_version --format=csv,noheader``."""
    out = []
    for line in (text or "").splitlines():
        if line.strip() and not line.strip().lower().startswith("driver_version"):
            out.append(_na(line))
    return out


def summary_lines(results: dict) -> list:
    """One line per host for the gpu_facts role's output: ``results`` is {host: what
    nvidia_gpu_facts registered there}; a host where it did not run (unreachable) says so."""
    lines = []
    for host, result in results.items():
        result = result or {}
        if "ansible_facts" not in result:
            lines.append("%s: not read (%s)" % (host, result.get("msg") or "the task did not run there"))
            continue
        gpus = result["ansible_facts"].get("fastchat_gpu_facts") or []
        lines.append(("%s: %d GPU(s): %s %s" % (host, len(gpus), ", ".join(g.get("name", "?") for g in gpus),
                                                 result.get("nvidia_smi_message", ""))).rstrip())
    return lines
