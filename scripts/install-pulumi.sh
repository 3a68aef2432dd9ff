#!/usr/bin/env bash
# Finds or builds the Pulumi CLI and its Node.js language host from published Go modules.
#
#   scripts/install-pulumi.sh            # prints the directory holding `pulumi` on stdout
#
# A `pulumi` on PATH is used when it is at least PULUMI_VERSION and a `pulumi-language-nodejs` sits
# beside it. Otherwise both binaries are built with the machine's Go (GOTOOLCHAIN=local) into
# $ALPHAPULSE_TOOLCHAIN_DIR (default ~/.cache/alphapulse-toolchain)/pulumi-<version>/bin, each through
# a small wrapper module that requires published module versions and copies the upstream replace
# directives whose target is a published module. Nothing is downloaded but Go modules; no module
# source is copied or patched. A step is skipped when its binary is already there, so later runs are
# instant. Exit 3: Go is missing (callers skip the real-engine work).
#
# Go's own output (hundreds of "go: downloading" lines on a cold build) goes to a log file in the
# toolchain directory, pulumi-<version>/build.log; the terminal gets one line per step with its
# elapsed time, and on a failure the log's last lines and its path.
#
# The Node.js language host: its own module (sdk/nodejs/cmd/pulumi-language-nodejs/v3) is never
# tagged, and the module proxy reachable here serves none of its pseudo-versions (403 "This module
# version is not available"). We ask for the commit of this CLI version first and otherwise build
# the host from the last published sdk/v3 version that still carried it inside the sdk module
# (PULUMI_LANGHOST_SDK_VERSION, v3.68.0). See docs/adr/ADR-002-pulumi-on-this-machine.md.
set -euo pipefail

PULUMI_VERSION="${PULUMI_VERSION:-3.248.0}"
LANGHOST_SDK_VERSION="${PULUMI_LANGHOST_SDK_VERSION:-3.68.0}"
cache_root="${ALPHAPULSE_TOOLCHAIN_DIR:-$HOME/.cache/alphapulse-toolchain}"
bin_dir="$cache_root/pulumi-$PULUMI_VERSION/bin"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "install-pulumi: $*" >&2; }
build_log="$cache_root/pulumi-$PULUMI_VERSION/build.log"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
elapsed() { # $1 start (now_ms) -> "12.3 s" or "4 min 05 s"
  local ms=$(($(now_ms) - $1))
  if [ "$ms" -ge 60000 ]; then printf '%d min %02d s' $((ms / 60000)) $((ms % 60000 / 1000)); else printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100)); fi
}

# step "what" command...: runs the command in a subshell (errexit on) with its output appended to
# the build log, then prints one line (what, elapsed). On failure: the log's tail, its path, the status.
step() {
  local what="$1" start rc
  shift
  start="$(now_ms)"
  printf '\n==> %s\n$ %s\n' "$what" "$*" >>"$build_log"
  # Not `(…) || rc=$?`: errexit is ignored inside a command on the left of ||.
  set +e
  (
    set -e
    "$@"
  ) >>"$build_log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    log "$what: failed after $(elapsed "$start") (exit $rc); the last lines of $build_log:"
    tail -n 25 "$build_log" | sed 's/^/    /' >&2
    log "full log: $build_log"
    return "$rc"
  fi
  log "$what ($(elapsed "$start"))"
}

in_dir() { # in_dir DIR command...
  cd "$1" && shift && "$@"
}

version_at_least() { # $1 >= $2, both x.y.z
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

# The dynamic-provider plugin is a shell script shipped in the @pulumi/pulumi npm package. Next to
# `pulumi` the engine takes it as a bundled plugin (no "using ... from $PATH" warning); the script
# resolves @pulumi/pulumi from the program's directory at run time, so one copy serves any checkout.
install_dynamic_provider() { # $1 target dir
  local src="$repo_root/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"
  if [ -f "$src" ] && [ -w "$1" ] && ! cmp -s "$src" "$1/pulumi-resource-pulumi-nodejs"; then
    install -m 0755 "$src" "$1/pulumi-resource-pulumi-nodejs"
  fi
}

if command -v pulumi >/dev/null 2>&1; then
  found="$(pulumi version 2>/dev/null | sed 's/^v//')"
  found_dir="$(dirname "$(command -v pulumi)")"
  if [ -n "$found" ] && version_at_least "$found" "$PULUMI_VERSION" \
     && [ -x "$found_dir/pulumi-language-nodejs" ]; then
    log "using pulumi $found from PATH"
    install_dynamic_provider "$found_dir"
    echo "$found_dir"
    exit 0
  fi
fi

langhost_ready() { [ -x "$bin_dir/pulumi-language-nodejs" ] && [ -s "$bin_dir/pulumi-language-nodejs.source" ]; }

if [ -x "$bin_dir/pulumi" ] && [ "$("$bin_dir/pulumi" version 2>/dev/null)" = "v$PULUMI_VERSION" ] && langhost_ready; then
  install_dynamic_provider "$bin_dir"
  log "pulumi v$PULUMI_VERSION ready in $bin_dir (language host: $(cat "$bin_dir/pulumi-language-nodejs.source"))"
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null 2>&1 || { log "Go is not installed: cannot build pulumi v$PULUMI_VERSION"; exit 3; }

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
work="$cache_root/pulumi-$PULUMI_VERSION/wrapper"
mkdir -p "$work" "$bin_dir"
: >"$build_log"
log "building pulumi v$PULUMI_VERSION into $bin_dir (Go's output: $build_log)"

pkg="github.com/pulumi/pulumi/pkg/v3"
sdk="github.com/pulumi/pulumi/sdk/v3"
lang="github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
tags="osusergo,grpcnotrace"
ldflags() { echo "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$1"; }

# A wrapper module in $work/$1 that requires "$2@$3" and copies its published-module replaces.
prepare_wrapper() { # $1 dir name, $2 module, $3 version
  local dir="$work/$1" module="$2" version="$3" gomod
  mkdir -p "$dir"
  cd "$dir"
  [ -f go.mod ] || go mod init "alphapulse.local/toolchain/$1" >/dev/null 2>&1
  go mod download "$module@$version" || return 1
  gomod="$(go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  # Copy only replace directives that point at a published module version (skip ../local paths).
  go mod edit -json "$gomod" | node -e '
    const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
    for (const r of d.Replace ?? []) {
      if (!r.New.Version) continue;
      const old = r.Old.Version ? `${r.Old.Path}@${r.Old.Version}` : r.Old.Path;
      console.log(`-replace=${old}=${r.New.Path}@${r.New.Version}`);
    }' | while read -r flag; do go mod edit "$flag"; done
}

if [ "$("$bin_dir/pulumi" version 2>/dev/null || true)" != "v$PULUMI_VERSION" ]; then
  step "pulumi: fetch $pkg@v$PULUMI_VERSION" prepare_wrapper pulumi "$pkg" "v$PULUMI_VERSION"
  step "pulumi: resolve its dependencies" in_dir "$work/pulumi" \
    sh -c 'go get "$1@v$3" "$2@v$3" && go get "$1/cmd/pulumi@v$3"' _ "$pkg" "$sdk" "$PULUMI_VERSION"
  log "pulumi: building (a cold build takes several minutes on 2 cores)"
  step "pulumi: build" in_dir "$work/pulumi" \
    go build -trimpath -tags "$tags" -ldflags "$(ldflags "v$PULUMI_VERSION")" -o "$bin_dir/pulumi" "$pkg/cmd/pulumi"
fi

if ! langhost_ready; then
  rm -f "$bin_dir/pulumi-language-nodejs.source"
  # First choice: the language host module at the commit of this CLI version.
  hash="$(cd "$work" && go mod download -json "$pkg@v$PULUMI_VERSION" 2>>"$build_log" | sed -n 's/.*"Hash": "\(.*\)".*/\1/p' | head -n1)"
  # Expected to fail here (see the header): its output stays in the log, one line says what happened.
  if [ -n "$hash" ] && (prepare_wrapper pulumi-language-nodejs "$lang" "${hash:0:12}") >>"$build_log" 2>&1; then
    step "pulumi-language-nodejs: resolve $lang@${hash:0:12}" in_dir "$work/pulumi-language-nodejs" \
      go get "$lang@${hash:0:12}" "$sdk@v$PULUMI_VERSION"
    log "pulumi-language-nodejs: building"
    step "pulumi-language-nodejs: build" in_dir "$work/pulumi-language-nodejs" \
      go build -trimpath -tags "$tags" -ldflags "$(ldflags "v$PULUMI_VERSION")" -o "$bin_dir/pulumi-language-nodejs" "$lang"
    echo "$lang@${hash:0:12}" >"$bin_dir/pulumi-language-nodejs.source"
  else
    log "pulumi-language-nodejs: the module proxy does not serve $lang@${hash:0:12};" \
      "building the host from $sdk@v$LANGHOST_SDK_VERSION instead"
    step "pulumi-language-nodejs: fetch $sdk@v$LANGHOST_SDK_VERSION" prepare_wrapper pulumi-language-nodejs-sdk "$sdk" "v$LANGHOST_SDK_VERSION"
    step "pulumi-language-nodejs: resolve its dependencies" in_dir "$work/pulumi-language-nodejs-sdk" go get "$sdk@v$LANGHOST_SDK_VERSION"
    log "pulumi-language-nodejs: building"
    step "pulumi-language-nodejs: build" in_dir "$work/pulumi-language-nodejs-sdk" \
      go build -trimpath -ldflags "$(ldflags "v$LANGHOST_SDK_VERSION")" \
      -o "$bin_dir/pulumi-language-nodejs" "$sdk/nodejs/cmd/pulumi-language-nodejs"
    echo "$sdk/nodejs/cmd/pulumi-language-nodejs@v$LANGHOST_SDK_VERSION" >"$bin_dir/pulumi-language-nodejs.source"
  fi
fi

install_dynamic_provider "$bin_dir"
log "pulumi $("$bin_dir/pulumi" version) ready in $bin_dir (language host: $(cat "$bin_dir/pulumi-language-nodejs.source"))"
echo "$bin_dir"
