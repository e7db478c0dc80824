#!/bin/sh
# Stage "base" of the FastChat image: the Python runtime from the base image's
# distribution (Debian 12: Python 3.11), the extra CA bundle trusted, optionally
# an apt mirror. Build args: APT_MIRROR (empty: the base image's sources).
set -eu
if [ -s /build/extra-ca.crt ]; then
  mkdir -p /usr/local/share/ca-certificates
  cp /build/extra-ca.crt /usr/local/share/ca-certificates/fastchat-lab-extra-ca.crt
fi
# The mirror goes into a sed program: a URL of plain characters only, or nothing.
case "${APT_MIRROR:-}" in
  "") ;;
  *[!A-Za-z0-9.:/_~%+-]*) echo "APT_MIRROR has characters a mirror URL cannot have: refused" >&2; exit 2 ;;
  http://*|https://*) ;;
  *) echo "APT_MIRROR is not an http(s):// URL: refused" >&2; exit 2 ;;
esac
if [ -n "${APT_MIRROR:-}" ]; then
  # Debian sources, one-line or deb822 format: every .../debian and
  # .../debian-security base URL is pointed at the mirror.
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    sed -E -i -e "s#https?://[^ ]+/debian-security#${APT_MIRROR}-security#g" \
      -e "s#https?://[^ ]+/debian([ /]|\$)#${APT_MIRROR}\\1#g" "$f"
  done
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  python3 python3-venv ca-certificates curl
update-ca-certificates
apt-get clean
rm -rf /var/lib/apt/lists/*
