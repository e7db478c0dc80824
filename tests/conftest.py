"""Put the project's local collection on sys.path so tests import its module_utils; the
throwaway OpenPGP keys the signing-key tests share."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


@pytest.fixture(name="keys", scope="session")
def fixture_keys(tmp_path_factory):
    """Two throwaway keys made by gpg: {name: (fingerprint, armored, binary)}."""
    home = tmp_path_factory.mktemp("gnupg")
    os.chmod(home, 0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    out = {}
    for name, algo in (("repo", "ed25519"), ("stranger", "rsa2048")):
        uid = "%s <%s@lab.invalid>" % (name, name)
        subprocess.run(["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key", uid,
                        algo, "sign", "never"], env=env, check=True, capture_output=True)
        if name == "repo":  # a signing subkey too, as NVIDIA's and Docker's files have
            fpr = _gpg_fpr(env, uid)
            subprocess.run(["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-add-key", fpr,
                            "rsa2048", "sign", "never"], env=env, check=True, capture_output=True)
        armored = subprocess.run(["gpg", "--batch", "--armor", "--export", uid], env=env,
                                 check=True, capture_output=True).stdout
        binary = subprocess.run(["gpg", "--batch", "--export", uid], env=env, check=True,
                                capture_output=True).stdout
        out[name] = (_gpg_fpr(env, uid), armored, binary)
    return out


def _gpg_fpr(env, uid):
    colons = subprocess.run(["gpg", "--batch", "--with-colons", "--fingerprint", uid], env=env,
                            check=True, capture_output=True, text=True).stdout
    return [line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:")][0]
