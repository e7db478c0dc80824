"""lab_proxy's TLS decision (module_utils/proxy_tls.py): the head's names, and whether the lab
CA's tasks run, with drift cases; the certificates' facts as community.crypto's
x509_certificate_info filter reads real certificates made here with cryptography."""

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ansible_collections.community.crypto.plugins.filter.x509_certificate_info import FilterModule as CryptoFilters
from ansible_collections.fastchat_lab.lab.plugins.filter.front_door import FilterModule
from ansible_collections.fastchat_lab.lab.plugins.module_utils.proxy_tls import NAME_CONSTRAINTS_OID, names, needs

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)
HEAD = names("192.0.2.10", "gpu01")
INFO = CryptoFilters().filters()["x509_certificate_info"]


def certificate(sans, days, constraints=None, ca=False):
    """A real certificate's facts, as the role reads them (x509_certificate_info)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fastchat-lab test")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=1))
               .not_valid_after(NOW + datetime.timedelta(days=days, hours=1)))
    general = [x509.IPAddress(ipaddress.ip_address(s[3:])) if s.startswith("IP:") else x509.DNSName(s[4:])
               for s in sans]
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    if constraints is not None:
        permitted = [x509.IPAddress(ipaddress.ip_network(c[3:])) if c.startswith("IP:") else x509.DNSName(c[4:])
                     for c in constraints]
        builder = builder.add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None),
                                        critical=True)
    pem = builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM).decode()
    return INFO(pem)


GOOD_CA = None
GOOD_CERT = None


@pytest.fixture(scope="module", autouse=True)
def _certificates():
    global GOOD_CA, GOOD_CERT  # noqa: PLW0603 - made once for the module (key generation)
    GOOD_CA = certificate([], 1000, HEAD["constraints"], ca=True)
    GOOD_CERT = certificate(HEAD["sans"], 700)


def state(**changes):
    out = {"cert": GOOD_CERT, "ca": GOOD_CA, "key": True}
    out.update(changes)
    return out


def test_the_heads_names_in_order_once_each_with_ip_and_dns_kinds():
    got = names("192.0.2.10", "gpu01", ["lab.example.org", "192.0.2.10", "*.lab.example.org"])
    assert got["names"] == ["192.0.2.10", "gpu01", "localhost", "127.0.0.1", "lab.example.org",
                            "*.lab.example.org"]
    assert got["sans"] == ["IP:192.0.2.10", "DNS:gpu01", "DNS:localhost", "IP:127.0.0.1",
                           "DNS:lab.example.org", "DNS:*.lab.example.org"]
    assert got["constraints"] == ["IP:192.0.2.10/255.255.255.255", "DNS:gpu01", "DNS:localhost",
                                  "IP:127.0.0.1/255.255.255.255", "DNS:lab.example.org",
                                  "DNS:*.lab.example.org"]


def test_a_converged_head_makes_nothing():
    got = needs(state(), HEAD["sans"], NOW)
    assert got["renew"] is False and got["ca_renew"] is False and got["ca_force"] is False
    assert 995 <= got["ca_days_left"] <= 1000
    assert "valid for 30 days or more" in got["why"][0]


@pytest.mark.parametrize("drift, changes, sans, reason", [
    ("first run", {"cert": {}, "ca": {}, "key": False}, None, "the lab CA's certificate is not"),
    ("the head's certificate deleted", {"cert": {}}, None, "the head's certificate is not"),
    ("the head's key deleted", {"key": False}, None, "the head's key is not"),
    ("a new address for the head", {}, names("192.0.2.99", "gpu01")["sans"], "names DNS:gpu01"),
    ("an extra name added", {}, names("192.0.2.10", "gpu01", ["lab.example.org"])["sans"],
     "not DNS:gpu01, DNS:lab.example.org"),
])
def test_drift_makes_the_certificate_again(drift, changes, sans, reason):
    got = needs(state(**changes), sans or HEAD["sans"], NOW)
    assert got["renew"] is True, drift
    assert any(reason in why for why in got["why"]), (drift, got["why"])


def test_a_certificate_near_its_end_is_made_again_but_not_the_ca():
    got = needs(state(cert=certificate(HEAD["sans"], 29)), HEAD["sans"], NOW)
    assert got["renew"] is True and got["ca_renew"] is False and got["ca_force"] is False
    assert got["why"] == ["the head's certificate ends in 29 days (made again within 30)"]
    assert needs(state(cert=certificate(HEAD["sans"], 31)), HEAD["sans"], NOW)["renew"] is False


def test_a_ca_near_its_end_is_made_again_with_its_certificate():
    got = needs(state(ca=certificate([], 10, HEAD["constraints"], ca=True)), HEAD["sans"], NOW)
    assert got["renew"] is True and got["ca_renew"] is True and got["ca_force"] is True
    assert got["ca_days_left"] == 10
    assert got["why"] == ["the lab CA ends in 10 days (made again within 30)"]


def test_an_old_ca_without_name_constraints_is_made_again():
    old = certificate([], 3000, None, ca=True)
    assert NAME_CONSTRAINTS_OID not in old["extensions_by_oid"]
    got = needs(state(ca=old), HEAD["sans"], NOW)
    assert got["renew"] is True and got["ca_renew"] is True
    # Not forced: the same certificate file is made again because its request changed.
    assert got["ca_force"] is False
    assert "no name constraints" in got["why"][0]


def test_the_role_reads_them_through_its_filters():
    filters = FilterModule().filters()
    assert filters["proxy_tls_names"]("192.0.2.10", "gpu01", []) == HEAD
    assert filters["proxy_tls_needs"](state(), HEAD["sans"])["renew"] is False
