# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Which of the lab's images a host lacks (role fastchat_image), from what
``community.docker.docker_image_info`` found there.

Each host looks up the images of the stacks its plan needs (:func:`wanted`) in one
docker_image_info task; :func:`missing` reads one host's answer, :func:`lacked` every
host's (what the build host saves and serves); :func:`context_files` lays out a stack's
build context; :func:`clone_probe_commands`, :func:`clone_current` and :func:`clone_head`
say whether a source clone on the build host is already what the build needs, and at which
commit it is. Pure Python (standard library only): the ``fastchat_lab.lab.images_wanted``,
``images_missing``, ``images_lacked``, ``image_context_files``, ``image_clone_probe``,
``image_clone_current`` and ``image_clone_head`` filters wrap them; ``tests/test_images.py``
checks them.
"""

from __future__ import annotations


class ImagesError(ValueError):
    pass


def missing(info, wanted):
    """The stacks of ``wanted`` ({stack: image reference}) whose image the host lacks, in
    ``wanted``'s order. ``info`` is docker_image_info's registered result for those
    references (``images``: the ones the host has, each with its ``RepoTags``). A skipped
    result (the build host, which has them all) lacks none; a failed one (check mode on a
    host without Docker yet, where the role lets it fail) lacks every one."""
    info = info or {}
    if not info or info.get("skipped"):
        return []
    if info.get("failed"):
        return list(wanted)
    if "images" not in info:
        raise ImagesError("the image lookup gave no images list (got keys %s)" % ", ".join(sorted(info)))
    present = set()
    for image in info["images"] or []:
        present.update((image or {}).get("RepoTags") or [])
    return [stack for stack, ref in wanted.items() if ref not in present]


def wanted(plan, host, images):
    """{stack: image reference} of the stacks ``host``'s plan needs, among ``images``
    ({stack: reference}: what the build host built or recorded), in the plan's order."""
    stacks = ((plan or {}).get("hosts") or {}).get(host, {}).get("stacks") or []
    return {stack: images[stack] for stack in stacks if stack in images}


def lacked(infos, plan, images):
    """The image references some host lacks, once each, sorted: ``infos`` is {host:
    docker_image_info's result there} (``{}`` or skipped where it did not run)."""
    out = set()
    for host, info in (infos or {}).items():
        need = wanted(plan, host, images)
        out.update(need[stack] for stack in missing(info, need))
    return sorted(out)


def context_files(ctx, items, contents, extra_ca=""):
    """The build context of one stack as lab_files entries: its build/ directory, each of
    ``items`` ([{src, dest}], the role's files) with its content (``contents``, in the same
    order) at ``ctx``/dest, and build/extra-ca.crt (``extra_ca``: the CA bundle the build
    trusts, or empty)."""
    if len(items) != len(contents):
        raise ImagesError("%d context files but %d contents" % (len(items), len(contents)))
    files = [{"path": ctx + "/build", "state": "directory", "mode": "0750"}]
    for item, content in zip(items, contents):
        dest = str(item["dest"])
        if dest.startswith("/") or ".." in dest.split("/"):
            raise ImagesError("%r is not a path inside the build context" % dest)
        files.append({"path": ctx + "/" + dest, "mode": "0644", "content": content})
    files.append({"path": ctx + "/build/extra-ca.crt", "mode": "0644", "content": extra_ca or ""})
    return files


# The clones of the build host (FastChat's, llama.cpp's): whether each is already what the
# build needs is asked of the clone itself, offline. ansible.builtin.git finds "nothing to
# do" only after asking the remote (ls-remote, two or three times a clone): every re-run
# would reach GitHub or the mirror, slow behind a slow link, and fail where it is down.
CLONE_QUESTIONS = ("head", "status", "origin")


def clone_probe_commands(clones):
    """host_probe commands (read-only, no network) for each clone of ``{name: path}``:
    ``<name>.head`` its checked-out commit, ``<name>.status`` its changes to tracked files
    (what the git module calls local modifications), ``<name>.origin`` its remote's URL."""
    if not isinstance(clones, dict):
        raise ImagesError("the clones must be a mapping of name to path, got %s"
                          % type(clones).__name__)
    commands = {}
    for name, path in clones.items():
        if not isinstance(path, str) or not path.startswith("/"):
            raise ImagesError("%s: the clone's path %r is not absolute" % (name, path))
        git = ["git", "-C", path]
        commands[name + ".head"] = git + ["rev-parse", "--verify", "HEAD^{commit}"]
        commands[name + ".status"] = git + ["status", "--porcelain", "--untracked-files=no"]
        commands[name + ".origin"] = git + ["remote", "get-url", "origin"]
    return commands


def clone_current(probe, name, url, commit):
    """True where the clone ``name``, as ``probe`` (host_probe's result with the commands of
    :func:`clone_probe_commands`) found it, is checked out at ``commit`` with no change to a
    tracked file and ``url`` as its origin: the git task would change nothing. False for
    anything else (no clone, no git, another commit, local changes, another origin, a
    failed question) and where no commit is known to compare with (a ref's first build)."""
    if not isinstance(commit, str) or not commit:
        return False
    got = {question: _clone_answer(probe, name, question) for question in CLONE_QUESTIONS}
    return got["head"] == commit and got["status"] == "" and got["origin"] == url


def clone_head(probe, name):
    """The commit the clone ``name`` is checked out at, as ``probe`` found it ("" when the
    question failed)."""
    return _clone_answer(probe, name, "head") or ""


def _clone_answer(probe, name, question):
    """The clone's answer to one question of :func:`clone_probe_commands`, stripped; None
    where it was not asked or failed."""
    answer = ((probe or {}).get("commands") or {}).get("%s.%s" % (name, question))
    if not isinstance(answer, dict) or answer.get("rc") != 0:
        return None
    return (answer.get("stdout") or "").strip()
