"""playbooks/plan.yml end to end through ansible-runner (no host is reached)."""

import json
import os
import shutil

import ansible_runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BAD_INVENTORY = """
all:
  children:
    fastchat_head:
      hosts:
        gpu01:
    gpu_hosts:
      hosts:
        gpu01:
          # Local, so site.yml's read-only GPU-facts play sends nothing anywhere.
          ansible_connection: local
          ansible_python_interpreter: "{{ ansible_playbook_python }}"
          fastchat_gpus: {count: 4, name: Tesla P40, memory_mib: 23040,
                          compute_capability: "6.1", driver_version: "515.105.01"}
          fastchat_workers:
            - {model: Qwen-7B-Chat, gpus: [1], backend: vllm}
            - {model: Baichuan-13B-Chat, gpus: [1, 2]}
"""

# A play after the plan, as site.yml will have: it must never start when the plan fails.
PLAN_THEN_MORE = """
- name: Plan the lab.
  ansible.builtin.import_playbook: playbooks/plan.yml

- name: A play after the plan.
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Show that the play after the plan ran.
      ansible.builtin.debug:
        msg: "AFTER-PLAN {{ hostvars['localhost'].lab_plan_current.plan.summary.head }}"
"""


PLAN_THEN_PREFLIGHT = """
- name: Plan the lab.
  ansible.builtin.import_playbook: playbooks/plan.yml

- name: Check the deployment settings.
  ansible.builtin.import_playbook: playbooks/preflight.yml
"""


# An API and a web UI opened on purpose (JSON: -e key=value would give strings).
OPEN_LAB = "-e '{\"fastchat_deploy_open_api\": true, \"fastchat_deploy_open_web_ui\": true}'"


def project_copy(tmp_path):
    """The files plan.yml needs, so a test playbook can sit next to group_vars/."""
    root = tmp_path / "project"
    for name in ("roles", "collections", "group_vars", "playbooks", "inventory"):
        shutil.copytree(os.path.join(ROOT, name), root / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("ansible.cfg", "site.yml"):
        shutil.copy(os.path.join(ROOT, name), root / name)
    (root / "check.yml").write_text(PLAN_THEN_MORE)
    return root


def run(root, playbook, inventory, tmp_path, cmdline=""):
    (tmp_path / "runner").mkdir()
    return ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"), project_dir=str(root), playbook=playbook,
        inventory=str(inventory), cmdline=cmdline, quiet=True,
        envvars={"ANSIBLE_CONFIG": str(root / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"})


def output(result):
    """What the run printed (ansible-runner hands out an open file: read and close it)."""
    with result.stdout as fh:
        return fh.read()


def plays_started(result):
    return [e["event_data"]["play"] for e in result.events
            if e["event"] == "playbook_on_play_start"]


def changed_tasks(result):
    return [e["event_data"]["task"] for e in result.events if e["event"] == "runner_on_ok"
            and e["event_data"]["res"].get("changed")]


def test_reference_lab_plan_prints_the_p40_table(tmp_path):
    root = project_copy(tmp_path)
    result = run(root, "check.yml", root / "inventory" / "lab", tmp_path, cmdline="--check")
    out = output(result)
    assert result.status == "successful", out
    assert "qwen-7b-chat-gpu1        | cuda117 | transformers fp16 | 21002 | 30.5 / 24.2 GB" in out
    assert "3,728 / 8,192 tokens (short)" in out
    # The warning names the model, host, GPU, the tokens that fit and the fix.
    assert ("[WARNING]: gpu01: fastchat_workers[0].gpus: Qwen-7B-Chat on GPU 1 (Tesla P40) of "
            "gpu01 holds about 3,728 of its 8,192 context tokens") in out
    assert "2,3 (Tesla P40 x2) | Baichuan-13B-Chat" in out
    assert "AFTER-PLAN gpu01" in out  # the plan fact reaches later plays
    assert changed_tasks(result) == []


def test_invalid_inventory_stops_site_yml_before_any_host_is_changed(tmp_path):
    root = project_copy(tmp_path)
    inventory = tmp_path / "bad.yml"
    inventory.write_text(BAD_INVENTORY)
    result = run(root, "site.yml", inventory, tmp_path)
    out = output(result)
    assert result.status == "failed", out
    assert "gpu01: fastchat_workers[0].backend: vllm needs compute capability 7.0" in out
    assert "Fix: use backend: hf" in out
    assert "gpu01: fastchat_workers[1].gpus: GPU 1 is already given to worker" in out
    # Only the read-only GPU facts play and the plan ran: the Docker play never started.
    assert plays_started(result) == ["Read the default IPv4 address of every lab host.",
                                     "Read the NVIDIA GPUs of the GPU hosts.", "Plan the FastChat lab."]
    assert changed_tasks(result) == []


NO_KEY_INVENTORY = BAD_INVENTORY.replace(
    "{model: Qwen-7B-Chat, gpus: [1], backend: vllm}", "{model: Qwen-7B-Chat, gpus: [1]}"
).replace("{model: Baichuan-13B-Chat, gpus: [1, 2]}",
          "{model: Baichuan-13B-Chat, gpus: [2, 3], max_gpu_memory: 24GB}")


def test_api_without_keys_stops_site_yml_before_any_host_is_changed(tmp_path):
    root = project_copy(tmp_path)
    inventory = tmp_path / "no-key.yml"
    inventory.write_text(NO_KEY_INVENTORY)
    result = run(root, "site.yml", inventory, tmp_path)
    out = output(result)
    assert result.status == "failed", out
    assert "gpu01: fastchat_deploy_api_keys is empty" in out
    assert "Fix: set fastchat_deploy_api_keys (in ansible-vault)" in out
    plays = plays_started(result)
    assert plays[-1] == "Check the deployment settings before any host is changed."
    assert "Install Docker Engine with Compose v2 on every lab host." not in plays
    assert changed_tasks(result) == []
    # The same inventory with an explicitly open API passes the preflight.
    (root / "preflight.yml").write_text(PLAN_THEN_PREFLIGHT)
    (tmp_path / "open").mkdir()
    result = run(root, "preflight.yml", inventory, tmp_path / "open",
                 cmdline=OPEN_LAB)
    out = output(result)
    assert result.status == "successful", out
    assert "fastchat_deploy : Check the API keys, the web UI's logins and its page settings." in out


def test_a_web_ui_without_logins_stops_site_yml_before_any_host_is_changed(tmp_path):
    root = project_copy(tmp_path)
    inventory = tmp_path / "no-login.yml"
    inventory.write_text(NO_KEY_INVENTORY)
    result = run(root, "site.yml", inventory, tmp_path,
                 cmdline="-e '{\"fastchat_deploy_open_api\": true}'")
    out = output(result)
    assert result.status == "failed", out
    assert "gpu01: fastchat_deploy_web_ui_users is empty, so the web UI would let anyone" in out
    assert "gpu01: fastchat_deploy_api_keys is empty" not in out
    assert "Install Docker Engine with Compose v2 on every lab host." not in plays_started(result)
    assert changed_tasks(result) == []


def test_unnamed_keys_and_odd_passwords_are_refused_without_being_shown(tmp_path):
    root = project_copy(tmp_path)
    inventory = tmp_path / "bad-secrets.yml"
    inventory.write_text(NO_KEY_INVENTORY)
    extra = json.dumps({"fastchat_deploy_api_keys": ["sk-plain-key-without-a-name"],
                        "fastchat_deploy_web_ui_users": [{"name": "bob", "password": "a:b,c d"}]})
    result = run(root, "site.yml", inventory, tmp_path, cmdline="-e '%s'" % extra)
    out = output(result)
    assert result.status == "failed", out
    assert "gpu01: fastchat_deploy_api_keys[0]: must be a mapping with exactly name and key" in out
    assert "gpu01: fastchat_deploy_web_ui_users[0].password: the password of bob is not" in out
    assert "sk-plain-key-without-a-name" not in out and "a:b,c d" not in out


def test_the_plan_alone_needs_no_api_key(tmp_path):
    """plan.yml is the README's look at a lab: it prints the plan of inventory/lab, whose
    API keys live in the user's vault, without asking for them."""
    root = project_copy(tmp_path)
    result = run(root, "playbooks/plan.yml", root / "inventory" / "lab", tmp_path)
    out = output(result)
    assert result.status == "successful", out
    assert "2,3 (Tesla P40 x2) | Baichuan-13B-Chat" in out


def test_the_plan_as_json_has_the_documented_keys(tmp_path):
    root = project_copy(tmp_path)
    target = tmp_path / "plan.json"
    result = run(root, "playbooks/plan.yml", root / "inventory" / "lab", tmp_path,
                 cmdline="-e fastchat_lab_plan_file=%s" % target)
    assert result.status == "successful", output(result)
    plan = json.loads(target.read_text())
    assert set(plan) == {"summary", "models", "hosts", "warnings"}
    service = plan["hosts"]["gpu01"]["services"][3]
    assert {"kind", "model", "stack", "gpus", "argv", "memory"} <= set(service)
    assert (service["model"], service["stack"], service["gpus"]) == ("Qwen-7B-Chat", "cuda117", ["1"])
    assert service["memory"]["max_context_tokens"] == 3728
    assert plan["summary"]["weights_dir"] == "/srv/fastchat-lab/models"


def test_settings_reach_the_planner_untyped_so_its_checks_fire(tmp_path):
    """-e values are strings: "yes" must not become a boolean on the way."""
    root = project_copy(tmp_path)
    result = run(root, "playbooks/plan.yml", root / "inventory" / "lab", tmp_path,
                 cmdline="-e fastchat_rehearsal=yes -e fastchat_api_port=8000x")
    out = output(result)
    assert result.status == "failed", out
    assert "all: fastchat_rehearsal: must be a boolean, got 'yes'" in out
    assert "all: fastchat_api_port: must be a port number (1-65535), got '8000x'" in out


OWN_PREFLIGHT = """
- name: Plan the lab.
  ansible.builtin.import_playbook: playbooks/plan.yml

- name: A playbook of one's own that runs the deploy's preflight.
  hosts: fastchat_head
  gather_facts: false
  tasks:
    - name: Check the deployment settings.
      ansible.builtin.include_role:
        name: fastchat_deploy
        tasks_from: preflight
"""


def test_the_preflight_entry_point_validates_its_arguments_and_the_lab_does_not_twice(tmp_path):
    """A playbook of one's own that includes tasks_from: preflight gets the entry point's
    argument validation; playbooks/preflight.yml, after the settings gate, does not repeat it."""
    root = project_copy(tmp_path)
    (root / "own-preflight.yml").write_text(OWN_PREFLIGHT)
    (root / "preflight.yml").write_text(PLAN_THEN_PREFLIGHT)
    inventory = tmp_path / "no-key.yml"
    inventory.write_text(NO_KEY_INVENTORY)

    def validations(playbook, where):
        where.mkdir()
        result = run(root, playbook, inventory, where, cmdline=OPEN_LAB)
        assert result.status == "successful", output(result)
        return [e["event_data"]["task"] for e in result.events
                if e["event"] == "runner_on_ok" and e["event_data"]["task"].startswith(
                    "Validating arguments against arg spec")]
    assert "Validating arguments against arg spec 'preflight' - Check the deployment settings " \
           "before any host is changed." in validations("own-preflight.yml", tmp_path / "own")
    assert validations("preflight.yml", tmp_path / "lab") == []


# Lab-wide settings of several roles set wrongly (issue 24), as JSON (-e key=value would
# give strings): every one is refused at once, before any host is changed.
HOSTILE_SETTINGS = ("-e '{\"fastchat_deploy_dir\": \"/etc\", "
                    "\"lab_firewall_unit\": \"ssh.service\", "
                    "\"fastchat_image_repo_url\": \"ext::sh -c id\", "
                    "\"model_weights_git_environment\": {\"GIT_CONFIG_KEY_0\": \"core.fsmonitor\"}, "
                    "\"docker_daemon_options\": {\"hosts\": [\"tcp://0.0.0.0:2375\"]}, "
                    "\"lab_leaderboard_timer_schedule\": \"hourly\\nExecStartPre=/bin/id\", "
                    "\"fastchat_image_fastchat_ref\": \"--upload-pack=id\"}'")


def test_lab_wide_settings_set_wrongly_stop_site_yml_all_at_once(tmp_path):
    root = project_copy(tmp_path)
    inventory = tmp_path / "no-key.yml"
    inventory.write_text(NO_KEY_INVENTORY)
    result = run(root, "site.yml", inventory, tmp_path, cmdline=OPEN_LAB + " " + HOSTILE_SETTINGS)
    out = output(result)
    assert result.status == "failed", out
    for line in ("gpu01: fastchat_deploy_dir: '/etc' is a shared directory",
                 "gpu01: lab_firewall_unit: 'ssh.service' is not a unit of the lab's own",
                 "gpu01: fastchat_image_repo_url: 'ext::sh -c id' has characters",
                 "gpu01: model_weights_git_environment: 'GIT_CONFIG_KEY_0' is not an environment",
                 "gpu01: docker_daemon_options: hosts: 'tcp://0.0.0.0:2375' opens Docker's API",
                 "gpu01: lab_leaderboard_timer_schedule: 'hourly\\nExecStartPre=/bin/id' has a "
                 "control character",
                 "gpu01: fastchat_image_fastchat_ref: '--upload-pack=id' is not a tag"):
        assert line in out, line
    # One failed check lists them all; the deployment's plays never started.
    assert plays_started(result)[-1] == "Check every lab-wide setting of every lab host."
    assert changed_tasks(result) == []


def test_the_reference_lab_and_its_china_switch_pass_the_settings_gate(tmp_path):
    root = project_copy(tmp_path)
    result = run(root, "playbooks/plan.yml", root / "inventory" / "lab", tmp_path,
                 cmdline="-e fastchat_china_mirror=true")
    out = output(result)
    assert result.status == "successful", out
    assert "Check every lab-wide setting of every lab host." in plays_started(result)


OWN_PLAYBOOK = """
- name: A playbook of one's own that checks one role's settings.
  hosts: gpu01
  gather_facts: false
  tasks:
    - name: Check the docker role's settings.
      ansible.builtin.include_role:
        name: docker
        tasks_from: settings
"""


def test_a_roles_settings_entry_point_stops_a_playbook_of_ones_own(tmp_path):
    root = project_copy(tmp_path)
    (root / "own.yml").write_text(OWN_PLAYBOOK)
    inventory = root / "inventory" / "lab"
    (tmp_path / "bad").mkdir()
    (tmp_path / "good").mkdir()
    result = run(root, "own.yml", inventory, tmp_path / "bad",
                 cmdline="-e docker_log_max_size=1x")
    out = output(result)
    assert result.status == "failed", out
    assert "gpu01: docker_log_max_size: '1x' is not a size such as 100m. Fix: " in out
    result = run(root, "own.yml", inventory, tmp_path / "good")
    assert result.status == "successful", output(result)


def test_vaulted_settings_are_checked_decrypted_and_never_shown(tmp_path):
    """A secret or a setting kept in ansible-vault goes through the gate like any other."""
    import subprocess

    root = project_copy(tmp_path)
    password = tmp_path / "vault-pass"
    password.write_text("fcl-test-vault\n")

    def vaulted(name, value):
        return subprocess.run(
            ["ansible-vault", "encrypt_string", "--vault-password-file", str(password),
             value, "--name", name], check=True, capture_output=True, text=True).stdout

    inventory = tmp_path / "inv"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(NO_KEY_INVENTORY)
    (inventory / "group_vars" / "all" / "vault.yml").write_text(
        vaulted("model_weights_hub_token", "hf_secrettoken1234567890")
        + vaulted("lab_firewall_unit", "fastchat-lab-fw.service")
        + vaulted("lab_firewall_script", "/usr/sbin/iptables"))
    (tmp_path / "run").mkdir()
    result = run(root, "playbooks/plan.yml", inventory / "hosts.yml", tmp_path / "run",
                 cmdline="--vault-password-file %s" % password)
    out = output(result)
    assert result.status == "failed", out
    assert "gpu01: lab_firewall_script: '/usr/sbin/iptables' is not a file of the lab's own" in out
    assert "lab_firewall_unit" not in out.split("Check every lab-wide setting")[-1].split("PLAY RECAP")[0]
    assert "hf_secrettoken" not in out


def test_a_setting_that_cannot_be_read_is_named_with_the_fix_and_hides_no_other(tmp_path):
    """A value whose template fails (an undefined variable) is named, the others are still
    checked, and the secret values are never printed."""
    root = project_copy(tmp_path)
    inventory = tmp_path / "no-key.yml"
    inventory.write_text(NO_KEY_INVENTORY)
    result = run(root, "playbooks/plan.yml", inventory, tmp_path, cmdline=OPEN_LAB + " " + (
        "-e '{\"docker_repo_url\": \"{{ no_such_variable_here }}\", \"docker_log_max_size\": \"1x\", "
        "\"model_weights_hub_token\": \"hf_secret_value_1234\"}'"))
    out = output(result)
    assert result.status == "failed", out
    assert "gpu01: docker_repo_url: cannot be read (" in out and "Fix: correct the variable." in out
    assert "gpu01: docker_log_max_size: '1x' is not a size such as 100m" in out
    assert "hf_secret_value_1234" not in out


TWO_HOSTS = """
all:
  children:
    fastchat_head:
      hosts:
        gpu01:
    gpu_hosts:
      hosts:
        gpu01:
          ansible_host: 192.0.2.10
          fastchat_gpus: {count: 4, name: Tesla P40, memory_mib: 23040,
                          compute_capability: "6.1", driver_version: "515.105.01"}
          fastchat_workers:
            - {model: Qwen-7B-Chat, gpus: [1]}
        gpu02:
          ansible_host: 192.0.2.11
          fastchat_gpus: {count: 4, name: Tesla P40, memory_mib: 23040,
                          compute_capability: "6.1", driver_version: "515.105.01"}
          fastchat_workers:
            - {model: Qwen-7B-Chat, gpus: [0], name: qwen-gpu02}
    bastions:
      hosts:
        jump01:
          ansible_host: 192.0.2.99
"""

READ_PLAN = """
- name: Plan the lab.
  ansible.builtin.import_playbook: playbooks/plan.yml

- name: Read the plan on each host.
  hosts: all
  gather_facts: false
  tasks:
    - name: Show what this host's plan holds.
      ansible.builtin.debug:
        msg: >-
          PLAN {{ inventory_hostname }}
          {{ (_view.hosts | default({})).keys() | sort | join(',') }}
          {{ (_view.hosts | default({})) | dict2items | selectattr('value.services', 'defined')
             | map(attribute='key') | sort | join(',') }}
          {{ 'workers' in (_view.summary | default({})) }}
          {{ _view.summary.addresses | default([]) | join(',') }}
      vars:
        _view: "{{ lab_plan_current | fastchat_lab.lab.lab_plan_required(inventory_hostname) }}"
"""


def run_own_playbook(tmp_path, playbook, inventory_text, cmdline=""):
    """A playbook of one's own next to the project's, on an inventory of one's own; it must pass."""
    root = project_copy(tmp_path)
    (root / "own-playbook.yml").write_text(playbook)
    inventory = tmp_path / "own-inventory.yml"
    inventory.write_text(inventory_text)
    result = run(root, "own-playbook.yml", inventory, tmp_path, cmdline=cmdline)
    assert result.status == "successful", output(result)
    return result


def test_every_host_reads_the_whole_plan(tmp_path):
    result = run_own_playbook(tmp_path, READ_PLAN, TWO_HOSTS, cmdline=OPEN_LAB)
    plans = {e["event_data"]["host"]: " ".join(e["event_data"]["res"]["msg"].split())
             for e in result.events if e["event"] == "runner_on_ok"
             and e["event_data"]["task"] == "Show what this host's plan holds."}
    # Every host, the bastion (in no lab group) too: every host whole (services
    # included), every worker's name, every address.
    assert plans == {
        host: "PLAN %s gpu01,gpu02 gpu01,gpu02 True 192.0.2.10,192.0.2.11" % host
        for host in ("gpu01", "gpu02", "jump01")}, plans
    # Giving out the plan changes nothing anywhere.
    assert changed_tasks(result) == []


def test_each_hosts_settings_are_checked_as_the_roles_will_read_them(tmp_path):
    """The gate reads each host's own variables over the roles' defaults, in one task:
    a host_vars mistake is that host's alone; a default derived from a host's value (the
    GitHub URL the repository URLs are made of) is checked for that host; an inventory
    value may read a role default; a switch set on one host only is that host's."""
    root = project_copy(tmp_path)
    inventory = tmp_path / "inv"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "host_vars").mkdir()
    (inventory / "hosts.yml").write_text(TWO_HOSTS)
    (inventory / "group_vars" / "all.yml").write_text(
        'fastchat_image_repo_url: "{{ fastchat_image_github_url }}/me/FastChat.git"\n')
    (inventory / "host_vars" / "gpu01.yml").write_text("fastchat_china_mirror: true\n")
    (inventory / "host_vars" / "gpu02.yml").write_text(
        'fastchat_image_github_url: "ext::sh -c id"\ndocker_log_max_size: 1x\n')
    result = run(root, "playbooks/plan.yml", inventory / "hosts.yml", tmp_path, cmdline=OPEN_LAB)
    out = output(result)
    assert result.status == "failed", out
    assert "gpu02: fastchat_image_repo_url: 'ext::sh -c id/me/FastChat.git' has characters" in out
    assert "gpu02: fastchat_image_llamacpp_repo_url: 'ext::sh -c id/ggml-org/llama.cpp.git'" in out
    assert "gpu02: docker_log_max_size: '1x' is not a size such as 100m" in out
    assert "gpu01: " not in out.split("Stop on any problem")[-1], out
    # The bastion is in no lab group: not checked, not named.
    assert "jump01" not in out.split("Stop on any problem")[-1]
    # Without gpu02's mistakes the same lab passes: gpu01's China switch (its own mirrors)
    # and the repository URL read from a role default are fine.
    (inventory / "host_vars" / "gpu02.yml").write_text("fastchat_china_mirror: false\n")
    (tmp_path / "good").mkdir()
    result = run(root, "playbooks/plan.yml", inventory / "hosts.yml", tmp_path / "good", cmdline=OPEN_LAB)
    assert result.status == "successful", output(result)


CHECK_NAMED_HOSTS = """
- name: Check named hosts' settings.
  hosts: gpu01
  gather_facts: false
  tasks:
    - name: Check the docker role's settings on the named hosts.
      fastchat_lab.lab.lab_settings_check:
        roles: ["{{ playbook_dir }}/roles/docker"]
        hosts: [gpu02, "no-such-host", "evil host;id"]
      register: found
    - name: Show the problems.
      ansible.builtin.debug:
        msg: "PROBLEMS {{ found.problems | to_json }}"
"""


def test_the_gate_names_a_host_that_is_not_in_the_inventory(tmp_path):
    result = run_own_playbook(tmp_path, CHECK_NAMED_HOSTS, TWO_HOSTS, cmdline="-e docker_log_max_size=1x")
    problems = next(json.loads(e["event_data"]["res"]["msg"].split(" ", 1)[1]) for e in result.events
                    if e["event"] == "runner_on_ok" and e["event_data"]["task"] == "Show the problems.")
    assert problems[0].startswith("gpu02: docker_log_max_size: '1x' is not a size such as 100m")
    assert problems[1:] == [
        "no-such-host: is not a host of the inventory. Fix: name inventory hosts in hosts.",
        "inventory host evil?host?id: is not a host of the inventory. Fix: name inventory "
        "hosts in hosts."]
