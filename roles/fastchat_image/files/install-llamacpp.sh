#!/bin/sh
# Stage "venv" of the llamacpp images: two venvs, from the context's constraints (one
# pin per reason):
#   /opt/fastchat/venv  FastChat (no extras: no torch, no transformers) and the
#                       llama.cpp worker (fastchat_lab_llamacpp_worker, a top-level
#                       module), constraints.txt / requirements.txt;
#   /opt/llamacpp/venv  llama.cpp's converter: torch (CPU), transformers, ... and gguf
#                       from the commit's gguf-py, convert-constraints.txt /
#                       convert-requirements.txt.
# Build args: PIP_INDEX (empty: pip's default index), TORCH_INDEX (extra index for the
# converter's torch: the cpu stack's), OFFLINE (true: only the wheelhouse).
set -eu
cd /build
[ -f /build/fastchat_lab_llamacpp_worker.py ] || {
  echo "install-llamacpp.sh: fastchat_lab_llamacpp_worker.py is not in the context" >&2; exit 1; }
set -- --no-cache-dir --disable-pip-version-check --progress-bar off
if [ -s /build/extra-ca.crt ]; then
  # pip trusts its own bundle (certifi), not the system's: point it at the
  # system bundle, which now includes the extra CA.
  export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi
[ -n "${PIP_INDEX:-}" ] && set -- "$@" --index-url "$PIP_INDEX"
if [ -d /build/wheelhouse ] && [ -n "$(ls -A /build/wheelhouse)" ]; then
  set -- "$@" --find-links /build/wheelhouse
fi
[ "${OFFLINE:-false}" = true ] && set -- "$@" --no-index

# FastChat's worker framework. FastChat's sdist-built dependencies (wavedrom from
# markdown2[all]) are built in isolated PEP 517 environments, as in install.sh.
python3 -m venv /opt/fastchat/venv
pip=/opt/fastchat/venv/bin/pip
"$pip" install "$@" -c /build/constraints.txt pip setuptools wheel
"$pip" install "$@" --use-pep517 -c /build/constraints.txt -r /build/requirements.txt /build/FastChat
site=$(/opt/fastchat/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp /build/fastchat_lab_llamacpp_worker.py "$site/fastchat_lab_llamacpp_worker.py"
chmod 0644 "$site/fastchat_lab_llamacpp_worker.py"
"$pip" check
"$pip" freeze --all > /opt/fastchat/freeze.txt
cp /build/FastChat/.fastchat-lab-source /opt/fastchat/source

# The converter. gguf-py is built with the venv's own poetry-core (pinned) rather than
# in an isolated environment, so a wheelhouse-only (offline) build needs nothing more.
[ -n "${TORCH_INDEX:-}" ] && set -- "$@" --extra-index-url "$TORCH_INDEX"
python3 -m venv /opt/llamacpp/venv
cpip=/opt/llamacpp/venv/bin/pip
"$cpip" install "$@" -c /build/convert-constraints.txt pip setuptools wheel poetry-core
"$cpip" install "$@" --no-build-isolation -c /build/convert-constraints.txt \
  -r /build/convert-requirements.txt /build/gguf-py
"$cpip" check
"$cpip" freeze --all > /opt/llamacpp/freeze.txt
