#!/usr/bin/env bash
# Builds Dex, Ory Hydra, Pebble (Let's Encrypt's test ACME server) and
# Jaeger (docs/observability.md, "Tested with Jaeger") from the Go module
# proxy into $1 (default build/realservers), once per pinned version: a
# binary whose stamp file names the same module version is kept. Nothing
# third-party is committed; Dex's, Hydra's and Jaeger's sources come from
# the module cache, are copied to a scratch directory (Dex's and Hydra's
# nested-module replace directives dropped, see
# docs/tested-authorization-servers.md; Jaeger's own replace kept: it
# builds as the main module there) and built there; Pebble, which has no
# replace directive, is built with go install.
#
#   build.sh [DIR]                 build what is missing or out of date
#   build.sh --check [DIR]         exit 0 when Dex and Hydra are built at the pinned versions
#   build.sh --check-pebble [DIR]  exit 0 when Pebble is built at the pinned version
#   build.sh --check-jaeger [DIR]  exit 0 when Jaeger is built at the pinned version
set -euo pipefail

GO=${GO:-go}
check=""
case ${1:-} in
--check) check="dex hydra"; shift ;;
--check-pebble) check=pebble; shift ;;
--check-jaeger) check=jaeger; shift ;;
esac
OUT=${1:-build/realservers}
DEX_MODULE=github.com/dexidp/dex
# The v2.45.1 tag as a pseudo-version: the module has no /v2 path, so the
# proxy does not serve the tag by name.
DEX_VERSION=${DEX_VERSION:-v0.0.0-20260303133905-11d2eeb52b42}
HYDRA_MODULE=github.com/ory/hydra/v2
HYDRA_VERSION=${HYDRA_VERSION:-v2.3.0}
PEBBLE_MODULE=github.com/letsencrypt/pebble/v2
PEBBLE_VERSION=${PEBBLE_VERSION:-v2.10.3}
# Jaeger v2 (the OpenTelemetry Collector based backend, cmd/jaeger) is
# tagged v1.x in the Go module, v2.x on its releases.
JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_VERSION=${JAEGER_VERSION:-v1.75.0}

# built NAME: the binary is there, stamped with its pinned version.
built() {
	local module version
	case $1 in
	dex) module=$DEX_MODULE version=$DEX_VERSION ;;
	hydra) module=$HYDRA_MODULE version=$HYDRA_VERSION ;;
	pebble) module=$PEBBLE_MODULE version=$PEBBLE_VERSION ;;
	jaeger) module=$JAEGER_MODULE version=$JAEGER_VERSION ;;
	esac
	[ -x "$OUT/$1" ] && [ "$(cat "$OUT/$1.version" 2>/dev/null)" = "$module@$version" ]
}

if [ -n "$check" ]; then
	for name in $check; do built "$name" || exit 1; done
	exit 0
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
	(cd "$work/$name" && { [ -z "$drop" ] || "$GO" mod edit -dropreplace "$drop"; } &&
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
if built pebble; then
	echo "realservers: pebble $PEBBLE_MODULE@$PEBBLE_VERSION is built (cached)"
else
	start=$(date +%s)
	mkdir -p "$work/pebble-bin"
	(cd "$work" && GOBIN="$work/pebble-bin" CGO_ENABLED=0 "$GO" install -trimpath "$PEBBLE_MODULE/cmd/pebble@$PEBBLE_VERSION")
	mv "$work/pebble-bin/pebble" "$OUT/pebble"
	echo "$PEBBLE_MODULE@$PEBBLE_VERSION" >"$OUT/pebble.version"
	echo "realservers: built pebble $PEBBLE_MODULE@$PEBBLE_VERSION in $(( $(date +%s) - start ))s"
fi

# Jaeger: every storage backend and receiver comes along (2,300 packages);
# on empty caches the largest build of the four.
build jaeger "$JAEGER_MODULE" "$JAEGER_VERSION" "" 0 "" ./cmd/jaeger
