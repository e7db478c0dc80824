"""The lab_firewall role: its settings' checks, the host's checks, the rules
(module_utils/firewall.py), the script as the role renders it (through Ansible, with the
role's own vars/main.yml and template), and that script against the kernel's iptables in
a network namespace of its own (root only): exact check, complete remove, and what gets
through -- a neighbour routing to a container's address, or sending to 127.0.0.1 through
the host's MAC address, is stopped; a lab host is not."""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.compose import BRIDGE
from ansible_collections.fastchat_lab.lab.plugins.module_utils.firewall import (
    CHECK_SH,
    MARKER,
    docker_bridges,
    firewall_rules,
    host_problems,
    probe_request,
    settings_problems,
    source_problem,
)
from labs import ROOT, plan_of, reference_lab
from test_plan_playbook import (
    NO_KEY_INVENTORY,
    OPEN_LAB,
    changed_tasks,
    output,
    plays_started,
    project_copy,
    run,
)

ROLE = os.path.join(ROOT, "roles", "lab_firewall")
SCRIPT = "/usr/local/sbin/fastchat-lab-firewall"
UNIT = "fastchat-lab-firewall.service"
TAIL = "-m comment --comment fastchat-lab"
RESET = TAIL + " -j REJECT --reject-with tcp-reset"
# Shapes that must never reach the root script, each refused by the checks.
HOSTILE_SOURCES = ["10.0.0.1\n", "10.0.0.1 ", " 10.0.0.1", "10.0.0.1; reboot", "$(id)",
                   "`id`", "10.0.0.1\n-j ACCEPT", "10.0.0.0/8 -j ACCEPT", "010.0.0.1",
                   "10.0.0.256", "10.0.0.1/33", "10.0.0.1/", "10.0.0", "10.0.0.1.5",
                   "0.0.0.0/0", "10.0.0.1/0", "10.1.2.3/8", "lab-host", "::1", "2001:db8::1",
                   "١٠.0.0.1", "10.0.0.1/3\n2", "*", ""]


# ---------------------------------------------------------------------------
# Settings: checked before any host changes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["192.0.2.7", "192.0.2.0/24", "10.0.0.0/8", "255.255.255.255",
                                   "198.51.100.7/32", "0.0.0.1", "172.16.0.0/12"])
def test_ipv4_addresses_and_networks_are_sources(value):
    assert source_problem(value) is None


@pytest.mark.parametrize("value", HOSTILE_SOURCES + [None, 10, 10.0, ["10.0.0.1"],
                                                     {"ip": "10.0.0.1"}, True])
def test_anything_else_is_refused_as_a_source(value):
    assert source_problem(value) is not None, value


def test_every_bad_source_is_named_with_its_host_variable_index_and_fix():
    problems = settings_problems("gpu01", ["192.0.2.7", "10.0.0.1; reboot", "0.0.0.0/0",
                                           "10.1.2.3/8"], SCRIPT, UNIT)
    assert problems == [
        "gpu01: lab_firewall_allowed_sources[1]: '10.0.0.1; reboot' is not an IPv4 address or "
        "network (a.b.c.d or a.b.c.d/n, no leading zeros). Fix: give IPv4 addresses or "
        "networks, e.g. 192.0.2.7 or 192.0.2.0/24 (names are not resolved here).",
        "gpu01: lab_firewall_allowed_sources[2]: '0.0.0.0/0' allows every address, which is "
        "no firewall at all. Fix: give IPv4 addresses or networks, e.g. 192.0.2.7 or "
        "192.0.2.0/24 (names are not resolved here).",
        "gpu01: lab_firewall_allowed_sources[3]: '10.1.2.3/8' has host bits set (the network "
        "is 10.0.0.0/8). Fix: give IPv4 addresses or networks, e.g. 192.0.2.7 or "
        "192.0.2.0/24 (names are not resolved here)."]


def test_sources_must_be_a_list():
    problems = settings_problems("all", "192.0.2.7", SCRIPT, UNIT)
    assert problems == ["all: lab_firewall_allowed_sources: must be a list, got a str. Fix: "
                        "give IPv4 addresses or networks, e.g. 192.0.2.7 or 192.0.2.0/24 "
                        "(names are not resolved here)."]


def test_the_defaults_pass():
    assert settings_problems("gpu01", [], SCRIPT, UNIT) == []
    assert settings_problems("gpu01", [], "/opt/fastchat-lab/bin/firewall",
                             "fastchat-lab-fw.service") == []


@pytest.mark.parametrize("path", [
    "/usr/sbin/iptables", "/usr/bin/docker", "/bin/sh", "/sbin/fastchat-lab-firewall",
    "/etc/rc.local", "/lib/systemd/systemd", "/usr/lib/x", "fastchat-lab-firewall",
    "./fastchat-lab-firewall", "/usr/local/sbin/../../sbin/iptables", "/usr/local/sbin/",
    "/usr/local//sbin/x", "/usr/local", "/usr/local/", "/opt", "//opt/x",
    "/usr/local/sbin/fw\n", "/usr/local/sbin/f w", "/usr/local/sbin/fw;reboot",
    "/usr/local/sbin/fw%i", "/usr/local/sbin/$(id)", "", None, 5, "/usr/local/bin",
    "/usr/local/sbin/iptables", "/opt/fastchat-lab", "/opt/other/fastchat-lab-fw"])
def test_a_script_path_outside_usr_local_or_opt_or_odd_is_refused(path):
    problems = settings_problems("gpu01", [], path, UNIT)
    assert len(problems) == 1 and problems[0].startswith("gpu01: lab_firewall_script: "), problems
    assert "Fix: leave the default /usr/local/sbin/fastchat-lab-firewall" in problems[0]


@pytest.mark.parametrize("unit", ["ssh", "fastchat-lab-firewall", "../ssh.service",
                                  "a b.service", "fw.service\n", "fw@.service", "fw@x.service",
                                  "fw.timer", ".service", "-x.service", "fw.service;x",
                                  "x" * 250 + ".service", None, "", "lab-firewall.service",
                                  "docker.service", "fastchat-lab-.service"])
def test_a_unit_that_is_no_service_name_is_refused(unit):
    problems = settings_problems("gpu01", [], SCRIPT, unit)
    assert len(problems) == 1 and problems[0].startswith("gpu01: lab_firewall_unit: "), problems
    assert problems[0].endswith("Fix: leave the default fastchat-lab-firewall.service, or name "
                                "a unit fastchat-lab-<word>.service.")


# ---------------------------------------------------------------------------
# The host: a unit or a file of that name that is not the role's
# ---------------------------------------------------------------------------

def probe(files=None, paths=None, enabled="not-found"):
    out = {"files": {}, "paths": {}, "services": {UNIT: {"active": "inactive", "enabled": enabled}}}
    out["files"].update(files or {})
    out["paths"].update(paths or {})
    return out


def there(kind="file"):
    return {"exists": True, "type": kind, "mode": "0755", "size": 10}


def test_a_fresh_host_and_the_roles_own_files_pass():
    assert host_problems("gpu01", SCRIPT, UNIT, probe()) == []
    ours = probe(files={"/etc/systemd/system/" + UNIT: "# Ansible managed " + MARKER + "\n",
                        SCRIPT: "#!/bin/sh\n# Ansible managed " + MARKER + "\n"},
                 paths={"/etc/systemd/system/" + UNIT: there(), SCRIPT: there()},
                 enabled="enabled")
    assert host_problems("gpu01", SCRIPT, UNIT, ours) == []


def test_a_unit_the_host_has_already_is_refused_before_anything_is_written_or_stopped():
    ssh = {"files": {}, "paths": {}, "services": {"ssh.service": {"active": "active",
                                                                  "enabled": "enabled"}}}
    assert host_problems("gpu01", SCRIPT, "ssh.service", ssh) == [
        "gpu01: lab_firewall_unit: ssh.service is a unit this host has already (systemctl "
        "is-enabled: enabled), not one this role wrote: the role would replace, start or stop "
        "it. Fix: name a unit of the role's own (the default fastchat-lab-firewall.service)."]
    for state in ("static", "masked", "disabled", "alias", "transient", "generated"):
        assert len(host_problems("gpu01", SCRIPT, UNIT, probe(enabled=state))) == 1, state


def test_a_unit_file_without_the_roles_marker_is_refused():
    path = "/etc/systemd/system/" + UNIT
    for text in ("[Unit]\nDescription=someone else's\n", None):
        found = probe(files={path: text}, paths={path: there()}, enabled="enabled")
        assert host_problems("gpu01", SCRIPT, UNIT, found) == [
            "gpu01: lab_firewall_unit: %s is a unit file this role did not write. Fix: name a "
            "unit of the role's own (the default fastchat-lab-firewall.service)." % path]


def test_a_file_at_the_script_path_that_is_not_the_roles_script_is_refused():
    for kind, text in (("file", "\x7fELF\x02\x01"), ("link", None), ("directory", None),
                       ("file", "#!/bin/sh\necho mine\n")):
        found = probe(files={SCRIPT: text}, paths={SCRIPT: there(kind)})
        problems = host_problems("gpu01", SCRIPT, UNIT, found)
        assert problems == ["gpu01: lab_firewall_script: %s is there already (a %s) and is not "
                            "this role's script. Fix: name a file of the role's own (the default "
                            "/usr/local/sbin/fastchat-lab-firewall)." % (SCRIPT, kind)], problems


def test_a_script_named_like_a_system_command_is_refused():
    script = "/usr/local/sbin/iptables"
    found = probe(paths={"/usr/sbin/iptables": there("link"), "/sbin/iptables": there("link")})
    assert host_problems("gpu01", script, UNIT, found) == [
        "gpu01: lab_firewall_script: /usr/local/sbin/iptables would shadow the system command "
        "/usr/sbin/iptables for every program whose PATH lists /usr/local/sbin first (dockerd "
        "calls iptables by its name). Fix: give the script a name of its own (the default "
        "/usr/local/sbin/fastchat-lab-firewall)."]


def test_the_probe_looks_at_every_path_the_host_checks_read_and_runs_only_the_roles_script(tmp_path):
    request = probe_request(SCRIPT, UNIT)
    assert request["read"] == ["/etc/docker/daemon.json", "/etc/systemd/system/" + UNIT, SCRIPT]
    assert request["paths"] == ["/etc/systemd/system/" + UNIT, SCRIPT,
                                "/usr/sbin/fastchat-lab-firewall", "/usr/bin/fastchat-lab-firewall",
                                "/sbin/fastchat-lab-firewall", "/bin/fastchat-lab-firewall"]
    # The check command runs a script only where it carries the role's marker.
    assert request["check"] == ["/bin/sh", "-c", CHECK_SH, SCRIPT]
    foreign = tmp_path / "foreign"
    foreign.write_text("#!/bin/sh\ntouch %s/ran\n" % tmp_path)
    foreign.chmod(0o755)
    done = subprocess.run(["/bin/sh", "-c", CHECK_SH, str(foreign)], capture_output=True,
                          text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (3, "not the lab_firewall script: %s" % foreign)
    assert not (tmp_path / "ran").exists()
    ours = tmp_path / "ours"
    ours.write_text("#!/bin/sh\n# %s\necho \"asked: $1\"\nexit 1\n" % MARKER)
    ours.chmod(0o755)
    done = subprocess.run(["/bin/sh", "-c", CHECK_SH, str(ours)], capture_output=True,
                          text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (1, "asked: check")
    missing = subprocess.run(["/bin/sh", "-c", CHECK_SH, str(tmp_path / "none")],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 3


# ---------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------

def head_plan(internal=(21001, 21002), tls=True):
    services = [{"name": "controller", "port": 21001, "backend_port": None},
                {"name": "openai-api", "port": 8000, "backend_port": 18000 if tls else None},
                {"name": "web-ui", "port": 7860, "backend_port": 17860 if tls else None},
                {"name": "tiny-chat-cpu", "port": 21002, "backend_port": None}]
    return {"internal_ports": list(internal), "services": services}


def test_the_rules_of_a_head_written_out():
    rules = firewall_rules("head", head_plan(), ["192.0.2.10", "gpu1.lab"],
                           {"gpu1.lab": "192.0.2.11"}, ["198.51.100.0/24"], None)
    assert rules["filter"] == [
        # The container ports behind the TLS proxy: nothing forwarded from outside the bridge.
        "-o fastchat-lab ! -i fastchat-lab -p tcp -m tcp --dport 7860 " + RESET,
        "-o fastchat-lab ! -i fastchat-lab -p tcp -m tcp --dport 8000 " + RESET,
        "-s 192.0.2.10/32 %s -j RETURN" % TAIL,
        "-s 192.0.2.11/32 %s -j RETURN" % TAIL,
        "-s 198.51.100.0/24 %s -j RETURN" % TAIL,
        "-i docker0 %s -j RETURN" % TAIL,
        "-i fastchat-lab %s -j RETURN" % TAIL,
        # By destination port, towards the containers (a neighbour routing to them) ...
        "-o fastchat-lab -p tcp -m tcp --dport 21001 " + RESET,
        "-o fastchat-lab -p tcp -m tcp --dport 21002 " + RESET,
        # ... and by the original port of what Docker DNATed, whatever the state.
        "-p tcp -m conntrack --ctstate DNAT --ctorigdstport 21001 " + RESET,
        "-p tcp -m conntrack --ctstate DNAT --ctorigdstport 21002 " + RESET]
    assert rules["raw"] == ["! -i lo -d 127.0.0.0/8 %s -j DROP" % TAIL]
    assert (rules["ports"], rules["loopback_ports"]) == ([21001, 21002], [7860, 8000])
    assert rules["bridges"] == ["docker0", "fastchat-lab"]
    assert (rules["chain"], rules["comment"]) == ("FASTCHAT-LAB", "fastchat-lab")
    assert not any("+" in rule or "ESTABLISHED" in rule or "NEW" in rule
                   for rule in rules["filter"])


def test_without_tls_no_port_is_loopback_only_and_a_gpu_host_has_its_workers_only():
    rules = firewall_rules("gpu1", {"internal_ports": [21003, 21002, 21002], "services": [
        {"name": "w1", "port": 21002}, {"name": "w2", "port": 21003}]}, ["192.0.2.10"])
    assert rules["loopback_ports"] == [] and rules["ports"] == [21002, 21003]
    assert rules["filter"][0] == "-s 192.0.2.10/32 %s -j RETURN" % TAIL
    rules = firewall_rules("head", head_plan(tls=False), ["192.0.2.10"])
    assert rules["loopback_ports"] == []


def test_the_reference_lab_from_the_planner():
    plan = plan_of(*reference_lab())
    host = plan["hosts"]["gpu01"]
    rules = firewall_rules("gpu01", host, plan["summary"]["addresses"])
    assert rules["ports"] == host["internal_ports"] == [21001, 21002, 21003]
    assert rules["loopback_ports"] == [7860, 8000]
    assert rules["sources"] == ["192.0.2.10/32"]


@pytest.mark.parametrize("daemon_json, bridges", [
    (None, ["docker0", BRIDGE]), ("", ["docker0", BRIDGE]), ("{}", ["docker0", BRIDGE]),
    ('{"bridge": ""}', ["docker0", BRIDGE]), ('{"bridge": "none"}', [BRIDGE]),
    ('{"bridge": "br-docker", "log-driver": "json-file"}', ["br-docker", BRIDGE]),
    ('{"bridge": "fastchat-lab"}', [BRIDGE])])
def test_the_default_bridge_is_what_daemon_json_says(daemon_json, bridges):
    assert firewall_rules("h", head_plan(), [], daemon_json=daemon_json)["bridges"] == bridges


@pytest.mark.parametrize("daemon_json, says", [
    ("{", "is not a JSON object"), ("[]", "is not a JSON object"), ("null", "is not a JSON object"),
    ('{"bridge": "br0; reboot"}', "sets \"bridge\" to 'br0; reboot', not an interface name"),
    ('{"bridge": "br0`id`"}', "not an interface name"),
    ('{"bridge": "a-bridge-name-of-16"}', "not an interface name"),
    ('{"bridge": "br+"}', "not an interface name"), ('{"bridge": ".."}', "not an interface name"),
    ('{"bridge": 5}', "not an interface name"), ('{"bridge": "br0\\n"}', "not an interface name")])
def test_a_daemon_json_naming_no_interface_is_refused_with_the_fix(daemon_json, says):
    with pytest.raises(ValueError) as err:
        docker_bridges("gpu01", daemon_json)
    assert str(err.value).startswith("gpu01: lab_firewall: /etc/docker/daemon.json ")
    assert says in str(err.value)
    assert str(err.value).endswith("Fix: correct /etc/docker/daemon.json (the docker role writes "
                                   "it: docker_daemon_options).")


@pytest.mark.parametrize("source", HOSTILE_SOURCES)
def test_a_hostile_source_never_becomes_a_rule(source):
    with pytest.raises(ValueError) as err:
        firewall_rules("gpu01", head_plan(), ["192.0.2.10"], allowed_sources=[source])
    assert str(err.value).startswith("gpu01: lab_firewall_allowed_sources[0]: ")


@pytest.mark.parametrize("answer", ["127.0.0.1 ; reboot", "gpu1.lab", "", "::1", "10.0.0.1\n"])
def test_a_lab_host_that_resolves_to_no_ipv4_address_is_refused(answer):
    with pytest.raises(ValueError) as err:
        firewall_rules("head", head_plan(), ["gpu1.lab"], {"gpu1.lab": answer})
    assert str(err.value).startswith("head: lab_firewall: the lab host address gpu1.lab (as "
                                     "this host resolves it) is no IPv4 address to allow: ")
    assert str(err.value).endswith("Fix: set that host's fastchat_address to its IPv4 address.")


@pytest.mark.parametrize("plan", [
    {"internal_ports": [0], "services": []}, {"internal_ports": [65536], "services": []},
    {"internal_ports": [True], "services": []}, {"internal_ports": ["21001"], "services": []},
    {"internal_ports": "21001", "services": []}, {"services": []}, None,
    {"internal_ports": [], "services": [{"port": "8000; x", "backend_port": 18000}]}])
def test_a_plan_without_its_ports_is_refused(plan):
    with pytest.raises(ValueError) as err:
        firewall_rules("head", plan, [])
    assert str(err.value).startswith("head: lab_firewall: ")
    assert "Fix: re-run the plan (playbooks/plan.yml)." in str(err.value)


# ---------------------------------------------------------------------------
# The script, rendered as the role renders it
# ---------------------------------------------------------------------------

RENDER = """
- name: Render the firewall script as the role does.
  hosts: all
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
  tasks:
    - name: Render the script.
      ansible.builtin.template:
        src: {role}/templates/fastchat-lab-firewall.sh.j2
        dest: "{{{{ out }}}}"
        mode: "0755"
"""


def render(tmp_path, host_plan, addresses=("192.0.2.10",), allowed=(), daemon_json=None,
           host_ips=None):
    """The role's script for host gpu01: its template and vars/main.yml through Ansible's
    templating (the filters of this collection), a fake probe's daemon.json. Returns
    (returncode, output, path)."""
    out = tmp_path / ("fw-%s.sh" % uuid.uuid4().hex[:8])
    play = tmp_path / "render.yml"
    play.write_text(RENDER.format(role=ROLE))
    extra = {"lab_plan_current": {"hosts": {"gpu01": host_plan},
                                  "summary": {"addresses": list(addresses),
                                              "named_addresses": []}},
             "_lab_firewall_probe": {"files": {"/etc/docker/daemon.json": daemon_json}},
             "lab_firewall_allowed_sources": list(allowed), "out": str(out)}
    if host_ips is not None:
        extra["lab_plan_host_ips"] = host_ips
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR="1",
               PATH="%s:%s" % (os.path.dirname(sys.executable), os.environ.get("PATH", "")))
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           "-i", "gpu01,", "-c", "local", "-e", "@%s" % (tmp_path / "extra.json"),
                           str(play)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    return done.returncode, " ".join((done.stdout + done.stderr).split()), out


def script_rules(text, table):
    body = text.split("%s_rules() {\n  cat <<'EOF'\n" % table, 1)[1].split("\nEOF\n", 1)[0]
    return body.split("\n")


def test_the_rendered_script_holds_exactly_the_rules_and_parses(tmp_path):
    plan = head_plan()
    rc, out, path = render(tmp_path, plan, ["192.0.2.10", "gpu1.lab"], ["198.51.100.0/24"],
                           '{"bridge": "br-docker"}', {"gpu1.lab": "192.0.2.11"})
    assert rc == 0, out
    text = path.read_text()
    wanted = firewall_rules("gpu01", plan, ["192.0.2.10", "gpu1.lab"], {"gpu1.lab": "192.0.2.11"},
                            ["198.51.100.0/24"], '{"bridge": "br-docker"}')
    assert script_rules(text, "filter") == wanted["filter"]
    assert script_rules(text, "raw") == wanted["raw"]
    assert "-i br-docker %s -j RETURN" % TAIL in wanted["filter"]
    assert MARKER in text.splitlines()[1]  # the host checks and the probe look for it
    assert "{{" not in text and "{%" not in text
    assert subprocess.run(["sh", "-n", str(path)], check=False).returncode == 0
    # Nothing of the caller's environment chooses the commands it runs as root.
    assert "\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PATH\n" in text
    assert "\nset -f\n" in text


@pytest.mark.parametrize("allowed, daemon_json, host_ips, says", [
    (["10.0.0.1; reboot"], None, None,
     "gpu01: lab_firewall_allowed_sources[0]: '10.0.0.1; reboot' is not an IPv4 address"),
    (["10.0.0.1\n-j ACCEPT"], None, None, "gpu01: lab_firewall_allowed_sources[0]: "),
    (["192.0.2.7", "$(reboot)"], None, None, "gpu01: lab_firewall_allowed_sources[1]: "),
    ([], '{"bridge": "br0\\"; reboot; \\""}', None, "gpu01: lab_firewall: /etc/docker/daemon.json "
                                                    "sets \"bridge\" to"),
    ([], None, {"lab.example": "10.0.0.1 -j ACCEPT"},
     "gpu01: lab_firewall: the lab host address lab.example (as this host resolves it) is no "
     "IPv4 address")])
def test_hostile_inputs_stop_the_render_and_write_no_script(tmp_path, allowed, daemon_json,
                                                            host_ips, says):
    addresses = ["192.0.2.10"] + (list(host_ips) if host_ips else [])
    rc, out, path = render(tmp_path, head_plan(), addresses, allowed, daemon_json, host_ips)
    assert rc != 0, out
    assert says in out, out
    assert "Fix: " in out
    assert not path.exists()


def test_site_yml_stops_at_the_preflight_for_bad_firewall_settings(tmp_path):
    root = project_copy(tmp_path)
    inventory = tmp_path / "lab.yml"
    inventory.write_text(NO_KEY_INVENTORY)
    bad = json.dumps({"lab_firewall_allowed_sources": ["192.0.2.0/24", "10.0.0.1; reboot"],
                      "lab_firewall_script": "/usr/sbin/iptables",
                      "lab_firewall_unit": "../ssh.service"})
    result = run(root, "site.yml", inventory, tmp_path, cmdline="%s -e '%s'" % (OPEN_LAB, bad))
    out = " ".join(output(result).split())
    assert result.status == "failed", out
    # The settings gate (plan.yml) names all three at once.
    assert ("gpu01: lab_firewall_allowed_sources: entry 2: '10.0.0.1; reboot' is not an IPv4 "
            "address or network") in out
    assert "gpu01: lab_firewall_script: '/usr/sbin/iptables' is not a file of the lab's own" in out
    assert "gpu01: lab_firewall_unit: '../ssh.service' is not a unit of the lab's own" in out
    plays = plays_started(result)
    assert plays[-1] == "Check every lab-wide setting of every lab host."
    assert "Install Docker Engine with Compose v2 on every lab host." not in plays
    assert changed_tasks(result) == []


# ---------------------------------------------------------------------------
# The script against the kernel's iptables, in network namespaces of its own (root)
# ---------------------------------------------------------------------------

def _netns_ready():
    if os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists("/usr/sbin/iptables"):
        return False
    name = "fcl-fw-probe-%d" % os.getpid()
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, check=False)
    if made.returncode != 0:
        return False
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return True


needs_netns = pytest.mark.skipif(not _netns_ready(), reason="needs root, ip netns and iptables")
BACKENDS = [b for b in ("nft", "legacy") if os.path.exists("/usr/sbin/iptables-%s" % b)]


class Netns:
    """Network namespaces named for this test, removed afterwards. ``run`` executes in one
    with the chosen iptables backend (a private /etc/alternatives in a mount namespace of
    its own: the script's own PATH finds /usr/sbin/iptables, which points there)."""

    def __init__(self, backend):
        self.backend = backend
        self.tag = uuid.uuid4().hex[:6]
        self.made = []

    def add(self, name):
        full = "fcl%s%s" % (self.tag, name)
        subprocess.run(["ip", "netns", "add", full], check=True)
        self.made.append(full)
        self.ip(name, "link", "set", "lo", "up")
        return full

    def full(self, name):
        return "fcl%s%s" % (self.tag, name)

    def ip(self, name, *args):
        return subprocess.run(["ip", "-n", self.full(name), *args], check=True,
                              capture_output=True, text=True).stdout

    def run(self, name, *argv, check=False, timeout=60):
        links = " && ".join("ln -s /usr/sbin/%s-%s%s /etc/alternatives/%s" % (
            "iptables", self.backend, suffix, "iptables" + suffix)
            for suffix in ("", "-restore", "-save"))
        wrapper = ("mount --make-rprivate / && mount -t tmpfs none /etc/alternatives && %s "
                   "&& exec \"$@\"" % links)
        return subprocess.run(["ip", "netns", "exec", self.full(name), "unshare", "-m", "sh",
                               "-c", wrapper, "sh", *argv], capture_output=True, text=True,
                              check=check, timeout=timeout)

    def close(self):
        for name in self.made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture(params=BACKENDS)
def netns(request):
    spaces = Netns(request.param)
    try:
        yield spaces
    finally:
        spaces.close()


def everything(ns, name):
    """Every table's rules, without iptables-save's dated comments and chain counters."""
    lines = ns.run(name, "iptables-save", check=True).stdout.splitlines()
    return "\n".join(line.split(" [")[0] for line in lines if not line.startswith("#"))


@needs_netns
def test_apply_check_and_remove_are_exact_on_the_kernel(tmp_path, netns):
    rc, out, script = render(tmp_path, head_plan(), ["192.0.2.10"], ["198.51.100.0/24"])
    assert rc == 0, out
    netns.add("h")
    sh = lambda *args: netns.run("h", "sh", str(script), *args)  # noqa: E731
    assert ("(%s)" % {"nft": "nf_tables", "legacy": "legacy"}[netns.backend]
            in netns.run("h", "iptables", "-V").stdout)
    first = sh("check")
    assert (first.returncode, first.stdout.strip()) == (
        1, "filter: DOCKER-USER sends traffic to FASTCHAT-LAB 0 times, once wanted")
    assert sh("apply").returncode == 0
    assert sh("check").returncode == 0
    applied = everything(netns, "h")
    # Applied again: the same rules, not twice (the chain is replaced in one restore).
    assert sh("apply").returncode == 0
    assert everything(netns, "h") == applied
    drifts = {
        "an old rule left in the chain": (["iptables", "-A", "FASTCHAT-LAB", "-i", "br+", "-j",
                                           "RETURN"], "filter: FASTCHAT-LAB has 11 rules, 10 wanted"),
        "the chain flushed": (["iptables", "-F", "FASTCHAT-LAB"],
                              "filter: FASTCHAT-LAB has 0 rules, 10 wanted"),
        "a rule changed": (["iptables", "-R", "FASTCHAT-LAB", "3", "-s", "192.0.2.99/32", "-j",
                            "RETURN"], "filter: missing: -s 192.0.2.10/32 %s -j RETURN" % TAIL),
        "an accept put before the jump": (
            ["iptables", "-I", "DOCKER-USER", "1", "-j", "ACCEPT"],
            "filter: the jump to FASTCHAT-LAB is not the first rule of DOCKER-USER"),
        "a second jump": (["iptables", "-A", "DOCKER-USER", "-m", "comment", "--comment",
                           "fastchat-lab", "-j", "FASTCHAT-LAB"],
                          "filter: DOCKER-USER sends traffic to FASTCHAT-LAB 2 times, once wanted"),
        "the raw chain flushed": (["iptables", "-t", "raw", "-F", "FASTCHAT-LAB"],
                                  "raw: FASTCHAT-LAB has 0 rules, 1 wanted"),
        "the raw jump gone": (["iptables", "-t", "raw", "-D", "PREROUTING", "-m", "comment",
                               "--comment", "fastchat-lab", "-j", "FASTCHAT-LAB"],
                              "raw: PREROUTING sends traffic to FASTCHAT-LAB 0 times, once wanted"),
    }
    for what, (argv, says) in drifts.items():
        assert netns.run("h", *argv).returncode == 0, what
        found = sh("check")
        assert (found.returncode, found.stdout.strip()) == (1, says), what
        assert sh("apply").returncode == 0, what
        assert sh("check").returncode == 0, what
    assert "-A DOCKER-USER -j ACCEPT" in everything(netns, "h")  # someone else's rule stays
    assert sh("remove").returncode == 0
    left = everything(netns, "h")
    assert "FASTCHAT-LAB" not in left and "fastchat-lab" not in left, left
    assert sh("check").returncode == 1
    assert sh("remove").returncode == 0  # nothing there: nothing to do


SERVE = ("import socket, sys\n"
         "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(16)\n"
         "while True:\n"
         "    c, _ = s.accept(); c.sendall(b'hello'); c.close()\n")
CONNECT = ("import socket, sys\n"
           "try:\n"
           "    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
           "    print('open' if c.recv(5) == b'hello' else 'closed')\n"
           "except ConnectionRefusedError:\n"
           "    print('refused')\n"
           "except OSError:\n"
           "    print('timeout')\n")


@needs_netns
def test_what_gets_through_on_the_kernel(tmp_path, netns):
    """A host (h) with Docker's rules as Engine < 28 writes them for a controller published
    on 0.0.0.0:21001 and an API server on 127.0.0.1:18000 (container port 8000), its
    containers behind the bridge fastchat-lab (a namespace c), its uplink a bridge br0 (as
    on a KVM host); a lab host (ok, allowed) and a neighbour (nb) on that uplink."""
    rc, out, script = render(tmp_path, head_plan(internal=(21001,)), ["10.99.0.3"])
    assert rc == 0, out
    for name in ("h", "c", "ok", "nb"):
        netns.add(name)
    h = netns.full("h")
    netns.ip("h", "link", "add", "br0", "type", "bridge")
    netns.ip("h", "addr", "add", "10.99.0.1/24", "dev", "br0")
    netns.ip("h", "link", "set", "br0", "up")
    netns.ip("h", "link", "add", "fastchat-lab", "type", "bridge")
    netns.ip("h", "addr", "add", "172.30.0.1/24", "dev", "fastchat-lab")
    netns.ip("h", "link", "set", "fastchat-lab", "up")
    for name, addr, bridge, gw in (("c", "172.30.0.2/24", "fastchat-lab", "172.30.0.1"),
                                   ("ok", "10.99.0.3/24", "br0", None),
                                   ("nb", "10.99.0.2/24", "br0", None)):
        subprocess.run(["ip", "-n", h, "link", "add", "v" + name, "type", "veth", "peer", "name",
                        "eth0", "netns", netns.full(name)], check=True)
        netns.ip("h", "link", "set", "v" + name, "master", bridge, "up")
        netns.ip(name, "addr", "add", addr, "dev", "eth0")
        netns.ip(name, "link", "set", "eth0", "up")
        if gw:
            netns.ip(name, "route", "add", "default", "via", gw)
    docker_rules = [
        "sysctl -qw net.ipv4.ip_forward=1",
        "iptables -N DOCKER-USER", "iptables -A DOCKER-USER -j RETURN",
        "iptables -A FORWARD -j DOCKER-USER",
        # Docker < 28 accepts whatever reaches a published container port (moby#45610).
        "iptables -A FORWARD -o fastchat-lab -d 172.30.0.2 -p tcp -m multiport --dports 21001,8000 -j ACCEPT",
        "iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL ! -i fastchat-lab -p tcp "
        "--dport 21001 -j DNAT --to-destination 172.30.0.2:21001",
        # ... and DNATs 127.0.0.1 from any interface (moby#41872).
        "iptables -t nat -A PREROUTING -d 127.0.0.1 ! -i fastchat-lab -p tcp --dport 18000 "
        "-j DNAT --to-destination 172.30.0.2:8000",
        "iptables -t nat -A POSTROUTING -s 172.30.0.0/24 ! -o fastchat-lab -j MASQUERADE"]
    for rule in docker_rules:
        assert netns.run("h", *rule.split()).returncode == 0, rule
    (tmp_path / "serve.py").write_text(SERVE)
    (tmp_path / "connect.py").write_text(CONNECT)
    servers = [subprocess.Popen(["ip", "netns", "exec", netns.full("c"), sys.executable,
                                 str(tmp_path / "serve.py"), port]) for port in ("21001", "8000")]
    # The neighbour sends 127.0.0.1 out of its uplink, to the host's MAC address.
    for argv in (["ip", "rule", "add", "pref", "100", "lookup", "local"],
                 ["ip", "rule", "del", "pref", "0"],
                 ["ip", "rule", "add", "pref", "10", "to", "127.0.0.1/32", "lookup", "100"],
                 ["ip", "route", "add", "127.0.0.1/32", "via", "10.99.0.1", "dev", "eth0", "src",
                  "10.99.0.2", "table", "100"],
                 ["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"]):
        assert netns.run("nb", *argv).returncode == 0, argv
    for name in ("ok", "nb"):
        netns.ip(name, "route", "add", "172.30.0.0/24", "via", "10.99.0.1")

    def connect(name, address, port):
        return netns.run(name, sys.executable, str(tmp_path / "connect.py"), address,
                         str(port)).stdout.strip()

    try:
        for _ in range(50):  # the servers are up
            if connect("ok", "172.30.0.2", 21001) == "open" and connect("ok", "172.30.0.2", 8000) == "open":
                break
        assert connect("ok", "172.30.0.2", 21001) == "open"
        # Without the rules (Docker < 28): the neighbour reaches both containers directly,
        # the published controller through br0, and the API server through 127.0.0.1.
        before = {"direct controller": connect("nb", "172.30.0.2", 21001),
                  "direct api": connect("nb", "172.30.0.2", 8000),
                  "published controller": connect("nb", "10.99.0.1", 21001),
                  "api on 127.0.0.1": connect("nb", "127.0.0.1", 18000)}
        assert before == dict.fromkeys(before, "open"), before
        assert netns.run("h", "sh", str(script), "apply").returncode == 0
        after = {"direct controller": connect("nb", "172.30.0.2", 21001),
                 "direct api": connect("nb", "172.30.0.2", 8000),
                 "api on 127.0.0.1": connect("nb", "127.0.0.1", 18000)}
        assert after == {"direct controller": "refused", "direct api": "refused",
                         "api on 127.0.0.1": "timeout"}, after
        # The DNATed controller is reset too; behind a bridged uplink the kernel sends the
        # reset without undoing the DNAT, so the neighbour sees no answer at all.
        assert connect("nb", "10.99.0.1", 21001) in ("refused", "timeout")
        counts = netns.run("h", "iptables", "-t", "raw", "-L", "FASTCHAT-LAB", "-v", "-x",
                           "-n").stdout.splitlines()
        assert int(counts[2].split()[0]) >= 1, counts  # the 127.0.0.1 packets, dropped
        # The lab host still reaches the controller both ways, but not the API's backend.
        assert connect("ok", "10.99.0.1", 21001) == "open"
        assert connect("ok", "172.30.0.2", 21001) == "open"
        assert connect("ok", "172.30.0.2", 8000) == "refused"
        # The host itself (the TLS proxy's path to 127.0.0.1) is untouched.
        assert connect("h", "172.30.0.2", 8000) == "open"
    finally:
        for server in servers:
            server.kill()
            server.wait()
