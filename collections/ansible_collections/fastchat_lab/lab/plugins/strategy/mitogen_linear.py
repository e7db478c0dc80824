# Ansible's linear strategy run through Mitogen: one persistent Python interpreter per
# host instead of a fresh connection, file copy and interpreter start per task. It is
# what makes a re-run of site.yml that changes nothing take seconds (tests/bench/rerun,
# tests/bench/results/README.md). Mitogen is pinned in requirements.txt; ansible.cfg
# selects this strategy for every playbook, Molecule's included.
#
# This is Mitogen's own strategy plugin (ansible_mitogen/plugins/strategy/mitogen_linear.py
# of the pinned release) as its documentation has it installed, given a collection name so
# that ansible.cfg needs no path into the virtual environment: the same two imports and
# the same class, nothing replaced or preloaded. A missing mitogen package fails with the fix.
"""Linear strategy through Mitogen (the mitogen package from requirements.txt)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mitogen_linear
short_description: Ansible's linear strategy, run through Mitogen
description:
  - The builtin linear strategy with Mitogen's connection layer (ansible_mitogen), which
    keeps one Python interpreter per host for the whole run; Mitogen's own
    C(mitogen_linear) plugin under a collection name. Connections Mitogen does not know
    (e.g. community.docker.docker spelled in full) run as with linear.
  - Fails with the fix when the mitogen package is not installed next to ansible-core.
author: fastchat-lab
"""

from ansible.errors import AnsibleError

try:
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError as exc:  # pragma: no cover - depends on the control node
    raise AnsibleError(
        "ansible.cfg: strategy fastchat_lab.lab.mitogen_linear needs the mitogen package "
        "(%s). Fix: run scripts/setup (installs requirements.txt into .venv) and use the "
        "ansible-playbook of .venv, or run with ANSIBLE_STRATEGY=linear (slower)." % exc
    ) from exc

_Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
    """Linear, with Mitogen's connections (as Mitogen ships it)."""
