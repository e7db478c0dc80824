"""GPU facts: the nvidia-smi parser and the nvidia_gpu_facts module."""

import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.nvidia_smi import (
    parse_driver_versions,
    parse_gpu_query,
)
from ansible_collections.fastchat_lab.lab.plugins.modules.nvidia_gpu_facts import (
    DRIVER_QUERY,
    GPU_QUERY,
    collect_gpu_facts,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "nvidia-smi")


def read(*parts):
    with open(os.path.join(DATA, *parts), encoding="utf-8") as fh:
        return fh.read()


H200 = [
    {"index": 0, "uuid": "GPU-5bbac3f5-7366-d9e9-7812-d931ec204731", "name": "NVIDIA H200",
     "memory_mib": 143771, "compute_capability": "9.0", "driver_version": None},
    {"index": 1, "uuid": "GPU-32703fa8-f5e3-3129-76d6-fa0b8c03dc3f", "name": "NVIDIA H200",
     "memory_mib": 143771, "compute_capability": "9.0", "driver_version": None},
]


def test_parse_real_h200_noheader():
    assert parse_gpu_query(read("h200x2", "query-gpu-noheader.csv")) == H200


def test_parse_real_h200_with_header_and_units():
    gpus = parse_gpu_query(read("h200x2", "query-gpu.csv"))
    assert gpus == [dict(g, driver_version="580.159.04") for g in H200]


def test_parse_p40_equivalent_matches_the_plain_nvidia_smi():
    gpus = parse_gpu_query(read("p40x4-query-gpu-noheader.csv"))
    assert [g["index"] for g in gpus] == [0, 1, 2, 3]
    assert {g["name"] for g in gpus} == {"Tesla P40"}
    assert {g["compute_capability"] for g in gpus} == {"6.1"}
    # Same names and memory as the plain nvidia-smi of the reference lab.
    plain = read("p40x4-nvidia-smi.txt")
    assert plain.count("Tesla P40") == 4 and plain.count("/ 23040MiB") == 4
    assert {g["memory_mib"] for g in gpus} == {23040}


def test_not_available_fields_become_none():
    gpus = parse_gpu_query("0, [N/A], Tesla P40, [Not Supported], [N/A]\n")
    assert gpus == [{"index": 0, "uuid": None, "name": "Tesla P40", "memory_mib": None,
                     "compute_capability": None, "driver_version": None}]


@pytest.mark.parametrize("text", ["", "\n\n", None])
def test_empty_output(text):
    assert parse_gpu_query(text) == []


@pytest.mark.parametrize("text", ["0, GPU-x, Tesla P40\n", "x, GPU-x, P40, 1, 6.1\n",
                                  "index, name\n0, P40\n"])
def test_garbage_raises(text):
    with pytest.raises(ValueError):
        parse_gpu_query(text)


def test_driver_versions():
    assert parse_driver_versions("515.105.01\n515.105.01\n") == ["515.105.01"] * 2
    assert parse_driver_versions("driver_version\n580.159.04\n") == ["580.159.04"]
    assert parse_driver_versions("") == []


# ---------------------------------------------------------------------------
# The module's logic with a fake runner
# ---------------------------------------------------------------------------

def fake_run(answers):
    calls = []

    def run(argv):
        calls.append(argv)
        return answers[tuple(argv[1:])]
    run.calls = calls
    return run


def test_collect_joins_driver_versions():
    run = fake_run({tuple(GPU_QUERY): (0, read("h200x2", "query-gpu-noheader.csv"), ""),
                    tuple(DRIVER_QUERY): (0, "580.159.04\n580.159.04\n", "")})
    gpus, message = collect_gpu_facts("/usr/bin/nvidia-smi", run)
    assert [g["driver_version"] for g in gpus] == ["580.159.04"] * 2
    assert gpus[1]["uuid"] == H200[1]["uuid"] and message == ""
    assert run.calls[0][0] == "/usr/bin/nvidia-smi"


def test_collect_without_nvidia_smi_is_empty():
    assert collect_gpu_facts(None, fake_run({})) == (
        [], "nvidia-smi not found: no NVIDIA driver on this host")


def test_collect_with_failing_nvidia_smi_is_empty():
    msg = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    gpus, message = collect_gpu_facts("nvidia-smi", fake_run({tuple(GPU_QUERY): (9, msg, "")}))
    assert gpus == [] and "rc=9" in message and "couldn't communicate" in message


# ---------------------------------------------------------------------------
# The module through Ansible, with a fake nvidia-smi on PATH
# ---------------------------------------------------------------------------

FAKE = """#!/bin/sh
# Fake nvidia-smi answering the two queries of nvidia_gpu_facts like a P40 host.
case "$*" in
  *driver_version*) printf '515.105.01\\n515.105.01\\n515.105.01\\n515.105.01\\n' ;;
  *index,uuid,name,memory.total,compute_cap*) cat "{data}" ;;
  *) echo "unexpected arguments: $*" >&2; exit 2 ;;
esac
"""
BROKEN = """#!/bin/sh
echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
exit 9
"""


def write_script(directory, text):
    path = directory / "nvidia-smi"
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def run_module(bindir, *extra):
    env = dict(os.environ, PATH="%s:%s:/usr/bin:/bin" % (bindir, os.path.dirname(sys.executable)),
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost",
         "-c", "local", "-m", "fastchat_lab.lab.nvidia_gpu_facts", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # profile_tasks (ansible.cfg) prints timings around the JSON document.
    document, _end = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])
    return document["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_module_with_fake_p40_nvidia_smi(tmp_path):
    data = os.path.join(DATA, "p40x4-query-gpu-noheader.csv")
    write_script(tmp_path, FAKE.format(data=data))
    result = run_module(tmp_path, "--check")
    gpus = result["ansible_facts"]["fastchat_gpu_facts"]
    assert len(gpus) == 4 and result["changed"] is False
    assert gpus[3] == {"index": 3, "uuid": "GPU-00000000-0000-0000-0000-000000000003",
                       "name": "Tesla P40", "memory_mib": 23040,
                       "compute_capability": "6.1", "driver_version": "515.105.01"}


def test_module_without_nvidia_smi(tmp_path):
    if os.path.exists("/usr/bin/nvidia-smi"):
        pytest.skip("this machine has a real /usr/bin/nvidia-smi")
    result = run_module(tmp_path)
    assert result["ansible_facts"]["fastchat_gpu_facts"] == []
    assert "not found" in result["nvidia_smi_message"]


def test_module_with_failing_nvidia_smi(tmp_path):
    write_script(tmp_path, BROKEN)
    result = run_module(tmp_path)
    assert result["ansible_facts"]["fastchat_gpu_facts"] == []
    assert "rc=9" in result["nvidia_smi_message"]


def test_one_line_per_host_of_what_was_found():
    from ansible_collections.fastchat_lab.lab.plugins.filter.gpu import FilterModule

    lines = FilterModule().filters()["gpu_facts_lines"]({
        "gpu01": {"ansible_facts": {"fastchat_gpu_facts": [{"name": "Tesla P40"}, {"name": "Tesla P40"}]},
                  "nvidia_smi_message": ""},
        "head": {"ansible_facts": {"fastchat_gpu_facts": []},
                 "nvidia_smi_message": "nvidia-smi not found: no NVIDIA driver"},
        "gone": {},
    })
    assert lines == ["gpu01: 2 GPU(s): Tesla P40, Tesla P40",
                     "head: 0 GPU(s):  nvidia-smi not found: no NVIDIA driver",
                     "gone: not read (the task did not run there)"]
