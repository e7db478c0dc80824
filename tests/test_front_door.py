"""The lab's front door: module_utils/front_door.py's allow-list, and roles/lab_proxy's nginx
configuration rendered from it and run by the distribution's nginx (as the role installs
it) in front of stand-in backends on loopback: only the lab's routes reach FastChat, every
other path gets nginx's 404, logins are throttled (429), cookies become Secure and
SameSite=Lax, HSTS and frame protection are sent, nginx's version is not. Needs nginx
(scripts/test installs Debian's)."""

import http.client
import http.server
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import jinja2
import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.front_door import (
    LOGIN_BURST,
    front_door,
    locations,
)

from labs import ROOT

TEMPLATE = os.path.join(ROOT, "roles", "lab_proxy", "templates", "fastchat-lab.conf.j2")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# What gradio 4.44's page and an OpenAI client ask for, and what must never pass.
API_ALLOWED = ["/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/embeddings"]
API_DENIED = ["/", "/api/v1/token_check", "/api/v1/chat/completions", "/docs", "/redoc",
              "/openapi.json", "/v1/models/", "/v1/chat/completions/x", "/v1/engines/x/embeddings",
              "/v1//models", "/V1/models", "/v1/models%0a", "/x/v1/models", "/worker_get_status",
              "/register_worker", "/list_models"]
WEB_ALLOWED = ["/", "/login", "/login/", "/logout", "/config", "/config/", "/info", "/theme.css",
               "/favicon.ico", "/assets/index-1234.js", "/static/img/x.svg", "/queue/join",
               "/queue/data", "/heartbeat/abc_123-x", "/file=/tmp/gradio/x.png", "/reset",
               "/cancel", "/upload_progress", "/app_id", "/user"]
WEB_DENIED = ["/run/predict", "/api/predict", "/api/predict/", "/call/predict", "/proxy=http://x",
              "/monitoring", "/monitoring/abc", "/dev/reload", "/custom_component/1/x/y",
              "/startup-events", "/queue/status", "/heartbeat/", "/gradio_api/info", "/.env",
              "/loginx", "/v1/models", "/docs", "/config%0a", "/%0a", "/login%0a"]


def matches(kind, path):
    # nginx matches the decoded path ("%0a" is a newline by then).
    return any(re.search(loc["pattern"], urllib.parse.unquote(path)) for loc in locations(kind))


@pytest.mark.parametrize("path", API_ALLOWED)
def test_api_routes_pass(path):
    assert matches("openai_api", path)


@pytest.mark.parametrize("path", API_DENIED)
def test_other_api_paths_do_not(path):
    assert not matches("openai_api", path)


@pytest.mark.parametrize("path", WEB_ALLOWED)
def test_web_ui_routes_pass(path):
    assert matches("web_ui", path)


@pytest.mark.parametrize("path", WEB_DENIED)
def test_other_web_ui_paths_do_not(path):
    assert not matches("web_ui", path)


def test_only_the_login_is_throttled_and_only_front_door_kinds_have_routes():
    assert [loc["pattern"] for loc in locations("web_ui") if loc["login"]] == [r"^/login/?$(?!\n)"]
    assert not any(loc["login"] for loc in locations("openai_api"))
    with pytest.raises(ValueError, match="'controller' has no front door"):
        locations("controller")
    assert front_door([])["login"] is None


# --- nginx with the rendered configuration ------------------------------------------------

class Backend(http.server.BaseHTTPRequestHandler):
    """FastChat's stand-in: answers every path with 200 and the path, sets gradio's
    cookies on /login."""

    seen = []

    def _answer(self):
        Backend.seen.append(self.path)
        body = ("backend " + self.path).encode()
        self.send_response(200)
        if self.path.startswith("/login"):
            self.send_header("Set-Cookie", "access-token=t1; Path=/; SameSite=none; Secure; HttpOnly")
            self.send_header("Set-Cookie", "access-token-unsecure=t2; Path=/; HttpOnly")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(directory):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", os.path.join(directory, "server.key"),
                    "-out", os.path.join(directory, "server.crt")],
                   check=True, capture_output=True)


@pytest.fixture(scope="module")
def door(tmp_path_factory):
    if not os.path.exists(NGINX):
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (scripts/test installs it)")
        pytest.skip("nginx is not installed (scripts/test installs it)")
    tmp = str(tmp_path_factory.mktemp("nginx"))
    backends = {}
    servers = []
    for kind in ("openai_api", "web_ui"):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        backends[kind] = {"kind": kind, "bind": "127.0.0.1", "port": free_port(),
                          "backend_port": srv.server_address[1]}
    make_cert(tmp)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True)
    with open(TEMPLATE, encoding="utf-8") as f:
        conf = env.from_string(f.read()).render(
            ansible_managed="test", inventory_hostname="head", _lab_proxy_dir=tmp,
            _lab_proxy_front_door=front_door(list(backends.values())))
    with open(os.path.join(tmp, "fastchat-lab.conf"), "w", encoding="utf-8") as f:
        f.write(conf)
    with open(os.path.join(tmp, "nginx.conf"), "w", encoding="utf-8") as f:
        f.write("daemon off; pid %s/nginx.pid; error_log %s/error.log;\n"
                "events {}\nhttp {\n  access_log off;\n" % (tmp, tmp)
                + "".join("  %s_temp_path %s/%s;\n" % (t, tmp, t)
                          for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                + "  include %s/fastchat-lab.conf;\n}\n" % tmp)
    check = subprocess.run([NGINX, "-t", "-p", tmp, "-c", os.path.join(tmp, "nginx.conf")],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr + conf
    proc = subprocess.Popen([NGINX, "-p", tmp, "-c", os.path.join(tmp, "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", backends["web_ui"]["port"]), 1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.1)
        yield {"ports": {k: v["port"] for k, v in backends.items()}, "conf": conf}
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()
        for srv in servers:
            srv.shutdown()
            srv.server_close()


def ask(port, path, method="GET"):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        conn.request(method, path, body=b"" if method == "POST" else None)
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read().decode()
    finally:
        conn.close()


@pytest.mark.parametrize("kind, path, reaches", (
    [("openai_api", p, True) for p in API_ALLOWED] + [("openai_api", p, False) for p in API_DENIED]
    + [("web_ui", p, True) for p in WEB_ALLOWED if not p.startswith("/login")]
    + [("web_ui", p, False) for p in WEB_DENIED]))
def test_nginx_passes_only_the_lab_routes(door, kind, path, reaches):
    Backend.seen.clear()
    status, headers, body = ask(door["ports"][kind], path)
    if reaches:
        assert (status, body) == (200, "backend " + path)
    else:
        assert status == 404 and Backend.seen == [], (status, body)
        assert '"no such route on this port"' in body
    names = {k.lower(): v for k, v in headers}
    assert names["strict-transport-security"] == "max-age=63072000"
    assert names["content-security-policy"] == "frame-ancestors 'none'"
    assert names["x-frame-options"] == "DENY"
    assert names["server"] == "nginx"  # no version


def test_cookies_are_secure_and_same_site_lax(door):
    status, headers, _ = ask(door["ports"]["web_ui"], "/login", "POST")
    cookies = [v for k, v in headers if k.lower() == "set-cookie"]
    assert status == 200 and len(cookies) == 2, headers
    for cookie in cookies:
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert "secure" in flags and "samesite=lax" in flags, cookie
        assert "samesite=none" not in flags, cookie


def test_a_burst_of_wrong_logins_gets_429(door):
    time.sleep(7)  # the zone refills (10 a minute) after the cookie test's login
    codes = [ask(door["ports"]["web_ui"], "/login", "POST")[0] for _ in range(20)]
    assert codes.count(429) >= 20 - (LOGIN_BURST + 2), codes
    assert codes[0] == 200 and set(codes) == {200, 429}, codes
    # Other routes are not throttled.
    assert ask(door["ports"]["web_ui"], "/config")[0] == 200


def test_plain_http_gets_the_proxy_400(door):
    conn = http.client.HTTPConnection("127.0.0.1", door["ports"]["openai_api"], timeout=10)
    conn.request("GET", "/v1/models")
    resp = conn.getresponse()
    assert resp.status == 400 and "HTTPS only" in resp.read().decode()
    conn.close()
