#!/bin/sh
# Stage "llamacpp" of the llamacpp images, first step: the compilers (this stage is
# not in the final image). The CPU build runs on the lab's base image (Debian 12:
# GCC 12, CMake 3.25; its apt sources and CA are set by apt.sh in stage "base");
# the CUDA build on NVIDIA's CUDA 12.4 devel image (Ubuntu 22.04): GCC 12 from
# Ubuntu (CUDA 12.4 takes GCC <= 13; the same major as the CPU build), CMake 3.22.
# Build arg: UBUNTU_MIRROR (a mirror of Ubuntu's archive, base URL ending in
# /ubuntu; empty: the image's own sources).
set -eu
if [ -s /build/extra-ca.crt ] && command -v update-ca-certificates >/dev/null 2>&1; then
  mkdir -p /usr/local/share/ca-certificates
  cp /build/extra-ca.crt /usr/local/share/ca-certificates/fastchat-lab-extra-ca.crt
  update-ca-certificates
fi
# shellcheck source=/dev/null
. /etc/os-release
if [ "$ID" = ubuntu ]; then
  # NVIDIA's image lists NVIDIA's own apt repository; the toolkit is installed
  # already, and the build needs nothing from there (one server fewer to reach).
  rm -f /etc/apt/sources.list.d/cuda*.list /etc/apt/sources.list.d/nvidia*.list
  # The mirror goes into a sed program: a URL of plain characters only, or nothing.
  case "${UBUNTU_MIRROR:-}" in
    "") ;;
    *[!A-Za-z0-9.:/_~%+-]*) echo "UBUNTU_MIRROR has characters a mirror URL cannot have: refused" >&2; exit 2 ;;
    http://*|https://*) ;;
    *) echo "UBUNTU_MIRROR is not an http(s):// URL: refused" >&2; exit 2 ;;
  esac
  if [ -n "${UBUNTU_MIRROR:-}" ]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      sed -E -i -e "s#https?://[^ ]+/ubuntu([ /]|\$)#${UBUNTU_MIRROR}\\1#g" "$f"
    done
  fi
  packages="build-essential cmake gcc-12 g++-12"
else
  packages="build-essential cmake"
fi
apt-get update
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages
