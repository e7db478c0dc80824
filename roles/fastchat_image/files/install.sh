#!/bin/sh
# Stage "venv" of the FastChat image: FastChat and its stack in
# /opt/fastchat/venv, from the context's constraints (one pin per reason).
# Build args: PIP_INDEX (empty: pip's default index), TORCH_INDEX (extra index
# for torch), OFFLINE (true: only the wheelhouse).
set -eu
cd /build
python3 -m venv /opt/fastchat/venv
pip=/opt/fastchat/venv/bin/pip
set -- --no-cache-dir --disable-pip-version-check --progress-bar off
if [ -s /build/extra-ca.crt ]; then
  # pip trusts its own bundle (certifi), not the system's: point it at the
  # system bundle, which now includes the extra CA.
  export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi
[ -n "${PIP_INDEX:-}" ] && set -- "$@" --index-url "$PIP_INDEX"
[ -n "${TORCH_INDEX:-}" ] && set -- "$@" --extra-index-url "$TORCH_INDEX"
if [ -d /build/wheelhouse ] && [ -n "$(ls -A /build/wheelhouse)" ]; then
  set -- "$@" --find-links /build/wheelhouse
fi
[ "${OFFLINE:-false}" = true ] && set -- "$@" --no-index
# A current pip first; sdists (wavedrom, transformers_stream_generator) are
# built in isolated PEP 517 environments (--use-pep517): their setup_requires
# then come with their own dependencies.
"$pip" install "$@" -c /build/constraints.txt pip setuptools wheel
# One resolve for everything, so the constraints hold for FastChat's own
# (unpinned) dependencies too.
"$pip" install "$@" --use-pep517 -c /build/constraints.txt -r /build/requirements.txt \
  "/build/FastChat[model_worker,webui]"
"$pip" check
"$pip" freeze --all > /opt/fastchat/freeze.txt
cp /build/FastChat/.fastchat-lab-source /opt/fastchat/source
# Fail the build, not the lab, when a service cannot even import.
modules="fastchat.serve.controller fastchat.serve.openai_api_server fastchat.serve.model_worker fastchat.serve.gradio_web_server_multi"
grep -qx vllm /build/requirements.txt && modules="$modules fastchat.serve.vllm_worker"
/opt/fastchat/venv/bin/python - $modules <<'PY'
import importlib
import sys

for name in sys.argv[1:]:
    importlib.import_module(name)
import torch
import transformers

print("FastChat modules import: %s (torch %s, transformers %s)"
      % (" ".join(sys.argv[1:]), torch.__version__, transformers.__version__))
PY
