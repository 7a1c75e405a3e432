#!/usr/bin/env bash
# Builds mtconsole's .deb and .rpm for amd64 and arm64 into dist/:
#   scripts/package.sh                 # dist/mtconsole_<version>_amd64.deb, ...
#   ARCHS=amd64 DIST=/tmp/out scripts/package.sh
# The binary is static (CGO_ENABLED=0) and stamped with -ldflags -X:
# version (VERSION, else the exact v* tag, else 0.1.0~git<date>.<commit>),
# the commit, its date, and whether the tree had uncommitted changes.
# Man pages and shell completions come from the binary itself (mtconsole
# man, mtconsole completion). nfpm is this module's go tool (go.mod), so
# nothing is installed. The layout is scripts/package/nfpm.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCHS=${ARCHS:-amd64 arm64}
DIST=${DIST:-dist}
mkdir -p "$DIST"
DIST=$(cd "$DIST" && pwd)

commit=$(git rev-parse HEAD)
date=$(git log -1 --format=%cI HEAD)
# Reproducible: the man pages' date and the packages' file times are the commit's.
export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct HEAD)
dirty=false
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then dirty=true; fi
if [ -z "${VERSION:-}" ]; then
	if tag=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
		VERSION=${tag#v}
	else
		VERSION="0.1.0~git$(git log -1 --format=%cd --date=format:%Y%m%d HEAD).${commit:0:12}"
	fi
fi
ldflags="-s -w -X main.version=$VERSION -X main.commit=$commit -X main.date=$date -X main.dirty=$dirty"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build() { # GOARCH OUT
	CGO_ENABLED=0 GOOS=linux GOARCH=$1 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$2" ./cmd/mtconsole
}

# Man pages and completions are the same for every architecture: made by
# this machine's build.
host=$(go env GOARCH)
build "$host" "$work/host/mtconsole"
"$work/host/mtconsole" man "$work/man"
gzip -9n "$work"/man/*.1
mkdir -p "$work/completions"
"$work/host/mtconsole" completion bash >"$work/completions/mtconsole.bash"
"$work/host/mtconsole" completion zsh >"$work/completions/_mtconsole"
"$work/host/mtconsole" completion fish >"$work/completions/mtconsole.fish"

for arch in $ARCHS; do
	stage="$work/$arch"
	mkdir -p "$stage"
	if [ "$arch" = "$host" ]; then
		cp "$work/host/mtconsole" "$stage/mtconsole"
	else
		build "$arch" "$stage/mtconsole"
	fi
	ln -s ../man "$stage/man"
	ln -s ../completions "$stage/completions"
	for fmt in deb rpm; do
		ARCH=$arch VERSION=$VERSION STAGE=$stage go tool nfpm package --config scripts/package/nfpm.yaml --packager "$fmt" --target "$DIST/" 2>&1 |
			sed -n 's/^.*created package: /  /p'
	done
done
echo "mtconsole $VERSION (commit ${commit:0:12}$([ "$dirty" = true ] && echo ", modified"))"
