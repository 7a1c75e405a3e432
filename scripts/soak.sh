#!/usr/bin/env bash
# The soak of issue 11: a real agent (GOMAXPROCS=1, busy processes beside
# it) exporting live points of every kind and rolling single pairs back
# while the others replicate; every image is compared with the source at
# its point. Prints "soak exports=<n> wrong=<n> rollbacks=<n> wrong=<n>"
# and exits 1 when anything was wrong.
#
#   scripts/soak.sh            # long form: 10 minutes, 12 rounds, then the
#                              # whole damage matrix of issue 12
#   scripts/soak.sh --short    # what scripts/test.sh runs: 60 s, 1 round
#   scripts/soak.sh -for 30m -rounds 30 -seed 42 -v   # flags of scripts/soak
set -euo pipefail
cd "$(dirname "$0")/.."
args=(-for 10m -rounds 12)
full=1
if [ "${1:-}" = "--short" ]; then
	shift
	args=(-for 60s -rounds 1)
	full=
fi
bin=$(mktemp -d)/mtconsole
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/mtconsole
go run ./scripts/soak -bin "$bin" "${args[@]}" "$@"
if [ -n "$full" ]; then
	echo "== the whole damage matrix (every file kind, damage and operation)"
	go test -count=1 -timeout 60m -run 'TestDamageMatrix$' ./cmd/mtconsole -damage.full -v |
		sed -n '/damage matrix/,/^--- /p'
	test "${PIPESTATUS[0]}" = 0
fi
