#!/usr/bin/env bash
# The test command: installs what a fresh Debian/Ubuntu machine lacks, checks formatting,
# builds everything and runs every test. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_swift
ensure_packages "${OXYDRA_APT_PACKAGES[@]}" "${OXYDRA_TEST_APT_PACKAGES[@]}"
ensure_python_packages "${OXYDRA_TEST_PYTHON_PACKAGES[@]}"
ensure_docker_daemon

start=$(now)
log "checking formatting (swift format lint --strict; fix with: swift format format -i -r Package.swift Sources Tests Benchmarks)"
swift format lint --strict --recursive --configuration .swift-format Package.swift Sources Tests Benchmarks

log "building (debug, with tests)"
build_start=$(now)
swift build --build-tests
build_end=$(now)
check_guest_link "$(swift build --show-bin-path)"

log "running tests"
swift test --skip-build --no-parallel
tests_end=$(now)

# The tests run a debug build; the optimized guest is what users run, and it can fail where the
# debug one passes. Build it and drive a few of every kind of turn through it.
log "building the guest (release) for the release smoke test"
for product in runner oxydra-vm shell-daemon; do swift build -c release --product "$product"; done
log "release smoke test (scripts/release-smoke.py)"
python3 scripts/release-smoke.py --bin "$(swift build -c release --show-bin-path)"
end=$(now)
log "build $((build_end - build_start))s, tests $((tests_end - build_end))s, release smoke $((end - tests_end))s, total $((end - start))s"
