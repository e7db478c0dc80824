#!/usr/bin/env python3
"""Hand files from one lab host to the others over the lab network (standard library only).

Shipped to every lab host by the lab_transfer role; the model_weights role hands out
weights with it (and GGUF files), the fastchat_image role image archives.

The rsync daemon speaks plain text and has no logins, so nothing it sends is trusted:
the serving host lists what it serves with each file's sha256 (the manifest), Ansible
carries that list to the receivers over its own channel, and a receiver pulls exactly the
listed files into a staging directory, checks every one, and only then puts them in place.

  fastchat_lab_transfer.py serve NAME --root DIR --port PORT --allow ADDR [--allow ...]
                                 --path REL [--path ...] [--exclude PATTERN ...]
                                 [--lifetime SECONDS] [--wait SECONDS]
      Serve DIR read-only as module NAME to the given addresses only, and print
      {"changed", "lease", "manifest": {"name", "files": {REL: SHA256}}} for the paths
      asked (a directory REL/ or a file REL; regular files only, excludes applied; hashes
      are cached by size, time and inode). One run serves NAME at a time: another run's
      serve waits for this one's stop (at most --wait seconds), unless this one's daemon
      is gone, its lease has expired or it has been idle (no transfer, no log line) for
      two minutes. The daemon's connections run as nobody in a chroot of DIR; the daemon
      ends by itself after --lifetime seconds.

  fastchat_lab_transfer.py stop NAME [--lease ID]
      Stop NAME's daemon if the lease is this run's (without --lease: only a daemon whose
      run is over — expired, or its daemon gone). Only the daemon's own process is signalled.

  fastchat_lab_transfer.py pull SOURCE DEST --owned-root ROOT   (the manifest on stdin)
      SOURCE is rsync://host:port/NAME/REL/ (a directory: DEST becomes exactly its listed
      files) or rsync://host:port/NAME/REL (a file: it is put into the directory DEST).
      DEST must lie directly inside ROOT, a directory the lab owns: it holds the marker file
      .fastchat-lab-owned that the owning role made. The files arrive in ROOT's staging
      directory (an interrupted pull resumes there; unchanged files are hard links to
      DEST's), without owners, groups, modes, device files or symlinks; a file whose sha256
      is not the manifest's is removed and the pull fails with DEST untouched.
      Prints {"changed": ..., "items": [...]}.

Every command runs as an argv list; no value is ever put into a shell.
"""

import argparse
import errno
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time

STATE = "/run/fastchat-lab/transfer"
# The serving host's sha256 of each served file, by size, mtime and inode (a re-run
# hashes only what changed; on the lab's own disk, root only).
CACHE = "/var/cache/fastchat-lab/transfer"
OWNED_MARKER = ".fastchat-lab-owned"
STAGING_PREFIX = ".fastchat-lab-staging-"
OLD_PREFIX = ".fastchat-lab-old-"
# The daemon's connections run as this user (rsyncd drops to it after the chroot).
SERVE_USER, SERVE_GROUP = "nobody", "nogroup"
# A serve that has had no transfer and no log line for this long has been left behind by
# a run that is over (or stalled): another run may take the name over.
IDLE_S = 120
NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?\Z")
SOURCE_RE = re.compile(r"^rsync://(?P<host>[A-Za-z0-9.-]+):(?P<port>\d{1,5})/(?P<module>[A-Za-z0-9._-]+)"
                       r"/(?P<path>[A-Za-z0-9._@+/-]*)\Z")
PATTERN_RE = re.compile(r"^[A-Za-z0-9._*/-]+\Z")
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
# A served path: components of printable characters (model repositories have spaces and
# CJK in their file names), never "." or "..", no control characters.
_BAD_COMPONENT = re.compile(r"[\x00-\x1f\x7f]")


class TransferError(Exception):
    pass


def _check_name(name):
    if not NAME_RE.match(name) or ".." in name:
        raise TransferError("%r is not a valid transfer name" % name)


def _check_rel(rel):
    """A relative path inside a served tree, as a manifest or --path gives it."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(
            p in ("", ".", "..") or _BAD_COMPONENT.search(p) for p in parts):
        raise TransferError("%r is not a relative path inside the served directory" % rel)
    return rel


def _pid_file(name):
    return os.path.join(STATE, name + ".pid")


def _lease_file(name):
    return os.path.join(STATE, name + ".lease")


def _config_file(name):
    return os.path.join(STATE, name + ".conf")


def _log_file(name):
    return os.path.join(STATE, name + ".log")


# --- what is served --------------------------------------------------------------------

def excluded(rel, is_dir, patterns):
    """Whether rsync's exclude PATTERNS (our plain grammar) leave out REL: a trailing /
    matches directories only, a leading / anchors at the served root, otherwise the
    pattern matches the path's last components; * never crosses a /."""
    for pattern in patterns:
        dir_only = pattern.endswith("/")
        if dir_only and not is_dir:
            continue
        body = pattern.rstrip("/")
        anchored = body.startswith("/")
        body = body.lstrip("/")
        regex = "".join("[^/]*" if c == "*" else re.escape(c) for c in body)
        if re.fullmatch(regex if anchored else "(?:.*/)?" + regex, rel):
            return True
    return False


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _served_files(root, paths, exclude):
    """{REL: full path} of the regular files under the asked PATHS (REL/ a directory, REL
    a file), excludes applied; a symlink, device or unreadable file is an error."""
    out = {}

    def check_readable(full, st, what):
        need = 0o005 if stat.S_ISDIR(st.st_mode) else 0o004
        if st.st_mode & need != need:
            raise TransferError("%s %s is not readable by %s (the daemon's user): chmod o+r%s it"
                                % (what, full, SERVE_USER, "x" if need == 0o005 else ""))

    def walk(rel_dir):
        full_dir = os.path.join(root, rel_dir)
        check_readable(full_dir, os.lstat(full_dir), "directory")
        for entry in sorted(os.listdir(full_dir)):
            rel = rel_dir + entry if rel_dir else entry
            full = os.path.join(full_dir, entry)
            st = os.lstat(full)
            if excluded(rel, stat.S_ISDIR(st.st_mode), exclude):
                continue
            _check_rel(rel)
            if stat.S_ISDIR(st.st_mode):
                walk(rel + "/")
            elif stat.S_ISREG(st.st_mode):
                check_readable(full, st, "file")
                out[rel] = full
            else:
                raise TransferError("%s is not a regular file or directory: the hand-out serves "
                                    "neither symlinks nor special files" % full)

    for asked in paths:
        is_dir = asked.endswith("/")
        rel = _check_rel(asked.rstrip("/"))
        full = os.path.join(root, rel)
        try:
            st = os.lstat(full)
        except FileNotFoundError as exc:
            raise TransferError("%s is not there to serve" % full) from exc
        if excluded(rel, stat.S_ISDIR(st.st_mode), exclude):
            raise TransferError("%s is asked for but excluded from the hand-out" % full)
        # Every directory on the way must be a real one the daemon can enter.
        for depth in range(1, rel.count("/") + 1):
            parent = os.path.join(root, *rel.split("/")[:depth])
            if not stat.S_ISDIR(os.lstat(parent).st_mode):
                raise TransferError("%s is not a directory" % parent)
        if is_dir:
            if not stat.S_ISDIR(st.st_mode):
                raise TransferError("%s is not a directory" % full)
            walk(rel + "/")
        elif stat.S_ISREG(st.st_mode):
            check_readable(full, st, "file")
            out[rel] = full
        else:
            raise TransferError("%s is not a regular file" % full)
    return out


def manifest(name, root, paths, exclude):
    """{"name", "files": {REL: sha256}} of what NAME serves from ROOT for PATHS."""
    files = _served_files(root, paths, exclude)
    cache_path = os.path.join(CACHE, name + ".json")
    try:
        with open(cache_path) as fh:
            cache = json.load(fh)
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    hashes, fresh = {}, {}
    def key_of(full):
        st = os.stat(full)
        return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]

    for rel, full in files.items():
        key = key_of(full)
        known = cache.get(full)
        if isinstance(known, list) and len(known) == 5 and known[:4] == key \
                and SHA256_RE.match(str(known[4])):
            digest = known[4]
        else:
            digest = _sha256(full)
            if key_of(full) != key:
                raise TransferError("%s changed while it was hashed: serve again when it is "
                                    "complete" % full)
        hashes[rel] = digest
        fresh[full] = key + [digest]
    # Keep the other entries whose files are still there (another run's paths).
    for full, known in cache.items():
        if full not in fresh and os.path.isfile(full):
            fresh[full] = known
    os.makedirs(CACHE, mode=0o700, exist_ok=True)
    with open(cache_path + ".tmp", "w") as fh:
        json.dump(fresh, fh)
    os.chmod(cache_path + ".tmp", 0o600)
    os.replace(cache_path + ".tmp", cache_path)
    return {"name": name, "files": hashes}


# --- the daemon and its lease ----------------------------------------------------------

def _read_lease(name):
    try:
        with open(_lease_file(name)) as fh:
            lease = json.load(fh)
        return lease if isinstance(lease, dict) else {}
    except (OSError, ValueError):
        return None


def _daemon_pid(name):
    """The pid of NAME's own rsync daemon, or None: the pid file's process must be rsync
    started with NAME's configuration (a stale pid file never gets a signal sent)."""
    try:
        with open(_pid_file(name)) as fh:
            pid = int(fh.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            argv = fh.read().split(b"\0")
    except (OSError, ValueError):
        return None
    want = ("--config=" + _config_file(name)).encode()
    if argv and os.path.basename(argv[0]) == b"rsync" and want in argv:
        return pid
    return None


def _busy(pid):
    """Whether the daemon serves a connection now (it forks one child per connection)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields and len(fields) > 1 and fields[1] == str(pid):
                return True
    return False


def _lease_over(name, lease, now):
    """Why the run holding NAME is over (a string), or None while it holds it."""
    pid = _daemon_pid(name)
    if pid is None:
        return "its daemon is gone"
    if now >= lease.get("expires", 0):
        return "its lease expired"
    try:
        quiet_since = os.stat(_log_file(name)).st_mtime
    except OSError:
        quiet_since = lease.get("started", 0)
    if now - max(quiet_since, lease.get("started", 0)) > IDLE_S and not _busy(pid):
        return "it has served nothing for %d s" % IDLE_S
    return None


def _signal_daemon(name):
    """Send NAME's own daemon SIGTERM and wait (at most 10 s) until it is gone; its pid,
    or None when none ran."""
    pid = _daemon_pid(name)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _daemon_pid(name) == pid:
            time.sleep(0.1)
    return pid


def _end_daemon(name):
    pid = _signal_daemon(name)
    for path in (_pid_file(name), _config_file(name), _lease_file(name)):
        if os.path.exists(path):
            os.remove(path)
    return pid is not None


def _take_lease(name, lifetime, wait):
    """NAME's lease for this run, waiting (at most WAIT s) for another run's to end."""
    os.makedirs(STATE, mode=0o700, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        now = time.time()
        lease = {"id": secrets.token_hex(8), "started": now, "expires": now + lifetime}
        try:
            fd = os.open(_lease_file(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            held = _read_lease(name)
            if held is None:  # removed meanwhile
                continue
            why = _lease_over(name, held, now)
            if why:
                _end_daemon(name)
                continue
            if time.monotonic() > deadline:
                raise TransferError(
                    "another run serves %s since %s (until %s at the latest): let it finish, "
                    "or stop it on this host with `%s stop %s --lease %s`" % (
                        name, time.strftime("%H:%M:%S", time.localtime(held.get("started", 0))),
                        time.strftime("%H:%M:%S", time.localtime(held.get("expires", 0))),
                        os.path.abspath(__file__), name, held.get("id", "?")))
            time.sleep(2)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(lease, fh)
        return lease


def serve(name, root, port, allow, exclude, paths, lifetime=4 * 3600, wait=3600):
    _check_name(name)
    if not os.path.isabs(root) or os.path.normpath(root) != root or not os.path.isdir(root):
        raise TransferError("%r is not an existing absolute directory" % root)
    if not 1 <= port <= 65535:
        raise TransferError("port %d is not a port" % port)
    if not 1 <= lifetime <= 7 * 86400 or not 0 <= wait <= 7 * 86400:
        raise TransferError("lifetime %d or wait %d is out of range" % (lifetime, wait))
    addresses = []
    for address in allow:
        try:
            addresses.append(str(ipaddress.ip_address(address)))
        except ValueError as exc:
            raise TransferError("%r is not an IP address" % address) from exc
    if not addresses:
        raise TransferError("no address to serve to")
    for pattern in exclude:
        if not PATTERN_RE.match(pattern):
            raise TransferError("%r is not an exclude pattern" % pattern)
    if not paths:
        raise TransferError("no path to serve")
    if os.stat(root).st_mode & 0o001 != 0o001:
        raise TransferError("directory %s is not searchable by %s (the daemon's user): chmod o+x it"
                            % (root, SERVE_USER))
    listed = manifest(name, root, paths, exclude)
    lease = _take_lease(name, lifetime, wait)
    try:
        # A daemon of NAME that no lease holds (an older helper's, left by an interrupted
        # run) would keep the port: it goes first.
        _signal_daemon(name)
        lines = [
            "# fastchat-lab: temporary, read-only; stopped when the transfer is over.",
            "pid file = %s" % _pid_file(name),
            "log file = %s" % _log_file(name),
            "port = %d" % port,
            "use chroot = yes",
            "uid = %s" % SERVE_USER, "gid = %s" % SERVE_GROUP,
            "read only = yes", "list = no", "munge symlinks = yes",
            "", "[%s]" % name, "path = %s" % root,
            "hosts allow = %s" % " ".join(sorted(set(addresses))), "hosts deny = *",
        ]
        if exclude:
            lines.append("exclude = %s" % " ".join(exclude))
        config = _config_file(name)
        with open(config + ".tmp", "w") as fh:
            fh.write("\n".join(lines) + "\n")
        os.chmod(config + ".tmp", 0o600)
        os.replace(config + ".tmp", config)
        with open(_log_file(name), "a"):
            pass
        # The daemon's maximum lifetime: timeout(1) ends it, whatever becomes of this run.
        # setsid --fork detaches it into a session of its own and returns at once.
        subprocess.run(
            ["setsid", "--fork", "timeout", "--signal=TERM", str(lifetime), "rsync", "--daemon",
             "--no-detach", "--config=" + config],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=True, check=True)
        deadline = time.monotonic() + 10
        while _daemon_pid(name) is None:
            if time.monotonic() > deadline:
                with open(_log_file(name)) as fh:
                    tail = fh.read()[-600:].strip()
                raise TransferError("the rsync daemon for %s did not start: %s" % (name, tail))
            time.sleep(0.1)
    except BaseException:
        _end_daemon(name)
        raise
    return {"changed": True, "state": "started", "lease": lease["id"],
            "expires": int(lease["expires"]), "manifest": listed}


def stop(name, lease_id=None):
    _check_name(name)
    held = _read_lease(name)
    if held is None:
        # No run holds the name: end a daemon left without a lease (an older helper's).
        return {"changed": _end_daemon(name), "state": "stopped"}
    if lease_id is not None and held.get("id") != lease_id:
        return {"changed": False, "state": "served by another run"}
    if lease_id is None and _lease_over(name, held, time.time()) is None:
        return {"changed": False, "state": "served by another run"}
    return {"changed": _end_daemon(name), "state": "stopped"}


# --- the receiving side ----------------------------------------------------------------

def fence(dest, owned_root):
    """The real DEST, after checking it lies strictly inside a directory the lab owns."""
    if not os.path.isabs(owned_root) or os.path.normpath(owned_root) != owned_root:
        raise TransferError("owned root %r is not a normalised absolute path" % owned_root)
    if not os.path.isfile(os.path.join(owned_root, OWNED_MARKER)):
        raise TransferError("%s is not a directory the lab owns (no %s in it)"
                            % (owned_root, OWNED_MARKER))
    if not os.path.isabs(dest) or os.path.normpath(dest) != dest:
        raise TransferError("destination %r is not a normalised absolute path" % dest)
    root_real = os.path.realpath(owned_root)
    dest_real = os.path.realpath(dest)
    if os.path.dirname(dest_real) != root_real:
        raise TransferError("destination %s is not a directory directly inside %s"
                            % (dest, owned_root))
    _check_name(os.path.basename(dest_real))
    return dest_real


def _wanted(match, listed):
    """(rsync source directory, {REL in it: sha256}, is_dir) of a pull, from the manifest."""
    if not isinstance(listed, dict) or listed.get("name") != match["module"] \
            or not isinstance(listed.get("files"), dict):
        raise TransferError("the manifest is not the serving host's list for %s" % match["module"])
    files = listed["files"]
    for rel, digest in files.items():
        _check_rel(rel)
        if not isinstance(digest, str) or not SHA256_RE.match(digest):
            raise TransferError("the manifest's sha256 of %r is not a sha256" % rel)
    path = match["path"]
    base = "rsync://%s:%s/%s/" % (match["host"], match["port"], match["module"])
    if path.endswith("/") or path == "":
        wanted = {rel[len(path):]: digest for rel, digest in files.items() if rel.startswith(path)}
        if not wanted:
            raise TransferError("the serving host's manifest lists nothing under %s" % (path or "/"))
        return base + path, wanted, True
    if path not in files:
        raise TransferError("the serving host's manifest does not list %s" % path)
    parent, _, leaf = path.rpartition("/")
    return base + (parent + "/" if parent else ""), {leaf: files[path]}, False


def _real_dir(path):
    """PATH as a real directory of root's (made 0700 where missing), never a symlink."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise TransferError("%s is not a directory" % path)
    return path


def _check_staging(staging, wanted):
    """Remove from STAGING what the manifest does not list (and any non-regular file),
    and every file whose sha256 is not listed; return (missing, bad) relative paths."""
    seen, bad = set(), []
    for dirpath, dirnames, filenames in os.walk(staging):
        for entry in dirnames + filenames:
            full = os.path.join(dirpath, entry)
            rel = os.path.relpath(full, staging)
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode) or rel not in wanted:
                os.remove(full)
                continue
            if _sha256(full) != wanted[rel]:
                os.remove(full)
                bad.append(rel)
            else:
                seen.add(rel)
    # Directories the manifest does not need (a resumed pull of another revision).
    needed = {os.path.dirname(rel) for rel in wanted}
    needed |= {d for rel in needed for d in _parents(rel)}
    for dirpath, dirnames, _ in os.walk(staging, topdown=False):
        for entry in dirnames:
            full = os.path.join(dirpath, entry)
            if os.path.relpath(full, staging) not in needed and not os.listdir(full):
                os.rmdir(full)
    return sorted(set(wanted) - seen - set(bad)), sorted(bad)


def _parents(rel):
    parts = rel.split("/")
    return {"/".join(parts[:i]) for i in range(1, len(parts))}


def _same_tree(staging, dest, wanted):
    """Whether DEST already holds exactly the files of STAGING (the same inodes: rsync
    linked every one from DEST) and nothing else."""
    if not os.path.isdir(dest) or os.path.islink(dest):
        return False
    for rel in wanted:
        try:
            if not os.path.samefile(os.path.join(staging, rel), os.path.join(dest, rel)):
                return False
        except OSError:
            return False
    count = 0
    for dirpath, _, filenames in os.walk(dest):
        count += len(filenames)
    return count == len(wanted)


def _settle(tree):
    """Modes of our own choosing: the sender's are never kept."""
    os.chmod(tree, 0o755)
    for dirpath, dirnames, filenames in os.walk(tree):
        for entry in dirnames:
            os.chmod(os.path.join(dirpath, entry), 0o755)
        for entry in filenames:
            os.chmod(os.path.join(dirpath, entry), 0o644)


def pull(source, dest, owned_root, listed):
    match = SOURCE_RE.match(source)
    if not match or ".." in match["path"].split("/") or not 1 <= int(match["port"]) <= 65535:
        raise TransferError("%r is not an rsync:// source of the lab" % source)
    target = fence(dest, owned_root)
    rsync_source, wanted, is_dir = _wanted(match, listed)
    root = os.path.dirname(target)
    name = os.path.basename(target)
    # One pull into DEST at a time (two runs at once take turns).
    lock_fd = os.open(os.path.join(root, ".fastchat-lab-lock-" + name),
                      os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        staging = _real_dir(os.path.join(root, STAGING_PREFIX + name))
        argv = ["rsync", "--files-from=-", "--from0", "--times", "--partial", "--itemize-changes",
                "--timeout=600", "--no-links", "--no-perms", "--no-owner", "--no-group",
                "--no-devices", "--no-specials"]
        if is_dir and os.path.isdir(target) and not os.path.islink(target):
            argv.append("--link-dest=" + target)
        argv += [rsync_source, staging + "/"]
        proc = subprocess.run(argv, input="\0".join(sorted(wanted)), capture_output=True, text=True)
        if proc.returncode != 0:
            raise TransferError("rsync from %s failed (rc=%d): %s" % (
                source, proc.returncode, proc.stderr.strip()[-600:]))
        items = [line for line in proc.stdout.splitlines() if line.strip()]
        missing, bad = _check_staging(staging, wanted)
        if missing or bad:
            raise TransferError(
                "%s: %d file(s) did not arrive as the serving host listed them (%s); nothing "
                "in %s was replaced" % (source, len(missing) + len(bad), ", ".join(
                    ["%s: missing" % rel for rel in missing[:3]]
                    + ["%s: sha256 differs" % rel for rel in bad[:3]]), target))
        _settle(staging)
        if is_dir:
            if _same_tree(staging, target, wanted):
                shutil.rmtree(staging)
                return {"changed": False, "items": [], "count": 0, "dest": target}
            if os.path.lexists(target):
                old = os.path.join(root, OLD_PREFIX + name)
                if os.path.lexists(old):
                    shutil.rmtree(old)
                os.rename(target, old)
                try:
                    os.rename(staging, target)
                except OSError:
                    os.rename(old, target)
                    raise
                shutil.rmtree(old)
            else:
                os.rename(staging, target)
            changed = True
        else:
            _real_dir(target)
            (leaf, digest), = wanted.items()
            placed = os.path.join(target, leaf)
            changed = not (os.path.isfile(placed) and not os.path.islink(placed)
                           and _sha256(placed) == digest)
            if changed:
                os.replace(os.path.join(staging, leaf), placed)
            shutil.rmtree(staging)
        return {"changed": changed, "items": items[:50], "count": len(items), "dest": target}
    finally:
        os.close(lock_fd)


def main(argv=None, stdin=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("name")
    s.add_argument("--root", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--allow", action="append", default=[])
    s.add_argument("--exclude", action="append", default=[])
    s.add_argument("--path", action="append", default=[])
    s.add_argument("--lifetime", type=int, default=4 * 3600)
    s.add_argument("--wait", type=int, default=3600)
    t = sub.add_parser("stop")
    t.add_argument("name")
    t.add_argument("--lease")
    p = sub.add_parser("pull")
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--owned-root", required=True)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "serve":
            result = serve(args.name, args.root, args.port, args.allow, args.exclude, args.path,
                           args.lifetime, args.wait)
        elif args.cmd == "stop":
            result = stop(args.name, args.lease)
        else:
            try:
                listed = json.load(stdin or sys.stdin)
            except ValueError as exc:
                raise TransferError("the manifest on stdin is not JSON: %s" % exc) from exc
            result = pull(args.source, args.dest, args.owned_root, listed)
    except (TransferError, subprocess.CalledProcessError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOENT and exc.filename == "rsync":
            exc = TransferError("rsync is not installed")
        print(json.dumps({"ok": False, "changed": False, "error": str(exc)}))
        return 1
    result["ok"] = True
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
