"""module_utils/lab_plan/views.py: each host's view of the plan (what plan.yml gives it as
lab_plan_current). The head's is the whole plan; another host's serves its roles exactly
as the whole plan would (its compose project, firewall rules, GGUF files, the stacks the
builder builds, the cache's and builder's addresses) while holding no other host's
services, GPUs or ports, so giving views out grows with the hosts, not hosts x workers."""

import copy
import json

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.compose import render_compose as compose_project
from ansible_collections.fastchat_lab.lab.plugins.module_utils.firewall import firewall_rules
from ansible_collections.fastchat_lab.lab.plugins.module_utils.gguf import gguf_files
from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import host_views
from labs import A100, H100, P40, plan_of


def lab(extra_hosts=0, workers_per_host=2):
    """A head with P40s (a llama.cpp and an hf worker), an A100 host (hf) and an H100
    host (llama.cpp), and EXTRA_HOSTS more A100 hosts with WORKERS_PER_HOST hf workers."""
    hosts = {
        "head": {"ansible_host": "10.0.0.1", "fastchat_gpus": dict(P40, driver_version="535.161.08"),
                 "fastchat_workers": [
                     {"model": "Qwen-7B-Chat", "gpus": [0], "backend": "llamacpp", "name": "qwen-head"},
                     {"model": "Baichuan-13B-Chat", "gpus": [1, 2, 3], "max_gpu_memory": "20GiB",
                      "name": "baichuan-head"}]},
        "a100": {"ansible_host": "10.0.0.2", "fastchat_gpus": A100, "fastchat_workers": [
            {"model": "Baichuan-13B-Chat", "gpus": [0], "name": "baichuan-a100"}]},
        "h100": {"ansible_host": "10.0.0.3", "fastchat_gpus": H100, "fastchat_workers": [
            {"model": "Qwen-7B-Chat", "gpus": [0], "backend": "llamacpp", "name": "qwen-h100"}]},
    }
    for n in range(extra_hosts):
        gpus = dict(A100, count=workers_per_host)
        hosts["x%03d" % n] = {"ansible_host": "10.1.%d.%d" % (n // 250, n % 250 + 1), "fastchat_gpus": gpus,
                              "fastchat_workers": [{"model": "Baichuan-13B-Chat", "gpus": [g],
                                                    "name": "baichuan-x%03d-%d" % (n, g)}
                                                   for g in range(workers_per_host)]}
    groups = {"all": list(hosts), "fastchat_head": ["head"], "gpu_hosts": list(hosts)}
    return plan_of(hosts, groups)


def images(plan):
    return {stack: "fastchat-lab/fastchat:%s-test" % stack for stack in plan["summary"]["stacks"]}


def test_the_head_sees_the_whole_plan():
    plan = lab()
    assert host_views(plan)["head"] is plan


@pytest.mark.parametrize("host", ["head", "a100", "h100"])
def test_a_view_renders_the_same_compose_project_and_firewall_as_the_plan(host):
    plan = lab()
    view = host_views(plan)[host]
    assert compose_project(view, host, {"images": images(plan)}) == compose_project(plan, host,
                                                                                   {"images": images(plan)})
    assert firewall_rules(host, view["hosts"][host], view["summary"]["addresses"]) == firewall_rules(
        host, plan["hosts"][host], plan["summary"]["addresses"])


def test_a_view_names_the_same_gguf_files_stacks_and_addresses_as_the_plan():
    plan = lab()
    for host, view in host_views(plan).items():
        assert gguf_files(view) == gguf_files(plan), host
        assert sorted({s for h in view["hosts"].values() for s in h["stacks"]}) == plan["summary"]["stacks"]
        assert {h: v["address"] for h, v in view["hosts"].items()} == {
            h: v["address"] for h, v in plan["hosts"].items()}
        assert view["models"] == plan["models"]


def test_another_host_s_view_holds_no_other_host_s_services_gpus_or_ports():
    plan = lab()
    view = host_views(plan)["a100"]
    assert view["hosts"]["a100"] == plan["hosts"]["a100"]
    for name in ("head", "h100"):
        assert view["hosts"][name] == {"address": plan["hosts"][name]["address"],
                                       "stacks": plan["hosts"][name]["stacks"]}
    assert "workers" not in view["summary"]
    assert {k: v for k, v in view["summary"].items()} == {
        k: v for k, v in plan["summary"].items() if k != "workers"}


def test_an_inventory_host_outside_the_lab_gets_a_view_without_an_entry_of_its_own():
    plan = lab()
    view = host_views(plan, ["head", "bastion"])["bastion"]
    assert "bastion" not in view["hosts"] and set(view["hosts"]) == set(plan["hosts"])


def test_views_leave_the_plan_as_it_was_and_are_json():
    plan = lab()
    before = copy.deepcopy(plan)
    views = host_views(plan)
    assert plan == before
    json.dumps(views)


def test_a_view_does_not_grow_with_the_workers_of_other_hosts():
    small, large = lab(extra_hosts=20, workers_per_host=1), lab(extra_hosts=20, workers_per_host=2)
    size = {name: len(json.dumps(host_views(plan)["a100"])) for name, plan in (("small", small), ("large", large))}
    # Same hosts, twice the workers elsewhere: a100's view is the same size (its own entry,
    # the others' addresses and stacks); the whole plan grows.
    assert size["small"] == size["large"]
    assert len(json.dumps(large)) > len(json.dumps(small)) * 1.3
