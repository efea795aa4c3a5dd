#!/usr/bin/env bash
# Builds Dex, Ory Hydra and Pebble (Let's Encrypt's test ACME server) from
# the Go module proxy into $1 (default build/realservers), once per pinned
# version: a binary whose stamp file names the same module version is
# kept. Nothing third-party is committed; Dex's and Hydra's sources come
# from the module cache, are copied to a scratch directory (their
# nested-module replace directives dropped, see
# docs/tested-authorization-servers.md) and built there; Pebble, which has
# none, is built with go install.
#
#   build.sh [DIR]                 build what is missing or out of date
#   build.sh --check [DIR]         exit 0 when Dex and Hydra are built at the pinned versions
#   build.sh --check-pebble [DIR]  exit 0 when Pebble is built at the pinned version
set -euo pipefail

GO=${GO:-go}
check=false
check_pebble=false
if [ "${1:-}" = "--check" ]; then check=true; shift; fi
if [ "${1:-}" = "--check-pebble" ]; then check_pebble=true; shift; fi
OUT=${1:-build/realservers}
PEBBLE_MODULE=github.com/letsencrypt/pebble/v2
PEBBLE_VERSION=${PEBBLE_VERSION:-v2.10.3}

if $check_pebble; then
	[ -x "$OUT/pebble" ] && [ "$(cat "$OUT/pebble.version" 2>/dev/null)" = "$PEBBLE_MODULE@$PEBBLE_VERSION" ]
	exit
fi
DEX_MODULE=github.com/dexidp/dex
# The v2.45.1 tag as a pseudo-version: the module has no /v2 path, so the
# proxy does not serve the tag by name.
DEX_VERSION=${DEX_VERSION:-v0.0.0-20260303133905-11d2eeb52b42}
HYDRA_MODULE=github.com/ory/hydra/v2
HYDRA_VERSION=${HYDRA_VERSION:-v2.3.0}

if $check; then
	[ -x "$OUT/dex" ] && [ "$(cat "$OUT/dex.version" 2>/dev/null)" = "$DEX_MODULE@$DEX_VERSION" ] &&
		[ -x "$OUT/hydra" ] && [ "$(cat "$OUT/hydra.version" 2>/dev/null)" = "$HYDRA_MODULE@$HYDRA_VERSION" ]
	exit
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# build NAME MODULE VERSION DROP CGO TAGS PKG
build() {
	local name=$1 module=$2 version=$3 drop=$4 cgo=$5 tags=$6 pkg=$7
	local stamp="$OUT/$name.version"
	if [ -x "$OUT/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module@$version" ]; then
		echo "realservers: $name $module@$version is built (cached)"
		return
	fi
	local start dir
	start=$(date +%s)
	dir=$(cd "$work" && GOFLAGS=-mod=mod "$GO" mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [ -z "$dir" ]; then echo "realservers: go mod download $module@$version gave no directory" >&2; exit 1; fi
	cp -r "$dir" "$work/$name"
	chmod -R u+w "$work/$name"
	(cd "$work/$name" && "$GO" mod edit -dropreplace "$drop" &&
		CGO_ENABLED=$cgo "$GO" build -mod=mod -trimpath -tags "$tags" -o "$OUT/$name.tmp" "$pkg")
	mv "$OUT/$name.tmp" "$OUT/$name"
	echo "$module@$version" >"$stamp"
	echo "realservers: built $name $module@$version in $(( $(date +%s) - start ))s"
}

build dex "$DEX_MODULE" "$DEX_VERSION" github.com/dexidp/dex/api/v2 0 "" ./cmd/dex
# Hydra's memory DSN is SQLite, which needs cgo.
build hydra "$HYDRA_MODULE" "$HYDRA_VERSION" github.com/ory/hydra-client-go/v2 1 sqlite,sqlite_omit_load_extension .

# Pebble (docs/certificates.md): no replace directives, so go install
# builds it at the pinned version straight from the module proxy.
if [ -x "$OUT/pebble" ] && [ "$(cat "$OUT/pebble.version" 2>/dev/null)" = "$PEBBLE_MODULE@$PEBBLE_VERSION" ]; then
	echo "realservers: pebble $PEBBLE_MODULE@$PEBBLE_VERSION is built (cached)"
else
	start=$(date +%s)
	mkdir -p "$work/pebble-bin"
	(cd "$work" && GOBIN="$work/pebble-bin" CGO_ENABLED=0 "$GO" install -trimpath "$PEBBLE_MODULE/cmd/pebble@$PEBBLE_VERSION")
	mv "$work/pebble-bin/pebble" "$OUT/pebble"
	echo "$PEBBLE_MODULE@$PEBBLE_VERSION" >"$OUT/pebble.version"
	echo "realservers: built pebble $PEBBLE_MODULE@$PEBBLE_VERSION in $(( $(date +%s) - start ))s"
fi
