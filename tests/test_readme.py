"""README.md's tables and examples are made by the code they describe."""

import os
import re

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import (
    PlanError,
    format_plan_table,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan.stacks import (
    compatibility_markdown,
)
from labs import CATALOGUE, ROOT, plan_of, reference_lab

with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
    README = fh.read()


def test_the_compatibility_table_is_the_planners():
    table = re.search(r"<!-- compatibility table: [^>]*-->\n(.*?)\n<!-- end of compatibility "
                      r"table -->", README, re.S).group(1)
    assert table == compatibility_markdown(CATALOGUE)


def test_the_plan_table_of_the_reference_lab_is_the_planners():
    for line in format_plan_table(plan_of(*reference_lab())):
        assert line in README, line


def test_the_error_example_is_the_planners():
    hosts, groups = reference_lab()
    workers = hosts["gpu01"]["fastchat_workers"]
    workers[0]["backend"] = "vllm"
    workers[1]["gpus"] = [1, 2]
    workers.append({"model": "Qwen-7B-Chat", "gpus": [3], "name": "../x"})
    try:
        plan_of(hosts, groups)
    except PlanError as error:
        assert str(error) in README
    else:
        raise AssertionError("the example inventory was planned")


def test_the_p40_llamacpp_table_is_the_planners():
    from test_llamacpp_plan import p40_lab

    for line in format_plan_table(plan_of(*p40_lab())):
        assert line in README, line
