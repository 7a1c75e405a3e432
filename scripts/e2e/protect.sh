#!/usr/bin/env bash
# End-to-end: protect the demo's spare disk from the console's Protect
# screen in tmux at 80x24 (keys in, capture-pane out), as a new user would:
#   n → the process server (the agent's) → choose the spare disk → its
#   suggested target → the policy → the review → apply;
# then check through `mtconsole status --json` that the new pair reached
# Differential Sync while the other pairs' sequences kept increasing (no
# restart, no resync), unprotect it with u on the dashboard (its target
# left as it is, the others untouched), quit, and check the demo's
# closing checks.
#
#   scripts/e2e/protect.sh [BINARY]    (default: built from ./cmd/mtconsole)
#
# On failure it prints the last screen and exits 1.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
sess="mtprot$$"
cleanup() {
	tmux kill-session -t "$sess" 2>/dev/null || true
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

# field PAIR KEY: a pair's field in status --json (indented: one key a
# line, the pair's "id" first and its own "state" last).
field() {
	"$bin" status --json --socket "$d/agent.sock" | awk -v id="$1" -v key="$2" '
		$0 ~ "^      \"id\": \"" id "\"" { in_pair = 1; next }
		in_pair && $0 ~ "^      \"id\": " { exit }
		in_pair && $0 ~ "^      \"" key "\": " { sub("^[^:]*: *\"?", ""); sub("\"?,?$", ""); print; exit }'
}
seq_of() { local v; v=$(field "$1" durable_seq); echo "${v:--1}"; }
state_of() { local v; v=$(field "$1" state); echo "${v:-none}"; }

step "starting mtconsole demo in tmux at 80x24 (disk0, disk1 protected; disk2 spare)"
tmux new-session -d -s "$sess" -x 80 -y 24 \
	"$bin demo --dir $d --disks 2 --size 16 --rate 50 --crash-every 1s --app-every 2s --verify 2; echo demo-exit=\$?; sleep 300"
wait_for 'PAIR' 10 "dashboard"
wait_for 'disk1 .*(Diff sync|Differential Sync)' 60 "disk1 in Differential Sync"
before0=$(seq_of disk0)
before1=$(seq_of disk1)

step "n: the Protect screen, the agent's process server"
keys n
wait_for '1 Process server' 5 "Protect screen"
wait_for 'Passphrase file: .*passphrase' 5 "the agent's passphrase file filled in"
keys Enter
wait_for '2 Disks\]' 15 "the served disks"
screen | grep -qE 'disk0 .*already protected' || fail "disk0 is not marked already protected"
screen | grep -qE '\[ \] disk2' || fail "the spare disk2 is not offered"

step "choose disk2, its suggested target, the policy"
keys j j space
wait_for '\[x\] disk2' 5 "disk2 chosen"
keys Enter
wait_for '3 Mapping\]' 5 "mapping step"
wait_for 'disk2 +→ .*targets/disk2.img' 5 "the suggested target"
wait_for '✓ can be used' 10 "the target accepted"
keys Enter
wait_for '4 Policy\]' 5 "policy step"
keys Enter
wait_for '5 Review\]' 10 "review step"
screen | grep -q 'protect .*: 1 disk from' || fail "the plan's summary"
screen | grep -q '+++ .*agent.toml' || fail "the agent.toml diff"

step "apply: the agent starts the pair on its running connection"
keys Enter
wait_for 'Wrote .*agent.toml' 15 "the file written"
wait_for 'disk2 .*(Resync|Differential Sync)' 15 "the new pair's state"
for _ in $(seq 600); do [ "$(state_of disk2)" = "Differential Sync" ] && break; sleep 0.1; done
[ "$(state_of disk2)" = "Differential Sync" ] || fail "disk2 never reached Differential Sync (state $(state_of disk2))"
grep -q 'disk = "disk2"' "$d/agent.toml" || fail "agent.toml has no pair for disk2"
[ -f "$d/agent.toml.bak" ] || fail "agent.toml.bak not kept"
after0=$(seq_of disk0)
after1=$(seq_of disk1)
[ "$after0" -gt "$before0" ] && [ "$after1" -gt "$before1" ] ||
	fail "the other pairs stopped: disk0 $before0 → $after0, disk1 $before1 → $after1"
for p in disk0 disk1; do
	[ "$(state_of $p)" = "Differential Sync" ] || fail "$p left Differential Sync: $(state_of $p)"
done
step "disk2 in Differential Sync; disk0 $before0 → $after0, disk1 $before1 → $after1 (no restart)"

step "back to the dashboard: disk2 beside the others"
keys Enter
wait_for 'disk2 → ' 5 "disk2 on the dashboard"

step "u on disk2: unprotect from the console, keeping its retention; the target is left as it is"
keys j j
wait_for '^ disk2 → ' 5 "disk2 selected in the panel"
keys u
# the machine is the group the Protect screen named (the process server's host)
wait_for 'Unprotect machine ' 5 "the unprotect dialog"
screen | grep -q 'disk2 .*left as it is' || fail "the dialog does not name disk2's target"
screen | grep -q 'left as they are' || fail "the dialog does not say the targets are left as they are"
keys y
wait_for 'unprotected .*stopped disk2' 15 "the unprotect's result"
for _ in $(seq 100); do [ "$(state_of disk2)" = "none" ] && break; sleep 0.1; done
[ "$(state_of disk2)" = "none" ] || fail "disk2 still runs: $(state_of disk2)"
grep -q 'disk = "disk2"' "$d/agent.toml" && fail "agent.toml still has disk2"
# nothing writes to it any more, while the workload goes on writing its source
sum=$(sha256sum "$d/targets/disk2.img" | cut -d' ' -f1)
sleep 2
[ "$(sha256sum "$d/targets/disk2.img" | cut -d' ' -f1)" = "$sum" ] || fail "the target of disk2 changed after unprotect"
[ -d "$d/retention/disk2" ] || fail "unprotect keeping the retention removed it"
for p in disk0 disk1; do
	[ "$(state_of $p)" = "Differential Sync" ] || fail "$p left Differential Sync: $(state_of $p)"
done

step "quit"
keys q
wait_for 'demo-exit=' 90 "the demo's exit"
screen | grep -q 'demo-exit=0' || fail "the demo failed"
screen | grep -qE '[0-9]+ checks: [0-9]+ bit-exact, 0 differ' || fail "the demo's closing checks"
step "PASS"
