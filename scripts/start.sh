#!/usr/bin/env bash
# `npm start`: set up, build, then run the Paddock agent on its socket in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node scripts/build.mjs
socket=${PADDOCK_SOCKET:-}
args=(agent)
[ -n "$socket" ] && args+=(--socket "$socket")
echo "Paddock agent starting; in another terminal try:  node dist/paddock.js check"
echo "Stop it with Ctrl-C."
exec node dist/paddock.js "${args[@]}" "$@"
