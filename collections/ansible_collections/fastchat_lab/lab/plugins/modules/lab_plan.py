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
    type: dict
    required: true
  catalogue_extra:
    description: Entries merged over I(catalogue) by model name (C(fastchat_models_extra)).
    type: dict
    default: {}
  controller_port:
    description: Port of the FastChat controller on the head host.
    type: int
    default: 21001
  worker_base_port:
    description: First port given to model workers on each GPU host.
    type: int
    default: 21002
  api_port:
    description: Port of the OpenAI-compatible API server on the head host.
    type: int
    default: 8000
  web_ui_port:
    description: Port of the Gradio web UI on the head host.
    type: int
    default: 7860
  dispatch_method:
    description: How the controller picks a worker.
    type: str
    choices: [shortest_queue, lottery]
    default: shortest_queue
  models_dir:
    description: Directory of the model weights inside the containers.
    type: str
    default: /models
  head_group:
    description: Inventory group holding the one head host.
    type: str
    default: fastchat_head
  gpu_group:
    description: Inventory group holding the hosts that run model workers.
    type: str
    default: gpu_hosts
  rehearsal:
    description:
      - Rehearsal lab on fake GPUs. Workers keep their planned GPUs (checked and pinned
        by Docker) but run FastChat on CPU from the cpu image.
    type: bool
    default: false
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
    catalogue_extra: "{{ fastchat_models_extra | default({}) }}"
  register: lab_plan_result
"""

RETURN = r"""
plan:
  description: The lab plan; its shape is documented in plugins/module_utils/lab_plan.py.
  returned: success
  type: dict
table:
  description: The plan as fixed-width text lines (host, GPUs, model, worker, port, memory).
  returned: success
  type: list
  elements: str
"""
