#!/usr/bin/env bash
# Shared helpers for the set-up scripts: find Swift, install missing Debian/Ubuntu packages.
# Sourced by scripts/test.sh and scripts/run.sh; not meant to be run on its own.

# System packages the build and the tests need (Debian/Ubuntu names).
#   libstdc++-12-dev, libc6-dev: C/C++ headers for TOMLKit's toml++ core.
#   zlib1g-dev, libsqlite3-dev: the HTTP client's compression and the memory store (SQLite).
#   bubblewrap: the shell sandbox of the process tier (without it shell tools are disabled).
OXYDRA_APT_PACKAGES=(libc6-dev libstdc++-12-dev zlib1g-dev libsqlite3-dev bubblewrap)
# Extra packages for the tests: tmux drives the terminal UI in its end-to-end test; dash is the
# shell the sandbox runs commands with (the policy parses its grammar); python3 and pip run the
# official provider SDKs against the scripted model server; passwd (useradd) and util-linux
# (setpriv, script) create and act as a second OS user and give `runner ask` a terminal.
# docker.io: the container engine the Docker Engine API tests talk to (started by ensure_docker_daemon);
# mmdebstrap: assembles the shell-vm image's Debian root (`runner images build`).
# chromium: the headless browser the web app tests drive over the DevTools protocol.
# qemu-system-x86, linux-image-amd64, busybox-static, cpio, e2fsprogs: the micro VM tests boot the
# host's kernel under QEMU's microvm machine with an initramfs and an ext4 root disk (mke2fs -d).
OXYDRA_TEST_APT_PACKAGES=(tmux dash python3 python3-pip passwd util-linux docker.io mmdebstrap chromium
  qemu-system-x86 linux-image-amd64 busybox-static cpio e2fsprogs)
# Python packages for the tests: the official SDKs (OfficialSDKTests).
OXYDRA_TEST_PYTHON_PACKAGES=(openai anthropic google-genai)

# Link only the shared libraries a binary calls. TOMLKit imports Foundation, so every product's
# autolink list names full Foundation and its ICU although none of our code calls them (the
# MemberImportVisibility feature keeps Foundation's String overloads out of our modules): with
# --as-needed the guest maps FoundationEssentials only (about 8 MiB less PSS per guest). SwiftPM
# puts linker flags after the autolinked libraries, where --as-needed no longer applies, so it goes
# in front through clang's CCC_OVERRIDE_OPTIONS ('#' keeps clang quiet about the edit).
export CCC_OVERRIDE_OPTIONS="# ^-Wl,--as-needed ^-Qunused-arguments"

# Fails when the guest binary in $1 still loads full Foundation or ICU.
check_guest_link() {
  local needed
  needed=$(readelf -d "$1/oxydra-vm" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
  case "$needed" in
    *libFoundation.so*|*libFoundationInternationalization.so*|*lib_FoundationICU.so*)
      die "the guest links full Foundation or ICU ($needed): something in the guest calls Foundation" ;;
  esac
  log "guest links: $needed"
}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Puts a Swift toolchain on PATH, or explains how to get one.
ensure_swift() {
  if ! command -v swift >/dev/null 2>&1; then
    for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin "$HOME/.local/share/swiftly/bin"; do
      if [ -x "$candidate/swift" ]; then PATH="$candidate:$PATH"; export PATH; break; fi
    done
  fi
  command -v swift >/dev/null 2>&1 || die "no Swift toolchain found. Install Swift 6.1 or newer \
(https://www.swift.org/install/linux/ or 'swiftly install latest') and put its usr/bin on PATH."
  local version
  version=$(swift --version 2>&1 | sed -n 's/.*Swift version \([0-9]*\.[0-9]*\).*/\1/p' | head -n1)
  case "$version" in
    ""|5.*|6.0) die "Swift ${version:-unknown} is too old; Oxydra needs Swift 6.1 or newer." ;;
  esac
}

# Installs whichever of the given Debian packages are missing (apt-get, as root or through sudo).
ensure_packages() {
  command -v dpkg-query >/dev/null 2>&1 || { log "not a Debian/Ubuntu system; make sure these are installed: $*"; return 0; }
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing missing system packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq || log "apt-get update failed; trying the install anyway"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || die "could not install ${missing[*]}; install them by hand and re-run"
}

# Starts dockerd when no container engine answers on its socket (root only; as another user,
# start Docker yourself or point DOCKER_HOST at a Podman socket). Logs to /tmp/oxydra-dockerd.log.
ensure_docker_daemon() {
  if docker version >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    log "no container engine answers (docker version failed); start Docker to run the container tests"
    return 0
  fi
  command -v dockerd >/dev/null 2>&1 || die "dockerd is missing (apt-get install docker.io)"
  log "starting dockerd (log: /tmp/oxydra-dockerd.log)"
  nohup dockerd >/tmp/oxydra-dockerd.log 2>&1 &
  local waited=0
  until docker version >/dev/null 2>&1; do
    sleep 1
    waited=$((waited + 1))
    [ "$waited" -lt 60 ] || die "dockerd did not answer within 60 s; see /tmp/oxydra-dockerd.log"
  done
}

# Installs whichever of the given PyPI packages python3 cannot import yet (pip, for this user).
ensure_python_packages() {
  command -v python3 >/dev/null 2>&1 || die "python3 is missing; install it (apt-get install python3 python3-pip)"
  local missing=()
  local pkg module
  for pkg in "$@"; do
    module=${pkg//-/.}
    module=${module/google.genai/google.genai}
    python3 -c "import ${module}" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing missing Python packages: ${missing[*]}"
  python3 -m pip install -q "${missing[@]}" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "${missing[@]}" \
    || die "could not install ${missing[*]} with pip; install them by hand and re-run"
}

# Seconds since the epoch, for the timing lines the scripts print.
now() { date +%s; }
