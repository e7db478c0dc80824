# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The items of a hand-out (roles/lab_transfer's pull): one builder for the weights, the
GGUF files and the image archives, so that every rsync:// source has one shape."""

import ipaddress
import re
from collections.abc import Mapping

# A served name: a model directory, a GGUF file or an image archive (the transfer
# helper's own SOURCE_RE allows these characters in a path).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,200}\Z")
MODULE_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?\Z")
SUFFIX_RE = re.compile(r"^[A-Za-z0-9._-]{0,32}\Z")
# Where the transfer helper (roles/lab_transfer, fastchat_lab_transfer.py: STATE) keeps the
# lease of each transfer name while a daemon may serve it; tests/test_handout.py holds the
# two together.
TRANSFER_STATE = "/run/fastchat-lab/transfer"


class HandoutError(ValueError):
    pass


def _address(address):
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        if re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?", str(address)):
            return str(address)
        raise HandoutError("%r is not the serving host's address" % (address,)) from None
    if ip.version != 4:
        raise HandoutError("%s: the hand-out serves over IPv4 (rsync://ADDRESS:PORT)" % ip)
    return str(ip)


def _transfer_name(name):
    """NAME as the transfer helper takes it (its _check_name): a rsync module name and the
    stem of its files under TRANSFER_STATE."""
    if not isinstance(name, str) or not MODULE_RE.match(name) or ".." in name:
        raise HandoutError("%r is not a transfer name" % (name,))
    return name


def _names(names):
    if not isinstance(names, (list, tuple)):
        raise HandoutError("%r is not a name the hand-out serves: give a list of names" % (names,))


def items(names, address, port, module, dest_root, into=None, suffixes=("",)):
    """[{source, dest}] for lab_transfer's pull.

    Without INTO each name is a directory: rsync://ADDRESS:PORT/MODULE/NAME/ replaces
    DEST_ROOT/NAME. With INTO (a directory inside DEST_ROOT) each name is a file, pulled
    with each of SUFFIXES (e.g. "", ".json", ".sha256") into INTO.
    """
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise HandoutError("%r is not a port" % (port,))
    _transfer_name(module)
    if not isinstance(dest_root, str) or not dest_root.startswith("/") or dest_root.endswith("/") \
            or "/../" in dest_root + "/" or "//" in dest_root:
        raise HandoutError("%r is not a normalised absolute directory" % (dest_root,))
    if into is not None and (not isinstance(into, str) or not into.startswith(dest_root + "/")
                             or not NAME_RE.match(into[len(dest_root) + 1:])):
        raise HandoutError("%r is not a directory directly inside %s" % (into, dest_root))
    if isinstance(suffixes, str) or not all(isinstance(s, str) and SUFFIX_RE.match(s)
                                            for s in suffixes):
        raise HandoutError("%r are not file name suffixes" % (suffixes,))
    base = "rsync://%s:%d/%s/" % (_address(address), port, module)
    _names(names)
    out = []
    for name in names:
        if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
            raise HandoutError("%r is not a name the hand-out serves" % (name,))
        if into is None:
            out.append({"source": base + name + "/", "dest": dest_root + "/" + name})
        else:
            out.extend({"source": base + name + suffix, "dest": into} for suffix in suffixes)
    return out


def served_paths(names, directories=True, suffixes=("",)):
    """What the serving host lists for NAMES (lab_transfer_paths): NAME/ for directories,
    else each NAME+SUFFIX."""
    out = []
    _names(names)
    for name in sorted(set(names)):
        if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
            raise HandoutError("%r is not a name the hand-out serves" % (name,))
        out.extend([name + "/"] if directories else [name + s for s in suffixes])
    return out


def lease(name):
    """The lease file of transfer NAME on the serving host: there while a daemon of that
    name may serve (lab_transfer's stop is a no-op where it is not)."""
    return "%s/%s.lease" % (TRANSFER_STATE, _transfer_name(name))


def runs(host, serving_host, wanted, name, probe=None, serving_work=()):
    """Whether HOST runs a hand-out this run: every host where some host lacks something
    (WANTED: the serving host serves it, the others pull what they lack); the serving host
    also where it has work of its own first (SERVING_WORK: what it fetches or makes) or
    where its PROBE (a host_probe result that asked for lease(NAME)) found NAME's lease,
    the mark of a daemon an interrupted run left, which the hand-out's stop ends. On a
    converged lab: no host (a skipped step each, no stop to run)."""
    lease_path = lease(name)
    for what, value in (("wanted", wanted), ("serving_work", serving_work)):
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__"):
            raise HandoutError("%s: %r is not a list" % (what, value))
    if wanted:
        return True
    if host != serving_host:
        return False
    if serving_work:
        return True
    paths = probe.get("paths") if isinstance(probe, Mapping) else None
    state = paths.get(lease_path) if isinstance(paths, Mapping) else None
    return isinstance(state, Mapping) and state.get("exists") is True
