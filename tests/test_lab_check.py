"""module_utils/lab_check.py (playbooks/verify.yml's checks) against stand-in servers: a
lab that works passes, and each broken part is named with its host and fix."""

import copy
import datetime
import http.server
import json
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_check import (
    check_lab,
    format_table,
)
from labs import plan_of, reference_lab

KEY = "sk-test-key-0123456789"
USER, PASSWORD = "alice", "correct-horse-battery"


class Lab(http.server.BaseHTTPRequestHandler):
    """Controller, API server and web UI in one, as far as the checks look."""

    models = ["Baichuan-13B-Chat", "Qwen-7B-Chat"]
    dead = set()
    open_paths = set()

    def _send(self, status, body, ctype="application/json", headers=()):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_POST(self):  # noqa: N802 - http.server's name
        raw = self._body()
        if self.path in self.open_paths:
            return self._send(200, {"prompts": []})
        if self.path == "/list_models":
            return self._send(200, {"models": self.models})
        if self.path == "/login":
            form = dict(p.split("=", 1) for p in raw.decode().split("&"))
            if form == {"username": USER, "password": PASSWORD}:
                return self._send(200, {"success": True},
                                  headers=[("Set-Cookie", "access-token-1=x; HttpOnly")])
            return self._send(400, {"detail": "Incorrect credentials."})
        if self.path == "/v1/chat/completions":
            if self.headers.get("Authorization") != "Bearer " + KEY:
                return self._send(401, {"error": "invalid key"})
            body = json.loads(raw)
            if body["model"] in self.dead:
                return self._send(400, {"object": "error", "message": "Only ... allowed"})
            if body.get("stream"):
                return self._send(200, 'data: {"x": 1}\n\ndata: [DONE]\n\n', "text/event-stream")
            return self._send(200, {"choices": [{"message": {"content": "hello"}}]})
        return self._send(404, {})

    def do_GET(self):  # noqa: N802
        if self.path == "/":
            return self._send(200, "<html>login</html>", "text/html")
        if self.path == "/config":
            return self._send(401, {"detail": "Not authenticated"})
        return self._send(404, {})

    def log_message(self, *args):
        pass


@pytest.fixture(name="lab")
def fixture_lab():
    Lab.models = ["Baichuan-13B-Chat", "Qwen-7B-Chat"]
    Lab.dead = set()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Lab)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def plan_at(base, tls=False, lab=None):
    """The plan of ``lab`` ((hosts, groups); default: the reference lab) at ``base``."""
    plan = copy.deepcopy(plan_of(*(lab or reference_lab()), settings={"tls": tls}))
    plan["summary"].update(controller_address=base, api_url=base + "/v1", web_ui_url=base)
    return plan


def url(server, scheme="http"):
    return "%s://127.0.0.1:%d" % (scheme, server.server_address[1])


def test_a_working_lab_passes_every_check(lab):
    report = check_lab(plan_at(url(lab)), keys=[KEY], users=[(USER, PASSWORD)], retries=1,
                       sleep=lambda s: None)
    assert report["failures"] == []
    assert [c["name"] for c in report["checks"]] == [
        "controller lists the planned models", "Baichuan-13B-Chat answers through the API",
        "Qwen-7B-Chat answers through the API", "the API refuses a request without a key",
        "no route of the API port answers without a key",
        "the API streams", "the web UI answers", "the web UI needs a login"]


def test_a_keyless_route_is_a_failure(lab):
    # FastChat 0.2.36 without the hardening patch: /api/v1/* answers without a key.
    Lab.open_paths = {"/api/v1/token_check"}
    try:
        report = check_lab(plan_at(url(lab)), keys=[KEY], retries=1, sleep=lambda s: None)
    finally:
        Lab.open_paths = set()
    failed = {c["name"]: c for c in report["failures"]}
    check = failed["no route of the API port answers without a key"]
    assert "POST /api/v1/token_check: HTTP 200" in check["detail"]
    assert "hardening patch" in check["fix"]


class StatVfs:
    def __init__(self, free_bytes):
        self.f_frsize, self.f_bavail = 4096, free_bytes // 4096


def test_the_votes_disk_must_have_room(lab):
    seen = []

    def statvfs(path):
        seen.append(path)
        return StatVfs(int(1.5e9))

    report = check_lab(plan_at(url(lab)), keys=[KEY], retries=1, sleep=lambda s: None,
                       min_free_gb=2, statvfs=statvfs)
    assert seen == ["/var/lib/fastchat-lab/logs"]
    failed = {c["name"]: c for c in report["failures"]}
    check = failed["the votes' disk has room"]
    assert "has 1.5 GB free (at least 2 wanted)" in check["detail"]
    assert "a full disk stops the arena from writing votes" in check["fix"]
    report = check_lab(plan_at(url(lab)), keys=[KEY], retries=1, sleep=lambda s: None,
                       min_free_gb=2, statvfs=lambda p: StatVfs(int(30e9)))
    assert report["failures"] == []


def test_an_unreadable_logs_directory_is_a_failure(lab):
    def statvfs(path):
        raise FileNotFoundError(2, "No such file or directory", path)

    report = check_lab(plan_at(url(lab)), keys=[KEY], retries=1, sleep=lambda s: None,
                       min_free_gb=2, statvfs=statvfs)
    assert "cannot be read (No such file or directory)" in report["failures"][0]["detail"]


def test_a_missing_worker_is_named_with_its_host_and_url(lab):
    Lab.models = ["Baichuan-13B-Chat"]
    waits = []
    report = check_lab(plan_at(url(lab)), keys=[KEY], retries=3, sleep=waits.append)
    assert waits == [5.0, 5.0]  # retried while workers register
    failed = report["failures"][0]
    assert failed["name"] == "controller lists the planned models"
    assert "Missing: Qwen-7B-Chat (worker qwen-7b-chat-gpu1 on gpu01, " \
           "http://192.0.2.10:21002)." in failed["detail"]
    assert failed["fix"].startswith("look at the worker's log")


def test_the_report_leaves_ansibles_own_result_keys_alone(lab):
    # The module returns the report as its result: a key "failed" would fail the task
    # itself ("Module failed: Unknown error") instead of letting verify.yml name each
    # failed check with its fix (the lab scenario found this).
    Lab.dead = {"Qwen-7B-Chat"}
    report = check_lab(plan_at(url(lab)), keys=[KEY], retries=1, sleep=lambda s: None)
    assert report["failures"]
    assert not set(report) & {"failed", "changed", "skipped", "unreachable", "msg", "rc"}


def test_a_model_that_does_not_answer_is_named(lab):
    Lab.dead = {"Qwen-7B-Chat"}
    report = check_lab(plan_at(url(lab)), keys=[KEY], retries=1, sleep=lambda s: None)
    assert [c["name"] for c in report["failures"]] == ["Qwen-7B-Chat answers through the API"]
    assert "Model Qwen-7B-Chat (on gpu01) did not answer" in report["failures"][0]["detail"]
    assert "HTTP 400" in report["failures"][0]["detail"]


def test_a_model_is_named_with_the_hosts_that_serve_it_whatever_its_engine(lab):
    hosts, groups = reference_lab()
    hosts["gpu01"]["fastchat_gpus"] = dict(hosts["gpu01"]["fastchat_gpus"], driver_version="535.216.01")
    for worker in hosts["gpu01"]["fastchat_workers"]:
        if worker["model"] == "Qwen-7B-Chat":
            worker["backend"] = "llamacpp"
    plan = plan_at(url(lab), lab=(hosts, groups))
    assert plan["models"]["Qwen-7B-Chat"]["engine"] == "llama.cpp"
    Lab.dead = {"Qwen-7B-Chat", "Baichuan-13B-Chat"}
    report = check_lab(plan, keys=[KEY], retries=1, sleep=lambda s: None)
    details = " ".join(c["detail"] for c in report["failures"])
    assert "Model Qwen-7B-Chat (on gpu01) did not answer" in details
    assert "Model Baichuan-13B-Chat (on gpu01) did not answer" in details


def test_a_wrong_login_fails_the_login_check(lab):
    report = check_lab(plan_at(url(lab)), keys=[KEY], users=[(USER, "not-the-password")],
                       retries=1, sleep=lambda s: None)
    failed = {c["name"]: c for c in report["failures"]}
    assert "the login of alice 400" in failed["the web UI needs a login"]["detail"]


def test_the_table_says_what_runs_where():
    assert format_table(plan_of(*reference_lab())) == [
        "model             | host  | GPUs | worker URL",
        "------------------+-------+------+------------------------",
        "Baichuan-13B-Chat | gpu01 | 2,3  | http://192.0.2.10:21003",
        "Qwen-7B-Chat      | gpu01 | 1    | http://192.0.2.10:21002",
        "OpenAI API: https://192.0.2.10:8000/v1",
        "web UI:     https://192.0.2.10:7860"]


def _certificate(tmp_path, name, issuer_key=None, issuer=None, ca=False):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer or subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=2)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    else:
        import ipaddress
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    crt, pem = tmp_path / (name + ".crt"), tmp_path / (name + ".key")
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return key, subject, crt, pem


@pytest.fixture(name="tls_lab")
def fixture_tls_lab(tmp_path):
    ca_key, ca_name, ca_crt, _ = _certificate(tmp_path, "ca", ca=True)
    _, _, crt, key = _certificate(tmp_path, "server", ca_key, ca_name)
    other_ca = _certificate(tmp_path, "other-ca", ca=True)[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Lab)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(crt), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, str(ca_crt), str(other_ca)
    server.shutdown()
    server.server_close()


def test_https_answers_are_verified_against_the_lab_ca(tls_lab):
    server, ca, other_ca = tls_lab
    base = url(server, "https")
    plan = plan_at(base)
    good = check_lab(plan, keys=[KEY], users=[(USER, PASSWORD)], ca_file=ca, retries=1,
                     sleep=lambda s: None)
    assert good["failures"] == []
    bad = check_lab(plan, keys=[KEY], ca_file=other_ca, retries=1, sleep=lambda s: None)
    assert "CERTIFICATE_VERIFY_FAILED" in bad["failures"][0]["detail"]
