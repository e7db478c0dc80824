"""module_utils/arena.py and scripts/arena-screenshot against a stand-in of FastChat's web
UI: a page whose side-by-side tab holds a Gradio-like model list (an input with
role=listbox that opens a ul.options on focus) filled only a while after the page has
loaded, as --model-list-mode reload does. Needs Debian's chromium (scripts/test installs
it); the real web UI is looked at by molecule/lab."""

import http.server
import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.arena import (
    check_arena,
    find_browser,
    remember,
    remembered,
)

from labs import ROOT

PAGE = """<!DOCTYPE html><html><body><gradio-app><div class="gradio-container">
<div class="tab-nav">
  <button role="tab" aria-selected="true" id="t1">Arena (battle)</button>
  <button role="tab" aria-selected="false" id="t2">Arena (side-by-side)</button>
</div>
<div id="battle"><h3>Chatbot Arena</h3></div>
<div id="side" style="display:none"><input role="listbox" id="dd"><div id="opts"></div></div>
</div></gradio-app>
<script>
let models = [];
setTimeout(() => { models = %s; document.getElementById('dd').value = models[0] || ''; }, %d);
%s
document.getElementById('t2').addEventListener('click', () => {
  document.getElementById('side').style.display = 'block';
  document.getElementById('battle').style.display = 'none';
  document.getElementById('t1').setAttribute('aria-selected', 'false');
  document.getElementById('t2').setAttribute('aria-selected', 'true');
});
document.getElementById('dd').addEventListener('focus', () => {
  document.getElementById('opts').innerHTML = '<ul class="options">' +
    models.map(m => '<li><span>\\u2713</span> ' + m + '</li>').join('') + '</ul>';
});
// Like gradio's: an open list keeps the choices it opened with; it closes on blur.
document.getElementById('dd').addEventListener('blur', () => {
  document.getElementById('opts').innerHTML = '';
});
</script></body></html>"""

pytestmark = pytest.mark.skipif(find_browser() is None and not os.environ.get("CI"),
                                reason="no chromium here (scripts/test installs it)")


@pytest.fixture()
def web_ui():
    """Serve PAGE on 127.0.0.1; yields a function (models, delay_ms) -> URL."""
    state = {"page": ""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = state["page"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def serve(models, delay_ms=1500, later=None, later_ms=3000):
        grow = ("setTimeout(() => { models = %s; }, %d);" % (json.dumps(later), later_ms)
                if later else "")
        state["page"] = PAGE % (json.dumps(models), delay_ms, grow)
        return "http://127.0.0.1:%d/" % server.server_address[1]

    yield serve
    server.shutdown()
    server.server_close()


def test_waits_for_the_late_model_list_and_saves_the_screenshot(web_ui, tmp_path):
    url = web_ui(["tiny-chat", "tiny-remote", "tiny-joined"])
    png, html = tmp_path / "arena.png", tmp_path / "arena.html"
    status, report = check_arena(url, str(png), str(html), ["tiny-joined", "tiny-chat"],
                                 timeout=30, browser=find_browser())
    assert status == "offered", report
    assert report["models"] == ["tiny-chat", "tiny-joined", "tiny-remote"]
    assert report["missing"] == [] and report["error"] == ""
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'value="tiny-chat"' in html.read_text()


def test_a_list_opened_before_every_model_arrived_is_opened_again(web_ui, tmp_path):
    # The web UI fills its lists in steps; a list opened in between keeps what it had
    # (the rehearsal lab once saw only tiny-chat for the whole 90 s of its check).
    url = web_ui(["tiny-chat"], delay_ms=200, later=["tiny-chat", "tiny-remote"], later_ms=2500)
    status, report = check_arena(url, None, None, ["tiny-chat", "tiny-remote"], timeout=20,
                                 browser=find_browser())
    assert status == "offered", report
    assert report["models"] == ["tiny-chat", "tiny-remote"]


def test_a_model_the_page_does_not_offer_is_reported_missing(web_ui, tmp_path):
    url = web_ui(["tiny-chat"], delay_ms=200)
    status, report = check_arena(url, str(tmp_path / "a.png"), None, ["tiny-chat", "gone"],
                                 timeout=6, browser=find_browser())
    assert status == "missing"
    assert report["missing"] == ["gone"] and report["models"] == ["tiny-chat"]
    assert (tmp_path / "a.png").exists()  # the screenshot shows what was there


def test_an_unreachable_page_fails_fast():
    with socket.socket() as sock:  # a port nothing listens on: bound, then released
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status, report = check_arena("http://127.0.0.1:%d/" % port, None, None, ["x"],
                                 timeout=30, browser=find_browser())
    assert status == "failed"
    assert "ERR_CONNECTION_REFUSED" in report["error"]


def test_the_script_exit_codes(web_ui, tmp_path):
    script = os.path.join(ROOT, "scripts", "arena-screenshot")
    url = web_ui(["tiny-chat", "tiny-remote"], delay_ms=300)
    ok = subprocess.run([script, url, str(tmp_path / "ok.png"), "--expect", "tiny-remote"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["found_all"] is True
    missing = subprocess.run([script, url, str(tmp_path / "no.png"), "--expect", "nope",
                              "--timeout", "5"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["missing"] == ["nope"]
    no_browser = subprocess.run([sys.executable, script, url, str(tmp_path / "x.png")],
                                capture_output=True, text=True, timeout=60,
                                env=dict(os.environ, PATH="/nonexistent"))
    assert no_browser.returncode == 2
    assert "no chromium on PATH" in no_browser.stderr


def test_a_look_that_passed_is_reused_only_under_the_same_key(tmp_path):
    path = str(tmp_path / "cache" / "arena-looks.json")
    url = "https://192.0.2.10:7860/"
    assert remembered(path, url, "k1") is None  # nothing remembered yet
    remember(path, url, "k1", ["tiny-chat", "tiny-remote"], now=0)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert remembered(path, url, "k1") == {"key": "k1", "models": ["tiny-chat", "tiny-remote"],
                                           "at": "1970-01-01T00:00:00Z"}
    assert remembered(path, url, "k2") is None  # the web UI restarted, another login...
    assert remembered(path, "https://192.0.2.11:7860/", "k1") is None  # another lab
    assert remembered(path, url, "") is None  # no key proves nothing
    # A look that did not find every model is forgotten: the next one looks again.
    remember(path, url, "k1", None)
    assert remembered(path, url, "k1") is None
    remember(path, url, "k1", None)  # forgetting twice is fine


def test_a_broken_memory_file_means_looking_again(tmp_path):
    path = tmp_path / "arena-looks.json"
    url = "https://192.0.2.10:7860/"
    for text in ("{not json", "[1, 2]", json.dumps({url: {"key": "k", "models": "x"}})):
        path.write_text(text, encoding="utf-8")
        assert remembered(str(path), url, "k") is None
    remember(str(path), url, "k", ["m"])
    assert remembered(str(path), url, "k")["models"] == ["m"]
