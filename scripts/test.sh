#!/usr/bin/env bash
# Quick start, part two: installs what it needs, builds, and runs the whole test suite with
# Node's test runner (real FUSE mounts; run as root). Exits non-zero on any failed test.
# The whole suite runs on the Node LTS the images ship, the unit tests on the oldest supported Node too
# (both fetched into a cache outside the repo: see use_node in scripts/lib/ensure-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-deps.sh
ensure_debian_packages fuse libfuse2 python3 mount bsdutils openssl rsync git e2fsprogs
ensure_fuse_device
ensure_node_modules
use_node "$NODE_LTS"
npm run --silent build
# ESLint, Prettier and the layer rules (.dependency-cruiser.cjs): a finding fails the run, after the tests.
lint=0
npm run --silent lint || lint=$?
# Upstream fixtures (csi-sanity) built from the Go module proxy into a cache outside the repo.
if command -v go >/dev/null; then
  test/fixtures/build >/dev/null
else
  echo "Go is not installed: csi-sanity cannot be built, its test will say so and skip (CI fails instead)" >&2
fi
# Name the test files (fixtures and helpers under dist/test are not tests).
run_tests() {
  echo "$1: Node $(node --version)" >&2
  local files; mapfile -t files < <(find "$2" -name '*.test.js' | sort)
  node --test --test-reporter=spec --test-reporter-destination=stdout "${files[@]}"
}
oldest=0
use_node "$NODE_OLDEST"
run_tests "the unit tests on the oldest supported Node" dist/test/unit || oldest=$?
main=0
use_node "$NODE_LTS"
run_tests "the whole suite on the Node LTS the images ship" dist/test || main=$?
if [ "$oldest" -ne 0 ]; then echo "the unit tests failed on Node $NODE_OLDEST, the oldest supported (see above)" >&2; fi
if [ "$lint" -ne 0 ]; then echo "npm run lint found problems (see above)" >&2; fi
exit $(( main != 0 ? main : oldest != 0 ? oldest : lint ))
