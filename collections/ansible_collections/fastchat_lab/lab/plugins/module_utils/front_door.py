# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The lab's front door (role lab_proxy): which paths nginx passes to FastChat.

Pure Python (standard library only): the ``fastchat_lab.lab.front_door`` filter wraps
:func:`front_door` for the nginx template, and ``tests/test_front_door.py`` checks
the same patterns (Python's ``re`` reads them as nginx's PCRE does: plain groups and
alternations only) against the paths the lab serves and the paths it must not.

Only the routes the lab serves pass; every other path gets 404 from nginx, never FastChat:

- the API port: the OpenAI routes of FastChat's API server the README documents
  (``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``). Not
  ``/api/v1/*`` (FastChat's own, which 0.2.36 serves without a key: the hardening patch
  closes them too), not ``/docs``, ``/redoc`` or ``/openapi.json``;
- the web UI port: what gradio 4.44's page asks for (the page, its assets, the login, the
  config and API info behind the login, the queue's join and data streams, the heartbeat,
  files the page shows, the reset and cancel of an event). Not gradio's HTTP API for
  scripts (``/run/*``, ``/api/*``, ``/call/*``), its proxy (``/proxy=``), monitoring,
  custom components or dev reload. ``/login`` is throttled (:data:`LOGIN_RATE`).
"""

from __future__ import annotations

# The end of a path: "$" in PCRE (nginx) and Python alike also matches before a final
# newline, and nginx decodes "%0a" before matching; the look-ahead closes that.
END = r"$(?!\n)"
# Paths matched whole; a trailing slash is accepted where gradio routes both forms.
API_ROUTES = (r"^/v1/(models|chat/completions|completions|embeddings)" + END,)
WEB_UI_ROUTES = (
    r"^/" + END,
    r"^/(config|info|app_id|user|login_check|reset|upload)/?" + END,
    r"^/(logout|cancel|upload_progress|theme\.css|favicon\.ico|robots\.txt)" + END,
    r"^/queue/(join|data)" + END,
    r"^/heartbeat/[A-Za-z0-9_-]+" + END,
    r"^/(assets|static)/",
    r"^/file[=/]",
)
LOGIN_ROUTE = r"^/login/?" + END
# Wrong logins: a burst of LOGIN_BURST at once, then LOGIN_RATE; beyond that nginx
# answers 429 (per client address).
LOGIN_RATE = "10r/m"
LOGIN_BURST = 5
KINDS = ("openai_api", "web_ui")


def locations(kind):
    """nginx's locations for a front-door service of ``kind`` (openai_api | web_ui): a list
    of {"pattern": regex, "login": bool}, in the order nginx should read them. Raises
    ValueError for another kind."""
    if kind == "openai_api":
        return [{"pattern": p, "login": False} for p in API_ROUTES]
    if kind == "web_ui":
        return ([{"pattern": LOGIN_ROUTE, "login": True}]
                + [{"pattern": p, "login": False} for p in WEB_UI_ROUTES])
    raise ValueError("%r has no front door (one of %s)" % (kind, ", ".join(KINDS)))


def front_door(services):
    """What the nginx template prints for the plan's front-door ``services`` (those with a
    ``backend_port``): {"login": {"rate", "burst"} or None (the throttle's zone, needed
    where a web UI is served), "servers": [{"kind", "bind", "port", "backend_port",
    "locations"}]}."""
    servers = []
    for svc in services:
        servers.append({"kind": svc["kind"], "bind": svc["bind"], "port": svc["port"],
                        "backend_port": svc["backend_port"],
                        "locations": locations(svc["kind"])})
    login = any(loc["login"] for server in servers for loc in server["locations"])
    return {"login": {"rate": LOGIN_RATE, "burst": LOGIN_BURST} if login else None,
            "servers": servers}
