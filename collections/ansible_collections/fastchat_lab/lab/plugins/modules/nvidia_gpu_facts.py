#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvidia_gpu_facts
short_description: Set the fact fastchat_gpu_facts from nvidia-smi
description:
  - Runs C(nvidia-smi --query-gpu=index,uuid,name,memory.total,compute_cap
    --format=csv,noheader,nounits) and C(nvidia-smi --query-gpu=driver_version
    --format=csv,noheader) on the target and returns one entry per GPU.
  - A host without C(nvidia-smi), or where it fails because there is no GPU or no
    driver, gets an empty list, not a failure; the reason is in C(nvidia_smi_message).
  - Read-only; it supports check mode.
version_added: 0.1.0
author:
  - fastchat-lab contributors
options:
  nvidia_smi_path:
    description: Path of nvidia-smi; by default it is looked up on C(PATH) and in C(/usr/bin).
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
"""

EXAMPLES = r"""
- name: Gather the NVIDIA GPUs of the host.
  fastchat_lab.lab.nvidia_gpu_facts:

- name: Show them.
  ansible.builtin.debug:
    var: ansible_facts.fastchat_gpu_facts
"""

RETURN = r"""
ansible_facts:
  description: Facts set on the host.
  returned: always
  type: dict
  contains:
    fastchat_gpu_facts:
      description: One entry per GPU; empty without nvidia-smi or a working driver.
      type: list
      elements: dict
      sample:
        - index: 0
          uuid: GPU-5bbac3f5-7366-d9e9-7812-d931ec204731
          name: NVIDIA H200
          memory_mib: 143771
          compute_capability: "9.0"
          driver_version: 580.159.04
nvidia_smi_message:
  description: Why the list is empty (nvidia-smi missing or failing); empty otherwise.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastchat_lab.lab.plugins.module_utils.nvidia_smi import (
    parse_driver_versions,
    parse_gpu_query,
)

GPU_QUERY = ["--query-gpu=index,uuid,name,memory.total,compute_cap",
             "--format=csv,noheader,nounits"]
DRIVER_QUERY = ["--query-gpu=driver_version", "--format=csv,noheader"]


def collect_gpu_facts(nvidia_smi, run):
    """(gpus, message). ``run(argv) -> (rc, stdout, stderr)``; ``nvidia_smi`` may be None."""
    if not nvidia_smi:
        return [], "nvidia-smi not found: no NVIDIA driver on this host"
    rc, out, err = run([nvidia_smi] + GPU_QUERY)
    if rc != 0:
        return [], "nvidia-smi failed (rc=%s): %s" % (rc, (err or out).strip())
    gpus = parse_gpu_query(out)
    if not gpus:
        return [], "nvidia-smi lists no GPU"
    rc, out, err = run([nvidia_smi] + DRIVER_QUERY)
    drivers = parse_driver_versions(out) if rc == 0 else []
    for pos, gpu in enumerate(gpus):
        if drivers:
            gpu["driver_version"] = drivers[pos] if pos < len(drivers) else drivers[0]
    return gpus, ""


def main():
    module = AnsibleModule(
        argument_spec={"nvidia_smi_path": {"type": "path"}},
        supports_check_mode=True,
    )
    path = module.params["nvidia_smi_path"] or module.get_bin_path(
        "nvidia-smi", opt_dirs=["/usr/bin", "/usr/local/nvidia/bin"])

    def run(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    try:
        gpus, message = collect_gpu_facts(path, run)
    except ValueError as exc:
        module.fail_json(msg="Cannot parse the output of nvidia-smi: %s" % exc)
    module.exit_json(changed=False, ansible_facts={"fastchat_gpu_facts": gpus},
                     nvidia_smi_message=message)


if __name__ == "__main__":
    main()
