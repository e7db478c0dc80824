# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The lab plan's GGUF files, as the model_weights role makes, checks and hands them out.

Pure Python (standard library only); the ``fastchat_lab.lab.gguf_*`` filters wrap it,
``tests/test_gguf_plan.py`` tests it. The files themselves are made and verified by the
role's helper (``roles/model_weights/files/fastchat_gguf.py``); this module says which
helper command each host runs:

- :func:`gguf_files`: every GGUF file of the plan (``plan["models"][m]["gguf"][q]``), by
  file name, with what making and checking it needs, checked by shape (each value reaches
  a path or a command line).
- :func:`probe_commands`: the read-only checks of one host's probe: the cache host checks
  every file (it is the source of the others) and which llama.cpp images it has and
  whether a conversion container of an interrupted run is left; another host checks
  the files its workers need.
- :func:`probe_state`: what a probe found: the files a host lacks, those its sha256 had
  to verify (their mtime changed), the images there, a leftover container.
- :func:`make_argv`: the ``docker run`` of one conversion: the llama.cpp image, no
  network, the weights read-only, only the GGUF directory writable.
"""

from __future__ import annotations

import json
import os
import re

# The helper, the weights and the GGUF directory inside the conversion container.
CONTAINER_HELPER = "/fastchat-lab/fastchat_gguf.py"
CONTAINER_WEIGHTS = "/fastchat-lab/weights"
CONTAINER_GGUF = "/fastchat-lab/gguf"
# One conversion at a time on the cache host, under this name: a container an
# interrupted run left is found by it and removed before the next conversion.
CONTAINER_NAME = "fastchat-lab-gguf"
# The converter's Python in the llama.cpp images (roles/fastchat_image).
IMAGE_PYTHON = "/opt/llamacpp/venv/bin/python"
# The llama.cpp images that can convert, in the order they are preferred: the CPU build
# first (converting and quantizing run on the CPU; the CUDA build's programs need the
# NVIDIA runtime to start).
STACKS = ("llamacpp-cpu", "llamacpp-cuda")
QUANTIZATIONS = ("f16", "q8_0", "q4_k_m")
# Where received copies wait to be verified, inside the GGUF directory (the fence of
# lab_transfer's pull: a directory directly inside a directory the lab owns).
INCOMING = "incoming"
# The names of the cache host's image and container probes (a file's name begins with a
# letter or digit).
IMAGE_PROBE = "_image."
CONTAINER_PROBE = "_container"

MODEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?\Z")
HEX40_RE = re.compile(r"^[0-9a-f]{40}\Z")
GGUF_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.gguf\Z")
PATH_RE = re.compile(r"^/[A-Za-z0-9._@+/-]*\Z")
HOST_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,253})\Z")
IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,254}(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?"
                      r"(?:@sha256:[0-9a-f]{64})?\Z")


class GgufPlanError(ValueError):
    pass


def _path(value):
    return isinstance(value, str) and bool(PATH_RE.match(value)) and os.path.normpath(value) == value \
        and ".." not in value.split("/")


def _bad(model, quantization, what, value):
    return GgufPlanError(
        "all: lab plan: models.%s.gguf.%s: %s %r is not of the shape the model_weights role "
        "accepts. Fix: re-plan the lab with playbooks/plan.yml (the planner makes this "
        "entry); report it if it persists." % (model, quantization, what, value))


def gguf_files(plan):
    """{file: entry} of every GGUF file of the plan, sorted by file name. An entry has
    model, quantization, file, host_path, hosts, revision, commit, gguf_dir and
    weights_path (the model's weights on the hosts: the cache host converts them)."""
    llamacpp = (plan.get("summary") or {}).get("llamacpp") or {}
    files = {}
    for model, entry in sorted((plan.get("models") or {}).items()):
        for quantization, gguf in sorted(((entry or {}).get("gguf") or {}).items()):
            commit, gguf_dir = llamacpp.get("commit"), llamacpp.get("gguf_dir")
            item = {"model": model, "quantization": quantization,
                    "file": gguf.get("file"), "host_path": gguf.get("host_path"),
                    "hosts": sorted(gguf.get("hosts") or []),
                    "revision": entry.get("revision"), "commit": commit, "gguf_dir": gguf_dir,
                    "weights_path": entry.get("host_path")}
            if not MODEL_RE.match(model) or ".." in model:
                raise _bad(model, quantization, "the model name", model)
            if quantization not in QUANTIZATIONS:
                raise _bad(model, quantization, "the quantization", quantization)
            for key, regex in (("revision", HEX40_RE), ("commit", HEX40_RE), ("file", GGUF_NAME_RE)):
                if not isinstance(item[key], str) or not regex.match(item[key]):
                    raise _bad(model, quantization, key, item[key])
            for key in ("gguf_dir", "weights_path"):
                if not _path(item[key]):
                    raise _bad(model, quantization, key, item[key])
            if item["host_path"] != "%s/%s" % (gguf_dir, item["file"]):
                raise _bad(model, quantization, "host_path (not <gguf_dir>/<file>)", item["host_path"])
            for host in item["hosts"]:
                if not isinstance(host, str) or not HOST_RE.match(host):
                    raise _bad(model, quantization, "a host", host)
            files[item["file"]] = item
    return files


def check_argv(entry, helper, *extra):
    """The helper's check of one file on a host."""
    return [helper, "check", entry["host_path"], "--model", entry["model"],
            "--revision", entry["revision"], "--quantization", entry["quantization"],
            "--commit", entry["commit"]] + list(extra)


def install_argv(entry, helper):
    """The helper's verification of a received copy, which moves it into place."""
    incoming = "%s/%s/%s" % (entry["gguf_dir"], INCOMING, entry["file"])
    return [helper, "install", incoming, entry["host_path"], "--model", entry["model"],
            "--revision", entry["revision"], "--quantization", entry["quantization"],
            "--commit", entry["commit"]]


def host_files(files, host, cache):
    """The files ``host`` checks: every one on the cache host (the source of the others),
    else those its workers need. ``cache`` empty: the host's own only (deploy check)."""
    return [name for name, entry in files.items() if host == cache or host in entry["hosts"]]


def _image_ref(ref):
    if not isinstance(ref, str) or not IMAGE_RE.match(ref):
        raise GgufPlanError("all: fastchat_image_refs: %r is not an image reference. Fix: run "
                            "the fastchat_image role (site.yml) that publishes it." % (ref,))
    return ref


def probe_commands(files, host, cache, helper, image_refs=None):
    """{name: argv} of ``host``'s read-only probe. Files are named by their file name
    (which begins with a letter or digit); on the cache host, when the plan has GGUF
    files, "_image.<stack>" inspects each llama.cpp image of fastchat_image_refs and
    "_container" the conversion container."""
    commands = {name: check_argv(files[name], helper) for name in host_files(files, host, cache)}
    if host == cache and files:
        for stack in STACKS:
            if (image_refs or {}).get(stack):
                commands[IMAGE_PROBE + stack] = ["docker", "image", "inspect",
                                              _image_ref(image_refs[stack])]
        commands[CONTAINER_PROBE] = ["docker", "container", "inspect", CONTAINER_NAME]
    return commands


def _answer(answer):
    try:
        out = json.loads((answer or {}).get("stdout") or "")
        return out if isinstance(out, dict) else {}
    except ValueError:
        return {}


def probe_state(probe):
    """What a host's probe found: {"missing": files lacking or unverified, "problems":
    {file: why}, "stale": files their sha256 verified (mtime changed), "images": stacks
    whose image is there, "container": whether a conversion container is left}. A
    skipped probe found nothing."""
    commands = (probe or {}).get("commands") or {}
    state = {"missing": [], "problems": {}, "stale": [], "images": [], "container": False}
    for name, answer in commands.items():
        ok = (answer or {}).get("rc") == 0
        if name.startswith(IMAGE_PROBE):
            if ok:
                state["images"].append(name[len(IMAGE_PROBE):])
        elif name == CONTAINER_PROBE:
            state["container"] = ok
        elif ok:
            if _answer(answer).get("stale_mtime"):
                state["stale"].append(name)
        else:
            state["missing"].append(name)
            state["problems"][name] = "; ".join(_answer(answer).get("problems") or []) or \
                ((answer or {}).get("stderr") or "rc %s" % (answer or {}).get("rc"))[-300:]
    state["images"] = [s for s in STACKS if s in state["images"]]
    return state


def pick_image(images, image_refs):
    """(stack, image) to convert with: the first of STACKS the cache host has; (None,
    None) when it has none."""
    for stack in STACKS:
        if stack in images and (image_refs or {}).get(stack):
            return stack, _image_ref(image_refs[stack])
    return None, None


def make_argv(entry, image, helper, min_free_gb, prepare=None, gpus=False):
    """The ``docker run`` that makes one file on the cache host with the helper inside
    the llama.cpp image: no network, the weights read-only, nothing writable but the
    GGUF directory and a /tmp in memory, no capabilities; ``gpus`` gives the NVIDIA
    runtime (the CUDA image's programs load its driver library)."""
    _image_ref(image)
    if not _path(helper) or (prepare is not None and not _path(prepare)):
        raise GgufPlanError("all: model_weights: helper %r or prepare script %r is not an "
                            "absolute path" % (helper, prepare))
    if isinstance(min_free_gb, bool) or not isinstance(min_free_gb, (int, float)) \
            or not min_free_gb >= 0 or min_free_gb == float("inf"):
        raise GgufPlanError("all: model_weights_min_free_gb: %r is not a number of GB >= 0. "
                            "Fix: set it to e.g. 5." % (min_free_gb,))
    argv = ["docker", "run", "--rm", "--name", CONTAINER_NAME, "--network", "none",
            "--user", "0:0", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--read-only", "--tmpfs", "/tmp",
            "--env", "HOME=/tmp", "--env", "HF_HOME=/tmp/huggingface",
            "--env", "HF_HUB_OFFLINE=1", "--env", "TRANSFORMERS_OFFLINE=1",
            "--mount", "type=bind,src=%s,dst=%s,readonly" % (entry["weights_path"], CONTAINER_WEIGHTS),
            "--mount", "type=bind,src=%s,dst=%s" % (entry["gguf_dir"], CONTAINER_GGUF),
            "--mount", "type=bind,src=%s,dst=%s,readonly" % (helper, CONTAINER_HELPER)]
    if gpus:
        argv += ["--gpus", "all"]
    argv += ["--entrypoint", IMAGE_PYTHON, image, CONTAINER_HELPER, "make",
             "%s/%s" % (CONTAINER_GGUF, entry["file"]), "--hf-dir", CONTAINER_WEIGHTS,
             "--model", entry["model"], "--revision", entry["revision"],
             "--quantization", entry["quantization"], "--commit", entry["commit"],
             "--min-free-gb", repr(float(min_free_gb))]
    if prepare:
        argv += ["--prepare", prepare]
    return argv
