#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, idempotently: Debian packages for the local
# servers, npm dependencies, and the Pulumi toolchain (built from Go modules when Go is present).
set -euo pipefail
cd "$(dirname "$0")/.."

# One line per step, with its elapsed time; the Pulumi toolchain's build prints its own steps and
# keeps Go's output in a log file (scripts/install-pulumi.sh).
now_ms() { echo $(($(date +%s%N) / 1000000)); }
elapsed() { local ms=$(($(now_ms) - $1)); printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100)); }

apt_packages=(pgbouncer pgbackrest redis-server postgresql-15)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  start="$(now_ms)"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
  echo "setup: installed ${missing[*]} ($(elapsed "$start"))" >&2
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  start="$(now_ms)"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "setup: npm ci ($(elapsed "$start"))" >&2
fi

if command -v go >/dev/null 2>&1; then
  start="$(now_ms)"
  bash scripts/install-pulumi.sh >/dev/null
  echo "setup: Pulumi toolchain ready ($(elapsed "$start"))" >&2
else
  echo "setup: Go not found; the real-engine tests will be skipped (under CI=true they fail)" >&2
fi
