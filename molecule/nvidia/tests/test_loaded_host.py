"""The host whose driver branch was already loaded: the role installed nothing."""

testinfra_hosts = ["fcl-nvidia-loaded"]


def test_no_driver_or_repository_package_was_installed(host):
    for name in ("cuda-keyring", "cuda-drivers-515", "nvidia-driver", "nvidia-dkms-515",
                 "nvidia-persistenced", "cuda-toolkit-11-7", "dkms"):
        assert not host.package(name).is_installed, name


def test_nothing_was_configured(host):
    for path in ("/etc/apt/preferences.d/nvidia-driver.pref",
                 "/etc/apt/sources.list.d/cuda-debian13-x86_64.list",
                 "/etc/modprobe.d/blacklist-nouveau.conf"):
        assert not host.file(path).exists, path


def test_the_hand_installed_driver_still_answers(host):
    out = host.check_output("nvidia-smi --query-gpu=driver_version --format=csv,noheader")
    assert out.splitlines() == ["515.105.01"] * 4
