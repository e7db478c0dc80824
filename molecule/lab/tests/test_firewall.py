"""The lab's firewall (role lab_firewall) against a neighbour on the lab's network.

A container of our own (fcl-lab-neighbour: the test-host image, NET_ADMIN, labelled
fastchat-lab.test=true, removed afterwards and gone by itself after 15 minutes) joins the
test hosts' network like any machine on a lab's LAN, not a lab host, and tries the ways
around the published ports that Docker before Engine 28 leaves open:

- a route to the head's compose network through the head: the controller's and the API
  server's container addresses directly (moby#45610);
- 127.0.0.1 through the head's MAC address (a route via the head, route_localnet on the
  neighbour to take the answers): the API server's loopback-only port (moby#41872).

Each is refused (or dropped) with the rules, and the matching rule's counter shows it was
the firewall; the same tries with the rules removed for a moment get through (where the
head's Docker is older than 28), so the test cannot pass by a broken setup. gpu1, a lab
host, still reaches the controller. The rules name the bridges exactly (no br+).
"""

import json
import subprocess
import time

import pytest

NEIGHBOUR = "fcl-lab-neighbour"
NETWORK = "fastchat-lab-test"
HEAD = "fcl-lab-head"
SCRIPT = "/usr/local/sbin/fastchat-lab-firewall"
BRIDGE = "fastchat-lab"
PROJECT_NETWORK = "fastchat-lab_default"
# open | refused | timeout, for a TCP connection from where it runs.
CONNECT = ("import socket, sys\n"
           "try:\n"
           "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()\n"
           "    print('open')\n"
           "except ConnectionRefusedError:\n"
           "    print('refused')\n"
           "except OSError:\n"
           "    print('timeout')\n")


def docker(*args, check=True, timeout=120):
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True,
                          timeout=timeout).stdout


def on(host, *cmd, check=True):
    return docker("exec", host, *cmd, check=check)


def address(container):
    return docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                  container).strip()


def connect(where, ip, port):
    return on(where, "python3", "-c", CONNECT, ip, str(port)).strip()


def head_containers():
    """{service: (container address, {container port: (host address, host port)})} of the
    head's lab containers, as Docker publishes them."""
    ids = on(HEAD, "docker", "ps", "-q", "--filter", "label=fastchat-lab.service").split()
    out = {}
    for c in json.loads(on(HEAD, "docker", "inspect", *ids)):
        ip = c["NetworkSettings"]["Networks"][PROJECT_NETWORK]["IPAddress"]
        published = {int(key.split("/")[0]): (b["HostIp"], int(b["HostPort"]))
                     for key, binds in (c["NetworkSettings"]["Ports"] or {}).items()
                     for b in binds or []}
        out[c["Config"]["Labels"]["fastchat-lab.service"]] = (ip, published)
    return out


def counter(table, *needles):
    """Packets counted by the head's FASTCHAT-LAB rule of ``table`` whose listing holds
    every needle (iptables -L -v -x: pkts first)."""
    listing = on(HEAD, "iptables", "-t", table, "-L", "FASTCHAT-LAB", "-v", "-x", "-n")
    lines = [line for line in listing.splitlines()[2:] if all(n in line.split() for n in needles)]
    assert len(lines) == 1, (needles, listing)
    return int(lines[0].split()[0])


@pytest.fixture(scope="module")
def neighbour():
    """The neighbour, routing the head's compose network and 127.0.0.1 through the head."""
    image = docker("inspect", "-f", "{{.Config.Image}}", HEAD).strip()
    docker("rm", "-f", NEIGHBOUR, check=False)
    docker("run", "-d", "--rm", "--name", NEIGHBOUR, "--network", NETWORK, "--cap-add", "NET_ADMIN",
           "--sysctl", "net.ipv4.conf.all.route_localnet=1", "--label", "fastchat-lab.test=true",
           "--entrypoint", "sleep", image, "900")
    try:
        head, mine = address(HEAD), address(NEIGHBOUR)
        subnet = on(HEAD, "docker", "network", "inspect", "-f",
                    "{{(index .IPAM.Config 0).Subnet}}", PROJECT_NETWORK).strip()
        for cmd in (["ip", "route", "add", subnet, "via", head],
                    # 127.0.0.1 leaves through eth0 to the head's MAC address: a rule before
                    # the local table's, which would keep it on lo.
                    ["ip", "rule", "add", "pref", "100", "lookup", "local"],
                    ["ip", "rule", "del", "pref", "0"],
                    ["ip", "rule", "add", "pref", "10", "to", "127.0.0.1/32", "lookup", "100"],
                    ["ip", "route", "add", "127.0.0.1/32", "via", head, "dev", "eth0", "src", mine,
                     "table", "100"]):
            on(NEIGHBOUR, *cmd)
        yield NEIGHBOUR
    finally:
        docker("rm", "-f", NEIGHBOUR, check=False)


def test_the_rules_name_the_bridges_exactly():
    for host in (HEAD, "fcl-lab-gpu1"):
        bridge = on(host, "docker", "network", "inspect", "-f",
                    '{{index .Options "com.docker.network.bridge.name"}}', PROJECT_NETWORK).strip()
        assert bridge == BRIDGE, (host, bridge)
        assert on(host, "ip", "-o", "link", "show", BRIDGE).split(":")[1].strip() == BRIDGE
        rules = on(host, "iptables", "-S", "FASTCHAT-LAB")
        assert "-i %s " % BRIDGE in rules and "-i docker0 " in rules, rules
        assert "+" not in rules, rules  # no br+: an uplink bridge (br0) is not a container's
        raw = on(host, "iptables", "-t", "raw", "-S", "FASTCHAT-LAB")
        assert "-d 127.0.0.0/8 ! -i lo" in raw, raw
        assert "-j FASTCHAT-LAB" in on(host, "iptables", "-t", "raw", "-S", "PREROUTING")
        assert subprocess.run(["docker", "exec", host, SCRIPT, "check"],
                              capture_output=True).returncode == 0, host


def test_a_neighbour_routing_to_the_heads_containers_or_its_loopback_gets_nothing(neighbour):
    containers = head_containers()
    controller, (api, published) = containers["controller"][0], containers["openai-api"]
    # The API server's own port, published on the head's loopback only (the TLS proxy's).
    [(api_port, (bind, backend))] = published.items()
    assert bind == "127.0.0.1", published
    head = address(HEAD)
    before = (counter("filter", "REJECT", BRIDGE, "dpt:21001"),
              counter("filter", "REJECT", "!" + BRIDGE, "dpt:%d" % api_port),
              counter("raw", "DROP"))
    tries = {
        "the published controller": connect(neighbour, head, 21001),
        "the controller's container address": connect(neighbour, controller, 21001),
        "the API server's container address": connect(neighbour, api, api_port),
        "127.0.0.1 through the head's MAC": connect(neighbour, "127.0.0.1", backend),
    }
    assert tries == {"the published controller": "refused",
                     "the controller's container address": "refused",
                     "the API server's container address": "refused",
                     "127.0.0.1 through the head's MAC": "timeout"}, tries
    after = (counter("filter", "REJECT", BRIDGE, "dpt:21001"),
             counter("filter", "REJECT", "!" + BRIDGE, "dpt:%d" % api_port),
             counter("raw", "DROP"))
    # The firewall's own rules stopped them (not a route that never reached the head).
    assert all(b > a for a, b in zip(before, after)), (before, after)

    # Without the rules, for a moment: Docker before Engine 28 lets the same tries through.
    engine = on(HEAD, "docker", "version", "--format", "{{.Server.Version}}").strip()
    if int(engine.split(".")[0]) >= 28:
        return
    try:
        on(HEAD, SCRIPT, "remove")
        open_without = {
            "the controller's container address": connect(neighbour, controller, 21001),
            "the API server's container address": connect(neighbour, api, api_port),
            "127.0.0.1 through the head's MAC": connect(neighbour, "127.0.0.1", backend),
        }
    finally:
        on(HEAD, SCRIPT, "apply")
    assert open_without == dict.fromkeys(open_without, "open"), (engine, open_without)
    assert subprocess.run(["docker", "exec", HEAD, SCRIPT, "check"],
                          capture_output=True).returncode == 0


def test_a_lab_host_still_reaches_the_controller():
    head = address(HEAD)
    deadline = time.monotonic() + 60
    while True:
        listed = on("fcl-lab-gpu1", "python3", "-c",
                    "import urllib.request as u; print(u.urlopen(u.Request("
                    "'http://%s:21001/list_models', data=b'', method='POST'), timeout=10)"
                    ".read().decode())" % head)
        models = json.loads(listed)["models"]
        # gpu1's workers are registered (again, within a heartbeat, after the moment above).
        if {"tiny-chat", "tiny-remote"} <= set(models) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert {"tiny-chat", "tiny-remote"} <= set(models), models
