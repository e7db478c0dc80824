"""The fastchat_image role's pinned stacks: every pin has its reason above it, the
cpu stack is the cuda117 stack, the llamacpp stacks serve without torch and convert with
the cpu stack's torch and llama.cpp's own pins, and the pins the lab's models need hold."""

import os
import re
import subprocess

import pytest
import yaml
from packaging.requirements import Requirement

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan.stacks import (
    STACKS as STACK_TABLE,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACKS = os.path.join(ROOT, "roles", "fastchat_image", "files", "stacks")
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)$")


LLAMACPP = ("llamacpp-cpu", "llamacpp-cuda")
# llama.cpp's converter at the pinned commit, where tests/fixtures/build made its repository.
LLAMACPP_FIXTURE = os.path.join(ROOT, ".cache", "fixtures", "current")


def pins(stack, name="constraints.txt"):
    result, previous = {}, ""
    with open(os.path.join(STACKS, stack, name)) as f:
        for line in f:
            line = line.strip()
            m = PIN.match(line)
            if m:
                assert previous.startswith("#"), "%s: %s has no reason above it" % (stack, line)
                result[m.group(1).lower().replace("_", "-")] = m.group(2)
            elif line and not line.startswith("#"):
                pytest.fail("%s: not a pin or a comment: %s" % (stack, line))
            previous = line
    return result


def requirements(stack, name="requirements.txt"):
    with open(os.path.join(STACKS, stack, name)) as f:
        return [l.strip().lower().replace("_", "-") for l in f if l.strip() and not l.startswith("#")]


@pytest.mark.parametrize("stack", ["cuda117", "cuda121", "cpu", "vllm", *LLAMACPP])
def test_every_requirement_is_pinned_with_a_reason(stack):
    pinned = pins(stack)
    assert set(requirements(stack)) <= set(pinned)


@pytest.mark.parametrize("stack", LLAMACPP)
def test_every_converter_requirement_is_pinned_with_a_reason(stack):
    assert set(requirements(stack, "convert-requirements.txt")) <= set(pins(stack, "convert-constraints.txt"))


def test_the_role_knows_the_planners_stacks():
    with open(os.path.join(ROOT, "roles", "fastchat_image", "vars", "main.yml")) as f:
        role = yaml.safe_load(f)
    assert sorted(role["_fastchat_image_known_stacks"]) == sorted(STACK_TABLE)
    assert sorted(role["_fastchat_image_llamacpp_stacks"]) == sorted(
        name for name, stack in STACK_TABLE.items() if stack.backend == "llamacpp")
    for name in STACK_TABLE:
        assert os.path.isfile(os.path.join(STACKS, name, "constraints.txt")), name


def test_the_llamacpp_stacks_have_the_same_python():
    for name in ("constraints.txt", "convert-constraints.txt"):
        assert pins("llamacpp-cpu", name) == pins("llamacpp-cuda", name), name
    for name in ("requirements.txt", "convert-requirements.txt"):
        assert requirements("llamacpp-cpu", name) == requirements("llamacpp-cuda", name), name


@pytest.mark.parametrize("stack", LLAMACPP)
def test_the_llamacpp_worker_venv_has_no_torch_and_the_cpu_stacks_pins(stack):
    serving, cpu = pins(stack), pins("cpu")
    assert "torch" not in serving and "transformers" not in serving
    assert "torch" not in requirements(stack) and "transformers" not in requirements(stack)
    # What it pins, it pins as the cpu stack does: one version of each library per lab.
    assert serving == {k: cpu[k] for k in serving}
    assert {"fastapi", "uvicorn", "pydantic", "httpx"} <= set(serving)


@pytest.mark.parametrize("stack", LLAMACPP)
def test_the_converter_takes_the_cpu_stacks_torch_and_llama_cpps_transformers(stack):
    convert = pins(stack, "convert-constraints.txt")
    assert convert["torch"] == pins("cpu")["torch"]
    assert convert["transformers"] == "4.57.6"
    # gguf comes from the commit's gguf-py, not from an index.
    assert "gguf" not in convert and "gguf" not in requirements(stack, "convert-requirements.txt")
    assert {"numpy", "sentencepiece", "tiktoken", "protobuf", "safetensors"} <= set(convert)


def llamacpp_requirements():
    """llama.cpp's own converter requirements at the lab's commit, from the fixtures'
    repository (tests/fixtures/build), following its -r includes."""
    repo = os.path.join(LLAMACPP_FIXTURE, "git", "llama.cpp.git")
    if not os.path.isdir(repo):
        pytest.skip("no llama.cpp fixture repository: run tests/fixtures/build")
    with open(os.path.join(LLAMACPP_FIXTURE, "llama.cpp.rev")) as f:
        commit = f.read().strip()

    def read(path):
        text = subprocess.run(["git", "-C", repo, "show", "%s:%s" % (commit, path)], check=True,
                              capture_output=True, text=True).stdout
        out = []
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("-r "):
                out += read(os.path.normpath(os.path.join(os.path.dirname(path), line[3:].strip())))
            elif line and not line.startswith("-"):
                out.append(Requirement(line))
        return out

    return commit, read("requirements/requirements-convert_hf_to_gguf.txt")


def test_the_converter_pins_meet_llama_cpps_own_requirements():
    commit, wanted = llamacpp_requirements()
    with open(os.path.join(ROOT, "roles", "lab_plan", "defaults", "main.yml")) as f:
        assert yaml.safe_load(f)["fastchat_llamacpp_commit"] == commit
    convert = pins("llamacpp-cpu", "convert-constraints.txt")
    checked = []
    for req in wanted:
        name = req.name.lower().replace("_", "-")
        if name == "torch":
            # llama.cpp pins 2.11.0 (its Gemma-embedding code needs >= 2.6); the lab's one
            # CPU torch is the cpu stack's.
            assert tuple(int(x) for x in convert["torch"].split("+")[0].split(".")[:2]) >= (2, 6)
        elif name == "gguf":
            continue
        else:
            assert req.specifier.contains(convert[name], prereleases=False), (req, convert[name])
        checked.append(name)
    assert {"torch", "transformers", "numpy", "sentencepiece", "protobuf"} <= set(checked)


def test_the_hf_stacks_share_every_pin_but_torch():
    base = {k: v for k, v in pins("cuda117").items() if k != "torch"}
    for stack in ("cpu", "cuda121"):
        assert {k: v for k, v in pins(stack).items() if k != "torch"} == base, stack


@pytest.mark.parametrize("name", sorted(STACK_TABLE))
def test_the_planners_stack_table_is_what_the_images_pin(name):
    pinned = pins(name)
    # The llamacpp stacks serve without torch or transformers (the table's "-").
    assert pinned.get("torch", "-") == STACK_TABLE[name].torch
    assert pinned.get("transformers", "-") == STACK_TABLE[name].transformers


def test_the_cpu_stack_is_the_torch_the_tests_build_with():
    """No test-only torch: the wheel on the test machine is the cpu stack's pin."""
    wheels = [w for w in os.listdir("/opt/wheels") if w.startswith("torch-")] \
        if os.path.isdir("/opt/wheels") else []
    if not wheels:
        pytest.skip("no /opt/wheels here")
    assert any(w.startswith("torch-%s-" % pins("cpu")["torch"]) for w in wheels), wheels


def test_the_pins_the_models_need():
    cuda = pins("cuda117")
    # Baichuan-13B-Chat's tokenizer breaks on transformers >= 4.34.
    assert tuple(int(x) for x in cuda["transformers"].split(".")[:2]) == (4, 33)
    assert cuda["pydantic"].startswith("2.") and cuda["gradio"].startswith("4.")
    assert "plotly" in cuda and cuda["numpy"].startswith("1.")
    assert pins("vllm")["vllm"] == "0.6.2"
