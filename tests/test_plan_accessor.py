"""The one accessor of the lab plan: the filter fastchat_lab.lab.lab_plan_required."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fastchat_lab.lab.plugins.filter.plan import FilterModule, lab_plan_required
from labs import plan_of, reference_lab


def test_the_plan_of_this_run_is_given_back_as_it_is():
    plan = plan_of(*reference_lab())
    assert lab_plan_required(plan, "gpu01") is plan


def test_the_planning_tasks_result_gives_each_host_its_view():
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan.views import host_views

    plan = plan_of(*reference_lab())
    views = host_views(plan, ["gpu01"])
    result = {"changed": False, "plan": plan, "views": views, "table": []}
    assert lab_plan_required(result, "gpu01") is views["gpu01"]
    assert lab_plan_required(result, "gpu01")["hosts"]["gpu01"] == plan["hosts"]["gpu01"]
    # A host the plan does not hold (localhost of the planning play, a host left out).
    with pytest.raises(AnsibleFilterError, match="gpu09: lab_plan_current: this run has not planned"):
        lab_plan_required(result, "gpu09")


@pytest.mark.parametrize("missing", [None, {}, "", [], {"hosts": {}}, {"summary": {}}, {"hosts": [], "summary": {}},
                                     {"views": {}}, {"views": {"gpu07": None}}])
def test_a_run_without_a_plan_fails_naming_the_host_the_variable_and_the_fix(missing):
    with pytest.raises(AnsibleFilterError) as err:
        lab_plan_required(missing, "gpu07")
    message = str(err.value)
    assert message.startswith("gpu07: lab_plan_current: this run has not planned the lab")
    assert "Fix: run site.yml, or import playbooks/plan.yml before this play." in message


def test_the_filter_is_registered():
    assert FilterModule().filters()["lab_plan_required"] is lab_plan_required
