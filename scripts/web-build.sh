#!/usr/bin/env bash
# Installs the dashboard's npm packages (web/package-lock.json, `npm ci`, offline cache
# first) and copies the chart library into web/public/assets/vendor, where `atrium serve`
# serves it. Nothing is fetched at run time. Idempotent: skips npm when node_modules
# matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v npm >/dev/null; then
  echo "web-build: npm is missing (apt-get install -y --no-install-recommends npm)" >&2
  exit 1
fi
stamp=node_modules/.atrium-lock
if [[ ! -f $stamp ]] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --prefer-offline
  cp package-lock.json "$stamp"
fi
mkdir -p public/assets/vendor
for file in uPlot.esm.js uPlot.min.css; do
  cp -p "node_modules/uplot/dist/$file" "public/assets/vendor/$file"
done
cp -p node_modules/uplot/LICENSE public/assets/vendor/uPlot.LICENSE.txt
