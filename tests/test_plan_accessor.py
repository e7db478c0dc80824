"""The one accessor of the lab plan: the filter fastchat_lab.lab.lab_plan_required."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fastchat_lab.lab.plugins.filter.plan import FilterModule, lab_plan_required
from labs import plan_of, reference_lab


def test_the_plan_of_this_run_is_given_back_as_it_is():
    plan = plan_of(*reference_lab())
    assert lab_plan_required(plan, "gpu01") is plan


def test_the_planning_tasks_result_gives_every_host_the_one_plan():
    plan = plan_of(*reference_lab())
    result = {"changed": False, "plan": plan, "table": []}
    # The same object for every host, a host of no lab group too: no copy per host.
    for host in ("gpu01", "gpu02", "bastion", "localhost"):
        assert lab_plan_required(result, host) is plan


@pytest.mark.parametrize("missing", [None, {}, "", [], {"hosts": {}}, {"summary": {}}, {"hosts": [], "summary": {}},
                                     {"plan": None}, {"plan": {}}, {"plan": {"hosts": {}}},
                                     {"failed": True, "msg": "planner refused"}])
def test_a_run_without_a_plan_fails_naming_the_host_the_variable_and_the_fix(missing):
    with pytest.raises(AnsibleFilterError) as err:
        lab_plan_required(missing, "gpu07")
    message = str(err.value)
    assert message.startswith("gpu07: lab_plan_current: this run has not planned the lab")
    assert "Fix: run site.yml, or import playbooks/plan.yml before this play." in message


def test_the_filter_is_registered():
    assert FilterModule().filters()["lab_plan_required"] is lab_plan_required
