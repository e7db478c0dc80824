# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The deployment's secrets and page settings: checked before any host changes, rendered
into the root-only files the services read (never a command line).

Pure Python (standard library only); the ``fastchat_lab.lab`` deploy filters wrap it and
``tests/test_deploy_settings.py`` tests it.

- API keys (``fastchat_deploy_api_keys``): ``[{name, key}]``. The name says who a key is
  for, so one can be revoked by removing it; FastChat's ``--api-keys`` splits on commas,
  so a key is 16-256 characters of ``A-Z a-z 0-9 . _ ~ + / = -``, not beginning with
  ``-`` (a tool would read it as an option), and no two names share a key (revoking one
  would revoke both).
- Web UI users (``fastchat_deploy_web_ui_users``): ``[{name, password}]``. FastChat 0.2.36
  reads its ``--gradio-auth-path`` file as ``user:password`` pairs split on commas and
  newlines and cuts a pair at its first ``:``, so neither may hold ``:``, ``,`` or
  white space; an empty file would mean no login at all, hence at least one user (or
  ``fastchat_deploy_open_web_ui: true`` on purpose). A password has at least
  MIN_PASSWORD characters: the login is on the lab's network, guessed at nginx's
  throttled rate (lab_proxy) at worst.
- FastChat's own log files (``fastchat_deploy_log_days``): the newest N days are kept.
"""

from __future__ import annotations

import re

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_page import render_page

NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._@-]{0,62}[A-Za-z0-9])?\Z")
KEY_RE = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}\Z")
MIN_PASSWORD = 12
PASSWORD_RE = re.compile(r"^[^\s:,]{%d,128}\Z" % MIN_PASSWORD)
LOG_DAYS = (1, 3650)


def _entries(where, var, value, secret_key, problems):
    """The {name, <secret_key>} entries of a list, each checked for shape."""
    fix = ("write it as a list of {name: WHO, %s: ...} mappings, kept in ansible-vault"
           % secret_key)
    if not isinstance(value, list):
        problems.append("%s: %s: must be a list of {name, %s} mappings, got a %s. Fix: %s."
                        % (where, var, secret_key, type(value).__name__, fix))
        return []
    out, seen = [], set()
    for pos, entry in enumerate(value):
        label = "%s[%d]" % (var, pos)
        if not isinstance(entry, dict) or set(entry) != {"name", secret_key}:
            problems.append("%s: %s: must be a mapping with exactly name and %s (a plain %s "
                            "has no name to revoke it by). Fix: %s."
                            % (where, label, secret_key, secret_key, fix))
            continue
        name = entry["name"]
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append("%s: %s.name: %r is not a name (letters, digits, . _ @ -, at "
                            "most 64). Fix: name who it is for, e.g. alice." % (
                                where, label, name if isinstance(name, str) else "?"))
            continue
        if name in seen:
            problems.append("%s: %s.name: %s is given twice. Fix: give each one its own "
                            "name." % (where, label, name))
            continue
        seen.add(name)
        out.append((label, name, entry[secret_key]))
    return out


def check_api_keys(where, keys):
    """Problems of fastchat_deploy_api_keys (never quoting a key)."""
    problems, owners = [], {}
    for label, name, key in _entries(where, "fastchat_deploy_api_keys", keys, "key", problems):
        if not isinstance(key, str) or not KEY_RE.match(key) or key.startswith("-"):
            problems.append("%s: %s.key: the key of %s is not 16-256 characters of letters, "
                            "digits and . _ ~ + / = - that does not begin with '-' (FastChat "
                            "splits keys on commas). Fix: make one with: python3 -c 'import "
                            "secrets; print(secrets.token_urlsafe(32))'." % (where, label, name))
            continue
        if key in owners:
            problems.append("%s: %s.key: %s has the same key as %s, so revoking one would "
                            "revoke both. Fix: give each name its own key." % (
                                where, label, name, owners[key]))
        owners.setdefault(key, name)
    return problems


def check_web_ui_users(where, users):
    """Problems of fastchat_deploy_web_ui_users (never quoting a password)."""
    problems = []
    for label, name, password in _entries(where, "fastchat_deploy_web_ui_users", users,
                                          "password", problems):
        if ":" in name:
            problems.append("%s: %s.name: %s has a ':'. Fix: a name without ':'." % (
                where, label, name))
        if not isinstance(password, str) or not PASSWORD_RE.match(password):
            problems.append("%s: %s.password: the password of %s is not %d-128 characters "
                            "without spaces, ':' or ',' (FastChat's login file splits on "
                            "them). Fix: make one with: python3 -c 'import secrets; "
                            "print(secrets.token_urlsafe(18))'." % (where, label, name,
                                                                    MIN_PASSWORD))
    return problems


def deploy_problems(where, api_keys, open_api, has_api, users, open_web_ui, has_web_ui,
                    page, lab_name, models, log_days=14):
    """Every problem of the deployment settings, as the preflight reports them."""
    problems = []
    if isinstance(log_days, bool) or not isinstance(log_days, int) \
            or not LOG_DAYS[0] <= log_days <= LOG_DAYS[1]:
        problems.append("%s: fastchat_deploy_log_days: must be a whole number of days from %d "
                        "to %d, got %r. Fix: write e.g. 14 without quotes." % (
                            where, LOG_DAYS[0], LOG_DAYS[1], log_days))
    if has_api:
        if not isinstance(open_api, bool):
            problems.append("%s: fastchat_deploy_open_api: must be a boolean, got %r. Fix: "
                            "write true or false without quotes." % (where, open_api))
        problems += check_api_keys(where, api_keys)
        if not api_keys and open_api is not True:
            problems.append("%s: fastchat_deploy_api_keys is empty, so the OpenAI API server "
                            "would answer anyone. Fix: set fastchat_deploy_api_keys (in "
                            "ansible-vault), or set fastchat_deploy_open_api: true to deploy "
                            "it open on purpose." % where)
    if has_web_ui:
        if not isinstance(open_web_ui, bool):
            problems.append("%s: fastchat_deploy_open_web_ui: must be a boolean, got %r. Fix: "
                            "write true or false without quotes." % (where, open_web_ui))
        problems += check_web_ui_users(where, users)
        if not users and open_web_ui is not True:
            problems.append("%s: fastchat_deploy_web_ui_users is empty, so the web UI would "
                            "let anyone who reaches it chat with every model (the API keys "
                            "do not guard it). Fix: set fastchat_deploy_web_ui_users (in "
                            "ansible-vault), or set fastchat_deploy_open_web_ui: true to "
                            "deploy it open on purpose." % where)
        try:
            render_page(page, list(models), lab_name)
        except ValueError as exc:
            for line in str(exc).splitlines()[1:]:
                line = line.strip("- ").strip()
                if line:
                    problems.append("%s: fastchat_deploy_page / fastchat_deploy_lab_name: %s"
                                    % (where, line))
    return problems


def api_keys_file(keys):
    """The API server's keys file: one key per line."""
    return "".join("%s\n" % entry["key"] for entry in keys)


def web_ui_auth_file(users):
    """FastChat's --gradio-auth-path file: one user:password per line."""
    return "".join("%s:%s\n" % (entry["name"], entry["password"]) for entry in users)
