# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The settings gate's filter (module_utils/lab_settings.py): a role's settings checked by
its own argument spec (types, choices) and by their shapes."""

import functools
import os

import yaml
from ansible.errors import AnsibleFilterError


DOCUMENTATION = r"""
name: setting_problems
short_description: Every problem of one role's settings on one host, in the planner's form.
  Also provides C(setting_names) (a role's settings, from role_path), and
  C(calendar_checked), C(git_environment_checked) and C(daemon_options_checked), which fail on a value of the wrong
  shape where a unit template or a task uses it.
description:
  - Types and choices are checked by Ansible's argument-spec validator with the role's own
    main spec; shapes (paths, URLs, refs, units, PEM, environment maps, daemon.json) by
    module_utils/lab_settings.py. Secrets (options with no_log) are never shown.
  - The same check as the action fastchat_lab.lab.lab_settings_check (which the settings
    gate and each role's settings entry point run), for a task that checks settings again
    where it uses them (fastchat_image's preflight).
positional: _input, values, host
options:
  _input:
    description: The options of the role's main argument spec (meta/argument_specs.yml).
    type: dict
    required: true
  values:
    description: The values of those options, in the same order (query('ansible.builtin.vars', ...)).
    type: list
    required: true
  host:
    description: The inventory host the values are for (inventory_hostname).
    type: str
    required: true
"""


def _settings():
    # Imported when a filter is used, not when Ansible loads this file: it loads every filter
    # file of the collection to find one filter, in every task's worker (collection README).
    from ansible_collections.fastchat_lab.lab.plugins.module_utils import lab_settings

    return lab_settings


@functools.lru_cache(maxsize=64)
def _read_options(paths, _mtimes):
    return _settings().role_options(paths)


def _many_options(role_paths):
    """The roles' settings, from their meta/argument_specs.yml (read once a process)."""
    paths = tuple(role_paths)
    try:
        mtimes = tuple(os.stat(os.path.join(path, "meta", "argument_specs.yml")).st_mtime_ns for path in paths)
        return _read_options(paths, mtimes)
    except (OSError, yaml.YAMLError, AttributeError, TypeError, KeyError) as exc:
        raise AnsibleFilterError("cannot read the settings of the roles at %s: %s" % (", ".join(paths), exc))


def _guarded(shape, name):
    """A value that a template or a task hands on (a unit line, git's environment), checked
    again where it is used: a value that slipped past the gate still never becomes code."""
    def check(value):
        settings = _settings()
        try:
            getattr(settings, shape)(value)
        except settings.Problem as exc:
            raise AnsibleFilterError("%s: %s. Fix: %s." % (name, exc.what, exc.fix)) from None
        return value
    return check


def _many_names(role_paths):
    return list(_many_options(role_paths))


def _many_problems(role_paths, values, host):
    spec = _many_options(role_paths)
    settings = _settings()
    given = {name: value for name, value in zip(spec, values) if value != settings.UNSET}
    return settings.setting_problems(given, spec, host)


def _names(role_path):
    return _many_names([role_path])


def _problems(role_path, values, host):
    return _many_problems([role_path], values, host)


class FilterModule:
    def filters(self):
        return {
            "setting_problems": _problems,
            "setting_names": _names,
            "lab_setting_names": _many_names,
            "lab_setting_problems": _many_problems,
            "calendar_checked": _guarded("calendar", "OnCalendar"),
            "git_environment_checked": _guarded("git_environment", "git's environment"),
            "daemon_options_checked": _guarded("daemon_options", "docker_daemon_options"),
        }
