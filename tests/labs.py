"""Labs shared by the tests: the reference lab as inventory/lab declares it, and the
settings exactly as the lab_plan role's defaults give them (their one owner)."""

import os

import yaml

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import (
    SETTING_KEYS,
    build_plan,
)
from fastchat.conversation import conv_templates

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES = set(conv_templates)
with open(os.path.join(ROOT, "group_vars", "all.yml"), encoding="utf-8") as fh:
    CATALOGUE = yaml.safe_load(fh)["fastchat_models"]
with open(os.path.join(ROOT, "roles", "lab_plan", "defaults", "main.yml"), encoding="utf-8") as fh:
    _DEFAULTS = yaml.safe_load(fh)
SETTINGS = {key: _DEFAULTS["fastchat_" + key] for key in SETTING_KEYS}
P40 = {"count": 4, "name": "Tesla P40", "memory_mib": 23040,
       "compute_capability": "6.1", "driver_version": "515.105.01"}
H100 = {"count": 2, "name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559,
        "compute_capability": "9.0", "driver_version": "550.54.15"}
A100 = {"count": 2, "name": "NVIDIA A100-SXM4-80GB", "memory_mib": 81920,
        "compute_capability": "8.0", "driver_version": "535.161.08"}


def reference_lab():
    """The reference lab exactly as inventory/lab declares it."""
    with open(os.path.join(ROOT, "inventory", "lab"), encoding="utf-8") as fh:
        inv = yaml.safe_load(fh)
    hosts, groups = {}, {"all": []}
    for group, body in inv["all"]["children"].items():
        groups[group] = list(body["hosts"])
        for host, hvars in body["hosts"].items():
            hosts.setdefault(host, {}).update(hvars or {})
            if host not in groups["all"]:
                groups["all"].append(host)
    return hosts, groups


def plan_of(hosts, groups, catalogue=None, settings=None):
    return build_plan(hosts, groups, CATALOGUE if catalogue is None else catalogue,
                      dict(SETTINGS, **(settings or {})), TEMPLATES)
