# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Action plugin for fastchat_lab.lab.lab_plan_view: this host's view of the lab plan, taken
from the plan task's registered result as it is (module_utils/lab_plan/views.py made it).

The lab_plan role registers the result of its one planning task on every host of the play
(run_once) and runs this on each host, registered as lab_plan_current. A set_fact of
``lab_plan_result.views[inventory_hostname]`` would template the view (every other host's
address and stacks) anew on each host: most of plan.yml's time on a lab of hundreds of hosts."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = {"result": {"type": "str", "default": "lab_plan_result"}}
# Keys of an action's result that Ansible acts on: never copied from the plan.
_RESERVED = ("warnings", "deprecations", "failed", "changed", "skipped", "msg", "ansible_facts")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        host = task_vars.get("inventory_hostname")
        planned = task_vars.get(args["result"])
        views = planned.get("views") if isinstance(planned, Mapping) else None
        if not isinstance(views, Mapping):
            result.update(failed=True, msg=(
                "%s: %s: this run has not planned the lab (no views in it). Fix: run the lab_plan "
                "role's planning task first, registered as %s." % (host, args["result"], args["result"])))
            return result
        result["changed"] = False
        view = views.get(host)
        if isinstance(view, Mapping):
            result.update({key: value for key, value in view.items() if key not in _RESERVED})
        return result
