# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
# Documentation only: the work is done by the action plugin of the same name.

DOCUMENTATION = r"""
---
module: lab_plan
short_description: Validate the lab inventory and compute the FastChat lab plan
description:
  - Runs on the controller only (action plugin) and changes nothing.
  - Reads C(hostvars) and C(groups), validates every host's C(fastchat_workers),
    C(fastchat_gpus) / C(fastchat_gpu_facts) and the model catalogue, and returns the
    lab plan; every problem found is reported at once, each naming the host, the
    variable and the fix.
  - Needs FastChat (fschat) importable by the controller's Python to check
    conversation template names; run C(scripts/setup).
version_added: 0.1.0
author:
  - fastchat-lab contributors
options:
  catalogue:
    description: The shipped model catalogue (C(fastchat_models)).
    type: raw
    required: true
  catalogue_extra:
    description: Entries merged over I(catalogue) by model name (C(fastchat_models_extra)).
    type: raw
    required: true
  settings:
    description:
      - The lab-wide settings, each exactly as the inventory gives it (the planner types
        and checks them; the lab_plan role's defaults own the values)
      - C(controller_port), C(worker_base_port), C(api_port), C(web_ui_port), C(api_bind),
        C(web_ui_bind), C(tls), C(api_backend_port), C(web_ui_backend_port),
        C(dispatch_method), C(models_dir), C(weights_dir), C(logs_dir), C(deploy_dir),
        C(rehearsal), C(llamacpp_commit).
    type: dict
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Compute the lab plan.
  fastchat_lab.lab.lab_plan:
    catalogue: "{{ fastchat_models }}"
    catalogue_extra: "{{ fastchat_models_extra }}"
    settings:
      controller_port: "{{ fastchat_controller_port }}"
      worker_base_port: "{{ fastchat_worker_base_port }}"
      api_port: "{{ fastchat_api_port }}"
      web_ui_port: "{{ fastchat_web_ui_port }}"
      api_bind: "{{ fastchat_api_bind }}"
      web_ui_bind: "{{ fastchat_web_ui_bind }}"
      tls: "{{ fastchat_tls }}"
      api_backend_port: "{{ fastchat_api_backend_port }}"
      web_ui_backend_port: "{{ fastchat_web_ui_backend_port }}"
      dispatch_method: "{{ fastchat_dispatch_method }}"
      models_dir: "{{ fastchat_models_dir }}"
      weights_dir: "{{ fastchat_weights_dir }}"
      logs_dir: "{{ fastchat_logs_dir }}"
      deploy_dir: "{{ fastchat_deploy_dir }}"
      rehearsal: "{{ fastchat_rehearsal }}"
      llamacpp_commit: "{{ fastchat_llamacpp_commit }}"
  run_once: true
  register: lab_plan_current
"""

RETURN = r"""
plan:
  description:
    - The lab plan; its shape is documented in plugins/module_utils/lab_plan/__init__.py.
    - Registered by the lab_plan role as C(lab_plan_current); every host of the play holds
      this one result (run once), and the filter C(fastchat_lab.lab.lab_plan_required)
      gives a host its plan from it.
  returned: success
  type: dict
table:
  description: The plan as fixed-width text lines (host, GPUs, model, worker, port, memory).
  returned: success
  type: list
  elements: str
"""
