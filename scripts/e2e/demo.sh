#!/usr/bin/env bash
# End-to-end: mtconsole demo in tmux at 80x24, driven by keys and read only
# through `tmux capture-pane`, as an admin would see it over SSH:
#   wait for a pair to reach Differential Sync, open its detail, tag it,
#   run an export recovery to the latest application-consistent tag,
#   check the exported image against the source at that tag (the demo's
#   tags.sha256), quit, and check the demo's own closing checks.
#
#   scripts/e2e/demo.sh [BINARY]    (default: built from ./cmd/mtconsole)
#
# On failure it prints the last screen and exits 1.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
sess="mte2e$$"
cleanup() {
	tmux kill-session -t "$sess" 2>/dev/null || true
	# the hangup stops the demo; wait for it before its directory goes
	for _ in $(seq 100); do pgrep -f "demo --dir $work/" >/dev/null || break; sleep 0.1; done
	pkill -9 -f "demo --dir $work/" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

bin=${1:-}
if [ -z "$bin" ]; then
	bin="$work/mtconsole"
	go build -o "$bin" ./cmd/mtconsole
fi
d="$work/demo"

. scripts/e2e/lib.sh

step "starting mtconsole demo in tmux at 80x24"
tmux new-session -d -s "$sess" -x 80 -y 24 \
	"$bin demo --dir $d --disks 2 --size 16 --rate 50 --crash-every 1s --app-every 2s --verify 2; echo demo-exit=\$?; sleep 300"
wait_for 'PAIR' 10 "dashboard"
wait_for 'Diff sync|Differential Sync' 60 "pair in Differential Sync"
wait_for 'Points .*[1-9][0-9]* tags?' 30 "tags in the retention line"

step "detail of the first pair, and a tag from the console"
keys Enter
wait_for 'Pair disk0' 5 "detail of disk0"
keys t
wait_for 'manual-' 5 "tag prompt with its default name"
keys C-u
tmux send-keys -t "$sess" -l "e2e-check"
keys Enter
# The demo tags every second and the detail lists the newest two: the
# console's own note says the tag was placed, and the agent (asked to place
# the same name again) says disk0 holds it.
wait_for '✓ tagged disk0 as e2e-check' 20 "the console's note that the tag was placed"
again=$("$bin" tag e2e-check --pairs disk0 --socket "$d/agent.sock" 2>&1) && fail "a second tag e2e-check was placed: the first is not on disk0"
grep -q 'pair disk0 already has a tag "e2e-check"' <<<"$again" || fail "the agent does not hold the console's tag e2e-check on disk0: $again"
keys Escape

step "export recovery of disk0 to the latest application-consistent tag"
keys r
wait_for 'Step 1 of 5' 5 "recovery wizard"
# r chooses the pair in view: disk0, the dashboard's selected row
wait_for '\[x\] disk0' 5 "disk0 chosen"
screen | grep -qE '\[x\] disk[12]' && fail "another pair than disk0 is chosen"
keys Enter
wait_for 'Step 2 of 5' 5 "point step"
keys j j
keys Enter
wait_for 'Step 3 of 5' 5 "mode step"
# Export, the non-destructive mode, is the default; enter edits its path,
# and the field owns every key typed (j and k in the path move nothing)
screen | grep -qE '▶ Export' || fail "Export is not the default mode"
keys Enter
wait_for 'Export to:' 5 "export path field"
keys C-u
tmux send-keys -t "$sess" -l "$d/e2e-export-jk.img"
keys Enter
wait_for 'Step 4 of 5' 10 "readiness check"
screen | grep -q 'Export of disk0' || fail "the readiness check does not say Export of disk0"
tag=$(screen | sed -nE 's/.*✓ disk0: (app-consistent )?tag ([^ ]+) .*/\2/p' | head -1)
[ -n "$tag" ] || fail "readiness check does not name the tag"
screen | grep -q '✗' && fail "readiness check failed"
keys Enter
wait_for 'Step 5 of 5' 5 "confirm step"
keys Enter
wait_for 'done' 60 "finished export job"

want=$(awk -v t="$tag" '$2 == "disk0" && $3 == t { print $1 }' "$d/tags.sha256")
[ -n "$want" ] || fail "tag $tag is not in the demo's tags.sha256"
got=$(sha256sum "$d/e2e-export-jk.img" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "export of $tag: sha256 $got, the source at the tag $want"
step "export of $tag is bit-exact ($got)"

step "quit"
keys Enter
keys q
wait_for 'demo-exit=' 90 "the demo's exit"
screen | grep -q 'demo-exit=0' || fail "the demo failed"
screen | grep -qE '[0-9]+ checks: [0-9]+ bit-exact, 0 differ' || fail "the demo's closing checks"
step "PASS"
