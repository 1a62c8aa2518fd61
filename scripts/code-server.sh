#!/usr/bin/env bash
# Installs code-server (a real VS Code: workbench in the browser, Node extension host on the
# server) once into a cache outside the repository, and prints where it is. Idempotent: a
# finished install is marked ready and reused; an interrupted one is started over. Its own
# post-install steps download things from the internet, which these machines cannot reach, so
# they are done here by hand: dependencies without scripts, ripgrep from Debian, then the
# native modules rebuilt locally.
set -euo pipefail

VERSION=4.100.3
CACHE="${PADDOCK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paddock}"
DIR="$CACHE/code-server-$VERSION"
mkdir -p "$CACHE"

step() {
  local what="$1"
  shift
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "code-server: $what failed (full log: $log)" >&2
    exit 1
  fi
  rm -f "$log"
}

exec 9>"$CACHE/code-server.lock"
flock 9 # one install at a time; a second caller waits and then finds it ready

if [ ! -f "$DIR/.ready" ]; then
  for tool in rg pkg-config; do
    command -v "$tool" >/dev/null || { echo "code-server: $tool is missing (npm run setup installs it)" >&2; exit 1; }
  done
  echo "code-server: installing $VERSION into $DIR (once)" >&2
  rm -rf "$DIR"
  mkdir -p "$DIR"
  cd "$DIR"
  echo '{"name":"paddock-code-server","private":true}' >package.json
  step "npm install code-server" npm install --ignore-scripts --no-audit --no-fund --loglevel=error "code-server@$VERSION"
  vscode="$DIR/node_modules/code-server/lib/vscode"
  (cd "$vscode" && step "npm install (VS Code's dependencies)" npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
  # @vscode/ripgrep downloads its binary unless bin/ is there: Debian's ripgrep takes its place.
  mkdir -p "$vscode/node_modules/@vscode/ripgrep/bin"
  ln -sf "$(command -v rg)" "$vscode/node_modules/@vscode/ripgrep/bin/rg"
  (cd "$vscode" && npm_config_yes=true step "npm rebuild (VS Code's native modules)" npm rebuild --loglevel=error)
  (cd "$vscode/extensions" && step "npm install (built-in extensions' dependencies)" npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
  npm_config_yes=true step "npm rebuild argon2" npm rebuild argon2 --loglevel=error
  # What code-server's postinstall would have linked.
  ln -sfn node_modules "$vscode/node_modules.asar"
  ln -sf code-linux.sh "$vscode/bin/remote-cli/code-server"
  ln -sf browser-linux.sh "$vscode/bin/helpers/browser.sh"
  step "code-server --version" node "$DIR/node_modules/code-server/out/node/entry.js" --version
  touch "$DIR/.ready"
fi
echo "$DIR/node_modules/code-server/out/node/entry.js"
