#!/usr/bin/env bash
# npm run local-cluster: etcd, kube-apiserver, kube-controller-manager, the operator, the node agent,
# the CSI plugin and the external-provisioner on this machine. Prints the kubeconfig; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-deps.sh
ensure_debian_packages fuse libfuse2 python3 openssl
ensure_fuse_device
ensure_node_modules
use_node "$NODE_LTS"
npm run --silent build
test/fixtures/build >/dev/null
node dist/test/e2e/local-cluster-main.js
