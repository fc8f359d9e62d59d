#!/usr/bin/env bash
# npm run bench: installs what the references need, builds, and runs the side-by-side benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-deps.sh
ensure_debian_packages fuse libfuse2 mergerfs
ensure_node_modules
use_node "$NODE_LTS"
npm run --silent build
node dist/bench/bench.js "$@"
