"""Every lab-wide setting through the gate (issue 24): module_utils/lab_settings.py.

The table of shapes against the roles' argument specs (one description: every option has a
shape, no shape names a setting no role has), hostile and mistaken values of each class
the issue lists refused in the planner's form, the roles' own defaults accepted, secrets
never shown, and a property test over thousands of generated settings: each refused in
that form or accepted, never a crash, and nothing accepted that could reach a shell or a
unit as code.

FASTCHAT_LAB_PROPERTY_EXAMPLES sets the number of generated settings (default 8000).
"""

import datetime
import glob
import os
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.fastchat_lab.lab.plugins.module_utils import lab_settings
from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_settings import (
    SHAPES,
    setting_problems,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = int(os.environ.get("FASTCHAT_LAB_PROPERTY_EXAMPLES", "8000"))
MESSAGE = re.compile(r"^(?P<where>[^:\n]+): (?P<var>[a-z_][a-z0-9_]*): (?P<what>[^\n]+)\. "
                     r"Fix: (?P<fix>[^\n]+)\.\Z")


def specs():
    """{role: settings} of every role, as the gate reads them."""
    out = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml"))):
        with open(path, encoding="utf-8") as handle:
            spec = yaml.safe_load(handle)["argument_specs"]
        out[path.split(os.sep)[-3]] = lab_settings.setting_options(spec)
    return out


SPECS = specs()
ALL_OPTIONS = {name: option for options in SPECS.values() for name, option in options.items()}


def spec_of(name):
    return {name: ALL_OPTIONS[name]}


def check(name, value, host="gpu01"):
    return setting_problems({name: value}, spec_of(name), host)


def test_every_role_option_has_a_shape_and_every_shape_a_role():
    assert sorted(set(ALL_OPTIONS) - set(SHAPES)) == []
    assert sorted(set(SHAPES) - set(ALL_OPTIONS)) == []


def test_every_role_has_the_settings_entry_point_and_the_gate_runs_it():
    with open(os.path.join(ROOT, "playbooks", "settings.yml"), encoding="utf-8") as handle:
        gate = yaml.safe_load(handle)
    assert sorted(gate[0]["vars"]["_settings_roles"]) == sorted(SPECS)
    # One check for every host, run once (the action reads each host's own variables over
    # the roles' defaults): no task per host, no role imported into the gate's play.
    checks = [task for task in gate[0]["tasks"] if "fastchat_lab.lab.lab_settings_check" in task]
    assert len(checks) == 1 and checks[0]["run_once"] is True and checks[0]["no_log"] is True
    assert checks[0]["fastchat_lab.lab.lab_settings_check"]["hosts"] == "{{ ansible_play_hosts_all }}"
    assert all(task.get("run_once") is True for task in gate[0]["tasks"])
    assert not any("ansible.builtin.import_role" in task for task in gate[0]["tasks"])
    for role in SPECS:
        assert os.path.isfile(os.path.join(ROOT, "roles", role, "tasks", "settings.yml")), role
        # The defaults the gate reads: each role's defaults/main.yml (the action reads no other).
        assert os.path.isfile(os.path.join(ROOT, "roles", role, "defaults", "main.yml")), role
    with open(os.path.join(ROOT, "playbooks", "plan.yml"), encoding="utf-8") as handle:
        assert "import_playbook: settings.yml" in handle.read()


# (variable, value, a piece of the expected message): one per class the issue names.
HOSTILE = [
    # Paths the play owns, chmods or empties.
    ("fastchat_deploy_dir", "/etc", "shared directory"),
    ("fastchat_deploy_dir", "/etc/ssh", "system directory under /etc"),
    ("fastchat_deploy_dir", "etc/fastchat-lab", "not an absolute path"),
    ("fastchat_deploy_dir", "/srv/lab/../../etc", "not a normalised path"),
    ("fastchat_deploy_dir", "/usr/lib/fastchat", "system directory (under /usr)"),
    ("fastchat_image_work_dir", "/var/lib", "shared directory"),
    ("fastchat_image_work_dir", "/home/alice", "shared directory"),
    ("lab_backup_dir", "/var/log/journal", "system directory under /var/log"),
    ("docker_data_root", "/var/lib/containerd", "system directory"),
    ("docker_data_root", "/srv", "shared directory"),
    ("fastchat_image_wheelhouse", "wheels", "not an absolute path"),
    # Values pasted into scripts, sed programs and units.
    ("fastchat_image_apt_mirror", "http://mirror.example/debian#;e id", "characters"),
    ("fastchat_image_apt_mirror", "http://mirror.example/deb ian", "characters"),
    ("fastchat_image_apt_mirror", "http://mirror.example/ubuntu", "does not end in /debian"),
    ("fastchat_image_llamacpp_ubuntu_mirror", "http://mirror.example/debian", "does not end in /ubuntu"),
    ("lab_leaderboard_timer_schedule", "hourly\nExecStartPre=/bin/id", "control character"),
    ("lab_backup_schedule", "daily; rm -rf /", "not a systemd calendar expression"),
    ("lab_backup_schedule", "", "is empty"),
    ("lab_firewall_unit", "ssh.service", "not a unit of the lab's own"),
    ("lab_firewall_unit", "fastchat-lab-firewall.service\n", "control character"),
    ("fastchat_deploy_lab_name", "GPU lab\n<script>", "control character"),
    ("nvidia_container_toolkit_verify_expect", "GPU 0:\r", "control character"),
    # URLs and refs.
    ("fastchat_image_repo_url", "ext::sh -c id", "characters"),
    ("fastchat_image_repo_url", "ssh://git@example.org/x.git", "not a https://"),
    ("fastchat_image_repo_url", "https://user:token@example.org/FastChat.git", "credentials"),
    ("fastchat_image_repo_url", "https://example.org", "no path"),
    ("fastchat_image_llamacpp_repo_url", "https://example.org/$(id).git", "characters"),
    ("fastchat_image_fastchat_ref", "--upload-pack=id", "must not begin with '-'"),
    ("fastchat_image_fastchat_ref", "v0.2.36\n", "control character"),
    ("fastchat_image_fastchat_ref", "v0..2", "not a tag"),
    ("docker_repo_url", "gopher://example.org/docker", "not a https://"),
    ("docker_registry_mirrors", "https://mirror.example", "must be a list"),
    ("docker_registry_mirrors", ["https://u:p@mirror.example"], "credentials"),
    ("fastchat_image_http_proxy", "http://proxy.example:0", "port 0"),
    ("fastchat_image_no_proxy", "localhost, .lab", "comma-separated"),
    ("nvidia_driver_cuda_repo_url", "https://ex ample.org/cuda", "characters"),
    # Environment maps.
    ("model_weights_git_environment", {"GIT_CONFIG_KEY_0": "core.fsmonitor"}, "GIT_CONFIG"),
    ("model_weights_git_environment", {"LD_PRELOAD": "/tmp/x.so"}, "not an environment variable"),
    ("model_weights_git_environment", {"https_proxy": "ext::sh"}, "not a http:// or https://"),
    ("model_weights_git_environment", "https_proxy=http://p:3128", "must be a mapping"),
    # Docker settings.
    ("docker_daemon_options", {"hosts": ["tcp://0.0.0.0:2375"]}, "without TLS"),
    ("docker_daemon_options", {"hosts": "unix:///var/run/docker.sock"}, "must be a list"),
    ("docker_daemon_options", {"data-root": "/etc"}, "set by the role's own variables"),
    ("docker_daemon_options", {"registry-mirrors": "https://m.example"}, "must be a list"),
    ("docker_users", ["alice", "-oops"], "not a user name"),
    ("docker_users", "alice", "must be a list"),
    ("docker_log_max_size", "100m; rm", "not a size"),
    # Names and paths the roles own.
    ("lab_firewall_script", "/usr/local/bin", "not a file of the lab's own"),
    ("lab_firewall_script", "/usr/sbin/iptables", "not a file of the lab's own"),
    ("lab_transfer_helper", "/usr/bin/rsync", "not a file of the lab's own"),
    ("lab_transfer_helper", "/usr/local/libexec/fastchat-lab", "not a file of the lab's own"),
    ("fastchat_image_build_host", "head\nrm", "control character"),
    ("model_weights_cache_host", "-oProxyCommand=id", "not an inventory host name"),
    # Material.
    ("lab_proxy_tls_cert", "/etc/ssl/lab.pem", "is a path"),
    ("lab_proxy_tls_key", "not pem", "not PEM text"),
    # Image references and versions.
    ("fastchat_image_base_image", "debian:bookworm --privileged", "not a Docker image reference"),
    ("fastchat_image_name", "FastChat/Lab", "not a Docker repository name"),
    ("fastchat_image_name", "fastchat-lab/fastchat:latest", "not a Docker repository name"),
    ("docker_ce_version", "27.5.1 || true", "not a version"),
    ("nvidia_driver_branch", "525\n", "control character"),
    ("nvidia_driver_cuda_version", "11", "not a CUDA version"),
    ("nvidia_container_toolkit_verify_command", "nvidia-smi -L", "must be a list"),
    ("nvidia_driver_cuda_repo_extra_support", {"debian13": [12.4]}, "not a CUDA version"),
    ("lab_proxy_extra_names", ["lab.example.org", "bad name"], "neither a DNS name"),
    ("fastchat_leaderboard_out", "-rf", "not a path"),
    ("lab_proxy_ca_dir", "/etc", "system or shared directory"),
    ("lab_proxy_ca_dir", "inventory/ca", "not an absolute normalised path"),
    # Scale.
    ("lab_leaderboard_resamples", 10 ** 9, "not a whole number"),
    ("fastchat_image_build_timeout", -1, "not a whole number"),
    ("model_weights_transfer_port", 70000, "not a whole number"),
    # FastChat's pinned commit: 40 lower-case hex digits, nothing else.
    ("fastchat_image_fastchat_commit", "v0.2.36", "full commit id"),
    ("fastchat_image_fastchat_commit", "A" * 40, "full commit id"),
    ("fastchat_image_fastchat_commit", "a" * 39, "full commit id"),
    ("fastchat_image_fastchat_commit", "a" * 40 + "\n", "control character"),
    ("fastchat_image_fastchat_commit", "--upload-pack=id", "full commit id"),
    # A string Python reads as infinity or NaN (Ansible's int check raised OverflowError).
    ("lab_leaderboard_min_battles", "INF", "not a finite number"),
    ("lab_judge_resamples", " -Infinity", "not a finite number"),
    ("fastchat_image_build_timeout", "nan", "not a finite number"),
]


@pytest.mark.parametrize("name,value,expected", HOSTILE,
                         ids=["%s-%d" % (case[0], i) for i, case in enumerate(HOSTILE)])
def test_a_hostile_or_mistaken_setting_is_refused_in_the_planners_form(name, value, expected):
    problems = check(name, value)
    assert problems, (name, value)
    for line in problems:
        match = MESSAGE.match(line)
        assert match, line
        assert match.group("where") == "gpu01"
    assert any(match and expected in line for line in problems
               for match in [MESSAGE.match(line)]), problems
    assert any(": %s: " % name in line for line in problems), problems


GOOD = [
    ("fastchat_deploy_dir", "/etc/fastchat-lab"),
    ("fastchat_deploy_dir", "/srv/fastchat-lab/deploy"),
    ("lab_backup_dir", "/var/backups/fastchat-lab"),
    ("docker_data_root", ""),
    ("docker_data_root", "/var/lib/docker"),
    ("docker_data_root", "/data/docker"),
    ("fastchat_image_apt_mirror", "http://mirrors.tuna.tsinghua.edu.cn/debian"),
    ("fastchat_image_apt_mirror", ""),
    ("lab_leaderboard_timer_schedule", "*-*-* 03:00:00"),
    ("lab_backup_schedule", "Mon..Fri 02:30"),
    ("lab_firewall_unit", "fastchat-lab-firewall.service"),
    ("fastchat_image_repo_url", "file:///srv/mirror/FastChat.git"),
    ("fastchat_image_repo_url", "https://ghfast.top/https://github.com/lm-sys/FastChat.git"),
    ("fastchat_image_fastchat_ref", "v0.2.36"),
    # A model named like a number Python reads as NaN is a name, not a number.
    ("lab_judge_model", "nan"),
    ("fastchat_image_fastchat_ref", "0c1e57098bba43ac29e6e3b677cdceebdd22334f"),
    ("fastchat_image_fastchat_commit", ""),
    ("fastchat_image_fastchat_commit", "0c1e57098bba43ac29e6e3b677cdceebdd22334f"),
    ("model_weights_git_environment", {"https_proxy": "http://proxy.example.lab:3128",
                                       "GIT_HTTP_LOW_SPEED_TIME": 600}),
    ("docker_daemon_options", {"hosts": ["unix:///var/run/docker.sock"], "debug": True}),
    ("docker_daemon_options", {"hosts": ["tcp://0.0.0.0:2376"], "tlsverify": True}),
    ("fastchat_image_base_image", "registry.example:5000/debian:bookworm-slim@sha256:" + "a" * 64),
    ("nvidia_container_toolkit_verify_image", "nvidia/cuda:11.7.1-base-ubuntu20.04"),
    ("lab_transfer_helper", "/usr/local/libexec/fastchat-lab/fastchat_lab_transfer.py"),
    ("lab_firewall_script", "/usr/local/sbin/fastchat-lab-firewall"),
    ("fastchat_image_no_proxy", "localhost,127.0.0.1,.lab,10.0.0.0/8"),
    ("lab_proxy_extra_names", ["lab.example.org", "192.0.2.7", "*.lab.example.org"]),
    ("nvidia_driver_cuda_repo_extra_support", {"debian13": ["12.4"]}),
    ("fastchat_leaderboard_out", "leaderboard"),
    ("lab_proxy_ca_dir", "/home/alice/My Labs/inventory/fastchat-lab-ca"),
]


@pytest.mark.parametrize("name,value", GOOD)
def test_a_sensible_setting_passes(name, value):
    assert check(name, value) == []


def test_the_trailing_newline_class_is_closed_for_every_text_setting():
    """`re.match` with `$` lets "value\\n" through: every shape matches whole."""
    checked = 0
    for name, value in GOOD:
        if isinstance(value, str) and value:
            assert check(name, value + "\n"), name
            assert check(name, value + "\r"), name
            checked += 1
    assert checked >= 15


def test_secrets_are_never_shown():
    secret = "-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----\n\x07"
    problems = check("lab_proxy_tls_key", secret)
    assert problems and "SECRET" not in "".join(problems)
    problems = check("lab_proxy_tls_key", "/home/alice/secret-key.pem")
    assert problems and "alice" not in "".join(problems)
    problems = setting_problems({"model_weights_hub_token": 12345678},
                                spec_of("model_weights_hub_token"), "gpu01")
    assert "12345678" not in "".join(problems)


def test_types_come_from_the_roles_own_argument_spec():
    problems = check("docker_log_max_file", "three")
    assert problems and "docker_log_max_file" in problems[0]
    problems = check("docker_service_state", "running")
    assert problems and "Fix: use one of started, stopped" in problems[0]
    # The shape is not checked again for a value of the wrong type: one line a setting.
    assert len(check("lab_proxy_cert_days", "soon")) == 1


def test_a_bad_inventory_host_name_is_named_safely():
    problems = setting_problems({}, {}, "gpu01\nrm -rf /")
    assert problems == ["inventory host gpu01?rm?-rf??: inventory_hostname: is not a host name "
                        "the lab can use in files, units and messages. Fix: rename the host in "
                        "the inventory (letters, digits, . _ -)."]


def test_every_problem_is_reported_at_once():
    values = {"fastchat_image_work_dir": "/etc", "fastchat_image_fastchat_ref": "-x",
              "fastchat_image_apt_mirror": "ftp://x/debian"}
    spec = {name: ALL_OPTIONS[name] for name in values}
    problems = setting_problems(values, spec, "head")
    assert [p.split(": ")[1] for p in problems] == sorted(values)


def _pem_pair():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def make():
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab.example")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(1)
                .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                .sign(key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem
    return make(), make()


def test_a_certificate_and_a_key_that_do_not_match_are_refused():
    (cert, key), (_, other_key) = _pem_pair()
    names = ("lab_proxy_tls_cert", "lab_proxy_tls_key")
    spec = {name: ALL_OPTIONS[name] for name in names}
    assert setting_problems(dict(zip(names, (cert, key))), spec, "head") == []
    problems = setting_problems(dict(zip(names, (cert, other_key))), spec, "head")
    assert len(problems) == 1 and "is not the key of lab_proxy_tls_cert" in problems[0]
    assert "PRIVATE" not in problems[0]
    problems = setting_problems(dict(zip(names, (cert, ""))), spec, "head")
    assert len(problems) == 1 and "come together" in problems[0]
    # A private key where a CA bundle goes.
    problems = check("lab_proxy_tls_ca", cert + key)
    assert problems and "PRIVATE KEY where the CA certificate goes" in problems[0]
    assert "MII" not in problems[0]


def test_the_extra_ca_bundle_must_be_certificates_on_the_control_node(tmp_path):
    (cert, key), _ = _pem_pair()
    good, bad = tmp_path / "ca.pem", tmp_path / "key.pem"
    good.write_text(cert)
    bad.write_text(cert + key)
    assert check("fastchat_image_extra_ca_bundle", str(good)) == []
    assert "PRIVATE KEY" in check("fastchat_image_extra_ca_bundle", str(bad))[0]
    assert "cannot be read" in check("fastchat_image_extra_ca_bundle", str(tmp_path / "no"))[0]


# --- the property test -------------------------------------------------------------------

HOSTILE_TEXT = st.sampled_from([
    "", " ", "..", "/", "/etc", "/etc/", "/etc/fastchat-lab", "/srv/fastchat-lab",
    "/var/lib/fastchat-lab/x", "a/b", "-rf", "--upload-pack=id", "$(id)", "`id`", "x;rm -rf /",
    "a\nb", "ok\n", "\r", "\x00", "https://example.org/x.git", "https://u:p@example.org/x.git",
    "ext::sh -c id", "file:///srv/x.git", "http://mirror.example/debian",
    "http://mirror.example/debian'; id; '", "hourly", "*-*-* 03:00:00", "daily\nExecStart=id",
    "fastchat-lab-firewall.service", "ssh.service", "debian:bookworm-slim", "v0.2.36",
    "27.5.1", "100m", "名字", "a" * 300, "yes", "true", "0", "tcp://0.0.0.0:2375",
])
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2, 2 ** 33), st.floats(), HOSTILE_TEXT,
              st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(HOSTILE_TEXT, st.sampled_from(
                                list(lab_settings.GIT_ENV_KEYS) + ["hosts", "tlsverify"])),
                                inner, max_size=3)),
    max_leaves=6)
HOSTS = st.sampled_from(["gpu01", "lab-head.example", "gpu01\nx", "", "a b", "名"])
# What must never be accepted in a text that reaches a script, a unit or a command line.
UNSAFE = re.compile(r"[\x00-\x1f\x7f;`$|&<>\\\"' ]")
# Settings whose text may hold spaces (a calendar expression, a page title, argv items,
# daemon.json's values, written as JSON data).
MAY_HAVE_SPACES = {"lab_backup_schedule", "lab_leaderboard_timer_schedule", "docker_daemon_options",
                   "fastchat_deploy_lab_name", "nvidia_container_toolkit_verify_expect",
                   "nvidia_container_toolkit_verify_command"}
# The settings other checks own (the planner, the deploy's keys, the hub's token).
OWNED_ELSEWHERE = {name for name, shape in SHAPES.items() if shape is lab_settings.anything}
# Secrets (no_log in the specs) reach files only, never a script's text or a command line
# (the project's rule): any printable character may be in a key.
SECRETS = {name for name, option in ALL_OPTIONS.items() if (option or {}).get("no_log")}
# Settings that reach a process's environment only (a task's environment:), never a
# script's text or a command line: git's proxies and CA bundle (fetch.yml).
ENVIRONMENT_ONLY = {"model_weights_git_environment"}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(sorted(SHAPES)), VALUES, min_size=1, max_size=6), HOSTS)
def test_any_settings_give_no_problem_or_clear_refusals(values, host):
    spec = {name: ALL_OPTIONS[name] for name in values}
    problems = setting_problems(values, spec, host)
    refused = set()
    for line in problems:
        match = MESSAGE.match(line)
        assert match, line
        refused.add(match.group("var"))
    for name, value in values.items():
        if name in refused or name in OWNED_ELSEWHERE:
            continue
        for text in _texts(value):
            assert not re.search(r"[\x00-\x1f\x7f]", text), (name, value)
            if name not in MAY_HAVE_SPACES | SECRETS | ENVIRONMENT_ONLY \
                    and not name.endswith("_tls_cert"):
                assert not UNSAFE.search(text), (name, value)


def _texts(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)


@pytest.mark.parametrize("mirror", ["http://m.example/debian#;e id", "http://m.example/deb ian",
                                    "ftp://m.example/debian", "http://m.example/debian&x",
                                    "http://m.example/debian\\1"])
def test_the_image_build_refuses_a_mirror_that_would_become_sed_code(mirror):
    """Defence in depth: apt.sh checks APT_MIRROR itself before its sed program (and stops
    before apt-get, so this runs anywhere)."""
    import subprocess

    script = os.path.join(ROOT, "roles", "fastchat_image", "files", "apt.sh")
    done = subprocess.run(["sh", script], env={"APT_MIRROR": mirror, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done
    assert "APT_MIRROR" in done.stderr and "refused" in done.stderr


def test_the_timer_and_git_environment_filters_refuse_what_slipped_past():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.fastchat_lab.lab.plugins.filter.settings import FilterModule

    filters = FilterModule().filters()
    assert filters["calendar_checked"]("daily") == "daily"
    with pytest.raises(AnsibleFilterError, match="control character"):
        filters["calendar_checked"]("daily\nExecStartPre=/bin/id")
    assert filters["git_environment_checked"]({"https_proxy": "http://p:3128"})
    with pytest.raises(AnsibleFilterError, match="GIT_CONFIG"):
        filters["git_environment_checked"]({"GIT_CONFIG_COUNT": "1"})


def test_the_docker_role_refuses_an_open_tcp_socket_where_it_writes_daemon_json():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.fastchat_lab.lab.plugins.filter.settings import FilterModule

    checked = FilterModule().filters()["daemon_options_checked"]
    assert checked({"debug": True}) == {"debug": True}
    with pytest.raises(AnsibleFilterError, match="without TLS"):
        checked({"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]})
    with open(os.path.join(ROOT, "roles", "docker", "vars", "main.yml"), encoding="utf-8") as handle:
        assert "docker_daemon_options | fastchat_lab.lab.daemon_options_checked" in handle.read()


def test_numbers_from_the_command_line_are_read_as_the_roles_read_them():
    """-e key=value gives text: "16" is 16 for an int setting (as the argument spec and the
    roles' | int read it), while a list setting given as text is still refused."""
    assert check("model_weights_transfer_port", "8731") == []
    assert "not a whole number" in check("model_weights_transfer_port", "70000")[0]
    assert check("lab_judge_temperature", "0.7") == []
    assert check("nvidia_driver_verify", "yes") == []
    assert "must be a list" in check("docker_users", "alice,bob")[0]


def _role_calls(tasks):
    """Every include_role/import_role call in a play's task list (blocks included)."""
    for task in tasks or []:
        for key in ("ansible.builtin.import_role", "ansible.builtin.include_role"):
            if key in task:
                yield task[key]
        for section in ("block", "rescue", "always"):
            yield from _role_calls(task.get(section))


def _plays_in_order(path, seen=()):
    """(playbook file, play) for every play a playbook runs, imports followed in order."""
    with open(path, encoding="utf-8") as handle:
        plays = yaml.safe_load(handle)
    for play in plays:
        if "ansible.builtin.import_playbook" in play:
            target = os.path.normpath(os.path.join(os.path.dirname(path), play["ansible.builtin.import_playbook"]))
            assert target not in seen, target
            yield from _plays_in_order(target, seen + (path,))
        else:
            yield os.path.relpath(path, ROOT), play


def test_a_role_skips_its_argument_check_only_after_the_settings_gate():
    """rolespec_validate: false (the gate has checked every role's settings by the same
    specs) only in plays that every playbook one runs reaches after plan.yml's gate:
    never in a playbook run alone before it (docker.yml, nvidia.yml keep the check)."""
    entry_points = [os.path.join(ROOT, "site.yml")]
    for name in sorted(n for n in os.listdir(os.path.join(ROOT, "playbooks")) if n.endswith(".yml")):
        path = os.path.join(ROOT, "playbooks", name)
        with open(path, encoding="utf-8") as handle:
            if "ansible-playbook playbooks/%s" % name in handle.read():
                entry_points.append(path)
    assert len(entry_points) >= 8, entry_points
    skipping = set()
    for entry in entry_points:
        gate_seen = False
        for source, play in _plays_in_order(entry):
            if source == os.path.join("playbooks", "settings.yml"):
                gate_seen = True
            for call in _role_calls(play.get("tasks")):
                # The planner types every setting it takes itself; "defaults" has no task.
                if call.get("rolespec_validate") is False and call["name"] != "lab_plan" \
                        and call.get("tasks_from") != "defaults":
                    skipping.add(source)
                    assert gate_seen, "%s: %s skips its argument check before the settings gate (run by %s)" % (
                        source, call["name"], os.path.relpath(entry, ROOT))
    assert skipping == {os.path.join("playbooks", name) for name in (
        "preflight.yml", "images.yml", "weights.yml", "fastchat.yml", "deploy.yml")}, skipping
