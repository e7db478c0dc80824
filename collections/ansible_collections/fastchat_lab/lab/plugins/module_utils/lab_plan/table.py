# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The plan as a table a person reads (printed by playbooks/plan.yml and site.yml)."""

from __future__ import annotations

HEADER = ("host", "GPU(s)", "model / service", "worker", "stack", "engine", "port",
          "GPU memory need / available", "context fits / served")


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


def _context_cell(service):
    mem = service["memory"]
    if mem is None or mem.get("max_context_tokens") is None:
        return "-"
    fits, served = mem["max_context_tokens"], mem["context_tokens"]
    model = mem.get("model_context_tokens") or served
    mark = " (short)" if fits < model else ""
    slots = " x %d slots" % mem["slots"] if mem.get("slots") else ""
    return "{:,} / {:,} tokens{}{}".format(fits, served, slots, mark)


def _engine_cell(service):
    """The engine and the precision the weights are served at ("transformers fp16",
    "llama.cpp q8_0"); "-" for the head's services."""
    if not service.get("engine"):
        return "-"
    return "%s %s" % (service["engine"], service["precision"])


def format_plan_table(plan):
    """The plan as fixed-width lines: one row per service, then the URLs and warnings."""
    rows = []
    for host, hplan in plan["hosts"].items():
        for svc in hplan["services"]:
            what = svc["model"] or svc["kind"]
            if svc.get("rehearsal"):
                what += " (rehearsal, on CPU)"
            rows.append((host, _gpu_cell(hplan, svc), what, svc["name"], svc["stack"],
                         _engine_cell(svc), str(svc["port"]), _memory_cell(svc),
                         _context_cell(svc)))
    widths = [max(len(r[i]) for r in rows + [HEADER]) for i in range(len(HEADER))]

    def line(cells):
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = [line(HEADER), "-+-".join("-" * w for w in widths)]
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
