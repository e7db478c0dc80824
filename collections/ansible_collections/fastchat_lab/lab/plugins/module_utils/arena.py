# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Look at FastChat's web UI (the arena) in a headless Chromium: does it offer the models?

Standard library only: used by the ``fastchat_lab.lab.arena_check`` action plugin (on the
control node, from playbooks/verify.yml) and by ``scripts/arena-screenshot``.

With ``--model-list-mode reload`` the web UI fills its model lists after the page has
loaded, through Gradio's queue; Chromium's ``--virtual-time-budget`` does not wait for
that. So :func:`check_arena` drives Chromium through the DevTools protocol over
``--remote-debugging-pipe`` (NUL-terminated JSON on file descriptors 3 and 4): open the
page, switch to the tab, open its first model list, and poll until every expected model
is listed (or the deadline passes); then take the screenshot and save the rendered DOM.

Behind the lab's TLS proxy the page's certificate is first verified against the lab's CA
with Python's ssl (:func:`pin_for`), and Chromium is told to accept exactly that key
(``--ignore-certificate-errors-spki-list``). With a login, the page's own ``/login`` is
posted from inside the page (the password never reaches a command line), then the page
is opened again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse

WIDTH, HEIGHT = 1400, 1100
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--mute-audio",
         "--remote-debugging-pipe", "--window-size=%d,%d" % (WIDTH, HEIGHT)]

# One poll: click the tab (by its label), open the first model list visible in it, and
# report what the page offers: the open list's options (the check) and every input's
# value (a Gradio dropdown's value is a property, not an attribute).
POLL_JS = """(() => {
  const tab = %s;
  if (tab) {
    for (const b of document.querySelectorAll('button[role=tab], .tab-nav button')) {
      if (b.textContent.trim() === tab && b.getAttribute('aria-selected') !== 'true') b.click();
    }
  }
  const visible = el => el.offsetParent !== null;
  const lists = Array.from(document.querySelectorAll('input[role=listbox]')).filter(visible);
  const open = document.querySelector('ul.options');
  if (lists.length && !(open && open.querySelector('li'))) {
    lists[0].blur();
    lists[0].focus();
    lists[0].dispatchEvent(new Event('focus'));
    lists[0].dispatchEvent(new MouseEvent('mousedown', {bubbles: true}));
    lists[0].click();
  }
  return JSON.stringify({
    mounted: !!document.querySelector('gradio-app .gradio-container, .gradio-container'),
    // Each option is a check mark (shown on the selected one) and the model's name.
    options: Array.from(document.querySelectorAll('ul.options li'))
      .map(li => li.textContent.replace('\u2713', '').trim()),
    inputs: Array.from(document.querySelectorAll('input')).map(i => i.value)});
})()"""

# Close the open model list (the poll opens it again with the choices of now).
CLOSE_JS = """(() => {
  if (document.activeElement) document.activeElement.blur();
  document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}));
  return '';
})()"""

DOM_JS = """(() => {
  for (const i of document.querySelectorAll('input')) i.setAttribute('value', i.value);
  return '<!DOCTYPE html>\\n' + document.documentElement.outerHTML;
})()"""


class DevTools:
    """Just enough of the DevTools protocol over a pipe."""

    def __init__(self, read_fd, write_fd, deadline):
        self.read_fd, self.write_fd, self.deadline = read_fd, write_fd, deadline
        self.buffer, self.last_id = b"", 0

    def call(self, method, session=None, **params):
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                left = self.deadline - time.monotonic()
                if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                    raise TimeoutError("no answer to %s" % method)
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise EOFError("the browser closed the pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.last_id:  # events are skipped
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})

    def evaluate(self, session, expression):
        result = self.call("Runtime.evaluate", session, expression=expression,
                           returnByValue=True)
        return result.get("result", {}).get("value")


LOGIN_JS = """fetch(%s, {method: 'POST', credentials: 'include',
  body: new URLSearchParams({username: %s, password: %s})}).then(r => r.status)"""


def pin_for(url, ca_file, timeout=15):
    """The base64 SHA-256 of the public key of ``url``'s certificate, after verifying it
    (chain and host name) against ``ca_file``; raises ssl.SSLError when it does not."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    parts = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
            der = tls.getpeercert(binary_form=True)
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def start_browser(browser, url, pin=None):
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def child_fds():
        read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
        os.dup2(read_end, 3)
        os.dup2(write_end, 4)

    # No name lookups but the lab's: the browser's own calls home and the page's web
    # fonts fail at once instead of waiting on a resolver (lab hosts are often offline).
    host = urllib.parse.urlsplit(url).hostname
    rules = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE %s, EXCLUDE localhost" % host
    extra = ["--ignore-certificate-errors-spki-list=%s" % pin] if pin else []
    proc = subprocess.Popen(  # noqa: S603 - a fixed argv
        [browser, *FLAGS, *extra, rules, "about:blank"], preexec_fn=child_fds, pass_fds=(3, 4),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    os.close(to_browser_r)
    os.close(from_browser_w)
    return proc, from_browser_r, to_browser_w


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser():
    """Path of the first Chromium-like browser on PATH, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def check_arena(url, png=None, html=None, expect=(), tab="Arena (side-by-side)", timeout=60,
                browser="chromium", login=None, ca_file=None):
    """Open ``url`` and wait until its first model list (in ``tab``) offers ``expect``.

    ``login``: (user, password) for a web UI behind a login; ``ca_file``: the lab CA that
    an https ``url``'s certificate must verify against.
    Returns ``(status, report)``: status ``offered`` (every expected model listed),
    ``missing`` (some were not by the deadline) or ``failed`` (the browser or the page
    failed, the certificate did not verify, the login was refused: report["error"]);
    report = {"models": [...], "missing": [...], "error": str}.
    The screenshot goes to ``png`` and the rendered DOM to ``html`` when given.
    """
    deadline = time.monotonic() + timeout
    pin = None
    if url.startswith("https://"):
        try:
            pin = pin_for(url, ca_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            return "failed", {"models": [], "missing": list(expect),
                              "error": "the certificate of %s does not verify against %s: %s"
                              % (url, ca_file or "the system's CAs", exc)}
    proc, read_fd, write_fd = start_browser(browser, url, pin)
    tools = DevTools(read_fd, write_fd, deadline + 10)
    status, state, error = "failed", {}, ""
    try:
        target = tools.call("Target.createTarget", url="about:blank")["targetId"]
        session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        tools.call("Emulation.setDeviceMetricsOverride", session, width=WIDTH, height=HEIGHT,
                   deviceScaleFactor=1, mobile=False)
        nav_error = tools.call("Page.navigate", session, url=url).get("errorText")
        if nav_error:
            raise RuntimeError("cannot load %s: %s" % (url, nav_error))
        if login:
            time.sleep(1)
            answer = tools.call("Runtime.evaluate", session, awaitPromise=True,
                                returnByValue=True, expression=LOGIN_JS % (
                                    json.dumps(urllib.parse.urljoin(url, "login")),
                                    json.dumps(login[0]), json.dumps(login[1])))
            code = answer.get("result", {}).get("value")
            if code != 200:
                raise RuntimeError("the web UI refused the login of %s (HTTP %s)"
                                   % (login[0], code))
            tools.call("Page.navigate", session, url=url)
        status = "missing"
        while time.monotonic() < deadline:
            state = json.loads(tools.evaluate(session, POLL_JS % json.dumps(tab)) or "{}")
            offered = set(state.get("options", []))
            if state.get("mounted") and offered and all(m in offered for m in expect):
                status = "offered"
                break
            if offered:
                # An open list keeps the choices it opened with, and the web UI fills
                # its lists in steps: close it, the next poll opens it afresh.
                tools.evaluate(session, CLOSE_JS)
            time.sleep(0.5)
        time.sleep(0.5)  # let the last update paint
        if png:
            shot = tools.call("Page.captureScreenshot", session, format="png")
            with open(png, "wb") as fh:
                fh.write(base64.b64decode(shot["data"]))
        if html:
            with open(html, "w", encoding="utf-8") as fh:
                fh.write(tools.evaluate(session, DOM_JS) or "")
    except Exception as exc:  # noqa: BLE001 - report any browser or page failure
        status, error = "failed", "%s: %s" % (type(exc).__name__, exc)
    finally:
        try:
            tools.deadline = time.monotonic() + 3
            tools.call("Browser.close")
        except Exception:  # noqa: BLE001 - it may be gone already
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        os.close(read_fd)
        os.close(write_fd)
    offered = set(state.get("options", []))
    return status, {"models": sorted(offered), "error": error,
                    "missing": [m for m in expect if m not in offered]}


def memory_file():
    """Where the control node keeps the looks that passed (one JSON file per user)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastchat-lab", "arena-looks.json")


def _read_memory(path):
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remembered(path, url, key):
    """The last look at ``url`` that passed under the same ``key`` ({key, models, at}), or None.

    An empty key never matches: without it nothing proves that the page is unchanged."""
    entry = _read_memory(path).get(url)
    if (not key or not isinstance(entry, dict) or entry.get("key") != key
            or not isinstance(entry.get("models"), list)):
        return None
    return entry


def remember(path, url, key, models, now=None):
    """Record a look at ``url`` that passed (``models``), or forget it when ``models`` is
    None (a look that failed must be repeated next time). Written atomically, 0600."""
    data = _read_memory(path)
    if models is None or not key:
        if data.pop(url, None) is None:
            return
    else:
        data[url] = {"key": key, "models": list(models),
                     "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)
