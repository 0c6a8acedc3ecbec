#!/usr/bin/env bash
# Installs the Debian 12 packages Atrium builds and tests with. Idempotent: it asks apt
# only for what is missing, so a second run costs a dpkg query and nothing else.
# docs/dependencies.md says why each package is here.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libfmt-dev libabsl-dev
  libsqlite3-dev sqlite3 libssl-dev libpqxx-dev postgresql
  coinor-libcbc-dev
  libcpp-httplib-dev libboost-dev libspdlog-dev zlib1g-dev curl jq
  libcsv-dev
  clang libclang-rt-14-dev clang-tidy
  chromium
  slurm-wlm munge slurm-client
)
# Node.js and npm for the dashboard's packages and its browser test. A machine that has a
# Node.js from elsewhere (whose package bundles npm and conflicts with Debian's npm)
# keeps it; otherwise Debian's nodejs and npm are installed.
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
