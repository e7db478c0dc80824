# Ansible's linear strategy run through Mitogen: one persistent Python interpreter per
# host instead of a fresh connection, file copy and interpreter start per task. It is
# what makes a re-run of site.yml that changes nothing take seconds (tests/bench/rerun,
# tests/bench/results/README.md). Mitogen is pinned in requirements.txt; ansible.cfg
# selects this strategy for every playbook, Molecule's included.
"""Linear strategy through Mitogen (the mitogen package from requirements.txt)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mitogen_linear
short_description: Ansible's linear strategy, run through Mitogen
description:
  - The builtin linear strategy with Mitogen's connection layer (ansible_mitogen), which
    keeps one Python interpreter per host for the whole run. Connections Mitogen does
    not know (e.g. community.docker.docker spelled in full) run as with linear.
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


# What every worker Ansible forks for a host and task would otherwise read again, read
# once here in the main process: the forked workers inherit it (cProfile of the workers
# in a re-run, tests/bench/results/README.md).
# - Mitogen's planner lists every installed collection (ansible.collections.list
#   .list_collection_dirs: a galaxy.yml or MANIFEST.json parsed for each of the ~100
#   collections the ansible package bundles) before each collection module runs: about
#   40 % of a worker's time. The list does not change during a run; calls with other
#   arguments go to Ansible's function.
# - Ansible loads (reads, compiles and runs) a plugin's file in the worker that first
#   needs it: the Jinja filters and tests and the action plugins were loaded again by
#   every worker (about a quarter of its time). Loaded here: Ansible's own filters and
#   tests, those of this collection and of the collections the roles use, and the actions
#   the roles run; a plugin not listed is loaded by the worker as before.
import ansible.collections.list as _collections_list  # noqa: E402

_list_collection_dirs = _collections_list.list_collection_dirs
_collection_dirs_of_this_run = []
_PRELOADED_JINJA = {
    "filter": ["fastchat_lab.lab.lab_plan_required", "community.crypto.x509_certificate_info"],
    "test": [],
}
_PRELOADED_ACTIONS = [
    "ansible.builtin.set_fact", "ansible.builtin.assert", "ansible.builtin.debug",
    "ansible.builtin.include_vars", "ansible.builtin.normal", "ansible.builtin.command",
    "ansible.builtin.validate_argument_spec", "ansible.builtin.copy", "ansible.builtin.template",
    "ansible.builtin.slurp", "ansible.builtin.service", "ansible.builtin.package",
    "ansible.builtin.gather_facts", "fastchat_lab.lab.lab_files",
]
_preloaded = []


def _listed_once(search_paths=None, coll_filter=None, artifacts_manager=None, dedupe=True):
    if search_paths is None and coll_filter is None and artifacts_manager is None and dedupe:
        if not _collection_dirs_of_this_run:
            _collection_dirs_of_this_run.extend(_list_collection_dirs())
        return iter(list(_collection_dirs_of_this_run))
    return _list_collection_dirs(search_paths=search_paths, coll_filter=coll_filter,
                                 artifacts_manager=artifacts_manager, dedupe=dedupe)


_collections_list.list_collection_dirs = _listed_once


def _preload_plugins():
    if _preloaded:
        return
    _preloaded.append(True)
    from ansible.plugins import loader

    for kind, names in _PRELOADED_JINJA.items():
        jinja_loader = loader.filter_loader if kind == "filter" else loader.test_loader
        # Ansible's own (ansible.builtin and legacy paths): all of them in one step.
        for _plugin in jinja_loader.all():
            pass
        # One plugin of a collection loads every plugin file of that collection.
        for name in names:
            try:
                jinja_loader.get(name)
            except Exception:  # noqa: BLE001 - a worker reports a missing plugin properly
                pass
    for name in _PRELOADED_ACTIONS:
        try:
            loader.action_loader.get(name, class_only=True)
        except Exception:  # noqa: BLE001 - as above
            pass


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
    """Linear, with Mitogen's connections; what every worker would read again read once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # In the main process, before any worker is forked: every worker inherits them.
        _listed_once()
        _preload_plugins()
