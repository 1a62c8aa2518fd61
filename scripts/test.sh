#!/usr/bin/env bash
# `npm test`: set up, build, typecheck, lint, then the unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== build";     node scripts/build.mjs
echo "== typecheck"; npx --no-install tsc -p tsconfig.json --noEmit
echo "== lint";      npx --no-install eslint --max-warnings 0 .
echo "== tests"
node --import tsx --test --test-concurrency=2 --test-reporter=spec test/unit/*.test.ts test/integration/*.test.ts test/security/*.test.ts test/vscode/*.test.ts
