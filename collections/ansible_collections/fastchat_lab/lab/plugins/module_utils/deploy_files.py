# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The fastchat_deploy role's files on one host, and which services must restart for them.

The role writes two sets with ``fastchat_lab.lab.lab_files`` (in order: a directory before
the files in it), each built here from what the task already holds (texts rendered by the
role's other filters):

- :func:`deploy_files`: the deploy directory (root only), the launcher, the secrets
  directory, the old ``api.env`` gone; where the host runs the web UI, the arena's logs
  directory, the web UI's directory, its page and its conversation templates; the compose
  project (left out where check mode has no images to render it from).
- :func:`secret_files` (its task has ``no_log``): the API keys file where the host runs the
  API server and keys are given; the web UI's logins file, or none where the web UI is
  opened on purpose (no logins).
- :func:`restarts`: the services that read a file only when they start: the web UI (page,
  logins) and the API server (keys), from the paths the two tasks changed.
"""

from __future__ import annotations

_ROOT = {"owner": "root", "group": "root"}


def launcher_path(deploy_dir):
    """The launcher every service starts through, mounted read-only."""
    return deploy_dir + "/launch.py"


def web_ui_dir(deploy_dir):
    """The web UI's files (page, logins, templates, leaderboard tab), mounted into it."""
    return deploy_dir + "/web-ui"


def api_keys_path(deploy_dir):
    return deploy_dir + "/secrets/api-keys"


def _dir(path):
    return dict(_ROOT, path=path, state="directory", mode="0700")


def _file(path, content, mode):
    return dict(_ROOT, path=path, content=content, mode=mode)


def deploy_files(deploy_dir, launcher, logs_dir=None, web_ui=None, compose=None):
    """The deploy's files other than secrets (see the module's docstring).

    web_ui: None where the host runs no web UI, else {"page": text, "conv_templates": text}
    (logs_dir is then the arena's logs directory). compose: the project's text, or None.
    """
    files = [_dir(deploy_dir),
             _file(launcher_path(deploy_dir), launcher, "0755"),
             _dir(deploy_dir + "/secrets"),
             {"path": deploy_dir + "/api.env", "state": "absent"}]
    if web_ui is not None:
        if not logs_dir:
            raise ValueError("deploy_files: a web UI needs the arena's logs_dir")
        ui = web_ui_dir(deploy_dir)
        files += [_dir(logs_dir), _dir(ui),
                  _file(ui + "/page.json", web_ui["page"], "0644"),
                  _file(ui + "/conv_templates.json", web_ui["conv_templates"], "0644")]
    if compose is not None:
        files.append(_file(deploy_dir + "/compose.yaml", compose, "0600"))
    return files


def secret_files(deploy_dir, api_keys=None, web_ui=False, web_ui_auth=None):
    """The root-only secret files (see the module's docstring).

    api_keys: the keys file's text, None where the host runs no API server or no keys are
    given. web_ui: whether the host runs the web UI; web_ui_auth: its logins file's text,
    None where it is opened on purpose (the file goes).
    """
    files = [_dir(deploy_dir), _dir(deploy_dir + "/secrets")]
    if api_keys is not None:
        files.append(_file(api_keys_path(deploy_dir), api_keys, "0600"))
    if web_ui:
        ui = web_ui_dir(deploy_dir)
        files.append(_dir(ui))
        if web_ui_auth is not None:
            files.append(_file(ui + "/auth", web_ui_auth, "0600"))
        else:
            files.append({"path": ui + "/auth", "state": "absent"})
    return files


def restarts(services, deploy_dir, changed_files=(), changed_secrets=()):
    """The names of this host's services to restart: the web UI where its page or logins
    changed, the API server where its keys changed (compose up leaves a container whose
    definition is unchanged alone, though a file it read at start changed)."""
    ui = web_ui_dir(deploy_dir)
    web_ui_changed = ui + "/page.json" in changed_files or ui + "/auth" in changed_secrets
    api_changed = api_keys_path(deploy_dir) in changed_secrets
    return [svc["name"] for svc in services
            if (svc["kind"] == "web_ui" and web_ui_changed) or (svc["kind"] == "openai_api" and api_changed)]
