"""Verify the GPU host installed from the fake NVIDIA repository: real state."""

import json

import pytest

testinfra_hosts = ["fcl-nvidia-gpu"]


def policy(host, package):
    """(installed, candidate, versions listed) from apt-cache policy."""
    out = host.check_output("apt-cache policy %s", package)
    fields = {}
    versions = []
    for line in out.splitlines():
        stripped = line.strip()
        if stripped.startswith(("Installed:", "Candidate:")):
            key, value = stripped.split(":", 1)
            fields[key] = value.strip()
        elif stripped and stripped.replace("*** ", "").split(" ")[0][:1].isdigit():
            versions.append(stripped.replace("*** ", "").split(" ")[0])
    return fields.get("Installed"), fields.get("Candidate"), versions


@pytest.mark.parametrize("package, wanted, newer", [
    ("nvidia-driver", "515.105.01-1", "525.147.05-1"),
    ("nvidia-persistenced", "515.105.01-1", "525.147.05-1"),
    ("nvidia-container-toolkit", "1.13.5-1", "1.14.3-1"),
    ("nvidia-container-toolkit-base", "1.13.5-1", "1.14.3-1"),
])
def test_pins_hold_the_tested_version_against_a_newer_one(host, package, wanted, newer):
    installed, candidate, versions = policy(host, package)
    assert newer in versions, versions
    assert installed == wanted
    assert candidate == wanted
    # An upgrade would not move it either.
    out = host.check_output("apt-get -s -o Debug::NoLocking=1 upgrade")
    assert "Inst %s " % package not in out


def test_cuda_toolkit_is_installed_and_pinned(host):
    assert host.package("cuda-toolkit-11-7").version == "11.7.1-1"
    pref = host.file("/etc/apt/preferences.d/nvidia-driver.pref").content_string
    assert "Package: cuda-toolkit-11-7\nPin: version 11.7.1-*\nPin-Priority: 1001" in pref
    assert "11.7.1" in host.check_output("/usr/local/cuda-11.7/bin/nvcc --version")


def test_cuda_repository_uses_the_base_url_and_nvidias_keyring(host):
    listing = host.file("/etc/apt/sources.list.d/cuda-debian13-x86_64.list").content_string
    assert ("deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] "
            "file:///srv/fake-nvidia-repo/cuda/debian13/x86_64/ /") in listing
    assert "developer.download.nvidia.com" not in host.check_output(
        "cat /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true")
    assert host.check_output("dpkg -S /usr/share/keyrings/cuda-archive-keyring.gpg").startswith("cuda-keyring:")


def test_nouveau_is_blacklisted(host):
    content = host.file("/etc/modprobe.d/blacklist-nouveau.conf").content_string
    assert "blacklist nouveau" in content
    assert "options nouveau modeset=0" in content


def test_dkms_and_kernel_headers_are_installed(host):
    assert host.package("dkms").is_installed
    kernel = host.check_output("uname -r")
    assert host.package("linux-headers-%s" % kernel).is_installed


def test_persistenced_is_unmasked_enabled_and_running(host):
    assert host.check_output("systemctl is-enabled nvidia-persistenced.service || true") == "enabled"
    assert host.service("nvidia-persistenced").is_running


def test_daemon_json_registers_the_nvidia_runtime(host):
    content = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert content["runtimes"] == {"nvidia": {"path": "nvidia-container-runtime", "args": []}}
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert "nvidia" in info["Runtimes"]


@pytest.fixture(scope="module")
def rebooted(host):
    """What the reboot the role asked for does: the driver answers afterwards."""
    host.check_output("rm -f /etc/fake-nvidia/driver-not-loaded")
    return host


def test_before_the_reboot_the_driver_did_not_answer(host):
    if host.file("/etc/fake-nvidia/driver-not-loaded").exists:
        assert host.run("nvidia-smi").rc == 9


def test_gpu_facts_see_four_p40s_after_the_reboot(rebooted):
    result = rebooted.ansible("fastchat_lab.lab.nvidia_gpu_facts", check=False)
    gpus = result["ansible_facts"]["fastchat_gpu_facts"]
    assert [g["name"] for g in gpus] == ["Tesla P40"] * 4
    assert {g["memory_mib"] for g in gpus} == {23040}
    assert {g["driver_version"] for g in gpus} == {"515.105.01"}


def test_docker_run_gpus_passes_the_chosen_devices(host):
    cid = host.check_output(
        "docker run -d --gpus '\"device=2,3\"' fastchat-lab/busybox:test /bin/busybox sleep 30")
    try:
        environ = host.check_output("docker exec %s /bin/busybox cat /proc/1/environ", cid)
    finally:
        host.run("docker rm -f %s", cid)
    assert "NVIDIA_VISIBLE_DEVICES=2,3" in environ.split("\x00")


NVIDIA_TOOLKIT_KEY = "C95B321B61E88C1809C4F759DDCAE044F796ECB0"


def _toolkit_role(tmp_path, *extra):
    """The nvidia_container_toolkit role alone on this host, from the project, on Molecule's
    inventory (the fake repository's key trusted there)."""
    import os
    import subprocess
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    playbook = tmp_path / "toolkit.yml"
    playbook.write_text("- hosts: fcl-nvidia-gpu\n  gather_facts: true\n"
                        "  roles: [nvidia_container_toolkit]\n")
    return subprocess.run(["ansible-playbook", "-i", os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"]),
                           str(playbook), *extra], cwd=project, capture_output=True, text=True,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"), timeout=900)


def test_a_repository_signed_by_another_key_is_refused_and_nothing_is_written(host, tmp_path):
    """The key the (fake) repository serves is not the one the role trusts (here: NVIDIA's
    real key): the run fails naming both and the setting, and writes no key; trusted
    again, the next run puts the key back."""
    keyring = "/usr/share/keyrings/nvidia-container-toolkit-keyring.asc"
    before = host.file(keyring).content
    host.run("rm -f %s", keyring)
    fake = host.file("/srv/fake-nvidia-repo/fingerprint").content_string.strip()
    refused = _toolkit_role(tmp_path, "-e", json.dumps(
        {"nvidia_container_toolkit_key_fingerprints": [NVIDIA_TOOLKIT_KEY]}))
    out = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode != 0, out[-3000:]
    assert "not one this role trusts" in out and fake in out and NVIDIA_TOOLKIT_KEY in out, out[-3000:]
    assert "nvidia_container_toolkit_key_fingerprints" in out
    assert not host.file(keyring).exists
    repaired = _toolkit_role(tmp_path)
    assert repaired.returncode == 0, (repaired.stdout + repaired.stderr)[-3000:]
    assert host.file(keyring).content == before
