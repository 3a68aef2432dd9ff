#!/usr/bin/env bash
# Finds or builds the Pulumi CLI and its Node.js language host from published Go modules.
#
#   scripts/install-pulumi.sh            # prints the directory holding `pulumi` on stdout
#
# A `pulumi` on PATH is used when it is at least PULUMI_VERSION. Otherwise both binaries are built
# with the machine's Go (GOTOOLCHAIN=local) into $ALPHAPULSE_TOOLCHAIN_DIR (default
# ~/.cache/alphapulse-toolchain/pulumi-<version>), through a small wrapper module that requires the
# published pkg/v3 and sdk/v3 at the same version and copies the upstream replace directives whose
# target is a published module. Nothing is downloaded but Go modules; no module source is copied or
# patched. A step is skipped when its binary already reports the right version, so later runs are instant.
set -euo pipefail

PULUMI_VERSION="${PULUMI_VERSION:-3.248.0}"
cache_root="${ALPHAPULSE_TOOLCHAIN_DIR:-$HOME/.cache/alphapulse-toolchain}"
bin_dir="$cache_root/pulumi-$PULUMI_VERSION/bin"
log() { echo "install-pulumi: $*" >&2; }

version_at_least() { # $1 >= $2, both x.y.z
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

if command -v pulumi >/dev/null 2>&1; then
  found="$(pulumi version 2>/dev/null | sed 's/^v//')"
  if [ -n "$found" ] && version_at_least "$found" "$PULUMI_VERSION" \
     && command -v pulumi-language-nodejs >/dev/null 2>&1; then
    log "using pulumi $found from PATH"
    dirname "$(command -v pulumi)"
    exit 0
  fi
fi

if [ -x "$bin_dir/pulumi" ] && [ "$("$bin_dir/pulumi" version 2>/dev/null)" = "v$PULUMI_VERSION" ] \
   && [ -x "$bin_dir/pulumi-language-nodejs" ]; then
  log "pulumi v$PULUMI_VERSION already built in $bin_dir"
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null 2>&1 || { log "Go is not installed: cannot build pulumi v$PULUMI_VERSION"; exit 3; }

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
work="$cache_root/pulumi-$PULUMI_VERSION/wrapper"
mkdir -p "$work" "$bin_dir"
cd "$work"

pkg="github.com/pulumi/pulumi/pkg/v3"
sdk="github.com/pulumi/pulumi/sdk/v3"
lang="github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION"
tags="osusergo,grpcnotrace"

build_one() { # $1 module, $2 module version, $3 main package, $4 binary name
  local module="$1" version="$2" main="$3" name="$4" dir="$work/$4"
  mkdir -p "$dir"
  (
    cd "$dir"
    [ -f go.mod ] || go mod init "alphapulse.local/toolchain/$name" >/dev/null 2>&1
    log "$name: fetching $module@$version"
    go mod download "$module@$version"
    local gomod
    gomod="$(go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    # Copy only replace directives that point at a published module version (skip ../local paths).
    go mod edit -json "$gomod" | node -e '
      const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
      for (const r of d.Replace ?? []) {
        if (!r.New.Version) continue;
        const old = r.Old.Version ? `${r.Old.Path}@${r.Old.Version}` : r.Old.Path;
        console.log(`-replace=${old}=${r.New.Path}@${r.New.Version}`);
      }' | while read -r flag; do go mod edit "$flag"; done
    go get "$module@$version" "$sdk@v$PULUMI_VERSION"
    go get "$main@$version"
    log "$name: building (a cold build takes tens of minutes on 2 cores)"
    go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$bin_dir/$name" "$main"
  )
}

if [ "$("$bin_dir/pulumi" version 2>/dev/null || true)" != "v$PULUMI_VERSION" ]; then
  build_one "$pkg" "v$PULUMI_VERSION" "$pkg/cmd/pulumi" pulumi
fi

if [ ! -x "$bin_dir/pulumi-language-nodejs" ]; then
  # The language host has its own go.mod and is never tagged: take the commit of this CLI version.
  hash="$(go mod download -json "$pkg@v$PULUMI_VERSION" | sed -n 's/.*"Hash": "\(.*\)".*/\1/p' | head -n1)"
  [ -n "$hash" ] || { log "could not read the commit of $pkg@v$PULUMI_VERSION"; exit 1; }
  build_one "$lang" "${hash:0:12}" "$lang" pulumi-language-nodejs
fi

log "pulumi $("$bin_dir/pulumi" version) and pulumi-language-nodejs ready in $bin_dir"
echo "$bin_dir"
