# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Whether the lab CA and the head's certificate are made (again), and why (role lab_proxy).

Pure Python (standard library only): the ``fastchat_lab.lab.proxy_tls_names`` and
``fastchat_lab.lab.proxy_tls_needs`` filters wrap :func:`names` and :func:`needs` for the
role; ``tests/test_proxy_tls.py`` checks them with drift cases.

Where the play makes the certificate (no ``lab_proxy_tls_cert`` of the user's), it keeps
the lab CA and the head's certificate on the control node and reads them there each run
(``community.crypto.x509_certificate_info``). The CA's tasks run when:

- the head's certificate is missing, or its subject alternative names are not the wanted
  ones (a new address, ``lab_proxy_extra_names`` changed), or it ends within
  :data:`RENEW_DAYS`;
- the head's key is gone;
- the lab CA is due: it ends within :data:`RENEW_DAYS` (made again with the same key), or
  it predates its name constraints (an older version's CA, valid for any name).
"""

from __future__ import annotations

import datetime
import re

# A certificate or CA is made again this many days before its end.
RENEW_DAYS = 30
# X.509 name constraints: the lab CA may sign only for the head's names and addresses.
NAME_CONSTRAINTS_OID = "2.5.29.30"
NOT_AFTER_FORMAT = "%Y%m%d%H%M%SZ"
_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+\Z")


def names(address, host, extra=()):
    """The head's names, in order and once each: its planned address, its inventory name,
    the loopback names, then ``extra`` (lab_proxy_extra_names). Returns ``{names, sans,
    constraints}``: the subject alternative names (``IP:`` for IPv4 addresses, ``DNS:``
    for the rest) and the CA's name constraints (each IP address alone)."""
    out = []
    for name in [address, host, "localhost", "127.0.0.1"] + list(extra or ()):
        if name not in out:
            out.append(name)
    sans = [("IP:" if _IPV4.match(name) else "DNS:") + name for name in out]
    constraints = [san + "/255.255.255.255" if san.startswith("IP:") else san for san in sans]
    return {"names": out, "sans": sans, "constraints": constraints}


def days_left(info, now):
    """Whole days until ``info``'s ``not_after`` (x509_certificate_info's form); 0 without."""
    end = (info or {}).get("not_after")
    if not end:
        return 0
    ends = datetime.datetime.strptime(end, NOT_AFTER_FORMAT).replace(tzinfo=datetime.timezone.utc)
    return (ends - now).days


def needs(state, sans, now=None):
    """What the lab CA's tasks must do. ``state``: ``cert`` and ``ca`` (the head's
    certificate and the CA's as x509_certificate_info reads them, ``{}`` where there is
    none), ``key`` (whether the head's key file is there); ``sans``: the wanted subject alternative names (:func:`names`).

    Returns ``{renew, ca_renew, ca_force, ca_days_left, why}``: ``renew`` the CA's tasks
    run; ``ca_renew`` the CA is due; ``ca_force`` an existing CA certificate is made again
    (same key); ``ca_days_left`` the days the CA has left (0 without one); ``why`` the
    reasons, for the role's -v output."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    cert, ca = state.get("cert") or {}, state.get("ca") or {}
    ca_days = days_left(ca, now)
    why = []
    if not ca:
        why.append("the lab CA's certificate is not on the control node")
    elif ca_days < RENEW_DAYS:
        why.append("the lab CA ends in %d days (made again within %d)" % (ca_days, RENEW_DAYS))
    elif NAME_CONSTRAINTS_OID not in (ca.get("extensions_by_oid") or {}):
        why.append("the lab CA has no name constraints (an older version's, valid for any name)")
    ca_renew = bool(why)
    if not cert or "subject_alt_name" not in cert:
        why.append("the head's certificate is not on the control node")
    else:
        if sorted(cert["subject_alt_name"] or []) != sorted(sans):
            why.append("the head's certificate names %s, not %s" % (
                ", ".join(sorted(cert["subject_alt_name"] or [])) or "nothing",
                ", ".join(sorted(sans))))
        cert_days = days_left(cert, now)
        if cert_days < RENEW_DAYS:
            why.append("the head's certificate ends in %d days (made again within %d)"
                       % (cert_days, RENEW_DAYS))
    if not state.get("key"):
        why.append("the head's key is not on the control node")
    return {"renew": bool(why), "ca_renew": ca_renew,
            "ca_force": bool(ca) and ca_days < RENEW_DAYS, "ca_days_left": ca_days,
            "why": why or ["the head's certificate names every address and is valid for "
                           "%d days or more" % RENEW_DAYS]}
