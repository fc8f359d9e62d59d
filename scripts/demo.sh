#!/usr/bin/env bash
# Quick start, part one: installs what it needs, builds, and runs the demo (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-deps.sh
ensure_debian_packages fuse libfuse2
ensure_fuse_device
ensure_node_modules
use_node "$NODE_LTS"
npm run --silent build
node dist/engine/demo/demo.js
