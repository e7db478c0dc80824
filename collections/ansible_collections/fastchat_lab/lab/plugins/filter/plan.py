# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""lab_plan_required: the one way a role reads the lab plan (lab_plan_current)."""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: lab_plan_required
short_description: The lab plan of this run, or a clear failure naming the fix.
description:
  - The one accessor of the lab plan for the roles and plays (the lab_plan role's README).
    The plan is computed once a run, on the control node, by playbooks/plan.yml (the
    lab_plan role), whose one planning task (run_once) registers C(lab_plan_current) on
    every inventory host; one result, the plan in its C(plan), shared by every host (no
    copy per host). A role reads it in its vars/main.yml (its own C(_role_plan) variable
    set to C(lab_plan_current | default(none) | fastchat_lab.lab.lab_plan_required(inventory_hostname))),
    which costs a re-run no task at all.
  - Also takes a plan itself (a mapping with C(hosts) and C(summary)), as it is.
  - Fails naming the host, the variable and the fix where this run has not planned the lab.
positional: host
options:
  _input:
    description: C(lab_plan_current) (the planning task's result, or a plan), or none where the host has no plan.
    type: dict
    required: true
  host:
    description: The inventory name of the host that reads the plan (for the message).
    type: str
    required: true
"""


def lab_plan_required(plan, host):
    # The planning task's registered result (every host of the play holds the one object).
    if isinstance(plan, Mapping) and "plan" in plan:
        plan = plan["plan"]
    if isinstance(plan, Mapping) and isinstance(plan.get("hosts"), Mapping) and isinstance(plan.get("summary"), Mapping):
        return plan
    raise AnsibleFilterError(
        "%s: lab_plan_current: this run has not planned the lab (the plan is computed by "
        "playbooks/plan.yml, the second play of site.yml, which gives it to every inventory "
        "host). Fix: run site.yml, or import playbooks/plan.yml before this play." % host)


class FilterModule:
    def filters(self):
        return {"lab_plan_required": lab_plan_required}
