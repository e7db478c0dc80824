#!/bin/sh
# The llamacpp image's own check, run in the final image at build time: the build
# fails, not the lab, when the worker does not start, llama-server or llama-quantize
# miss a library, or the converter cannot import what it needs.
#   llamacpp-check.sh cpu|cuda
set -eu
kind=$1
fail() { echo "llamacpp-check.sh: $*" >&2; exit 1; }
commit=$(cat /opt/llamacpp/commit)
short=$(printf '%s' "$commit" | cut -c1-7)
case "$(cat /opt/llamacpp/source)" in
  "$commit patches="*) ;;
  *) fail "/opt/llamacpp/source does not name commit $commit" ;;
esac

# The worker: FastChat's worker framework, without torch or transformers.
/opt/fastchat/venv/bin/python -m fastchat_lab_llamacpp_worker --help >/dev/null ||
  fail "python3 -m fastchat_lab_llamacpp_worker --help failed"
/opt/fastchat/venv/bin/python - <<'PY' || fail "FastChat's worker framework does not import as it should"
import importlib.util
import sys

import fastchat.conversation
import fastchat.serve.base_model_worker
import fastchat_lab_llamacpp_worker  # noqa: F401

for name in ("torch", "transformers"):
    if importlib.util.find_spec(name) is not None:
        sys.exit("%s is in /opt/fastchat/venv: the llamacpp worker runs without it" % name)
PY

# llama.cpp: every library resolves (on the CUDA build, all but the driver's
# libcuda.so.1, which the NVIDIA container toolkit mounts), and the binaries run.
missing=""
for f in /opt/llamacpp/bin/* /opt/llamacpp/lib/*.so*; do
  [ -e "$f" ] || continue
  for lib in $(ldd "$f" 2>/dev/null | awk '/not found/ {print $1}'); do
    if [ "$kind" = cuda ] && [ "$lib" = libcuda.so.1 ]; then continue; fi
    missing="$missing $(basename "$f"):$lib"
  done
done
[ -z "$missing" ] || fail "libraries not found:$missing"
if [ "$kind" = cuda ]; then
  ls /opt/llamacpp/lib/libggml-cuda*.so >/dev/null 2>&1 || fail "no CUDA backend in /opt/llamacpp/lib"
  ls /opt/llamacpp/lib/libggml-cpu-*.so >/dev/null 2>&1 || fail "no CPU backends in /opt/llamacpp/lib"
fi
version=$(/opt/llamacpp/bin/llama-server --version 2>&1) || fail "llama-server --version failed: $version"
case "$version" in
  *"commit $short"*) ;;
  *) fail "llama-server --version does not name commit $short: $version" ;;
esac
# llama-quantize --help prints its types and exits 1.
usage=$(/opt/llamacpp/bin/llama-quantize --help 2>&1 || true)
case "$usage" in
  *Q8_0*) ;;
  *) fail "llama-quantize does not run: $usage" ;;
esac

# The converter: its imports, at the pinned transformers, and the lab's reference
# architectures among the models it converts.
/opt/llamacpp/venv/bin/python - <<'PY' || fail "the converter's Python is not what it should be"
import importlib.metadata

import google.protobuf
import gguf
import numpy
import sentencepiece
import tiktoken
import torch
import transformers

print("converter: torch %s, transformers %s, numpy %s, gguf %s" % (
    torch.__version__, transformers.__version__, numpy.__version__,
    importlib.metadata.version("gguf")))
PY
supported=$(cd /tmp && /opt/llamacpp/venv/bin/python /opt/llamacpp/convert/convert_hf_to_gguf.py \
  --print-supported-models 2>&1) || fail "convert_hf_to_gguf.py does not start: $supported"
for arch in QWenLMHeadModel BaichuanForCausalLM LlamaForCausalLM; do
  printf '%s\n' "$supported" | grep -qw -- "$arch" || fail "the converter does not know $arch"
done
echo "llamacpp-check.sh: $version"
