#!/usr/bin/env python3
"""Back up and restore the arena's conversation and vote logs (standard library only).

Shipped to the head by the lab_backup role; its timer, playbooks/leaderboard.yml (a backup
before the leaderboard is computed), playbooks/restore.yml and scripts/demo --destroy run
it.

  fastchat_lab_backup.py backup LOGS_DIR DEST_DIR [--keep N]
      Write DEST_DIR/fastchat-lab-logs-<UTC time>.tar.gz with every regular file of
      LOGS_DIR (the web UI's daily *-conv.json vote logs and its own log files), made
      under a temporary name, read back, then renamed: a backup either is whole or is not
      there. Then keep the newest N backups of that name in DEST_DIR (0: all) and remove
      older ones; no other file is ever touched. Prints {"changed", "archive", "files",
      "bytes", "removed"}.

  fastchat_lab_backup.py restore ARCHIVE LOGS_DIR
      Put the files of a backup back into LOGS_DIR. Only regular files directly in the
      archive's top directory are taken (no path, link, device or "..": a hostile archive
      writes nothing outside LOGS_DIR); a file that is already there is never overwritten
      (it is listed under "kept"), so a restore onto a running arena loses no vote written
      since the backup. Prints {"changed", "restored", "kept"}.

  fastchat_lab_backup.py list DEST_DIR
      The backups in DEST_DIR, oldest first. Prints {"backups": [...]}.

Exit status 0 on success; on failure 1 with {"error": ...}.
"""

import argparse
import fcntl
import json
import os
import re
import sys
import tarfile
import tempfile
import time

PREFIX = "fastchat-lab-logs-"
NAME_RE = re.compile(r"^fastchat-lab-logs-(\d{8}T\d{6}Z)\.tar\.gz\Z")
# A file the web UI writes in its logs directory: a plain name, no path.
MEMBER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\Z")


class BackupError(Exception):
    pass


def _absolute_dir(path, what):
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        raise BackupError("%s %r is not an absolute, normalised path" % (what, path))
    if not os.path.isdir(path):
        raise BackupError("%s %s is not a directory" % (what, path))
    return path


def backups(dest):
    """The backups in ``dest``, oldest first (by the UTC time in their names)."""
    names = [n for n in os.listdir(dest) if NAME_RE.match(n)]
    return sorted(names, key=lambda n: NAME_RE.match(n).group(1))


def backup(logs, dest, keep=0, now=None):
    _absolute_dir(logs, "the logs directory")
    _absolute_dir(dest, "the backup directory")
    real_logs, real_dest = os.path.realpath(logs), os.path.realpath(dest)
    if real_dest == real_logs or real_dest.startswith(real_logs + os.sep):
        raise BackupError("the backup directory %s is inside the logs directory %s" % (dest, logs))
    # One backup at a time in a directory (the timer and a leaderboard run may meet).
    lock = os.open(os.path.join(dest, ".fastchat-lab-backup.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _backup(logs, dest, keep, now)
    finally:
        os.close(lock)


def _backup(logs, dest, keep, now):
    while True:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        target = os.path.join(dest, PREFIX + stamp + ".tar.gz")
        if not os.path.exists(target):
            break
        if now is not None:
            raise BackupError("%s exists already" % target)
        time.sleep(0.2)  # a backup made within this second: the next one gets its own name
    files = sorted(n for n in os.listdir(logs)
                   if MEMBER_RE.match(n) and os.path.isfile(os.path.join(logs, n))
                   and not os.path.islink(os.path.join(logs, n)))
    fd, tmp = tempfile.mkstemp(prefix=".partial-", suffix=".tar.gz", dir=dest)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for member in files:
                tar.add(os.path.join(logs, member), arcname="logs/" + member, recursive=False)
            raw.flush()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # Read it back whole before it takes the backup's name.
        with tarfile.open(tmp, "r:gz") as tar:
            got = sorted(m.name[len("logs/"):] for m in tar.getmembers())
            for m in tar.getmembers():
                tar.extractfile(m).read()
        if got != files:
            raise BackupError("the archive does not hold what was written")
        os.chmod(tmp, 0o600)
        os.rename(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    removed = []
    if keep > 0:
        for old in backups(dest)[:-keep]:
            os.unlink(os.path.join(dest, old))
            removed.append(old)
    return {"changed": True, "archive": target, "files": len(files),
            "bytes": os.path.getsize(target), "removed": removed}


def restore(archive, logs):
    _absolute_dir(logs, "the logs directory")
    if not os.path.isfile(archive):
        raise BackupError("%s is not a file" % archive)
    restored, kept = [], []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            top, _, name = member.name.partition("/")
            if member.isdir() and member.name in ("logs", "logs/", "."):
                continue
            if top != "logs" or not MEMBER_RE.match(name) or not member.isfile():
                raise BackupError("%s holds %r, which is not a log file of the arena: nothing "
                                  "was restored from it" % (archive, member.name))
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = member.name[len("logs/"):]
            path = os.path.join(logs, name)
            if os.path.lexists(path):
                kept.append(name)
                continue
            fd, tmp = tempfile.mkstemp(prefix=".restoring-", dir=logs)
            with os.fdopen(fd, "wb") as out:
                out.write(tar.extractfile(member).read())
            os.chmod(tmp, 0o644)
            os.utime(tmp, (member.mtime, member.mtime))
            os.rename(tmp, path)
            restored.append(name)
    return {"changed": bool(restored), "restored": sorted(restored), "kept": sorted(kept)}


def main(argv):
    parser = argparse.ArgumentParser(prog="fastchat_lab_backup.py")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backup")
    b.add_argument("logs")
    b.add_argument("dest")
    b.add_argument("--keep", type=int, default=0)
    r = sub.add_parser("restore")
    r.add_argument("archive")
    r.add_argument("logs")
    ls = sub.add_parser("list")
    ls.add_argument("dest")
    args = parser.parse_args(argv)
    try:
        if args.command == "backup":
            if args.keep < 0:
                raise BackupError("--keep must be 0 (keep all) or more")
            result = backup(args.logs, args.dest, args.keep)
        elif args.command == "restore":
            result = restore(args.archive, args.logs)
        else:
            result = {"changed": False,
                      "backups": backups(_absolute_dir(args.dest, "the backup directory"))}
    except (BackupError, OSError, tarfile.TarError) as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
