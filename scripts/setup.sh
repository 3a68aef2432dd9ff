#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, idempotently: Debian packages for the local
# servers, npm dependencies, and the Pulumi toolchain (built from Go modules when Go is present).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(pgbouncer pgbackrest redis-server postgresql-15)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund
fi

if command -v go >/dev/null 2>&1; then
  bash scripts/install-pulumi.sh >/dev/null
else
  echo "setup: Go not found; the real-engine tests will be skipped" >&2
fi
