# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Check the running lab the way its users reach it, and say what runs where.

Standard library only: the ``fastchat_lab.lab.lab_verify`` module ships it to the head
(which reaches every port of the lab) and pytest runs it against stand-in servers. Every
failed check names the model or service, its host, what was seen and the fix.

Checks (:func:`check_lab`), in order:

- the controller lists exactly the planned models (retried while workers register);
- every model answers a chat completion through the API (with the first key);
- a request without a key is refused (401), when the lab has keys;
- a streamed completion arrives as ``data:`` chunks ending in ``[DONE]``;
- the web UI answers, and with logins: ``/config`` is refused without one, a wrong
  password is refused, the first login is accepted;
- with TLS: every HTTPS answer above was verified against the lab's CA (hostname
  included), plain HTTP on the public ports gets the proxy's refusal, not FastChat, and
  FastChat's own ports answer on the head's loopback only.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

PLAIN_HTTP_ANSWER = "This port speaks HTTPS only."


class Answer:
    """What one HTTP request got: status (0: no answer), body, headers, error text."""

    def __init__(self, status=0, body="", headers=None, error=""):
        self.status, self.body, self.headers, self.error = status, body, headers or {}, error

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def describe(self, limit=300):
        if self.status == 0:
            return "no answer (%s)" % self.error
        body = self.body if len(self.body) <= limit else self.body[:limit] + "..."
        return ("HTTP %d %s" % (self.status, body.strip())).rstrip(".")


class Client:
    """HTTP(S) requests with the lab's CA; never follows redirects, never raises."""

    def __init__(self, ca_file=None, timeout=30.0):
        self.timeout = timeout
        # The lab CA when the head has it (lab_proxy puts it there), else the system's.
        self.context = ssl.create_default_context(
            cafile=ca_file if ca_file and os.path.isfile(ca_file) else None)
        handlers = [urllib.request.HTTPSHandler(context=self.context), _NoRedirect()]
        self.opener = urllib.request.build_opener(*handlers)

    def request(self, url, method="GET", body=None, headers=None, form=None, timeout=None):
        data, head = None, dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            head.setdefault("Content-Type", "application/json")
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            head.setdefault("Content-Type", "application/x-www-form-urlencoded")
        req = urllib.request.Request(url, data=data, method=method, headers=head)
        try:
            with self.opener.open(req, timeout=timeout or self.timeout) as resp:
                return Answer(resp.status, resp.read().decode("utf-8", "replace"),
                              dict(resp.headers))
        except urllib.error.HTTPError as exc:
            with exc:
                text = exc.read().decode("utf-8", "replace")
            return Answer(exc.code, text, dict(exc.headers or {}))
        except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
            return Answer(error=str(getattr(exc, "reason", exc)))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _check(report, name, ok, detail, fix=""):
    report["checks"].append({"name": name, "ok": bool(ok), "detail": detail,
                             "fix": "" if ok else fix})
    return ok


def workers_of(plan):
    """One row per planned worker: model, host, name, GPUs, URL (sorted by model)."""
    rows = []
    for host, hplan in plan["hosts"].items():
        for svc in hplan["services"]:
            if svc["kind"] == "model_worker":
                rows.append({"model": svc["model"], "host": host, "name": svc["name"],
                             "gpus": ",".join(svc["gpus"]) if svc["gpus"] else
                             (svc.get("device") or "cpu"), "url": svc["url"]})
    return sorted(rows, key=lambda r: (r["model"], r["host"]))


def format_table(plan):
    """What runs where, as verify.yml prints it at the end."""
    rows = workers_of(plan)
    header = ("model", "host", "GPUs", "worker URL")
    cells = [header] + [(r["model"], r["host"], r["gpus"], r["url"]) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(cells[0], widths)).rstrip(),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells[1:]]
    lines += ["OpenAI API: %s" % plan["summary"]["api_url"],
              "web UI:     %s" % plan["summary"]["web_ui_url"]]
    return lines


def _service(plan, kind):
    head = plan["summary"]["head"]
    return next(s for s in plan["hosts"][head]["services"] if s["kind"] == kind)


# Paths of the API port that must not answer without a key: FastChat's own /api/v1 routes
# (0.2.36 served them without one), its docs and schema, and the OpenAI routes.
KEYLESS_PROBES = (("POST", "/api/v1/token_check", {"prompts": []}),
                  ("POST", "/api/v1/chat/completions", {"model": "x", "messages": []}),
                  ("GET", "/docs", None), ("GET", "/openapi.json", None),
                  ("GET", "/v1/models", None))


def check_disk(report, head, logs_dir, min_free_gb, statvfs=os.statvfs):
    """The disk the arena's votes live on has at least ``min_free_gb`` free."""
    try:
        st = statvfs(logs_dir)
    except OSError as exc:
        _check(report, "the votes' disk has room", False,
               "The arena's logs directory %s on %s cannot be read (%s)." % (
                   logs_dir, head, exc.strerror or exc),
               "deploy the lab (site.yml), which makes it.")
        return
    free = st.f_bavail * st.f_frsize / 1e9
    _check(report, "the votes' disk has room", free >= min_free_gb,
           "The disk of the arena's logs (%s on %s) has %.1f GB free (at least %s wanted)." % (
               logs_dir, head, free, min_free_gb),
           "free space on that disk (old images: docker image prune; old backups in "
           "lab_backup_dir), or move fastchat_logs_dir to a larger disk: a full disk stops "
           "the arena from writing votes.")


def check_lab(plan, keys=(), users=(), ca_file=None, retries=36, delay=5.0, timeout=120.0,
              sleep=time.sleep, min_free_gb=None, statvfs=os.statvfs):
    """Run every check; returns {"checks": [...], "failures": [...], "table": [...]}.

    ``keys``: the API keys (the first is used); ``users``: web UI logins as
    (name, password) pairs (the first is used); ``ca_file``: the lab CA on this host;
    ``min_free_gb``: the free space wanted on the disk of the arena's logs (None: not
    checked), read with ``statvfs`` on this host (the head).
    """
    report = {"checks": [], "table": format_table(plan)}
    summary = plan["summary"]
    head = summary["head"]
    client = Client(ca_file, timeout)
    models = sorted(summary["models"])
    workers = workers_of(plan)
    auth = {"Authorization": "Bearer " + keys[0]} if keys else {}
    logs = "docker compose -f %s/compose.yaml logs" % summary["deploy_dir"]

    # The controller, until every planned worker has registered.
    controller = summary["controller_address"] + "/list_models"
    listed = Answer()
    for attempt in range(retries):
        listed = client.request(controller, "POST", body={}, timeout=10)
        got = sorted((listed.json() or {}).get("models", [])) if listed.status == 200 else None
        if got == models:
            break
        if attempt + 1 < retries:
            sleep(delay)
    got = sorted((listed.json() or {}).get("models", [])) if listed.status == 200 else []
    missing = [w for w in workers if w["model"] not in got]
    extra = [m for m in got if m not in models]
    detail = "The controller at %s lists %s." % (summary["controller_address"],
                                                ", ".join(got) or "no model")
    if listed.status != 200:
        detail = "The controller at %s did not answer (%s)." % (
            summary["controller_address"], listed.describe())
    for w in missing:
        detail += " Missing: %s (worker %s on %s, %s)." % (w["model"], w["name"], w["host"],
                                                           w["url"])
    for m in extra:
        detail += " Not planned: %s." % m
    _check(report, "controller lists the planned models", not missing and not extra and
           listed.status == 200, detail,
           "look at the worker's log (%s WORKER on its host) and check that the host reaches "
           "the controller and the head reaches the worker's URL." % logs)

    # Every model through the API.
    api = summary["api_url"]
    for model in models:
        # The hosts that serve it (the model's "hosts" are those that need its HF weights:
        # none for a llama.cpp worker).
        hosts = sorted({w["host"] for w in workers if w["model"] == model})
        answer = client.request(api + "/chat/completions", "POST", headers=auth, body={
            "model": model, "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 8, "temperature": 0})
        choices = (answer.json() or {}).get("choices") if answer.status == 200 else None
        _check(report, "%s answers through the API" % model, bool(choices),
               "Model %s (on %s) %s at %s/chat/completions: %s." % (
                   model, ", ".join(hosts), "answered" if choices else "did not answer",
                   api, _first_text(answer) if choices else answer.describe()),
               "look at the worker's log on that host and the API server's log on the head "
               "(%s openai-api)." % logs)
    if keys and models:
        answer = client.request(api + "/chat/completions", "POST", body={
            "model": models[0], "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 4})
        _check(report, "the API refuses a request without a key", answer.status == 401,
               "Without a key the API answered %s." % answer.describe(),
               "check that the API server got its keys (%s openai-api on the head)." % logs)
        base = api[:-len("/v1")] if api.endswith("/v1") else api
        answered = []
        for method, path, body in KEYLESS_PROBES:
            got = client.request(base + path, method, body=body, timeout=10)
            if got.status not in (401, 403, 404):
                answered.append("%s %s: %s" % (method, path, got.describe(60)))
        _check(report, "no route of the API port answers without a key", not answered,
               "Without a key: %s." % ("; ".join(answered) if answered else
                                       "every probed route (%s) refused" % ", ".join(
                                           p for _, p, _ in KEYLESS_PROBES)),
               "rebuild the image with the project's hardening patch (site.yml) and check "
               "the TLS proxy's routes (/etc/nginx/conf.d/fastchat-lab.conf).")
    if models:
        answer = client.request(api + "/chat/completions", "POST", headers=auth, body={
            "model": models[0], "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 8, "stream": True})
        chunks = [line for line in answer.body.splitlines() if line.startswith("data:")]
        _check(report, "the API streams", answer.status == 200 and chunks and
               "[DONE]" in answer.body,
               "Model %s streamed %d chunks (%s)." % (models[0], len(chunks),
                                                      answer.describe(80)),
               "look at the API server's log on the head (%s openai-api)." % logs)

    # The web UI, and its login.
    web = summary["web_ui_url"]
    page = Answer()
    for attempt in range(12):
        page = client.request(web + "/", timeout=30)
        if page.status == 200:
            break
        if attempt + 1 < 12:
            sleep(delay)
    _check(report, "the web UI answers", page.status == 200,
           "The web UI at %s on %s gave %s." % (web, head, page.describe(100)),
           "look at the web-ui service's log on the head (%s web-ui)." % logs)
    if users:
        name, password = users[0]
        closed = client.request(web + "/config")
        wrong = client.request(web + "/login", "POST",
                               form={"username": name, "password": password + "-wrong"})
        login = client.request(web + "/login", "POST",
                               form={"username": name, "password": password})
        cookie = "access-token" in login.headers.get("set-cookie", "").lower() or \
            "access-token" in str(login.headers).lower()
        _check(report, "the web UI needs a login",
               closed.status == 401 and wrong.status in (400, 401) and login.status == 200
               and cookie,
               "Without a login /config gave %d, a wrong password %d, the login of %s %d%s." % (
                   closed.status, wrong.status, name, login.status,
                   "" if cookie else " without a session cookie"),
               "check the web UI's logins file (%s/web-ui/auth) and the web-ui service's "
               "log (%s web-ui)." % (summary["deploy_dir"], logs))

    # TLS: the answers above came over HTTPS verified against the CA; plain HTTP must
    # not reach FastChat, and FastChat's own ports must not answer outside loopback.
    if summary.get("tls"):
        for kind, url in (("openai_api", api), ("web_ui", web)):
            svc = _service(plan, kind)
            parts = urllib.parse.urlsplit(url)
            plain = client.request("http://%s:%d/" % (parts.hostname, svc["port"]), timeout=10)
            _check(report, "plain HTTP on %s's port does not reach FastChat" % svc["name"],
                   plain.status == 400 and PLAIN_HTTP_ANSWER in plain.body,
                   "http://%s:%d/ gave %s." % (parts.hostname, svc["port"],
                                              plain.describe(80)),
                   "check the TLS proxy's configuration on the head "
                   "(/etc/nginx/conf.d/fastchat-lab.conf).")
            open_port = _connects(parts.hostname, svc["backend_port"])
            _check(report, "FastChat's own port of %s is on loopback only" % svc["name"],
                   not open_port,
                   "%s:%d (FastChat's own port) %s." % (
                       parts.hostname, svc["backend_port"],
                       "accepts connections" if open_port else "refuses connections"),
                   "publish it on 127.0.0.1 only (the compose project of the head).")
    if min_free_gb is not None:
        check_disk(report, head, summary["logs_dir"], min_free_gb, statvfs)
    report["failures"] = [c for c in report["checks"] if not c["ok"]]
    return report


def _first_text(answer):
    try:
        return answer.json()["choices"][0]["message"]["content"][:60]
    except (TypeError, KeyError, IndexError):
        return ""


def _connects(host, port, timeout=3.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
