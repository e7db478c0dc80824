#!/usr/bin/env python3
"""Fetch, verify and check model weights for fastchat-lab (standard library only).

Shipped to the lab's hosts by the model_weights role.

  fastchat_weights.py check DIR [--revision REV] [--write-marker]
      Is DIR a usable model directory? config.json, weight files (no git-lfs
      pointer left, every shard an index names), and, with --revision, the
      marker of a verified copy of that revision whose file sizes still match.
      --write-marker records the verified state. Prints JSON; exit 0 when ok.

  fastchat_weights.py missing --model NAME DIR REV [--model NAME DIR REV ...]
      Which of these models lack a verified copy of their revision here (check
      with --revision for each)? Prints {"missing": [NAME...], "problems":
      {NAME: [...]}}; exit 0 whatever it finds (non-zero only when it cannot
      answer).

  fastchat_weights.py fetch DIR --url URL --revision REV --status FILE [--min-free-gb N]
                          [--token-file FILE]
      Clone URL at REV into DIR with git-lfs, resumably: the git objects and
      every finished LFS object stay in DIR/.git across interrupted runs and are
      not fetched again. Checks the free disk space before downloading, writes
      progress (bytes done/total) to FILE while LFS objects download, verifies
      with git lfs fsck and the sizes of the pointers, then writes the marker.
      A hub token is read from --token-file (a root-only file the role removes
      afterwards) and given to git and git-lfs as an http.<hub>/.extraHeader
      through GIT_CONFIG_COUNT/KEY/VALUE in their environment: never on a
      command line, in a git config or in the output.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import threading
import time

MARKER = ".fastchat-lab-weights.json"
WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf")
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"


class WeightsError(Exception):
    pass


def listing(path):
    files = {}
    for root, dirs, names in os.walk(path):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            if rel == MARKER or os.path.islink(full):
                continue
            files[rel] = os.path.getsize(full)
    return files


def problems_of(path, files):
    found = []
    if "config.json" not in files:
        found.append("no config.json")
    weights = [f for f in files if any(glob.fnmatch.fnmatch(os.path.basename(f), g) for g in WEIGHT_GLOBS)]
    if not weights:
        found.append("no weight files (%s)" % ", ".join(WEIGHT_GLOBS))
    for rel, size in files.items():
        if size < 1024 and rel in weights or size < 200 and size > 0:
            with open(os.path.join(path, rel), "rb") as f:
                if f.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX:
                    found.append("%s is a git-lfs pointer, not the file (clone without git-lfs?)" % rel)
        if rel in weights and size == 0:
            found.append("%s is empty" % rel)
    for index in INDEXES:
        if index in files:
            with open(os.path.join(path, index)) as f:
                shards = set(json.load(f).get("weight_map", {}).values())
            for shard in sorted(shards - set(files)):
                found.append("%s names %s, which is missing" % (index, shard))
    return found


def check(path, revision=None, write_marker=False):
    result = {"path": path, "ok": False, "problems": [], "revision": None}
    if not os.path.isdir(path):
        result["problems"] = ["%s does not exist" % path]
        return result
    files = listing(path)
    result["problems"] = problems_of(path, files)
    result["bytes"] = sum(files.values())
    marker_path = os.path.join(path, MARKER)
    marker = None
    if os.path.exists(marker_path):
        with open(marker_path) as f:
            marker = json.load(f)
        result["revision"] = marker.get("revision")
    if revision and not write_marker:
        if marker is None:
            result["problems"].append("no verified copy yet (no %s)" % MARKER)
        elif marker.get("revision") != revision:
            result["problems"].append("has revision %s, not %s" % (marker.get("revision"), revision))
        else:
            changed = sorted(f for f, s in marker["files"].items() if files.get(f) != s)
            if changed:
                result["problems"].append("files changed since verified: %s" % ", ".join(changed[:5]))
    if write_marker and not result["problems"]:
        with open(marker_path + ".tmp", "w") as f:
            json.dump({"revision": revision, "files": files}, f, indent=1, sort_keys=True)
        os.replace(marker_path + ".tmp", marker_path)
        result["revision"] = revision
    result["ok"] = not result["problems"]
    return result


def missing(models):
    """{"missing": names lacking a verified copy, "problems": {name: why}} of
    [(name, dir, revision)], in the order given."""
    out = {"missing": [], "problems": {}}
    for name, path, revision in models:
        state = check(path, revision)
        if not state["ok"]:
            out["missing"].append(name)
            out["problems"][name] = state["problems"]
    return out


def git(args, cwd, env, capture=True):
    proc = subprocess.run(["git"] + args, cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise WeightsError("git %s failed: %s" % (" ".join(args[:3]), proc.stderr.strip()[-800:]))
    return proc.stdout


def git_env(url, token_file=None):
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_LFS_SKIP_SMUDGE"] = "1"
    token = ""
    if token_file and os.path.exists(token_file):
        with open(token_file) as f:
            token = f.read().strip()
    if token:
        base = url.split("://", 1)[0] + "://" + url.split("://", 1)[1].split("/", 1)[0] + "/"
        count = int(env.get("GIT_CONFIG_COUNT", "0"))
        env["GIT_CONFIG_KEY_%d" % count] = "http.%s.extraHeader" % base
        env["GIT_CONFIG_VALUE_%d" % count] = "Authorization: Bearer %s" % token
        env["GIT_CONFIG_COUNT"] = str(count + 1)
    return env


def lfs_objects(path, revision, env):
    """{oid: (size, file)} of the LFS pointers in the tree of revision."""
    objects = {}
    for line in git(["ls-tree", "-r", "-l", revision], path, env).splitlines():
        meta, name = line.split("\t", 1)
        _mode, kind, sha, size = meta.split()
        if kind != "blob" or size == "-" or int(size) > 1024:
            continue
        text = git(["cat-file", "blob", sha], path, env)
        if not text.startswith(LFS_POINTER_PREFIX.decode()):
            continue
        fields = dict(l.split(" ", 1) for l in text.splitlines() if " " in l)
        oid = fields["oid"].split(":", 1)[1]
        objects[oid] = (int(fields["size"]), name)
    return objects


def lfs_path(path, oid):
    return os.path.join(path, ".git", "lfs", "objects", oid[:2], oid[2:4], oid)


def done_bytes(path, objects):
    done = 0
    for oid, (size, _name) in objects.items():
        p = lfs_path(path, oid)
        if os.path.exists(p):
            done += min(os.path.getsize(p), size)
    for part in glob.glob(os.path.join(path, ".git", "lfs", "incomplete", "*")) + \
            glob.glob(os.path.join(path, ".git", "lfs", "tmp", "*")):
        try:
            done += os.path.getsize(part)
        except OSError:
            pass
    return done


def write_status(status, data):
    with open(status + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(status + ".tmp", status)


def fetch(path, url, revision, status, min_free_gb, token_file=None):
    result = {"path": path, "changed": False, "fetched_objects": 0, "fetched_bytes": 0}
    state = check(path, revision)
    if state["ok"]:
        result.update(state)
        write_status(status, {"phase": "done", "done": state["bytes"], "total": state["bytes"]})
        return result
    os.makedirs(path, exist_ok=True)
    env = git_env(url, token_file)
    result["changed"] = True
    if not os.path.isdir(os.path.join(path, ".git")):
        git(["init", "-q"], path, env)
    git(["lfs", "install", "--local", "--skip-smudge"], path, env)
    remotes = git(["remote"], path, env).split()
    git(["remote", "set-url" if "origin" in remotes else "add", "origin", url], path, env)
    write_status(status, {"phase": "git", "done": 0, "total": 0})
    if subprocess.run(["git", "cat-file", "-e", revision + "^{commit}"], cwd=path, env=env,
                      stderr=subprocess.DEVNULL).returncode != 0:
        try:
            git(["fetch", "-q", "--depth", "1", "origin", revision], path, env)
        except WeightsError:
            # Servers that refuse to fetch a commit by id: fetch the branches.
            git(["fetch", "-q", "origin"], path, env)
            git(["cat-file", "-e", revision + "^{commit}"], path, env)
    objects = lfs_objects(path, revision, env)
    total = sum(size for size, _ in objects.values())
    missing = {o: v for o, v in objects.items()
               if not (os.path.exists(lfs_path(path, o)) and os.path.getsize(lfs_path(path, o)) == v[0])}
    missing_bytes = sum(size for size, _ in missing.values())
    # The objects still to come, and a checked-out copy of every object.
    need = missing_bytes + total
    free = shutil.disk_usage(path).free
    if need + min_free_gb * 10 ** 9 > free:
        raise WeightsError(
            "not enough disk space in %s for %s: %.2f GB to download and check out, %.2f GB free "
            "(keeping %s GB free). Fix: free space there or set model_weights_dir to a larger disk."
            % (path, url, need / 1e9, free / 1e9, min_free_gb))
    result["fetched_objects"] = len(missing)
    result["fetched_bytes"] = missing_bytes
    result["total_bytes"] = total
    start = done_bytes(path, objects)
    stop = threading.Event()

    def report():
        while not stop.wait(2):
            write_status(status, {"phase": "lfs", "done": done_bytes(path, objects), "total": total,
                                  "resumed_from": start})
    write_status(status, {"phase": "lfs", "done": start, "total": total, "resumed_from": start})
    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    try:
        if missing:
            git(["lfs", "fetch", "origin", revision], path, env)
    finally:
        stop.set()
        thread.join()
    write_status(status, {"phase": "verify", "done": total, "total": total, "resumed_from": start})
    git(["checkout", "-q", "-f", revision], path, env)
    git(["lfs", "checkout"], path, env)
    git(["lfs", "fsck"], path, env)
    for oid, (size, name) in objects.items():
        if os.path.getsize(os.path.join(path, name)) != size:
            raise WeightsError("%s has %d bytes, its LFS pointer says %d" % (name, os.path.getsize(os.path.join(path, name)), size))
    state = check(path, revision, write_marker=True)
    if not state["ok"]:
        raise WeightsError("%s at %s is not usable: %s" % (url, revision, "; ".join(state["problems"])))
    result.update(state)
    write_status(status, {"phase": "done", "done": total, "total": total, "resumed_from": start})
    return result


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("dir")
    c.add_argument("--revision")
    c.add_argument("--write-marker", action="store_true")
    m = sub.add_parser("missing")
    m.add_argument("--model", nargs=3, action="append", default=[], metavar=("NAME", "DIR", "REV"))
    f = sub.add_parser("fetch")
    f.add_argument("dir")
    f.add_argument("--url", required=True)
    f.add_argument("--revision", required=True)
    f.add_argument("--status", required=True)
    f.add_argument("--min-free-gb", type=float, default=5)
    f.add_argument("--token-file")
    args = ap.parse_args()
    try:
        if args.cmd == "missing":
            print(json.dumps(missing(args.model)))
            return 0
        if args.cmd == "check":
            result = check(args.dir, args.revision, args.write_marker)
        else:
            result = fetch(args.dir, args.url, args.revision, args.status, args.min_free_gb, args.token_file)
            result["ok"] = True
    except WeightsError as exc:
        print(json.dumps({"ok": False, "problems": [str(exc)]}))
        return 1
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
