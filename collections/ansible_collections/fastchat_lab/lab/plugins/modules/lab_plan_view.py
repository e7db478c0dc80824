#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_plan_view
short_description: This host's view of the lab plan
description:
  - Runs on the controller only (action plugin), reads no host and changes nothing.
  - Returns this host's view of the lab plan (C(hosts), C(summary), C(models);
    module_utils/lab_plan/views.py), taken as it is from the registered result of the
    lab_plan action, which holds every host's. The lab_plan role registers it as
    C(lab_plan_current), which the other roles read through the filter
    C(fastchat_lab.lab.lab_plan_required).
  - A host outside the plan gets no C(hosts) or C(summary) (the filter then fails naming it).
version_added: 0.1.0
author:
  - fastchat-lab contributors
options:
  result:
    description: The name of the variable the lab_plan action's result was registered as.
    type: str
    default: lab_plan_result
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Give this host its view of the plan.
  fastchat_lab.lab.lab_plan_view:
  register: lab_plan_current
"""

RETURN = r"""
hosts:
  description: This host's entry whole, and every other host's address and stacks (the head's view has every entry whole).
  returned: where the host is in the plan
  type: dict
summary:
  description: The plan's summary (the head's view also has the list of every worker).
  returned: where the host is in the plan
  type: dict
models:
  description: The plan's models.
  returned: where the host is in the plan
  type: dict
"""
