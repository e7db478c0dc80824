# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The fingerprints of the primary keys in an OpenPGP key file (armored or binary), to
check an apt repository's signing key against the fingerprints a role carries before apt
trusts it (standard library only; runs on the lab hosts inside a module).

Only what a fingerprint needs is read (RFC 4880 and RFC 9580 packet framing; version 4
keys: SHA-1 of 0x99, the length and the key packet's body; version 6: SHA-256 of 0x9B,
a four-byte length and the body). Signatures are not checked here: apt checks the
repository's signatures with the key once it is trusted.
"""

import base64
import binascii
import hashlib
import re

PUBLIC_KEY, PUBLIC_SUBKEY = 6, 14
_ARMOR_RE = re.compile(
    rb"-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n(?P<body>.*?)-----END PGP PUBLIC KEY BLOCK-----",
    re.S)
FINGERPRINT_RE = re.compile(r"^(?:[0-9A-F]{40}|[0-9A-F]{64})\Z")


class OpenPGPError(ValueError):
    pass


def normalise(fingerprint):
    """A fingerprint as the roles carry it ("9DC8 5822 ..." or lower case) in one form."""
    if not isinstance(fingerprint, str):
        raise OpenPGPError("%r is not a key fingerprint" % (fingerprint,))
    text = re.sub(r"[\s:]", "", fingerprint).upper()
    if text.startswith("0X"):
        text = text[2:]
    if not FINGERPRINT_RE.match(text):
        raise OpenPGPError("%r is not a key fingerprint (40 or 64 hex digits)" % (fingerprint,))
    return text


def dearmor(data):
    """The binary packets of DATA: ASCII armor (one or more blocks) decoded, binary kept."""
    if not isinstance(data, bytes):
        raise OpenPGPError("a key file is bytes")
    blocks = list(_ARMOR_RE.finditer(data))
    if not blocks:
        if b"-----BEGIN PGP" in data:
            raise OpenPGPError("the file holds an armored block that is not a public key block")
        return data
    out = b""
    for block in blocks:
        lines = block.group("body").replace(b"\r", b"").split(b"\n")
        # Armor headers ("Version: ...") end at the first empty line, if any.
        if b"" in lines and any(b":" in line for line in lines[:lines.index(b"")]):
            lines = lines[lines.index(b"") + 1:]
        payload = b"".join(line.strip() for line in lines
                           if line.strip() and not line.startswith(b"="))
        try:
            out += base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise OpenPGPError("the armored key block is not base64: %s" % exc) from exc
    return out


def packets(data):
    """(tag, body) of each packet of the binary DATA."""
    pos = 0
    while pos < len(data):
        head = data[pos]
        pos += 1
        if not head & 0x80:
            raise OpenPGPError("byte %d is not the start of an OpenPGP packet" % (pos - 1))
        if head & 0x40:  # new format
            tag = head & 0x3F
            if pos >= len(data):
                raise OpenPGPError("a packet header is cut short")
            first = data[pos]
            if first < 192:
                length, pos = first, pos + 1
            elif first < 224:
                if pos + 1 >= len(data):
                    raise OpenPGPError("a packet header is cut short")
                length, pos = ((first - 192) << 8) + data[pos + 1] + 192, pos + 2
            elif first == 255:
                if pos + 4 >= len(data):
                    raise OpenPGPError("a packet header is cut short")
                length, pos = int.from_bytes(data[pos + 1:pos + 5], "big"), pos + 5
            else:
                raise OpenPGPError("partial body lengths do not occur in key files")
        else:  # old format
            tag = (head >> 2) & 0x0F
            kind = head & 0x03
            if kind == 3:
                raise OpenPGPError("indeterminate packet lengths do not occur in key files")
            size = (1, 2, 4)[kind]
            if pos + size > len(data):
                raise OpenPGPError("a packet header is cut short")
            length, pos = int.from_bytes(data[pos:pos + size], "big"), pos + size
        if pos + length > len(data):
            raise OpenPGPError("a packet is cut short (tag %d)" % tag)
        yield tag, data[pos:pos + length]
        pos += length


def fingerprint(body):
    """The fingerprint of a public key packet's BODY (upper-case hex)."""
    if not body:
        raise OpenPGPError("an empty key packet")
    version = body[0]
    if version == 4:
        return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()
    if version == 6:
        return hashlib.sha256(b"\x9b" + len(body).to_bytes(4, "big") + body).hexdigest().upper()
    if version == 5:
        return hashlib.sha256(b"\x9a" + len(body).to_bytes(4, "big") + body).hexdigest().upper()
    raise OpenPGPError("key version %d is not supported (only 4, 5 and 6)" % version)


def primary_fingerprints(data):
    """The fingerprints of the primary keys in the key file DATA, in file order."""
    out = [fingerprint(body) for tag, body in packets(dearmor(data)) if tag == PUBLIC_KEY]
    if not out:
        raise OpenPGPError("the file holds no public key")
    return out


def check(data, trusted, source, setting):
    """The primary fingerprints of DATA when every one is TRUSTED, else OpenPGPError with
    what was found, what is trusted and the fix (apt trusts every key of a signed-by file,
    so one stranger in it is one too many)."""
    wanted = [normalise(f) for f in trusted]
    if not wanted:
        raise OpenPGPError("%s is empty: no signing key would be trusted. Fix: give the "
                           "repository's key fingerprints" % setting)
    found = primary_fingerprints(data)
    strangers = [f for f in found if f not in wanted]
    if strangers:
        raise OpenPGPError(
            "the signing key served at %s is %s, not one this role trusts (%s: %s). A mirror "
            "or proxy that serves another key is refused. Fix: if the repository's publisher "
            "really rotated its key, check the new fingerprint with them and add it to %s"
            % (source, ", ".join(strangers), setting, ", ".join(wanted), setting))
    return found
