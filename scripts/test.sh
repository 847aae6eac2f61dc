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
end=$(now)
log "build $((build_end - build_start))s, tests $((end - build_end))s, total $((end - start))s"
