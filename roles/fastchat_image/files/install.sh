#!/bin/sh
# Stage "venv" of the FastChat image: FastChat and its stack in
# /opt/fastchat/venv, every package from the context's hash locks (scripts/lock
# writes them from the stack's constraints and requirements): pip refuses any
# file whose sha256 the lock does not list, whichever index or wheelhouse served it.
# Build args: PIP_INDEX (empty: pip's default index), TORCH_INDEX (torch's index:
# the only index torch is taken from; empty: PIP_INDEX), OFFLINE (true: only the
# wheelhouse). The image builds in /build into /opt/fastchat; FASTCHAT_LAB_BUILD and
# FASTCHAT_LAB_PREFIX move them (tests/test_locks.py runs this script in a directory).
set -eu
build=${FASTCHAT_LAB_BUILD:-/build}
prefix=${FASTCHAT_LAB_PREFIX:-/opt/fastchat}
cd "$build"
python3 -m venv "$prefix/venv"
pip=$prefix/venv/bin/pip
set -- --no-cache-dir --disable-pip-version-check --progress-bar off --require-hashes --no-deps
if [ -s "$build/extra-ca.crt" ]; then
  # pip trusts its own bundle (certifi), not the system's: point it at the
  # system bundle, which now includes the extra CA.
  export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi
if [ -d "$build/wheelhouse" ] && [ -n "$(ls -A "$build/wheelhouse")" ]; then
  set -- "$@" --find-links "$build/wheelhouse"
fi
[ "${OFFLINE:-false}" = true ] && set -- "$@" --no-index
index=${PIP_INDEX:-}
torch_index=${TORCH_INDEX:-$index}
# 1. The build tools (pip, setuptools, wheel, setuptools-scm, packaging): the sdists
#    (wavedrom, transformers_stream_generator) are then built with them, without an
#    isolated build environment that would fetch unlocked build requirements.
"$pip" install "$@" ${index:+--index-url "$index"} -r "$build/lock-build.txt"
# 2. torch from torch's own index only (no other index can offer a torch).
"$pip" install "$@" ${torch_index:+--index-url "$torch_index"} -r "$build/lock-torch.txt"
# 3. Everything else, FastChat's own dependencies included (--no-deps: only what
#    the lock lists is installed), then FastChat from the clone without its deps.
"$pip" install "$@" ${index:+--index-url "$index"} --no-build-isolation -r "$build/lock.txt"
"$pip" install --no-cache-dir --disable-pip-version-check --progress-bar off --no-deps \
  --no-build-isolation --no-index "$build/FastChat"
"$pip" check
"$pip" freeze --all > "$prefix/freeze.txt"
cp "$build/FastChat/.fastchat-lab-source" "$prefix/source"
# Fail the build, not the lab, when a service cannot even import.
modules="fastchat.serve.controller fastchat.serve.openai_api_server fastchat.serve.model_worker fastchat.serve.gradio_web_server_multi"
grep -qx vllm "$build/requirements.txt" && modules="$modules fastchat.serve.vllm_worker"
"$prefix/venv/bin/python" - $modules <<'PY'
import importlib
import sys

for name in sys.argv[1:]:
    importlib.import_module(name)
import torch
import transformers

print("FastChat modules import: %s (torch %s, transformers %s)"
      % (" ".join(sys.argv[1:]), torch.__version__, transformers.__version__))
PY
