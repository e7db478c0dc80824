#!/usr/bin/env python3
"""Hand files from one lab host to the others over the lab network (standard library only).

Shipped to every lab host by the lab_transfer role; the model_weights role hands out
weights with it, the fastchat_image role image archives.

  fastchat_lab_transfer.py serve NAME --root DIR --port PORT --allow ADDR [--allow ...]
                                 [--exclude PATTERN ...]
      Start a read-only rsync daemon serving DIR as module NAME to the given addresses only
      (unless one for NAME runs already). Prints {"changed": ...}.

  fastchat_lab_transfer.py stop NAME
      Stop NAME's daemon if it runs. Prints {"changed": ...}.

  fastchat_lab_transfer.py pull SOURCE DEST --owned-root ROOT [--delete]
      rsync -a --partial SOURCE (rsync://host:port/NAME/path) into DEST. DEST must lie
      strictly inside ROOT, a directory the lab owns: it holds the marker file
      .fastchat-lab-owned that the owning role made. With --delete, files in DEST that the
      source lacks are removed, which is why the fence is here, in code, not in a task.
      Prints {"changed": ..., "items": [...]}.

Every command runs as an argv list; no value is ever put into a shell.
"""

import argparse
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time

STATE = "/run/fastchat-lab/transfer"
OWNED_MARKER = ".fastchat-lab-owned"
NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?\Z")
SOURCE_RE = re.compile(r"^rsync://(?P<host>[A-Za-z0-9.-]+):(?P<port>\d{1,5})/(?P<module>[A-Za-z0-9._-]+)"
                       r"/(?P<path>[A-Za-z0-9._@+/-]*)\Z")
PATTERN_RE = re.compile(r"^[A-Za-z0-9._*/-]+\Z")


class TransferError(Exception):
    pass


def _check_name(name):
    if not NAME_RE.match(name) or ".." in name:
        raise TransferError("%r is not a valid transfer name" % name)


def _pid_file(name):
    return os.path.join(STATE, name + ".pid")


def _running(name):
    try:
        with open(_pid_file(name)) as fh:
            pid = int(fh.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def serve(name, root, port, allow, exclude):
    _check_name(name)
    if not os.path.isabs(root) or os.path.normpath(root) != root or not os.path.isdir(root):
        raise TransferError("%r is not an existing absolute directory" % root)
    if not 1 <= port <= 65535:
        raise TransferError("port %d is not a port" % port)
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
    if _running(name):
        return {"changed": False, "state": "running"}
    os.makedirs(STATE, mode=0o700, exist_ok=True)
    config = os.path.join(STATE, name + ".conf")
    lines = [
        "# fastchat-lab: temporary, read-only; stopped when the transfer is over.",
        "pid file = %s" % _pid_file(name),
        "port = %d" % port,
        "use chroot = yes",
        # root owns what it serves (rsyncd would otherwise drop to nobody).
        "uid = root", "gid = root", "read only = yes", "list = no",
        "", "[%s]" % name, "path = %s" % root,
        "hosts allow = %s" % " ".join(sorted(set(addresses))), "hosts deny = *",
    ]
    if exclude:
        lines.append("exclude = %s" % " ".join(exclude))
    with open(config + ".tmp", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(config + ".tmp", 0o600)
    os.replace(config + ".tmp", config)
    subprocess.run(["rsync", "--daemon", "--config=" + config], check=True)
    # rsync forks into the background and writes its pid file then: wait for it, so that
    # the next call sees a running daemon.
    deadline = time.monotonic() + 10
    while not _running(name):
        if time.monotonic() > deadline:
            raise TransferError("the rsync daemon for %s did not start" % name)
        time.sleep(0.1)
    return {"changed": True, "state": "started"}


def stop(name):
    _check_name(name)
    pid = _running(name)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)
    changed = pid is not None
    for path in (_pid_file(name), os.path.join(STATE, name + ".conf")):
        if os.path.exists(path):
            os.remove(path)
    return {"changed": changed, "state": "stopped"}


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


def pull(source, dest, owned_root, delete):
    match = SOURCE_RE.match(source)
    if not match or ".." in match["path"].split("/") or not 1 <= int(match["port"]) <= 65535:
        raise TransferError("%r is not an rsync:// source of the lab" % source)
    target = fence(dest, owned_root)
    argv = ["rsync", "-a", "--partial", "--itemize-changes", "--timeout=600"]
    if delete:
        argv.append("--delete")
    argv += [source, target + ("/" if source.endswith("/") else "")]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TransferError("rsync from %s failed (rc=%d): %s" % (
            source, proc.returncode, proc.stderr.strip()[-600:]))
    items = [line for line in proc.stdout.splitlines() if line.strip()]
    return {"changed": bool(items), "items": items[:50], "count": len(items), "dest": target}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("name")
    s.add_argument("--root", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--allow", action="append", default=[])
    s.add_argument("--exclude", action="append", default=[])
    t = sub.add_parser("stop")
    t.add_argument("name")
    p = sub.add_parser("pull")
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--owned-root", required=True)
    p.add_argument("--delete", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "serve":
            result = serve(args.name, args.root, args.port, args.allow, args.exclude)
        elif args.cmd == "stop":
            result = stop(args.name)
        else:
            result = pull(args.source, args.dest, args.owned_root, args.delete)
    except (TransferError, subprocess.CalledProcessError, OSError) as exc:
        print(json.dumps({"ok": False, "changed": False, "error": str(exc)}))
        return 1
    result["ok"] = True
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
