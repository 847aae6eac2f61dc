#!/usr/bin/env bash
# Builds the benchmarks in release mode and runs them. Not part of CI (a release build of the
# whole stack takes several minutes on 2 cores). Usage: scripts/bench.sh [compare [--json] [--samples N] [--turns N]|instructions [steady|fresh|tool|connect] [--turns N] [--runs N]|sse|provider|runtime|memory|guest|shell|container|micro_vm|json|tui|sessions|budget|approval|web|telegram|scrub|all]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_swift
ensure_packages "${OXYDRA_APT_PACKAGES[@]}"
swift build -c release --product oxydra-benchmarks
swift build -c release --product oxydra-vm
swift build -c release --product shell-daemon
swift build -c release --product runner
bin=$(swift build -c release --show-bin-path)
check_guest_link "$bin"
if [ "${1:-}" = instructions ]; then
  # User-space instructions per turn of the guest under valgrind's callgrind (steady|fresh|tool; connect = a WebSocket connect and close alone).
  ensure_packages valgrind binutils
  ensure_python_packages websockets openai
  shift
  exec python3 scripts/bench-instructions.py --bin "$bin" "$@"
fi
if [ "${1:-}" = compare ]; then
  # The guest from an outside client (Python, `websockets` and `openai`) next to the provider alone.
  ensure_python_packages websockets openai
  shift
  exec python3 scripts/bench-compare.py --bin "$bin" "$@"
fi
"$bin/oxydra-benchmarks" "${1:-all}"
