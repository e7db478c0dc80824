# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Each host's view of the lab plan: what its roles read, and no more.

plan.yml gives every inventory host its view as ``lab_plan_current`` (one task for the
lab). Giving each host the whole plan grew with hosts x workers (a 200-host lab spent
minutes copying it); a view grows with the hosts only:

- the head: the whole plan (the lab's checks, playbooks/verify.yml, read every host);
- any other host: its own entry whole; of every other host its ``address`` and ``stacks``
  (where it pulls weights and images from: the cache and the builder are any host; the
  builder builds every stack); ``summary`` without the list of every worker's name;
  ``models`` (the catalogue of the models the lab runs: weights, GGUF files).

The views share their unchanged parts with the plan (no copy is made here).
"""

from __future__ import annotations

# What a host reads of another host's entry.
OTHER_HOST_KEYS = ("address", "stacks")
# What a host other than the head does not read of the summary.
SUMMARY_HEAD_ONLY = ("workers",)


def host_views(plan, names=()):
    """{host: view} for every host of PLAN and every other name in NAMES (an inventory host
    outside the lab's groups gets the view of no entry of its own)."""
    head = plan["summary"]["head"]
    others = {name: {key: entry[key] for key in OTHER_HOST_KEYS if key in entry}
              for name, entry in plan["hosts"].items()}
    summary = {key: value for key, value in plan["summary"].items() if key not in SUMMARY_HEAD_ONLY}
    views = {}
    for name in list(plan["hosts"]) + [n for n in names if n not in plan["hosts"]]:
        if name == head:
            views[name] = plan
            continue
        hosts = dict(others)
        if name in plan["hosts"]:
            hosts[name] = plan["hosts"][name]
        views[name] = {"hosts": hosts, "summary": summary, "models": plan["models"],
                       "warnings": plan["warnings"]}
    return views
