#!/usr/bin/env bash
# `npm start`: sets up and builds what it needs, then runs Paddock for a person to use: the
# agent on its own socket and state dir, and a real VS Code (code-server) in the browser with
# the Paddock extension installed, opened on the folder `npm start` was run from (or on a demo
# folder when run in the repository itself). Ctrl-C stops everything it started and deletes
# the sandboxes made meanwhile: no process, mount or sandbox is left behind.
#
# PADDOCK_PORT (default 8080) is the port, on 127.0.0.1 only: reach it from another machine
# through an SSH tunnel (README, "npm start").
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bash scripts/setup.sh
node scripts/build.mjs
entry=$(bash scripts/code-server.sh)
PADDOCK_PACKAGE_PREBUILT=1 PADDOCK_PACKAGE_QUIET=1 node scripts/package.mjs >/dev/null
vsix="$repo/paddock-$(node -p 'require("./package.json").version').vsix"

run="${PADDOCK_START_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/paddock-start}"
state="$run/agent"
socket="$run/run/agent.sock"
data="$run/code-server"
port="${PADDOCK_PORT:-8080}"
mkdir -p "$run" "$data/user-data/User"
chmod 700 "$run"
# One npm start per directory: a second one would find the first one's agent and, on its way
# out, delete that session's sandboxes.
exec 8>"$run/start.lock"
flock -n 8 || { echo "npm start: another npm start is running with $run; stop it first, or set PADDOCK_START_DIR" >&2; exit 1; }

# The folder to open: where npm was run, unless that is this repository (a demo folder then).
folder="${INIT_CWD:-$repo}"
if [ "$(realpath "$folder")" = "$(realpath "$repo")" ]; then
  folder="$run/demo"
  if [ ! -d "$folder" ]; then
    mkdir -p "$folder/src"
    printf '# Demo\n\nA folder to try Paddock on: create a sandbox, change files in its terminal, review.\n' >"$folder/README.md"
    printf 'export function greet(name: string): string {\n  return `Hello, ${name}!`;\n}\n' >"$folder/src/greet.ts"
    printf 'import { greet } from "./greet";\n\nconsole.log(greet("world"));\n' >"$folder/src/main.ts"
  fi
fi

# The extension in this code-server uses this agent (its socket and state dir), nothing else.
cat >"$data/user-data/User/settings.json" <<EOF
{
  "paddock.agent.mode": "socket",
  "paddock.agent.socketPath": "$socket",
  "paddock.agent.stateDir": "$state",
  "workbench.startupEditor": "none",
  "security.workspace.trust.enabled": false,
  "telemetry.telemetryLevel": "off"
}
EOF

password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
pids=()
# Each child runs in its own session (setsid): its whole process group goes, helpers included
# (code-server's pty host outlives a plain SIGTERM of code-server).
stop_group() {
  kill -TERM -- "-$1" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 -- "-$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$1" 2>/dev/null || true
}
cleanup() {
  trap - INT TERM EXIT
  set +e +o pipefail # every step of the way out runs, whatever one of them says
  echo
  echo "npm start: stopping"
  [ ${#pids[@]} -gt 1 ] && stop_group "${pids[1]}" # code-server first
  # The sandboxes made meanwhile go, with their mounts and processes.
  if [ ${#pids[@]} -gt 0 ] && kill -0 "${pids[0]}" 2>/dev/null && [ -S "$socket" ]; then
    node dist/paddock.js ls --json --socket "$socket" 2>/dev/null |
      node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{for(const x of JSON.parse(s).sandboxes)console.log(x.id)}catch{}})' |
      while read -r id; do node dist/paddock.js rm "$id" --socket "$socket" >/dev/null 2>&1 || true; done
  fi
  [ ${#pids[@]} -gt 0 ] && stop_group "${pids[0]}"
  wait 2>/dev/null || true
  echo "npm start: stopped"
}
trap cleanup INT TERM EXIT

# Each in its own session: Ctrl-C reaches this script only, which then stops them in order.
setsid node dist/paddock.js agent --socket "$socket" --state-dir "$state" --stderr-log-level warn &
pids+=($!)
for _ in $(seq 1 100); do [ -S "$socket" ] && break; kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.1; done
kill -0 "${pids[0]}" 2>/dev/null && [ -S "$socket" ] || { echo "npm start: the agent did not start (see $state/logs/agent.log)" >&2; exit 1; }

node "$entry" --extensions-dir "$data/extensions" --user-data-dir "$data/user-data" --install-extension "$vsix" --force >/dev/null 2>&1 ||
  { echo "npm start: cannot install the extension into code-server" >&2; exit 1; }
# --enable-proposed-api: the Approve/Reject buttons on each change of a diff and on each file of
# the multi-file review are menus VS Code still calls proposed (see README, "Reviewing").
PASSWORD="$password" setsid node "$entry" --auth password --bind-addr "127.0.0.1:$port" --user-data-dir "$data/user-data" \
  --extensions-dir "$data/extensions" --disable-telemetry --disable-update-check --disable-workspace-trust \
  --enable-proposed-api paddock.paddock --disable-getting-started-override "$folder" >"$run/code-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do grep -q "HTTP server listening" "$run/code-server.log" 2>/dev/null && break; sleep 0.1; done
grep -q "HTTP server listening" "$run/code-server.log" || { echo "npm start: code-server did not start (see $run/code-server.log)" >&2; exit 1; }

cat <<EOF

  Paddock is running.

  Open    http://127.0.0.1:$port/
  Password $password
  Folder  $folder

  From another machine: ssh -L $port:127.0.0.1:$port $(whoami)@$(hostname)  then open the same URL there.
  Stop everything with Ctrl-C.

EOF
wait "${pids[1]}"
