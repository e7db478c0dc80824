# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The checked description of every lab-wide setting the roles read (issue 24).

A role's settings are the options of its ``meta/argument_specs.yml`` (the main entry
point's and the other entry points' optional ones: :func:`setting_options`).
Their types and choices are checked here by Ansible's own argument-spec validator, with
the very spec the role runs at its start (not a second copy); their shapes by the table
``SHAPES`` below: what each value may look like before it reaches a path the play owns
or empties, a script, a unit, a URL, git's command line or environment, Docker's
daemon.json, or a PEM file. Every role's ``tasks/settings.yml`` calls
:func:`setting_problems` through the filter ``fastchat_lab.lab.setting_problems``;
``playbooks/settings.yml`` (imported by plan.yml) runs them all on every lab host and
reports every problem at once, in the planner's form
``host: variable: what. Fix: what to do.``, before any host changes.

Every grammar here is matched whole (``re.fullmatch``): ``$`` would let a trailing
newline through.
"""

from __future__ import annotations

import decimal
import math
import posixpath
import re
from urllib.parse import urlsplit

from ansible_collections.fastchat_lab.lab.plugins.module_utils import openpgp
from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import grammar

# --- grammars --------------------------------------------------------------------------

HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252}[A-Za-z0-9])?")
DNS_RE = re.compile(r"(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
# A tag, a branch or a commit, as git check-ref-format allows them, narrowed to the
# characters that are safe on any command line: never a leading "-" (read as an option).
GIT_REF_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,199}")
# Docker image references: [registry[:port]/]path[:tag][@sha256:hex].
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_NAME_RE = re.compile(r"(?:[A-Za-z0-9.-]+(?::[0-9]{1,5})?/)?%s(?:/%s)*"
                           % (_IMAGE_COMPONENT, _IMAGE_COMPONENT))
IMAGE_REF_RE = re.compile(r"(?P<name>[^:@]+(?::[0-9]{1,5}/[^:@]+)?)"
                          r"(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(?:@sha256:[0-9a-f]{64})?")
# A Debian or upstream version ("27.5.1", "1.1-1", "515.105.01").
VERSION_RE = re.compile(r"[0-9][A-Za-z0-9.+~-]{0,63}")
# systemd OnCalendar=: the shorthands, or an expression of calendar characters.
CALENDAR_WORDS = ("minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually",
                  "quarterly", "semiannually")
CALENDAR_RE = re.compile(r"[A-Za-z0-9*][A-Za-z0-9*:.,/~ -]{0,63}")
# Systemd units and files the lab owns: always "fastchat-lab..." (never ssh.service).
OWNED_UNIT_RE = re.compile(r"fastchat-lab(?:-[a-z0-9]+)*\.service")
UNIX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
SIZE_RE = re.compile(r"[1-9][0-9]{0,5}[kmgKMG]")
DOCKER_KEY_RE = re.compile(r"[a-z][a-z0-9-]{0,63}")
DISTRO_RE = re.compile(r"[a-z]+[0-9]{2,4}")
CUDA_RE = re.compile(r"[0-9]{1,2}\.[0-9]{1,2}")
STACK_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
NO_PROXY_RE = re.compile(r"[A-Za-z0-9.*:/_-]+(?:,[A-Za-z0-9.*:/_-]+)*")
# Text that lands in a page, a comment or a log line: no control characters.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Environment variables git may be given (model_weights_git_environment): proxies, the
# CA bundle and the stall limits. Not GIT_CONFIG_* (core.fsmonitor runs a command), not
# GIT_SSH*, GIT_ASKPASS, GIT_EXEC_PATH, GIT_TEMPLATE_DIR, LD_* or PATH.
GIT_ENV_KEYS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                "NO_PROXY", "GIT_SSL_CAINFO", "GIT_HTTP_LOW_SPEED_LIMIT",
                "GIT_HTTP_LOW_SPEED_TIME", "GIT_LFS_PROGRESS", "GIT_TRACE",
                "GIT_CURL_VERBOSE", "GIT_LFS_SKIP_SMUDGE", "GIT_TERMINAL_PROMPT",
                "GIT_LFS_CONCURRENT_TRANSFERS")
# Directories of system files that no directory of the lab may be, nor sit under: the
# lab's own directories are created, chown'ed, chmod'ed, emptied or bind-mounted.
NEVER_DIRS = tuple(d for d in grammar.SYSTEM_DIRS if d not in ("/etc", "/var/log", "/var/cache"))
# System directories that may hold a directory of the lab's own, named fastchat-lab*
# (/etc/fastchat-lab, /var/log/fastchat-lab), and nothing else of theirs.
LAB_ONLY_DIRS = ("/etc", "/var/log", "/var/cache")
# Directories that hold others' directories: a lab directory may sit below, never be one.
SHARED_DIRS = grammar.SHARED_DIRS + ("/var/backups", "/var/log", "/var/cache", "/var/opt",
                                     "/var/local", "/usr/local", "/etc")
# Where the lab's root-owned helpers and scripts may go: its own directory names only.
HELPER_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/local/libexec")
OWN_DIRS = ("/usr/local/libexec/fastchat-lab", "/opt/fastchat-lab")
PEM_BLOCK_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n[A-Za-z0-9+/=\r\n]+-----END \1-----")

HIDDEN = "(hidden)"
# What the vars lookup gives for a setting with no value at all (the filter drops it).
UNSET = "__fastchat_lab_unset__"


class Problem(Exception):
    """What is wrong with a value, and what to do (raised by the shape checks)."""

    def __init__(self, what, fix):
        super().__init__(what)
        self.what = what
        self.fix = fix


def _shown(value, secret=False):
    if secret:
        return HIDDEN
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _text(value, secret=False, empty=False, most=4096):
    if not isinstance(value, str):
        raise Problem("must be text, got %s" % type(value).__name__, "give a quoted string")
    if not value and not empty:
        raise Problem("is empty", "give a value or leave the variable unset for the default")
    if CONTROL_RE.search(value):
        raise Problem("%s has a control character (a newline, a tab, ...)" % _shown(value, secret),
                      "write it on one line, without control characters")
    if len(value) > most:
        raise Problem("is longer than %d characters" % most, "shorten it")
    return value


def _list(value):
    if not isinstance(value, list):
        raise Problem("must be a list, got %s" % type(value).__name__,
                      "write a YAML list, e.g. [a, b] (a comma-separated string is not one)")
    return value


def _dict(value):
    if not isinstance(value, dict):
        raise Problem("must be a mapping, got %s" % type(value).__name__,
                      "write a YAML mapping, e.g. {key: value}")
    return value


# --- shapes: each takes the value and raises Problem, or returns ------------------------

def free_text(most=200):
    def check(value):
        _text(value, most=most)
    return check


def optional(shape):
    """The empty string (the role's "not set"), or ``shape``."""
    def check(value):
        if value == "" or value is None:
            return
        shape(value)
    return check


def abs_path(value, what="path"):
    _text(value)
    problem = grammar.path_problem(value)
    if problem:
        raise Problem(problem, "give an absolute normalised %s of letters, digits and . _ @ + - /"
                      % what)


def owned_dir(value):
    """A directory the lab creates, owns, chmods or empties."""
    abs_path(value, "directory")
    fix = ("use a directory of the lab's own, e.g. /srv/fastchat-lab/... or "
           "/var/lib/fastchat-lab/...")
    top = grammar._under(value, NEVER_DIRS)
    if top:
        raise Problem("%r is a system directory (under %s), which the play would own and "
                      "change" % (value, top), fix)
    shared = value in SHARED_DIRS or re.fullmatch(r"/home/[^/]+", value)
    if shared or value.count("/") < 2:
        raise Problem("%r is a shared directory, not one the lab can own (the play would "
                      "change its owner and mode)" % value,
                      "use a directory of its own below it, e.g. %s/fastchat-lab"
                      % value.rstrip("/"))
    top = grammar._under(value, LAB_ONLY_DIRS)
    if top and not value[len(top) + 1:].split("/")[0].startswith("fastchat-lab"):
        raise Problem("%r is a system directory under %s, which holds the system's own files"
                      % (value, top),
                      "use %s/fastchat-lab (or another fastchat-lab* directory there)" % top)


def data_root(value):
    """Docker's data-root: Docker's own default, or a directory of the lab's."""
    if value in ("/var/lib/docker",):
        return
    owned_dir(value)


def control_path(value):
    """A path on the control node (relative to the working directory, or absolute)."""
    _text(value)
    if value.startswith("-") or not re.fullmatch(r"[A-Za-z0-9._@+/~-]+", value):
        raise Problem("%r is not a path of letters, digits and . _ @ + - / ~" % value,
                      "give a plain path on the control node")


def control_dir(value):
    """A directory of the control node (Ansible's own modules use it, never a shell): an
    absolute normalised path, spaces allowed, not a system or shared directory."""
    _text(value)
    if not value.startswith("/") or posixpath.normpath(value) != value or value.startswith("//"):
        raise Problem("%r is not an absolute normalised path" % value,
                      "give an absolute path without '..', '.', '//' or a trailing '/'")
    top = grammar._under(value, NEVER_DIRS + LAB_ONLY_DIRS)
    if top or value in SHARED_DIRS:
        raise Problem("%r is a system or shared directory of the control node" % value,
                      "use a directory of its own, e.g. ~/.fastchat-lab/ca (written as an "
                      "absolute path)")


def helper_path(value):
    """A root-owned file the lab writes (and its removal path deletes): a fastchat-lab* file
    directly in a directory of local commands, or any file in a directory of the lab's own."""
    abs_path(value, "file path")
    parent, name = posixpath.split(value)
    own = any(value.startswith(top + "/") for top in OWN_DIRS)
    local = parent in HELPER_DIRS and re.fullmatch(r"fastchat[-_]lab[A-Za-z0-9._-]*", name)
    if value in OWN_DIRS or not (own or local):
        raise Problem("%r is not a file of the lab's own: the role writes it as root and "
                      "removes it again, and a system command or directory would go with it"
                      % value,
                      "name a file fastchat-lab-* directly in %s, or any file below %s"
                      % (", ".join(HELPER_DIRS), " or ".join(OWN_DIRS)))


def owned_unit(value):
    _text(value)
    if not OWNED_UNIT_RE.fullmatch(value):
        raise Problem("%r is not a unit of the lab's own: the play writes, overrides and "
                      "restarts it, and would do so to an existing service (ssh.service)" % value,
                      "name it fastchat-lab-<word>.service, e.g. fastchat-lab-firewall.service")


def calendar(value):
    _text(value)
    if value not in CALENDAR_WORDS and not CALENDAR_RE.fullmatch(value):
        raise Problem("%r is not a systemd calendar expression" % value,
                      "use hourly, daily, weekly or an OnCalendar= expression such as "
                      "\"*-*-* 03:00:00\" (see systemd.time(7))")


def _url(value, schemes, what, path=False, secret=False):
    _text(value, secret=secret)
    shown = re.sub(r"://[^/]*@", "://***@", value)
    if any(c in value for c in " \"'`\\<>|;$^{}"):
        raise Problem("%r has characters a URL here cannot have (spaces, quotes or shell "
                      "characters)" % shown, "give the plain URL")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise Problem("%r is not a URL" % shown, "give a URL such as https://host/path")
    if parts.scheme not in schemes:
        raise Problem("%r is not a %s URL" % (shown, " or ".join(s + "://" for s in schemes)),
                      "give %s; other transports (ext::, ssh://, ...) are refused" % what)
    if "@" in parts.netloc:
        raise Problem("%s://%s/... carries credentials (user:password@), which would land in "
                      "logs, images and configuration files" % (parts.scheme, parts.hostname or ""),
                      "give the URL without them; a mirror that needs them takes a netrc or "
                      "a proxy on the host")
    if parts.scheme != "file":
        host = parts.hostname or ""
        if not (HOSTNAME_RE.fullmatch(host) or grammar.is_ip(host.strip("[]"))):
            raise Problem("%r names no valid host" % shown, "give %s" % what)
        if port == 0:
            raise Problem("%r has port 0" % shown, "give a real port or none")
    if path and (not parts.path or parts.path == "/"):
        raise Problem("%r has no path" % shown, "give %s" % what)
    if ".." in parts.path.split("/") or parts.fragment:
        raise Problem("%r has a '..' or a #fragment" % shown, "give %s" % what)


def url(schemes=("https", "http"), what="an http(s):// URL", path=False):
    def check(value):
        _url(value, schemes, what, path=path)
    return check


def git_url(value):
    """Where a repository is cloned: https://, http:// or file:// (never ext:: or ssh)."""
    _url(value, ("https", "http", "file"), "an https://, http:// or file:/// repository URL",
         path=True)


def mirror_url(value):
    """A mirror's base URL pasted into a sed program and apt's sources: URL characters only."""
    _url(value, ("https", "http"), "the mirror's http(s):// base URL", path=True)
    if not re.fullmatch(r"https?://[A-Za-z0-9.:-]+(/[A-Za-z0-9._~%+-]+)+/?", value):
        raise Problem("%r has characters a mirror URL here cannot have (it goes into apt's "
                      "sources and a sed program)" % value,
                      "give a plain base URL: letters, digits and . _ ~ % + - in its path")


def archive_mirror(suffix):
    """A mirror of Debian's or Ubuntu's archive: its base URL, ending in ``suffix``."""
    def check(value):
        mirror_url(value)
        if not value.rstrip("/").endswith(suffix):
            raise Problem("%r does not end in %s: the build points the image's %s sources "
                          "at it" % (value, suffix, suffix.strip("/")),
                          "give the archive's base URL, e.g. http://mirrors.tuna.tsinghua.edu.cn%s"
                          % suffix)
    return check


def git_ref(value):
    _text(value)
    if (not GIT_REF_RE.fullmatch(value) or ".." in value or "//" in value
            or value.endswith((".", "/", ".lock")) or "@{" in value):
        raise Problem("%r is not a tag, branch or commit name git and a command line can take "
                      "(it must not begin with '-')" % value,
                      "give a tag (v0.2.36), a branch or a 40-hex commit")


def image_ref(value):
    _text(value)
    match = IMAGE_REF_RE.fullmatch(value)
    if not match or not IMAGE_NAME_RE.fullmatch(match.group("name")):
        raise Problem("%r is not a Docker image reference" % value,
                      "give [registry/]name[:tag][@sha256:digest], e.g. debian:bookworm-slim")


def image_name(value):
    _text(value)
    if not IMAGE_NAME_RE.fullmatch(value) or ":" in value.split("/")[-1]:
        raise Problem("%r is not a Docker repository name (no tag)" % value,
                      "give lower-case name components joined by /, e.g. fastchat-lab/fastchat")


def pattern(regex, what, fix):
    """Text matched whole by ``regex`` ("%r is not <what>")."""
    compiled = re.compile(regex)

    def check(value):
        _text(value)
        if not compiled.fullmatch(value):
            raise Problem("%r is not %s" % (value, what), fix)
    return check


version = pattern(VERSION_RE.pattern, "a version", "give a version such as 1.2.3 or 1.1-1")
commit = pattern(r"[0-9a-f]{40}", "a full commit id (40 lower-case hex digits)",
                 "give the 40-hex commit the ref must resolve to (git ls-remote URL REF^{}), or '' "
                 "to record the first one")
host_name = pattern(HOSTNAME_RE.pattern, "an inventory host name",
                    "give the name of a host of the inventory")
unix_user = pattern(UNIX_USER_RE.pattern, "a user name",
                    "give a login name (lower-case letters, digits, _ and -)")
no_proxy = pattern(NO_PROXY_RE.pattern, "a comma-separated list of hosts, domains or networks",
                   "write it as host1,.domain,10.0.0.0/8 without spaces")
log_size = pattern(SIZE_RE.pattern, "a size such as 100m", "give a number and k, m or g, e.g. 100m")
stack_name = pattern(STACK_RE.pattern, "a stack name", "use the names the README lists")


def count(low, high):
    def check(value):
        if not grammar.is_int(value) or not low <= value <= high:
            raise Problem("%s is not a whole number from %d to %d" % (_shown(value), low, high),
                          "give a number in that range")
    return check


def port(value):
    count(1, 65535)(value)


def number(low, high):
    def check(value):
        if not grammar.is_number(value) or not low <= value <= high:
            raise Problem("%s is not a number from %s to %s" % (_shown(value), low, high),
                          "give a number in that range")
    return check


def list_of(shape, most=256, unique=False):
    def check(value):
        _list(value)
        if len(value) > most:
            raise Problem("has %d entries, more than %d" % (len(value), most), "give fewer")
        for pos, item in enumerate(value):
            try:
                shape(item)
            except Problem as exc:
                raise Problem("entry %d: %s" % (pos + 1, exc.what), exc.fix)
        if unique and len(set(map(str, value))) != len(value):
            raise Problem("names an entry twice", "give each once")
    return check


def key_fingerprints(value):
    """The signing keys a role trusts for a repository: at least one, each 40 or 64 hex
    digits (spaces allowed, as publishers print them)."""
    _list(value)
    if not value:
        raise Problem("is empty: no signing key would be trusted",
                      "give the repository's key fingerprints (the role's default is its publisher's)")
    for pos, item in enumerate(value):
        try:
            openpgp.normalise(item)
        except openpgp.OpenPGPError as exc:
            raise Problem("entry %d: %s" % (pos + 1, exc),
                          "give the full fingerprint, as gpg --fingerprint prints it") from None


def dns_name_or_ip(value):
    _text(value)
    if grammar.is_ip(value):
        return
    if len(value) > 253 or not DNS_RE.fullmatch(value):
        raise Problem("%r is neither a DNS name nor an IP address" % value,
                      "give a name such as lab.example.org or an address")


def git_environment(value):
    _dict(value)
    for key, item in value.items():
        if key not in GIT_ENV_KEYS:
            raise Problem("%r is not an environment variable the role hands git (%s)"
                          % (key, ", ".join(GIT_ENV_KEYS)),
                          "set proxies, GIT_SSL_CAINFO or the stall limits only; git's "
                          "configuration (GIT_CONFIG_*) can make it run commands")
        if not isinstance(item, (str, int)) or isinstance(item, bool):
            raise Problem("%s: must be text or a number" % key, "quote the value")
        _text(str(item), empty=True, most=1024)
        if key.lower().endswith("_proxy") and key.lower() != "no_proxy" and item:
            _url(str(item), ("http", "https"), "an http(s):// proxy URL")


def _no_control(value, where):
    """No control character in any text of a nested structure (keys included)."""
    if isinstance(value, str):
        if CONTROL_RE.search(value):
            raise Problem("%s: %r has a control character" % (where, value),
                          "write it on one line, without control characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_control(key, where)
            _no_control(item, where)
    elif isinstance(value, list):
        for item in value:
            _no_control(item, where)


def daemon_options(value):
    """Extra daemon.json keys: shapes of the keys, no control characters anywhere (the
    values are written as JSON data), and never an unauthenticated TCP socket."""
    _dict(value)
    _no_control(value, "daemon.json")
    for key in value:
        if not isinstance(key, str) or not DOCKER_KEY_RE.fullmatch(key):
            raise Problem("%r is not a daemon.json key" % (key,), "use dockerd's key names")
    hosts = value.get("hosts", [])
    if not isinstance(hosts, list):
        raise Problem("hosts must be a list, got %s" % type(hosts).__name__,
                      "write hosts: [unix:///var/run/docker.sock]")
    for host in hosts:
        if not isinstance(host, str) or not host.startswith(("unix://", "fd://", "tcp://")):
            raise Problem("hosts: %r is not a unix://, fd:// or tcp:// socket" % (host,),
                          "give a socket address")
        if host.startswith("tcp://") and value.get("tlsverify") is not True:
            raise Problem("hosts: %r opens Docker's API on TCP without TLS client "
                          "verification: whoever reaches it is root on the host" % host,
                          "remove it, or set tlsverify: true with tlscacert, tlscert and tlskey")
    for key in ("registry-mirrors", "insecure-registries", "dns", "exec-opts"):
        if key in value and not isinstance(value[key], list):
            raise Problem("%s must be a list, got %s" % (key, type(value[key]).__name__),
                          "write a YAML list")
    for key in ("data-root", "log-driver", "log-opts", "default-runtime", "runtimes"):
        if key in value:
            raise Problem("%s is set by the role's own variables" % key,
                          "use docker_data_root, docker_log_*, docker_nvidia_runtime(_default)")


def cuda_extra_support(value):
    _dict(value)
    for key, item in value.items():
        if not isinstance(key, str) or not DISTRO_RE.fullmatch(key):
            raise Problem("%r is not a repository distribution such as debian12 or ubuntu2204"
                          % (key,), "name NVIDIA's directory")
        _list(item)
        for cuda in item:
            if not isinstance(cuda, str) or not CUDA_RE.fullmatch(cuda):
                raise Problem("%s: %r is not a CUDA version MAJOR.MINOR" % (key, cuda),
                              "quote it, e.g. \"12.4\"")


def stack_urls(value):
    _dict(value)
    for key, item in value.items():
        if not isinstance(key, str) or not STACK_RE.fullmatch(key):
            raise Problem("%r is not a stack name" % (key,), "use the stacks' names")
        if item not in ("", None):
            _url(item, ("https", "http", "file"), "the index's http(s):// URL", path=True)


def argv_list(value):
    _list(value)
    if not value:
        raise Problem("is an empty command", "give the command and its arguments as a list")
    for item in value:
        _text(item, most=256)


def pem(kinds, what, secret=False, empty=True):
    """PEM text of ``kinds`` of blocks only (a CA bundle holds no private key)."""
    def check(value):
        if value == "" and empty:
            return
        _text_pem(value, secret)
        blocks = PEM_BLOCK_RE.findall(value)
        if not blocks:
            if value.startswith("/") and "\n" not in value:
                raise Problem("%s is a path; the variable takes the PEM text itself"
                              % _shown(value, secret),
                              "give the file's content, e.g. \"{{ lookup('file', '%s') }}\""
                              % ("cert.pem" if secret else value))
            raise Problem("is not PEM text (-----BEGIN ...----- blocks)", "give %s" % what)
        others = sorted(set(b for b in blocks if b not in kinds))
        if others:
            raise Problem("holds %s where %s goes" % (" and ".join(others), what),
                          "give %s only%s" % (what, "" if "PRIVATE KEY" in " ".join(kinds) else
                                              "; a private key never goes here"))
    return check


def _text_pem(value, secret):
    if not isinstance(value, str):
        raise Problem("must be text, got %s" % type(value).__name__, "give PEM text")
    if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", value):
        raise Problem("has a control character", "give plain PEM text")


def pem_file(kinds, what):
    """A PEM file on the control node (its blocks checked as for :func:`pem`)."""
    def check(value):
        abs_path(value, "file path")
        try:
            with open(value, encoding="ascii", errors="replace") as handle:
                text = handle.read(4 * 1024 * 1024)
        except OSError as exc:
            raise Problem("%r cannot be read on the control node (%s)" % (value, exc.strerror),
                          "give the path of %s on the control node" % what)
        pem(kinds, what, empty=False)(text)
    return check


def firewall_sources(value):
    """IPv4 addresses or networks, pasted into a root script's rules (module_utils/firewall.py
    owns their grammar)."""
    from ansible_collections.fastchat_lab.lab.plugins.module_utils import firewall

    _list(value)
    for pos, item in enumerate(value):
        problem = firewall.source_problem(item)
        if problem:
            raise Problem("entry %d: %s" % (pos + 1, problem), firewall.SOURCES_FIX)


def _exclude(value):
    _text(value, most=256)
    # The transfer helper's own grammar (roles/lab_transfer/files, PATTERN_RE).
    if value.startswith("-") or not re.fullmatch(r"[A-Za-z0-9._*/-]+", value):
        raise Problem("%r is not an rsync exclude pattern of plain characters" % value,
                      "give a pattern of letters, digits and . _ * / - such as *.tmp or subdir/")


def choice(*values):
    def check(value):
        if value not in values:
            raise Problem("%s is not one of %s" % (_shown(value), ", ".join(map(str, values))),
                          "use one of those")
    return check


def anything(value):
    """Booleans and settings another check owns (the planner's, the deploy's keys)."""
    return None


CERTS = ("CERTIFICATE", "TRUSTED CERTIFICATE")
KEYS = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")

# Every setting of every role, by its shape. Booleans and numbers that the argument
# specs type fully, and the settings other checks own (the planner's grammar, the
# deploy's keys and logins, the hub's token), are ``anything`` here; tests/test_settings.py
# checks that this table names every option of every role's main argument spec.
SHAPES = {
    # docker
    "docker_install_source": anything,
    "docker_china_mirror": anything,
    "docker_repo_url": url(("https", "http", "file"), "the repository's http(s):// URL", True),
    "docker_repo_key_fingerprints": key_fingerprints,
    "docker_repo_el_key_fingerprints": key_fingerprints,
    "docker_ce_version": version,
    "docker_compose_plugin_version": version,
    "docker_containerd_version": version,
    "docker_install_python_sdk": anything,
    "docker_registry_mirrors": list_of(url(("https", "http"), "a registry mirror's http(s):// URL")),
    "docker_log_driver": choice("json-file", "local", "journald", "syslog", "gelf", "fluentd",
                                "awslogs", "splunk", "gcplogs", "none"),
    "docker_log_max_size": log_size,
    "docker_log_max_file": count(1, 100),
    "docker_data_root": optional(data_root),
    "docker_nvidia_runtime": anything,
    "docker_nvidia_runtime_default": anything,
    "docker_daemon_options": daemon_options,
    "docker_users": list_of(unix_user, unique=True),
    "docker_service_state": anything,
    "docker_service_enabled": anything,
    "docker_restart": anything,
    # fastchat_deploy (keys, logins and the page: module_utils/deploy_settings.py)
    "fastchat_deploy_api_keys": anything,
    "fastchat_deploy_open_api": anything,
    "fastchat_deploy_web_ui_users": anything,
    "fastchat_deploy_open_web_ui": anything,
    "fastchat_deploy_lab_name": free_text(80),
    "fastchat_deploy_page": anything,
    "fastchat_deploy_log_days": anything,
    "fastchat_deploy_worker_start_period": count(10, 86400),
    "fastchat_deploy_wait_timeout": count(10, 86400),
    # fastchat_image
    "fastchat_image_china_mirror": anything,
    "fastchat_image_github_url": url(("https", "http", "file"), "GitHub's (or its mirror's) base URL",
                                     False),
    "fastchat_image_repo_url": git_url,
    "fastchat_image_llamacpp_repo_url": git_url,
    "fastchat_image_fastchat_ref": git_ref,
    "fastchat_image_fastchat_commit": optional(commit),
    "fastchat_image_compat_patch": anything,
    "fastchat_image_lab_page_patch": anything,
    "fastchat_image_base_image": image_ref,
    "fastchat_image_name": image_name,
    "fastchat_image_stacks": list_of(stack_name, unique=True),
    "fastchat_image_build_host": optional(host_name),
    "fastchat_image_work_dir": owned_dir,
    "fastchat_image_apt_mirror": optional(archive_mirror("/debian")),
    "fastchat_image_pip_index_url": optional(url(("https", "http", "file"), "the package index's URL",
                                                 True)),
    "fastchat_image_torch_index_url": stack_urls,
    "fastchat_image_wheelhouse": optional(abs_path),
    "fastchat_image_offline": anything,
    "fastchat_image_llamacpp_cuda_build_image": image_ref,
    "fastchat_image_llamacpp_ubuntu_mirror": optional(archive_mirror("/ubuntu")),
    "fastchat_image_llamacpp_build_jobs": count(0, 512),
    "fastchat_image_extra_ca_bundle": optional(pem_file(CERTS, "CA certificates")),
    "fastchat_image_http_proxy": optional(url(("http", "https"), "the proxy's http(s):// URL")),
    "fastchat_image_https_proxy": optional(url(("http", "https"), "the proxy's http(s):// URL")),
    "fastchat_image_no_proxy": optional(no_proxy),
    "fastchat_image_build_network": choice("host", "default"),
    "fastchat_image_build_timeout": count(60, 7 * 86400),
    "fastchat_image_transfer_port": port,
    # gpu_facts
    "fastchat_nvidia_smi_path": optional(abs_path),
    "fastchat_gpu_facts_print": anything,
    # lab_backup (module_utils/backup_settings.py owns the directory's relation to the others)
    "lab_backup_dir": owned_dir,
    "lab_backup_keep": anything,
    "lab_backup_schedule": calendar,
    "lab_backup_timer": anything,
    "lab_backup_restore_from": anything,
    # lab_firewall
    "lab_firewall_enabled": anything,
    "lab_firewall_allowed_sources": firewall_sources,
    "lab_firewall_script": helper_path,
    "lab_firewall_unit": owned_unit,
    # lab_judge
    "fastchat_judge_out": control_path,
    "lab_judge_model": optional(pattern(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}", "a model name",
                                        "give the model's name as the API lists it")),
    "lab_judge_url": optional(url(("https", "http"), "the endpoint's http(s):// /v1 base URL",
                                  True)),
    "lab_judge_key": optional(pattern(r"[!-~]{1,512}", "a key",
                                      "give the endpoint's key from ansible-vault")),
    "lab_judge_api_url": optional(url(("https", "http"), "the lab API's http(s):// /v1 base URL",
                                      True)),
    "lab_judge_api_key_name": optional(pattern(
        r"[A-Za-z0-9](?:[A-Za-z0-9._@-]{0,62}[A-Za-z0-9])?", "a key's name",
        "give the name of one of fastchat_deploy_api_keys")),
    "lab_judge_from_logs": anything,
    "lab_judge_questions_file": optional(control_path),
    "lab_judge_max_questions": count(1, 10000),
    "lab_judge_seed": count(0, 2 ** 32 - 1),
    "lab_judge_temperature": number(0, 2),
    "lab_judge_max_tokens": count(1, 32768),
    "lab_judge_judge_max_tokens": count(1, 32768),
    "lab_judge_resamples": count(0, 100_000),
    "lab_judge_publish": anything,
    # lab_leaderboard
    "fastchat_leaderboard_out": control_path,
    "lab_leaderboard_min_battles": count(1, 1_000_000),
    "lab_leaderboard_resamples": count(10, 100_000),
    "lab_leaderboard_seed": count(0, 2 ** 32 - 1),
    "lab_leaderboard_include_named": anything,
    "lab_leaderboard_daily_cap": anything,
    "lab_leaderboard_keep_backups": anything,
    "lab_leaderboard_publish": anything,
    "lab_leaderboard_timer": anything,
    "lab_leaderboard_timer_schedule": calendar,
    # lab_plan: the planner checks these (module_utils/lab_plan).
    "fastchat_models": anything,
    "fastchat_models_extra": anything,
    "fastchat_controller_port": anything,
    "fastchat_worker_base_port": anything,
    "fastchat_api_port": anything,
    "fastchat_web_ui_port": anything,
    "fastchat_api_bind": anything,
    "fastchat_web_ui_bind": anything,
    "fastchat_tls": anything,
    "fastchat_api_backend_port": anything,
    "fastchat_web_ui_backend_port": anything,
    "fastchat_dispatch_method": anything,
    "fastchat_models_dir": anything,
    "fastchat_weights_dir": anything,
    "fastchat_logs_dir": anything,
    # The planner checks its shape only; the lab owns and chmods it.
    "fastchat_deploy_dir": owned_dir,
    "fastchat_llamacpp_commit": anything,
    "fastchat_rehearsal": anything,
    "fastchat_lab_plan_print": anything,
    "fastchat_lab_plan_file": optional(control_path),
    # lab_proxy
    "lab_proxy_tls_cert": pem(CERTS, "the server certificate (and its chain)"),
    "lab_proxy_tls_key": pem(KEYS, "the certificate's private key", secret=True),
    "lab_proxy_tls_ca": pem(CERTS, "the CA certificate"),
    "lab_proxy_ca_dir": control_dir,
    "lab_proxy_cert_days": count(1, 825),
    "lab_proxy_extra_names": list_of(dns_name_or_ip, most=100, unique=True),
    # lab_transfer
    "lab_transfer_helper": helper_path,
    "lab_transfer_exclude": list_of(_exclude, most=100),
    "lab_transfer_lifetime": count(60, 7 * 86400),
    "lab_transfer_wait": count(0, 7 * 86400),
    # model_weights (the hub URL, token and its hosts: module_utils/hub.py)
    "model_weights_china_mirror": anything,
    "model_weights_hub": anything,
    "model_weights_hub_url": anything,
    "model_weights_hub_token": anything,
    "model_weights_token_hosts": anything,
    "model_weights_cache_host": optional(host_name),
    "model_weights_min_free_gb": number(0, 100_000),
    "model_weights_fetch_timeout": count(60, 30 * 86400),
    "model_weights_gguf_timeout": count(60, 30 * 86400),
    "model_weights_progress_interval": count(1, 3600),
    "model_weights_transfer_port": port,
    "model_weights_git_environment": git_environment,
    # nvidia_container_toolkit
    "nvidia_container_toolkit_china_mirror": anything,
    "nvidia_container_toolkit_repo_url": url(("https", "http", "file"), "the repository's URL", True),
    "nvidia_container_toolkit_version": version,
    "nvidia_container_toolkit_key_fingerprints": key_fingerprints,
    "nvidia_container_toolkit_default_runtime": anything,
    "nvidia_container_toolkit_verify": anything,
    "nvidia_container_toolkit_verify_image": image_ref,
    "nvidia_container_toolkit_verify_command": argv_list,
    "nvidia_container_toolkit_verify_expect": free_text(200),
    # nvidia_driver
    "nvidia_driver_force": anything,
    "nvidia_driver_pci_devices_path": abs_path,
    "nvidia_driver_proc_version_file": abs_path,
    "nvidia_driver_branch": pattern(r"[0-9]{3}", "a three-digit driver branch",
                                    "quote it, e.g. \"525\""),
    "nvidia_driver_version": optional(pattern(r"[0-9]{3}\.[0-9]{1,3}(\.[0-9]{1,3})?",
                                              "a driver version", "e.g. \"525.147.05\"")),
    "nvidia_driver_replace_other_branch": anything,
    "nvidia_driver_blacklist_nouveau": anything,
    "nvidia_driver_persistenced": anything,
    "nvidia_driver_cuda_toolkit": anything,
    "nvidia_driver_cuda_version": pattern(CUDA_RE.pattern, "a CUDA version MAJOR.MINOR",
                                          "quote it, e.g. \"11.7\""),
    "nvidia_driver_cuda_toolkit_version": version,
    "nvidia_driver_china_mirror": anything,
    "nvidia_driver_cuda_repo_url": url(("https", "http", "file"), "the repository's URL", True),
    "nvidia_driver_cuda_keyring_version": version,
    "nvidia_driver_cuda_key_fingerprints": key_fingerprints,
    "nvidia_driver_cuda_repo_extra_support": cuda_extra_support,
    "nvidia_driver_module_signing_key": optional(abs_path),
    "nvidia_driver_module_signing_cert": optional(abs_path),
    "nvidia_driver_secure_boot_ignore": anything,
    "nvidia_driver_reboot": anything,
    "nvidia_driver_reboot_timeout": count(60, 7200),
    "nvidia_driver_verify": anything,
}


def _pair_problems(where, values):
    """Settings that must agree with each other."""
    problems = []
    cert, key = values.get("lab_proxy_tls_cert"), values.get("lab_proxy_tls_key")
    if bool(cert) != bool(key):
        problems.append("%s: lab_proxy_tls_cert: the certificate and its key come together. "
                        "Fix: set both lab_proxy_tls_cert and lab_proxy_tls_key, or neither "
                        "(the lab's own CA then signs one)." % where)
    elif cert and key and not _cert_matches_key(cert, key):
        problems.append("%s: lab_proxy_tls_key: is not the key of lab_proxy_tls_cert's first "
                        "certificate (their public keys differ). Fix: give the key the "
                        "certificate was issued for." % where)
    return problems


def _cert_matches_key(cert_pem, key_pem):
    """Whether the first certificate's public key is the key's (None: cannot tell)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
    except ImportError:  # pragma: no cover - ansible-core needs cryptography
        return True
    try:
        cert = x509.load_pem_x509_certificate(_first_block(cert_pem, CERTS).encode())
        key = serialization.load_pem_private_key(_first_block(key_pem, KEYS).encode(),
                                                 password=None)
    except (ValueError, TypeError):
        return False
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return cert.public_key().public_bytes(enc, pub) == key.public_key().public_bytes(enc, pub)


def _first_block(text, kinds):
    for match in PEM_BLOCK_RE.finditer(text):
        if match.group(1) in kinds:
            return match.group(0)
    return ""


def role_options(role_paths):
    """The settings of the roles at ROLE_PATHS ({name: option}, the first role's option where
    two roles share one), from each role's meta/argument_specs.yml (libyaml's loader where
    PyYAML has it). Raises OSError or yaml.YAMLError."""
    import yaml  # on the control node only (the settings gate's action and filter)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    options = {}
    for path in role_paths:
        with open(posixpath.join(path, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
            specs = yaml.load(handle.read(), Loader=loader)
        for name, option in setting_options(specs["argument_specs"]).items():
            options.setdefault(name, option)
    return options


def setting_options(argument_specs):
    """A role's settings: the options of its main entry point, and the optional ones of its
    other entry points (their required ones are arguments a caller hands over, which no
    inventory sets)."""
    specs = argument_specs or {}
    options = dict((specs.get("main") or {}).get("options") or {})
    for entry in specs.values():
        for name, option in ((entry or {}).get("options") or {}).items():
            if not (option or {}).get("required"):
                options.setdefault(name, option)
    return options


def where_of(host):
    """The host as a message names it: its name when it has a valid one."""
    if isinstance(host, str) and HOSTNAME_RE.fullmatch(host):
        return host
    return "inventory host " + re.sub(r"[^A-Za-z0-9._-]", "?", str(host))[:60]


def _plain(value):
    """``value`` as plain Python data (Ansible hands over lazily templated containers and
    tagged strings, which the validator would deep-copy with all their machinery)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _not_finite(value, option):
    """An infinite or NaN number, or, for a number option, a string that Python reads as
    one ("INF", "nan"): Ansible's int check raises OverflowError on "inf" instead of
    refusing it. For a text option such a string is a name, not a number."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str) and (option or {}).get("type") in ("int", "float"):
        try:
            return not decimal.Decimal(value.strip()).is_finite()
        except (decimal.InvalidOperation, ValueError):
            return False
    return False


def _spec_problems(where, values, spec, secrets):
    """Types and choices by Ansible's own argument-spec validator, with the role's spec."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    problems = []
    infinite = sorted(name for name, value in values.items() if _not_finite(value, spec.get(name)))
    for name in infinite:
        problems.append("%s: %s: is not a finite number. Fix: give a plain number." % (where, name))
    known = {name: dict(option) for name, option in spec.items()
             if name in values and name not in infinite}
    for option in known.values():
        option.pop("description", None)
        option.pop("version_added", None)
        option.pop("required", None)
    result = ArgumentSpecValidator(known).validate(
        {name: value for name, value in values.items() if name not in infinite})
    for error in result.errors:
        text = str(error)
        match = re.search(r"'([a-z][a-z0-9_]*)'", text)
        name = match.group(1) if match and match.group(1) in known else None
        if name is None:
            name = next((n for n in known if n in text), "settings")
        what = text if name not in secrets else "has the wrong type or value"
        what = CONTROL_RE.sub(" ", what).rstrip(". ")
        fix = ("use one of %s" % ", ".join(map(str, known[name]["choices"]))
               if name in known and "choices" in known[name]
               else "give a %s, as the role's README says" % known.get(name, {}).get("type", "value"))
        problems.append("%s: %s: %s. Fix: %s." % (where, name, what, fix))
    converted = {name: value for name, value in (result.validated_parameters or {}).items()
                 if (known.get(name) or {}).get("type") in SCALAR_TYPES}
    return problems, converted


# Types whose values the argument spec converts the way the roles read them ("16" from -e
# is 16): the shapes see the converted value. Lists, dicts and text are checked as given (a
# string where a list goes is a mistake the roles would not survive).
SCALAR_TYPES = ("int", "float", "bool")


def setting_problems(values, spec, host):
    """Every problem of one role's ``values`` ({variable: value}) on ``host``.

    ``spec``: the role's main argument-spec options ({variable: option}). Secrets (options
    with ``no_log``) are never shown. Returns the problems as lines in the planner's form.
    """
    where = where_of(host)
    spec = spec or {}
    values = {str(name): _plain(value) for name, value in values.items()}
    secrets = {name for name, option in spec.items() if (option or {}).get("no_log")}
    problems = []
    if where != host:
        problems.append("%s: inventory_hostname: is not a host name the lab can use in files, "
                        "units and messages. Fix: rename the host in the inventory (letters, "
                        "digits, . _ -)." % where)
    typed, converted = _spec_problems(where, values, spec, secrets)
    problems.extend(typed)
    typed_bad = {line[len(where) + 2:].split(": ", 1)[0] for line in typed}
    for name in sorted(values):
        shape = SHAPES.get(name)
        if shape is None:
            problems.append("%s: %s: is a setting no shape is known for. Fix: report this; "
                            "module_utils/lab_settings.py must describe every setting." % (where, name))
            continue
        if name in typed_bad:
            continue
        try:
            shape(converted.get(name, values[name]))
        except Problem as exc:
            what = exc.what
            if name in secrets:
                what = re.sub(r"'[^']*'", HIDDEN, what) if "(hidden)" not in what else what
            problems.append("%s: %s: %s. Fix: %s." % (where, name, what.rstrip(". "),
                                                      exc.fix.rstrip(". ")))
    problems.extend(_pair_problems(where, values))
    return problems
