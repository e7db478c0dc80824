#!/bin/sh
# llama.cpp's llama-server and llama-quantize built from SRC and installed, with what
# they load and the converter, into PREFIX:
#   llamacpp-build.sh SRC PREFIX [CUDA_ARCHS]
# SRC holds the tree, its commit (.fastchat-lab-source) and what it was made from
# (.fastchat-lab-tree: the commit and the patches' hashes), from prepare-llamacpp.sh.
# CUDA_ARCHS empty: the CPU build (stack llamacpp-cpu): static, GGML_NATIVE=OFF with
#   x86-64-v3's instructions (SSE4.2, AVX, AVX2, FMA, F16C, BMI2: every x86-64 server
#   CPU since 2013, Intel Haswell / AMD Zen), one binary each, nothing to load.
# CUDA_ARCHS "61;86" (compute capabilities): the CUDA build (stack llamacpp-cuda), as
#   llama.cpp's own .devops/cuda.Dockerfile makes it: GGML_CUDA with
#   CMAKE_CUDA_ARCHITECTURES "61-real;86-real" (machine code only: no PTX to compile
#   at start, and CUDA 12's minor-version compatibility then runs it on drivers from
#   525 on), the backends as loadable modules (GGML_BACKEND_DL) with every CPU
#   variant (GGML_CPU_ALL_VARIANTS: the best one for the host's CPU is loaded at
#   start, so an old Xeon of a P40 server without AVX2 runs it too), NCCL off (layer
#   split, --tensor-split, needs none; NCCL would add its 200 MB library). The shared
#   libraries go to PREFIX/lib (RUNPATH $ORIGIN/../lib; backends found there through
#   GGML_BACKEND_DIR), with the CUDA runtime libraries they need copied from the
#   toolkit (libcudart, libcublas, libcublasLt); libcuda.so.1 is the driver's (the
#   NVIDIA container toolkit mounts it).
# Both: Release, no tests, examples, web UI download or OpenSSL (llama-server listens
# on 127.0.0.1 behind the worker); --version names the commit.
# Environment: LLAMACPP_JOBS (parallel compile jobs; 0 or unset: every CPU),
# LLAMACPP_BUILD_DIR (the CMake build directory; default /tmp/llamacpp-build),
# CUDA_LIB_DIR (the toolkit's libraries; default /usr/local/cuda/lib64).
set -eu
src=$1
prefix=$2
archs=${3:-}
commit=$(cat "$src/.fastchat-lab-source")
case "$commit" in *[!0-9a-f]*|"") echo "llamacpp-build.sh: no commit in $src" >&2; exit 2 ;; esac
case "$archs" in *[!0-9\;]*) echo "llamacpp-build.sh: bad CUDA architectures: $archs" >&2; exit 2 ;; esac
build=${LLAMACPP_BUILD_DIR:-/tmp/llamacpp-build}
jobs=${LLAMACPP_JOBS:-0}
[ "$jobs" -gt 0 ] 2>/dev/null || jobs=$(nproc)
short=$(printf '%s' "$commit" | cut -c1-7)

set -- -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DGGML_CCACHE=OFF \
  "-DLLAMA_BUILD_COMMIT=$short"
if [ -z "$archs" ]; then
  set -- "$@" -DBUILD_SHARED_LIBS=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON \
    -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF
else
  cuda_archs=$(printf '%s' "$archs" | sed -E 's/([0-9]+)/\1-real/g')
  set -- "$@" -DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$cuda_archs" -DGGML_CUDA_NCCL=OFF \
    -DBUILD_SHARED_LIBS=ON -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON \
    "-DGGML_BACKEND_DIR=$prefix/lib" -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON \
    "-DCMAKE_INSTALL_RPATH=\$ORIGIN/../lib" -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined
fi
cmake "$@"
cmake --build "$build" --config Release -j "$jobs" --target llama-server llama-quantize

mkdir -p "$prefix/bin" "$prefix/lib" "$prefix/convert/models"
cp "$build/bin/llama-server" "$build/bin/llama-quantize" "$prefix/bin/"
# The shared libraries and backend modules the build made (none in the static build).
find "$build/bin" -maxdepth 1 -name 'lib*.so*' -exec cp -P {} "$prefix/lib/" \;
if [ -n "$archs" ]; then
  # The CUDA runtime libraries the modules need, and what those need in turn.
  cuda_lib=${CUDA_LIB_DIR:-/usr/local/cuda/lib64}
  added=1
  while [ "$added" = 1 ]; do
    added=0
    for f in "$prefix"/lib/*.so*; do
      [ -L "$f" ] && continue
      for need in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        if [ "$need" != libcuda.so.1 ] && [ ! -e "$prefix/lib/$need" ] && [ -e "$cuda_lib/$need" ]; then
          cp -L "$cuda_lib/$need" "$prefix/lib/$need"
          echo "llamacpp-build.sh: CUDA runtime library $need"
          added=1
        fi
      done
    done
  done
  ls "$prefix/lib"/libggml-cuda*.so >/dev/null
fi
# The converter at the same commit: convert_hf_to_gguf.py reads conversion/, gguf-py/
# and models/ (chat templates some architectures take, the two built-in vocabularies)
# beside itself.
cp "$src/convert_hf_to_gguf.py" "$prefix/convert/"
cp -R "$src/conversion" "$src/gguf-py" "$prefix/convert/"
cp -R "$src/models/templates" "$prefix/convert/models/"
cp "$src/models/ggml-vocab-gpt-neox.gguf" "$src/models/ggml-vocab-llama-spm.gguf" "$prefix/convert/models/"
cp "$src/LICENSE" "$prefix/LICENSE"
printf '%s\n' "$commit" > "$prefix/commit"
# What the tree was made from: the commit and the patches' hashes (prepare-llamacpp.sh),
# e.g. for naming what the converter makes.
cp "$src/.fastchat-lab-tree" "$prefix/source"
echo "llamacpp-build.sh: llama.cpp $commit built into $prefix (${archs:+CUDA $archs, }$jobs jobs)"
