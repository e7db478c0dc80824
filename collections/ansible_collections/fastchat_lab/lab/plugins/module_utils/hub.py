# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Where the model_weights role clones each model from, and whether the hub token may go there.

Pure Python (standard library only); the ``fastchat_lab.lab.hub_clone_url`` and
``hub_problems`` filters wrap it, ``tests/test_hub.py`` tests it.

- A catalogue source is a hub id (``Org/Name``, cloned from ``<hub URL>/<id>``) or a whole
  git URL (used as it is): :func:`clone_url`.
- The hub token (``model_weights_hub_token``) is sent as an HTTP header to the host of each
  clone URL. It goes only to hosts on ``model_weights_token_hosts`` (default: the official
  hub), over https: a mirror, a community proxy or a model URL elsewhere with a token set
  is refused before any change, naming the variable, rather than given the token. A
  ``file://`` clone sends nothing anywhere.
- No URL carries credentials (``user:secret@host``): they would land in logs and
  ``.git/config``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SCHEMES = ("https", "http", "file")
# URL characters only: no spaces, quotes or shell metacharacters.
URL_RE = re.compile(r"^(https?|file)://[A-Za-z0-9._~:/?#@!*+,=%\[\]-]+\Z")
HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\Z")


def clone_url(hub_url, source):
    """The git URL a model is cloned from."""
    if "://" in source:
        return source
    return hub_url.rstrip("/") + "/" + source


def _shown(url):
    """``url`` as a message may quote it: without anything between :// and an @."""
    return re.sub(r"://[^/]*@", "://***@", url) if isinstance(url, str) else url


def _url_problem(url):
    if not isinstance(url, str) or not URL_RE.match(url):
        return "%r is not an http(s):// or file:// URL of URL characters" % (_shown(url),)
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return "%s carries credentials (user@ or user:password@), which would land in logs " \
               "and the clone's .git/config" % (parts.scheme + "://" + (parts.hostname or "") + "/...")
    if parts.scheme != "file" and not parts.hostname:
        return "%r names no host" % (url,)
    return None


def hub_problems(hub_url, token_set, token_hosts, sources):
    """Problems of the hub settings, as "all: <variable>: <what>. Fix: <what to do>." lines.

    ``hub_url``: model_weights_hub_url; ``token_set``: whether model_weights_hub_token is
    set (the token itself never comes here); ``token_hosts``: model_weights_token_hosts;
    ``sources``: {model: catalogue source} of the models the lab downloads.
    """
    problems = []
    bad = _url_problem(hub_url)
    if bad:
        problems.append("all: model_weights_hub_url: %s. Fix: give the hub's base URL, e.g. "
                        "https://huggingface.co (keep a token in model_weights_hub_token, "
                        "from ansible-vault)." % bad)
    if not isinstance(token_hosts, list) or not all(
            isinstance(h, str) and HOST_RE.match(h) for h in token_hosts):
        problems.append("all: model_weights_token_hosts: must be a list of host names, got %r. "
                        "Fix: write e.g. [huggingface.co]." % (token_hosts,))
        token_hosts = []
    allowed = {h.lower() for h in token_hosts}
    for model, source in sorted((sources or {}).items()):
        if bad and "://" not in str(source):
            continue
        url = clone_url(hub_url, str(source))
        if "://" in str(source):
            problem = _url_problem(url)
            if problem:
                problems.append("all: fastchat_models[%s].source: %s. Fix: correct it in "
                                "fastchat_models_extra." % (model, problem))
                continue
        if not token_set:
            continue
        parts = urlsplit(url)
        if parts.scheme == "file":
            continue
        where = "model_weights_hub_url" if "://" not in str(source) \
            else "fastchat_models[%s].source" % model
        if parts.scheme != "https":
            problems.append("all: %s: the hub token would be sent over plain http to %s (for "
                            "%s). Fix: use an https:// URL, or leave model_weights_hub_token "
                            "empty for this hub." % (where, parts.hostname, model))
        elif parts.hostname.lower() not in allowed:
            problems.append("all: %s: the hub token would be sent to %s (for %s), which is not "
                            "in model_weights_token_hosts (%s). Fix: leave "
                            "model_weights_hub_token empty for a mirror (mirrors serve public "
                            "models), or add %s to model_weights_token_hosts if you trust it "
                            "with the token." % (where, parts.hostname, model,
                                                 ", ".join(sorted(allowed)) or "empty",
                                                 parts.hostname))
    return problems
