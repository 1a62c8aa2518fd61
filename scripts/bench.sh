#!/usr/bin/env bash
# `npm run bench`: set up, build, run every benchmark; results go to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node scripts/build.mjs
for bench in bench/*.bench.ts; do
  echo "== $bench"
  node --import tsx "$bench"
done
