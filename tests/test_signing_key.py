"""module_utils/openpgp.py and the signing_key module: the fingerprints of a key file's
primary keys (armored or binary, with subkeys, several keys) as gpg computes them; a key
file with a key the role does not trust is refused naming what it found, what is trusted
and the setting; garbage is an error, never a trusted key; the module writes the key only
once it is trusted, from a URL, a file or a Debian package's member."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils import openpgp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKER = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
needs_gpg = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs gpg")


@needs_gpg
def test_the_fingerprints_are_gpgs_for_armored_and_binary_files(keys):
    fpr, armored, binary = keys["repo"]
    assert openpgp.primary_fingerprints(armored) == [fpr]   # the subkey is not a primary key
    assert openpgp.primary_fingerprints(binary) == [fpr]
    both = keys["repo"][2] + keys["stranger"][2]
    assert openpgp.primary_fingerprints(both) == [fpr, keys["stranger"][0]]
    # Armor with headers and Windows line ends.
    crlf = armored.replace(b"-----\n\n", b"-----\nComment: a mirror\n\n", 1).replace(b"\n", b"\r\n")
    assert openpgp.primary_fingerprints(crlf) == [fpr]


@needs_gpg
def test_a_file_with_a_key_the_role_does_not_trust_is_refused(keys):
    fpr, armored, _ = keys["repo"]
    spaced = " ".join(fpr[i:i + 4] for i in range(0, 40, 4)).lower()
    assert openpgp.check(armored, [spaced], "file:///x", "nvidia_x") == [fpr]
    with pytest.raises(openpgp.OpenPGPError) as caught:
        openpgp.check(keys["stranger"][1], [fpr, DOCKER], "https://mirror.example/gpgkey",
                      "docker_repo_key_fingerprints")
    text = str(caught.value)
    assert keys["stranger"][0] in text and fpr in text and DOCKER in text
    assert "https://mirror.example/gpgkey" in text and "docker_repo_key_fingerprints" in text
    # One stranger beside the trusted key is one too many (apt trusts every key of the file).
    with pytest.raises(openpgp.OpenPGPError, match="not one this role trusts"):
        openpgp.check(keys["repo"][2] + keys["stranger"][2], [fpr], "x", "s")
    with pytest.raises(openpgp.OpenPGPError, match="is empty"):
        openpgp.check(armored, [], "x", "s")


@pytest.mark.parametrize("data, why", [
    (b"", "holds no public key"),
    (b"<html>404 Not Found</html>", "is not the start of an OpenPGP packet"),
    (b"-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n", "not a public key block"),
    (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n", "not base64"),
    (b"\x99\x01\x0d\x04abc", "cut short"),
    (b"\x99\x00\x05\x03abcd", "key version 3 is not supported"),
])
def test_garbage_is_an_error_never_a_trusted_key(data, why):
    with pytest.raises(openpgp.OpenPGPError, match=why):
        openpgp.check(data, [DOCKER], "x", "s")


@pytest.mark.parametrize("value", ["9DC8", "9DC858229FC7DD38854AE2D88D81803C0EBFCD8G", 42, "x" * 40])
def test_fingerprints_of_another_shape_are_refused(value):
    with pytest.raises(openpgp.OpenPGPError, match="is not a key fingerprint"):
        openpgp.normalise(value)


def _module(args, tmp_path, check_mode=False):
    """Run the module as Ansible would (its arguments as JSON on a file)."""
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check_mode)}))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "collections") + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m",
                           "ansible_collections.fastchat_lab.lab.plugins.modules.signing_key",
                           str(path)], env=env, capture_output=True, text=True)
    return json.loads(proc.stdout)


@needs_gpg
def test_the_module_writes_a_trusted_key_and_refuses_another_writing_nothing(keys, tmp_path):
    fpr, armored, _ = keys["repo"]
    served = tmp_path / "gpgkey"
    served.write_bytes(armored)
    dest = tmp_path / "keyrings" / "repo.asc"
    args = {"url": "file://%s" % served, "fingerprints": [fpr], "dest": str(dest), "setting": "s"}
    assert _module(args, tmp_path, check_mode=True)["changed"] is True
    assert not dest.exists()
    got = _module(args, tmp_path)
    assert got["changed"] is True and got["fingerprints"] == [fpr]
    assert dest.read_bytes() == armored and oct(dest.stat().st_mode & 0o777) == "0o644"
    assert _module(args, tmp_path)["changed"] is False
    # The mirror now serves another key: refused, the trusted one left as it was.
    served.write_bytes(keys["stranger"][1])
    got = _module(args, tmp_path)
    assert got.get("failed") is True and keys["stranger"][0] in got["msg"], got
    assert dest.read_bytes() == armored


@needs_gpg
@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_the_module_checks_the_keyring_inside_a_package_before_it_is_installed(keys, tmp_path):
    tree = tmp_path / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        "Package: cuda-keyring\nVersion: 1.1-1\nArchitecture: all\nMaintainer: x <x@lab.invalid>\n"
        "Description: test\n")
    (tree / "usr" / "share" / "keyrings").mkdir(parents=True)
    (tree / "usr" / "share" / "keyrings" / "cuda-archive-keyring.gpg").write_bytes(keys["stranger"][2])
    deb = tmp_path / "cuda-keyring_1.1-1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)], check=True,
                   capture_output=True)
    args = {"src": str(deb), "member": "./usr/share/keyrings/cuda-archive-keyring.gpg",
            "fingerprints": [keys["repo"][0]], "setting": "nvidia_driver_cuda_key_fingerprints"}
    got = _module(args, tmp_path)
    assert got.get("failed") is True and "nvidia_driver_cuda_key_fingerprints" in got["msg"], got
    args["fingerprints"] = [keys["stranger"][0]]
    got = _module(args, tmp_path)
    assert got.get("changed") is False and got["fingerprints"] == [keys["stranger"][0]], got
    args["member"] = "./usr/share/keyrings/other.gpg"
    assert "holds no file" in _module(args, tmp_path)["msg"]
