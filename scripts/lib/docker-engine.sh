# shellcheck shell=bash
# Helpers shared by scripts/test and the rehearsal scripts: make sure a local
# Docker engine runs, and build the test-host image the Molecule scenarios use.
# Source it; every function prints what it does and fails loudly.

FASTCHAT_LAB_DOCKERD_LOG=${FASTCHAT_LAB_DOCKERD_LOG:-/var/log/fastchat-lab-dockerd.log}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Install Debian's docker.io when no Docker engine is installed.
ensure_docker_installed() {
  if command -v dockerd >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "No Docker engine (dockerd) and no apt-get: install Docker, then re-run."
    return 1
  fi
  log "Installing Debian's docker.io (no dockerd found)."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io iptables ca-certificates >/dev/null
}

# Install Debian packages when the command they bring is missing:
#   ensure_debian_packages COMMAND WHY PACKAGE...
ensure_debian_packages() {
  local command=$1 why=$2
  shift 2
  if command -v "$command" >/dev/null 2>&1; then
    return 0
  fi
  log "Installing Debian's $* ($why)."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Install Debian's chromium (the lab scenario's arena screenshot) when missing.
ensure_chromium() {
  ensure_debian_packages chromium "headless screenshots of the web UI" chromium fonts-dejavu-core
}

# The unit tests' tools: git-lfs (the weights helper), rsync (the transfer helper), nginx
# and openssl (the front door's configuration, run as the lab_proxy role installs it),
# sshd (ansible.cfg's host key checking, against a server the test starts).
ensure_unit_test_tools() {
  ensure_debian_packages git-lfs "the weights helper's tests" git git-lfs &&
    ensure_debian_packages rsync "the transfer helper's tests" rsync &&
    ensure_debian_packages nginx "the front door's tests" nginx &&
    ensure_debian_packages openssl "the front door's tests" openssl &&
    ensure_debian_packages sshd "the SSH host key tests" openssh-server
}

# Run dockerd ourselves (no init system: a container, a CI sandbox) unless one runs.
start_dockerd() {
  if pgrep -x dockerd >/dev/null 2>&1; then
    return 0
  fi
  # A socket left by a dockerd that was killed would make it refuse to start.
  rm -f /var/run/docker.pid /var/run/docker.sock
  log "Starting dockerd (log: $FASTCHAT_LAB_DOCKERD_LOG)."
  # Without scripts/test's Molecule lock (fd 9): a dockerd that inherited it would
  # hold it for as long as it runs, and every later scripts/test would wait for it.
  nohup dockerd >>"$FASTCHAT_LAB_DOCKERD_LOG" 2>&1 </dev/null 9>&- &
}

# Start dockerd when nothing answers on the socket, then wait for it.
ensure_docker_running() {
  ensure_docker_installed
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  local own=""
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    log "Starting the docker service."
    systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1; then
    own=1
    start_dockerd
  fi
  local i
  for i in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      log "Docker engine $(docker info --format '{{.ServerVersion}}') is running."
      return 0
    fi
    # A dockerd that was still exiting when we looked has gone since: start one now.
    if [ -n "$own" ]; then
      start_dockerd
    fi
    sleep 1
  done
  log "dockerd did not answer within 60 s; last lines of its log:"
  tail -n 20 "$FASTCHAT_LAB_DOCKERD_LOG" >&2 || true
  return 1
}

# The host CA bundle, trusted inside test hosts and image builds (registries
# are reached through a TLS-intercepting proxy here, as in many corporate labs).
host_ca_bundle() {
  local f
  for f in "${FASTCHAT_LAB_EXTRA_CA:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -n "$f" ] && [ -s "$f" ]; then
      printf '%s\n' "$f"
      return 0
    fi
  done
  log "No CA bundle found; set FASTCHAT_LAB_EXTRA_CA to a PEM file."
  return 1
}

# Build (or reuse) the Debian rootfs image made by debootstrap; no registry needed.
# Prints the image name.
ensure_rootfs_image() {
  local suite=$1 image="fastchat-lab/rootfs:$1"
  if docker image inspect "$image" >/dev/null 2>&1; then
    printf '%s\n' "$image"
    return 0
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "Installing debootstrap."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  local dir
  dir=$(mktemp -d /var/tmp/fastchat-lab-rootfs.XXXXXX)
  log "debootstrap $suite into $dir (about a minute)."
  # The mirror is left at debootstrap's default; set FASTCHAT_LAB_DEBIAN_MIRROR for another.
  # shellcheck disable=SC2086
  if ! debootstrap --variant=minbase "$suite" "$dir" ${FASTCHAT_LAB_DEBIAN_MIRROR:-} >"$dir.log" 2>&1; then
    tail -n 20 "$dir.log" >&2
    rm -rf "$dir" "$dir.log"
    return 1
  fi
  tar -C "$dir" -c . | docker import - "$image" >/dev/null
  rm -rf "$dir" "$dir.log"
  printf '%s\n' "$image"
}

# The tag of the test-host images: a hash of every input, so a changed
# Dockerfile or CA bundle gives new images and unchanged ones are reused.
testhost_tag() {
  local root ca
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  ca=$(host_ca_bundle)
  cat "$root/molecule/resources/testhost/Dockerfile" "$ca" | sha256sum | cut -c1-16
}

# Build (or reuse) the test-host image fastchat-lab/testhost-SUITE:TAG (SUITE
# trixie = Debian 13, bookworm = Debian 12): systemd as PID 1, python3, and the
# host CA bundle trusted.
ensure_testhost_image() {
  local suite=$1 root ctx ca base tag image
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  ctx="$root/molecule/resources/testhost"
  ca=$(host_ca_bundle)
  tag=$(testhost_tag)
  image="fastchat-lab/testhost-$suite:$tag"
  if docker image inspect "$image" >/dev/null 2>&1; then
    log "Test-host image $image is up to date."
  else
    base=$(ensure_rootfs_image "$suite")
    local build
    build=$(mktemp -d)
    cp "$ctx/Dockerfile" "$build/"
    cp "$ca" "$build/extra-ca.crt"
    log "Building test-host image $image."
    if ! docker build --network host --build-arg "BASE=$base" -t "$image" "$build" >"$build.log" 2>&1; then
      tail -n 30 "$build.log" >&2
      rm -rf "$build" "$build.log"
      return 1
    fi
    rm -rf "$build" "$build.log"
  fi
}
