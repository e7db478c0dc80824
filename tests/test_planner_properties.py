"""The planner as a safety gate, for any inventory: a plan or a PlanError, nothing else.

Hypothesis generates thousands of inventories per run (about a minute in all), most of
them close to real labs and many hostile: names with "..", "/", ":" or ",", addresses
with schemes or out-of-range octets, NaN and infinite memory, ports past 65535, strings
where numbers or booleans belong, GPUs given twice, keys YAML reads as numbers. For
every one, build_plan either

- raises PlanError, and every message names a host of the inventory (or "all"), the
  variable, what is wrong and "Fix:"; or
- returns a plan that holds the invariants the roles rely on: no GPU given twice on a
  host, ports unique per address across all services and within 1-65535, every name in
  the grammar, every argv element a plain string, every path one the lab may use, and
  every worker's memory within what its GPUs offer at the context it fits.

FASTCHAT_LAB_PROPERTY_EXAMPLES sets the number of inventories (default 8000, about 30 s).
"""

import copy
import json
import math
import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import (
    PlanError,
    build_plan,
    merge_catalogue,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import grammar
from labs import A100, CATALOGUE, H100, P40, SETTINGS, TEMPLATES

EXAMPLES = int(os.environ.get("FASTCHAT_LAB_PROPERTY_EXAMPLES", "8000"))
MESSAGE = re.compile(r"^(?P<where>[^:]+): (?P<var>\S(?:.*?\S)?): (?P<what>.+)\. Fix: (?P<fix>.+)\.$",
                     re.S)

HOSTILE_TEXT = st.sampled_from([
    "", " ", "..", "../../../etc", "/etc", "a/b", "a:b", "a,b", "a b", "-rf", "$(id)",
    "x;rm", "Qwen-7B-Chat,Baichuan-13B-Chat", "controller", "web-ui", "openai-api",
    "UPPER", "ok-name", "a" * 70, "名字", "\n", "nan", "inf", "yes", "no", "true",
])
NUMBERS = st.one_of(
    st.integers(min_value=-5, max_value=70000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 65535, 65536, 2 ** 40, -1]),
)
ODD = st.one_of(st.none(), st.booleans(), NUMBERS, HOSTILE_TEXT,
                st.lists(st.integers(-2, 8), max_size=3), st.dictionaries(HOSTILE_TEXT, NUMBERS,
                                                                           max_size=2))
ADDRESSES = st.sampled_from([
    "192.0.2.10", "192.0.2.11", "198.51.100.7", "10.0.0.12", "lab-head.example", "gpu02",
    "http://192.0.2.10", "192.0.2.300", "::1", "2001:db8::5", "127.0.0.1", "0.0.0.0",
    "host name", "host:22", "", "999", "a..b", "-bad-", "192.0.2.10/24",
])
MODEL_NAMES = st.sampled_from(["Qwen-7B-Chat", "Baichuan-13B-Chat", "tiny", "Tiny.v1",
                               "../../../etc", "a,b", "x:y", "a/b", "..", "7", "Nope"])
GPU_SPECS = st.sampled_from([P40, H100, A100])


TINY = {"source": "fastchat-lab/tiny", "revision": "a" * 40, "conv_template": "vicuna_v1.1",
        "architecture": {"parameters": 10 ** 6, "layers": 2, "hidden_size": 64,
                         "attention_heads": 4, "kv_heads": 4, "context_tokens": 2048,
                         "vocab_size": 1024, "alibi": False}}
FLAT = {"source": "file:///srv/hub/flat", "revision": "b" * 40, "gpu_memory_gb": 9.5}


@st.composite
def valid_lab(draw):
    """An inventory a careful admin could write: the starting point of every case."""
    names = draw(st.lists(st.sampled_from(["gpu01", "gpu02", "gpu03", "head", "h.example"]),
                          min_size=1, max_size=3, unique=True))
    hosts = {}
    for pos, name in enumerate(names):
        spec = dict(draw(GPU_SPECS), count=draw(st.integers(1, 8)))
        hvars = {"ansible_host": "192.0.2.%d" % (10 + pos), "fastchat_gpus": spec}
        free = list(range(spec["count"]))
        workers = []
        for _ in range(draw(st.integers(1, 3))):
            if draw(st.integers(0, 5)) == 0 or not free:
                workers.append({"model": draw(st.sampled_from(["Qwen-7B-Chat", "tiny"])),
                                "device": "cpu", "gpus": []})
                continue
            take = draw(st.integers(1, min(4, len(free))))
            gpus, free = free[:take], free[take:]
            big = spec["memory_mib"] > 40000
            # Mostly what fits; sometimes what does not (the planner must refuse it).
            models = ["Qwen-7B-Chat", "tiny", "flat"] + (
                ["Baichuan-13B-Chat"] if big or take > 1 else [])
            model = draw(st.sampled_from(models if draw(st.integers(0, 6)) else
                                         ["Baichuan-13B-Chat"]))
            entry = {"model": model, "gpus": gpus}
            if spec["compute_capability"] != "6.1" and take in (1, 2, 4) and \
                    model in ("Qwen-7B-Chat", "tiny") and draw(st.integers(0, 3)) == 0:
                entry["backend"] = "vllm"
            elif take > 1 and (model == "Baichuan-13B-Chat" or draw(st.booleans())):
                entry["max_gpu_memory"] = draw(st.sampled_from(["20GiB", "22GB", "24GB"]))
            elif take == 1 and draw(st.integers(0, 3)) == 0:
                entry["load_8bit"] = True
            if draw(st.integers(0, 3)) == 0:
                entry["limit_worker_concurrency"] = draw(st.integers(1, 8))
            workers.append(entry)
        for i, entry in enumerate(workers):
            if entry.get("device") == "cpu" or draw(st.integers(0, 4)) == 0:
                entry["name"] = "w-%s-%d" % (name.replace(".", "-"), i)
            if draw(st.integers(0, 4)) == 0:
                entry["port"] = 22000 + 10 * pos + i
        hvars["fastchat_workers"] = workers
        hosts[name] = hvars
    groups = {"all": names, "fastchat_head": [names[0]], "gpu_hosts": list(names)}
    if len(names) > 1 and draw(st.booleans()):
        # A head that runs no worker.
        hosts[names[0]].pop("fastchat_workers")
        groups["gpu_hosts"].remove(names[0])
    cat = merge_catalogue(copy.deepcopy(CATALOGUE), {"tiny": copy.deepcopy(TINY), "flat": dict(FLAT)})
    return hosts, groups, cat, dict(SETTINGS)


def _list(value):
    """The dicts of a list that a mutation may have replaced by anything."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _paths(hosts, groups, cat, cfg):
    """Every place a mutation may hit: (container, key) pairs."""
    out = [(cfg, k) for k in cfg] + [(groups, "fastchat_head"), (groups, "gpu_hosts")]
    for hvars in hosts.values():
        if not isinstance(hvars, dict):
            continue
        out += [(hvars, k) for k in ("ansible_host", "fastchat_address", "fastchat_gpus",
                                     "fastchat_workers")]
        if isinstance(hvars.get("fastchat_gpus"), dict):
            out += [(hvars["fastchat_gpus"], k) for k in ("count", "name", "memory_mib",
                                                        "compute_capability",
                                                        "driver_version", "compute_cap")]
        for gpu in _list(hvars.get("fastchat_gpu_facts")):
            out += [(gpu, k) for k in ("index", "memory_mib", "compute_capability",
                                       "driver_version", "name")]
        for entry in _list(hvars.get("fastchat_workers")):
            out += [(entry, k) for k in ("model", "gpus", "backend", "device", "name", "port",
                                         "max_gpu_memory", "load_8bit", "conv_template",
                                         "limit_worker_concurrency", "max_gpu_memroy", 7)]
    for entry in cat.values():
        if not isinstance(entry, dict):
            continue
        out += [(entry, k) for k in ("source", "revision", "local_path", "conv_template",
                                     "trust_remote_code", "requires", "aliases", "gpu_memory_gb",
                                     "architecture", "revison")]
        if isinstance(entry.get("architecture"), dict):
            out += [(entry["architecture"], k) for k in ("parameters", "layers", "hidden_size",
                                                         "attention_heads", "kv_heads",
                                                         "context_tokens", "vocab_size",
                                                         "alibi")]
    return out


HOSTILE_VALUES = st.one_of(
    ODD, ADDRESSES, MODEL_NAMES, GPU_SPECS,
    st.sampled_from(["main", "0" * 40, "/srv/models/x", "relative/path", "/etc", "/", "/srv",
                     "/data/../etc", {"transformers": ">=4.45"}, {"transformers": "latest"},
                     ["千问"], "24GB", "22GiB", "24", "nanGB", "infGiB", "1e3GB", "hf", "vllm",
                     "cpu", "cuda", [0, 0], [1, 2], [], 8000, 7860, 21001, 21002, 65535, 65536,
                     "org/../x", "ssh://x/y", "file:///srv/hub/x", "http:///x", "9.0", "6.1",
                     "515.105.01", "550.54.15", [{"index": 0}], {"7": 1}]),
    # A fresh copy each time: a later edit of the case must not change the shared samples
    # (it made the strategy itself flaky: a GPU spec lost its compute_capability).
).map(copy.deepcopy)


@st.composite
def inventories(draw):
    hosts, groups, cat, cfg = draw(valid_lab())
    for name, hvars in hosts.items():
        spec = hvars.get("fastchat_gpus")
        if draw(st.integers(0, 3)) == 0:
            # Gathered instead of declared: what the gpu_facts role reads from nvidia-smi.
            hvars["fastchat_gpu_facts"] = [
                {"index": i, "uuid": "GPU-%s-%d" % (name, i), "name": spec["name"],
                 "memory_mib": spec["memory_mib"], "compute_capability":
                 spec["compute_capability"], "driver_version": spec["driver_version"]}
                for i in range(spec["count"])]
    # About a third stay valid; the rest get one to four hostile edits.
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 4]))):
        paths = _paths(hosts, groups, cat, cfg)
        container, key = draw(st.sampled_from(paths))
        if draw(st.integers(0, 9)) == 0:
            container.pop(key, None)
        else:
            container[key] = draw(HOSTILE_VALUES)
    if draw(st.integers(0, 9)) == 0:
        name = draw(st.sampled_from(["gpu09", "7", "weird name"]))
        hosts[name] = {"ansible_host": draw(ADDRESSES), "fastchat_gpus": dict(P40),
                       "fastchat_workers": [{"model": draw(MODEL_NAMES), "gpus": [0]}]}
        groups["all"].append(name)
        if draw(st.booleans()) and isinstance(groups.get("gpu_hosts"), list):
            groups["gpu_hosts"].append(name)
    if draw(st.integers(0, 12)) == 0:
        cat[draw(st.sampled_from([7, "../x", "Qwen-7b-chat", "a,b"]))] = dict(FLAT)
    return hosts, groups, cat, cfg


def _check_refusal(error, hosts, groups):
    assert error.errors, "PlanError without problems"
    named = set(hosts) | {str(m) for members in groups.values() if isinstance(members, list)
                          for m in members}
    for message in error.errors:
        match = MESSAGE.match(message)
        assert match, "not '<where>: <variable>: <what>. Fix: <fix>.': %r" % message
        assert match["where"] == "all" or match["where"] in named, message
        assert match["fix"].strip() and match["what"].strip(), message


def _check_plan(plan):
    json.dumps(plan, allow_nan=False)
    by_address = {}
    for host, hplan in plan["hosts"].items():
        assert grammar.address_problem(hplan["address"]) is None, hplan["address"]
        gpu_indices = {g["index"] for g in hplan["gpus"]}
        taken = []
        for svc in hplan["services"]:
            assert 1 <= svc["port"] <= 65535
            by_address.setdefault(hplan["address"], []).append(svc["port"])
            assert all(type(a) is str for a in svc["argv"]), svc["argv"]
            assert grammar.worker_name_problem(svc["name"]) is None, svc["name"]
            assert hplan["address"] in svc["url"]
            if svc["kind"] != "model_worker":
                continue
            assert grammar.model_name_problem(svc["model"]) is None
            assert svc["argv"][svc["argv"].index("--model-names") + 1] == svc["model"]
            taken += svc["gpus"]
            assert {int(i) for i in svc["gpus"]} <= gpu_indices
            mem = svc["memory"]
            if svc["gpus"] and mem["basis"] == "architecture":
                assert mem["max_context_tokens"] >= min(256, mem["model_context_tokens"])
                if mem["max_context_tokens"] == mem["context_tokens"]:
                    for gpu in mem["gpus"]:
                        assert gpu["need_gb"] <= gpu["available_gb"] + 0.01, mem
                else:
                    assert any(svc["model"] in w and host in w for w in plan["warnings"])
            elif svc["gpus"]:
                assert mem["need_gb"] <= mem["available_gb"] + 0.01, mem
        assert len(taken) == len(set(taken)), (host, taken)
    for address, ports in by_address.items():
        assert len(ports) == len(set(ports)), (address, ports)
    for model in plan["models"].values():
        assert grammar.host_dir_problem(model["host_path"]) is None, model["host_path"]
        assert grammar.revision_problem(model["revision"]) is None


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(inventories())
def test_any_inventory_gives_a_plan_or_a_clear_refusal(inventory):
    hosts, groups, cat, cfg = inventory
    try:
        plan = build_plan(hosts, groups, cat, cfg, TEMPLATES)
    except PlanError as error:
        _check_refusal(error, hosts, groups)
        return
    _check_plan(plan)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12), st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=8)))
def test_sizes_are_a_number_and_a_unit_or_refused(text, junk):
    for value in (text, junk, "%sGB" % text):
        try:
            size = grammar.parse_memory_size(value)
        except ValueError:
            continue
        assert isinstance(size, int) and size > 0 and math.isfinite(size)
