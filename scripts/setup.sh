#!/usr/bin/env bash
# Installs what Paddock needs, and only what is missing: Debian packages (when root) and the
# npm dependencies (when package-lock.json changed). Quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

# Why each package is here: README.md, "Dependencies".
DEBIAN_PACKAGES=(bubblewrap runc crun skopeo docker-registry slirp4netns iproute2 qemu-system-x86 linux-image-amd64 gcc g++ make libc6-dev cpio util-linux passwd python3 less procps vim-tiny fuse-overlayfs fuse3 git perl busybox-static chromium ripgrep pkg-config libkrb5-dev libsecret-1-dev libxkbfile-dev libx11-dev)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    log=$(mktemp)
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      echo "setup: apt-get failed (full log: $log)" >&2
      exit 1
    fi
    rm -f "$log"
  else
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
