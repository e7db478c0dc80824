"""ansible.cfg checks SSH host keys: against an sshd the test starts on loopback, with the
project's own ansible.cfg, a host whose key is not the one known is refused (with Mitogen,
the default strategy, and with the linear one), a new host's key is accepted and recorded
on first contact by the linear strategy (accept-new), and Mitogen reaches a host whose key
is known."""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(not os.path.exists(SSHD) or os.geteuid() != 0,
                                reason="needs sshd and root (scripts/test installs openssh-server)")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(name="sshd", scope="module")
def fixture_sshd(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sshd")
    host_key = _keygen(tmp / "host_key")
    client_key = _keygen(tmp / "client_key")
    (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
    os.chmod(tmp / "authorized_keys", 0o600)
    port = _free_port()
    config = tmp / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1", "Port %d" % port, "HostKey %s" % host_key,
        "PidFile %s" % (tmp / "sshd.pid"), "AuthorizedKeysFile %s" % (tmp / "authorized_keys"),
        "PermitRootLogin prohibit-password", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", ""]))
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # its privilege separation directory
    log = tmp / "sshd.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=err)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("sshd did not start: %s" % log.read_text())
                time.sleep(0.1)
        yield {"port": port, "client_key": client_key, "tmp": tmp,
               "host_pub": (tmp / "host_key.pub").read_text().split()[:2]}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ping(sshd, known_hosts, strategy=None):
    """ansible -m ping to the sshd, through the project's ansible.cfg, with KNOWN_HOSTS."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(sshd["tmp"] / "ansible-tmp"))
    env.pop("ANSIBLE_STRATEGY", None)
    if strategy:
        env["ANSIBLE_STRATEGY"] = strategy
    # A one-task playbook (the strategy applies to playbooks; ad hoc runs are linear).
    playbook = sshd["tmp"] / "ping.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                        "    - ansible.builtin.ping:\n")
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "lab-host,",
            str(playbook), "-e", "ansible_host=127.0.0.1", "-e", "ansible_port=%d" % sshd["port"],
            "-e", "ansible_user=root", "-e", "ansible_connection=ssh",
            "-e", "ansible_ssh_private_key_file=%s" % sshd["client_key"],
            "-e", "ansible_python_interpreter=%s" % sys.executable,
            "-e", "ansible_ssh_extra_args='-o UserKnownHostsFile=%s -o ControlPath=none'" % known_hosts]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def _entry(sshd, key_type, key):
    return "[127.0.0.1]:%d %s %s\n" % (sshd["port"], key_type, key)


def test_a_new_hosts_key_is_accepted_and_recorded_on_first_contact(sshd, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    rc, out = _ping(sshd, known, strategy="linear")
    assert rc == 0, out
    assert sshd["host_pub"][1] in known.read_text()


@pytest.mark.parametrize("strategy", [None, "linear"])
def test_a_host_whose_key_changed_is_refused(sshd, tmp_path, strategy):
    other = _keygen(tmp_path / "other")
    known = tmp_path / "known_hosts"
    key_type, key = (tmp_path / "other.pub").read_text().split()[:2]
    known.write_text(_entry(sshd, key_type, key))
    rc, out = _ping(sshd, known, strategy)
    assert rc != 0, out
    assert "UNREACHABLE" in out and "ok=1" not in out, out
    assert "Host key verification failed" in out or "REMOTE HOST IDENTIFICATION HAS CHANGED" in out \
        or "host key" in out.lower(), out
    assert other.exists()


def test_mitogen_reaches_a_host_whose_key_is_known(sshd, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(_entry(sshd, *sshd["host_pub"]))
    rc, out = _ping(sshd, known)
    assert rc == 0, out
    assert "ok=1" in out
