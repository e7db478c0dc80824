"""The fastchat_image role's pinned stacks: every pin has its reason above it, the
cpu stack is the cuda117 stack, and the pins the lab's models need hold."""

import os
import re

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan.stacks import (
    STACKS as STACK_TABLE,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACKS = os.path.join(ROOT, "roles", "fastchat_image", "files", "stacks")
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)$")


def pins(stack):
    result, previous = {}, ""
    with open(os.path.join(STACKS, stack, "constraints.txt")) as f:
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


def requirements(stack):
    with open(os.path.join(STACKS, stack, "requirements.txt")) as f:
        return [l.strip().lower().replace("_", "-") for l in f if l.strip() and not l.startswith("#")]


@pytest.mark.parametrize("stack", ["cuda117", "cuda121", "cpu", "vllm"])
def test_every_requirement_is_pinned_with_a_reason(stack):
    pinned = pins(stack)
    assert set(requirements(stack)) <= set(pinned)


def test_the_hf_stacks_share_every_pin_but_torch():
    base = {k: v for k, v in pins("cuda117").items() if k != "torch"}
    for stack in ("cpu", "cuda121"):
        assert {k: v for k, v in pins(stack).items() if k != "torch"} == base, stack


@pytest.mark.parametrize("name", sorted(STACK_TABLE))
def test_the_planners_stack_table_is_what_the_images_pin(name):
    pinned = pins(name)
    assert pinned["torch"] == STACK_TABLE[name].torch
    assert pinned["transformers"] == STACK_TABLE[name].transformers


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
