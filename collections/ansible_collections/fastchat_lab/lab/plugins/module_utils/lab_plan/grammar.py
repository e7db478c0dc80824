# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The shapes every value that reaches a path, a volume, a URL or a command line must have.

One place for them, checked once while the inventory is read; the rest of the planner
(and every role) can then use the values as they are. Each check returns None when the
value is fine, or a short "what is wrong" text for the caller's message.

Names (README "Names"):
- model names (catalogue keys; FastChat's --model-names, the weights directory
  <weights dir>/<model>, volume specs): 1-64 characters of letters, digits, ".", "_",
  "-", starting and ending with a letter or digit, no "..".
- worker names (compose service and container names): the same, lower case, and not
  the name of a head service.
"""

from __future__ import annotations

import ipaddress
import math
import posixpath
import re
from urllib.parse import urlsplit

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?\Z")
WORKER_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?\Z")
REVISION_RE = re.compile(r"^[0-9a-f]{40}\Z")
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}\Z")
LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
# Characters a path may have: it lands in compose volume specs ("src:dst:ro") and argv.
# A Python class name as config.json's "architectures" gives it.
HF_ARCH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
PATH_RE = re.compile(r"^/[A-Za-z0-9._@+/-]*\Z")
# Host directories the lab must never use for weights: what rsync --delete or a
# bind mount there would break.
SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
               "/run", "/sbin", "/sys", "/usr", "/var/run", "/var/lib/docker",
               "/var/lib/containerd", "/var/lib/dpkg", "/var/lib/apt", "/var/log", "/var/cache",
               "/var/spool", "/var/mail", "/var/lib/systemd")
# Top-level directories that are fine to hold the lab's directory but not to be it.
SHARED_DIRS = ("/", "/home", "/mnt", "/media", "/opt", "/root", "/srv", "/tmp", "/var",
               "/var/lib", "/var/tmp", "/data")
# Container paths the image itself uses (the venv lives in /opt/fastchat).
CONTAINER_DIRS = ("/bin", "/dev", "/etc", "/lib", "/lib64", "/opt/fastchat", "/opt/fastchat-lab",
                  "/proc", "/run", "/sbin", "/sys", "/usr", "/tmp", "/logs")
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(GiB|MiB|KiB|GB|MB|KB|Gb|Mb|Kb)\s*\Z", re.IGNORECASE)
VERSION_RE = re.compile(r"^\d+(?:\.\d+)*\Z")


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A real, finite number (not a bool, not NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def model_name_problem(name) -> str | None:
    if not isinstance(name, str):
        return "%r is not a text name" % (name,)
    if not MODEL_NAME_RE.match(name) or ".." in name:
        return ("%r is not a valid model name (letters, digits, '.', '_', '-', at most 64, "
                "starting and ending with a letter or digit, no '..')" % (name,))
    return None


def worker_name_problem(name, reserved=()) -> str | None:
    if not isinstance(name, str):
        return "%r is not a text name" % (name,)
    if not WORKER_NAME_RE.match(name) or ".." in name:
        return ("%r is not a valid worker name (lower-case letters, digits, '.', '_', '-', "
                "at most 64, starting and ending with a letter or digit, no '..')" % (name,))
    if name in reserved:
        return "%r is the name of a head service (%s)" % (name, ", ".join(sorted(reserved)))
    return None


# Words nearly every answer holds: as an alias (matched as a substring of both answers,
# case-insensitively) they would drop almost every blind vote as identity-revealing.
COMMON_WORDS = frozenset("""the and you are for not this that with have can will your but
what all was one our out get has use any how its may who yes model models assistant chat
answer language help sure here""".split())


def alias_problem(alias) -> str | None:
    """A name a model calls itself (the leaderboard drops a blind vote whose answers hold it):
    short or common words would match nearly every answer."""
    text = alias.strip().casefold() if isinstance(alias, str) else ""
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in alias) or len(text) > 64:
        return "%r is not a name of one line (1-64 characters)" % (alias,)
    short = 3 if text.isascii() else 2
    if len(text) < short or text in COMMON_WORDS:
        return ("%r is so short or common that nearly every answer holds it, and every blind "
                "vote would be dropped as revealing the model" % (alias,))
    return None


def slug(name: str) -> str:
    """A worker-name stem made from a (valid) model name."""
    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")


def revision_problem(revision) -> str | None:
    if not isinstance(revision, str) or not REVISION_RE.match(revision):
        return ("%r is not a pinned commit (40 lower-case hexadecimal characters)"
                % (revision,))
    return None


def source_problem(source) -> str | None:
    """A hub id ("Org/Name") or an http(s):// or file:// git URL."""
    if not isinstance(source, str) or not source:
        return "%r is not a hub id or a URL" % (source,)
    if "://" not in source:
        if HUB_ID_RE.match(source) and ".." not in source:
            return None
        return "%r is not a hub id like \"Org/Name\"" % (source,)
    if any(c.isspace() or ord(c) < 32 or c in "\"'`\\<>|;$" for c in source):
        return "%r has characters a git URL cannot have" % (source,)
    try:
        parts = urlsplit(source)
    except ValueError:
        return "%r is not a URL" % (source,)
    if parts.scheme not in ("https", "http", "file"):
        return "%r uses %s://; only https://, http:// and file:// are fetched" % (
            source, parts.scheme)
    if parts.scheme != "file" and not parts.hostname:
        return "%r has no host" % (source,)
    if not parts.path or parts.path == "/" or ".." in parts.path.split("/"):
        return "%r has no repository path (or one with '..')" % (source,)
    return None


def url_problem(url, schemes=("https", "http", "file")) -> str | None:
    """A base URL (a hub, a mirror): one of ``schemes``, no spaces or quotes."""
    if not isinstance(url, str) or any(c.isspace() or c in "\"'`\\<>|;$" for c in url):
        return "%r is not a URL" % (url,)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "%r is not a URL" % (url,)
    if parts.scheme not in schemes:
        return "%r is not a %s URL" % (url, "/".join(s + "://" for s in schemes))
    if parts.scheme != "file" and not parts.hostname:
        return "%r has no host" % (url,)
    return None


def _under(path: str, dirs) -> str | None:
    for top in dirs:
        if path == top or path.startswith(top.rstrip("/") + "/"):
            return top
    return None


def path_problem(path, what="path") -> str | None:
    """An absolute, normalised path of safe characters."""
    if not isinstance(path, str) or not path.startswith("/"):
        return "%r is not an absolute path" % (path,)
    if not PATH_RE.match(path):
        return "%r has characters a path here cannot have (letters, digits, . _ @ + - /)" % (path,)
    if posixpath.normpath(path) != path or path.startswith("//"):
        return "%r is not a normalised path (no '..', '.', '//' or trailing '/')" % (path,)
    return None


def host_dir_problem(path) -> str | None:
    """A host directory the lab may own (weights): not a system or shared top directory."""
    problem = path_problem(path)
    if problem:
        return problem
    top = _under(path, SYSTEM_DIRS)
    if top:
        return "%r is a system directory (under %s)" % (path, top)
    if path in SHARED_DIRS:
        return "%r is a shared top-level directory, not one the lab can own" % (path,)
    return None


def nested(a: str, b: str) -> bool:
    """Whether normalised absolute paths ``a`` and ``b`` are equal or one holds the other."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def container_dir_problem(path) -> str | None:
    problem = path_problem(path)
    if problem:
        return problem
    if path == "/" or _under(path, CONTAINER_DIRS):
        return "%r is a directory the FastChat image itself uses" % (path,)
    return None


def parse_memory_size(value) -> int:
    """Bytes for a max-memory string, read the way accelerate reads it.

    accelerate.utils.convert_file_size_to_int: "GiB"/"MiB"/"KiB" are powers of two,
    "GB"/"MB"/"KB" powers of ten, a lower-case trailing "b" ("24Gb") means bits. A unit
    is required (accelerate refuses a bare number given as text, which is how FastChat
    hands it over). Raises ValueError.
    """
    if not isinstance(value, str):
        raise ValueError("not a size with a unit")
    match = SIZE_RE.match(value)
    if not match:
        raise ValueError("not a size with a unit")
    number, unit = float(match.group(1)), match.group(2)
    factor = {"gib": 2 ** 30, "mib": 2 ** 20, "kib": 2 ** 10,
              "gb": 10 ** 9, "mb": 10 ** 6, "kb": 10 ** 3}[unit.lower()]
    size = int(number * factor)
    if unit.lower() in ("gb", "mb", "kb") and unit.endswith("b"):
        size //= 8
    if size <= 0:
        raise ValueError("not positive")
    return size


def address_problem(address) -> str | None:
    """An IPv4 address or a host name (RFC 1123); IPv6 is refused (see the README)."""
    if not isinstance(address, str) or not address:
        return "%r is not an address" % (address,)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.version == 6:
            return ("%s is an IPv6 address; the lab publishes and firewalls its ports on "
                    "IPv4 only" % address)
        if ip.is_loopback or ip.is_unspecified or ip.is_multicast:
            return ("%s is a loopback, unspecified or multicast address, which the other "
                    "hosts' containers cannot reach" % address)
        return None
    if len(address) > 253:
        return "%r is longer than a host name may be" % (address[:40] + "...",)
    labels = address.rstrip(".").split(".")
    if not all(LABEL_RE.match(label) for label in labels):
        return ("%r is neither an IPv4 address nor a host name (letters, digits, '-' and "
                "dots; no scheme, port or path)" % (address,))
    if labels[-1].isdigit():
        return "%r looks like an IPv4 address but is not one" % (address,)
    return None


def is_ipv4(text) -> bool:
    try:
        return isinstance(text, str) and ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def is_ip(text) -> bool:
    try:
        ipaddress.ip_address(str(text))
    except ValueError:
        return False
    return True


def version_tuple(version: str) -> tuple:
    return tuple(int(x) for x in version.split("."))


def spec_problem(spec) -> str | None:
    """A version range like ">=4.32,<4.57" (comparisons joined by commas)."""
    if not isinstance(spec, str) or not spec.strip():
        return "%r is not a version range like \">=4.32,<4.34\"" % (spec,)
    for part in spec.split(","):
        match = re.match(r"^\s*(>=|<=|==|!=|<|>)\s*(\S+)\s*\Z", part)
        if not match or not VERSION_RE.match(match.group(2)):
            return "%r is not a version range like \">=4.32,<4.34\"" % (spec,)
    return None


def version_in(version: str, spec: str) -> bool:
    """Whether ``version`` ("4.33.3") satisfies ``spec`` (checked by :func:`spec_problem`).

    Versions compare by their numbers, padded with zeros ("4.34" == "4.34.0").
    """
    def padded(a, b):
        width = max(len(a), len(b))
        return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))

    have = version_tuple(version)
    for part in spec.split(","):
        op, want = re.match(r"^\s*(>=|<=|==|!=|<|>)\s*(\S+)\s*\Z", part).groups()
        left, right = padded(have, version_tuple(want))
        ok = {">=": left >= right, "<=": left <= right, "==": left == right,
              "!=": left != right, "<": left < right, ">": left > right}[op]
        if not ok:
            return False
    return True
