#!/bin/sh
# Stage "venv" of the llamacpp images: two venvs, every package from the context's
# hash locks (scripts/lock writes them from the constraints and requirements; pip
# refuses any file whose sha256 a lock does not list):
#   /opt/fastchat/venv  FastChat (no extras: no torch, no transformers) and the
#                       llama.cpp worker (fastchat_lab_llamacpp_worker, a top-level
#                       module): lock-build.txt, lock.txt;
#   /opt/llamacpp/venv  llama.cpp's converter: torch (CPU), transformers, ... and gguf
#                       from the commit's gguf-py: convert-lock-build.txt,
#                       convert-lock-torch.txt, convert-lock.txt.
# Build args: PIP_INDEX (empty: pip's default index), TORCH_INDEX (the converter's
# torch's index, the cpu stack's: the only index torch is taken from; empty:
# PIP_INDEX), OFFLINE (true: only the wheelhouse).
set -eu
cd /build
[ -f /build/fastchat_lab_llamacpp_worker.py ] || {
  echo "install-llamacpp.sh: fastchat_lab_llamacpp_worker.py is not in the context" >&2; exit 1; }
set -- --no-cache-dir --disable-pip-version-check --progress-bar off --require-hashes --no-deps
if [ -s /build/extra-ca.crt ]; then
  # pip trusts its own bundle (certifi), not the system's: point it at the
  # system bundle, which now includes the extra CA.
  export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi
if [ -d /build/wheelhouse ] && [ -n "$(ls -A /build/wheelhouse)" ]; then
  set -- "$@" --find-links /build/wheelhouse
fi
[ "${OFFLINE:-false}" = true ] && set -- "$@" --no-index
index=${PIP_INDEX:-}
torch_index=${TORCH_INDEX:-$index}
# What a locked install leaves out of pip's reach: a local tree, no index, no deps.
local_tree="--no-cache-dir --disable-pip-version-check --progress-bar off --no-deps --no-build-isolation --no-index"

# FastChat's worker framework: the build tools first, then the sdists (wavedrom from
# markdown2[all]) are built with them, without an isolated build environment.
python3 -m venv /opt/fastchat/venv
pip=/opt/fastchat/venv/bin/pip
"$pip" install "$@" ${index:+--index-url "$index"} -r /build/lock-build.txt
"$pip" install "$@" ${index:+--index-url "$index"} --no-build-isolation -r /build/lock.txt
# shellcheck disable=SC2086
"$pip" install $local_tree /build/FastChat
site=$(/opt/fastchat/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp /build/fastchat_lab_llamacpp_worker.py "$site/fastchat_lab_llamacpp_worker.py"
chmod 0644 "$site/fastchat_lab_llamacpp_worker.py"
"$pip" check
"$pip" freeze --all > /opt/fastchat/freeze.txt
cp /build/FastChat/.fastchat-lab-source /opt/fastchat/source

# The converter: torch from torch's own index only; gguf-py is built with the venv's
# own poetry-core (locked), its dependencies are in convert-lock.txt.
python3 -m venv /opt/llamacpp/venv
cpip=/opt/llamacpp/venv/bin/pip
"$cpip" install "$@" ${index:+--index-url "$index"} -r /build/convert-lock-build.txt
"$cpip" install "$@" ${torch_index:+--index-url "$torch_index"} -r /build/convert-lock-torch.txt
"$cpip" install "$@" ${index:+--index-url "$index"} --no-build-isolation -r /build/convert-lock.txt
# shellcheck disable=SC2086
"$cpip" install $local_tree /build/gguf-py
"$cpip" check
"$cpip" freeze --all > /opt/llamacpp/freeze.txt
