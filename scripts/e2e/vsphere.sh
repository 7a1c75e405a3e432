#!/usr/bin/env bash
# End-to-end: mtconsole vsphere against govmomi v0.56's simulator served
# over HTTPS on loopback by scripts/vcsim in a process of its own, driven as
# an admin would (password in a file, certificate pinned on first use in a
# trust store), each result checked through the helper's own govmomi client
# (vcsim -check):
#   check finds the master target by its BIOS UUID and maps its disks;
#   enable-uuid refuses on a running VM (exit 4) and sets a powered-off one;
#   a changed certificate pin is refused (exit 5);
#   readiness passes for a good plan and fails (exit 4) for a bad one;
#   create-vm --dry-run changes nothing; create-vm creates and powers on the
#   failback VM with the recovered disks, gone from the master target.
# Then against a second simulator whose tasks are slow (vcsim -task-delay)
# and whose master target holds 20 recovered disks: a 20-disk EFI
# (secure boot) VM on two PVSCSI controllers with two NICs of given MACs,
#   interrupted with SIGINT while each step's task runs: the inventory
#   (every VM object by object and the disks' files, read by vcsim
#   -inventory, a govmomi client of its own) ends as before;
#   made, uninterrupted, and checked device by device, then undone;
#   killed with SIGKILL while the create and the attach run, then finished
#   with `failback resume` (the inventory as the uninterrupted run made
#   it) and reversed with `failback undo` (as before), or undone at once;
#   killed with SIGKILL while the attach runs, then undone from the console
#   (mtconsole console in tmux at 80x24, no agent: read only through
#   capture-pane): the dashboard tells of the unfinished run, f lists it,
#   u and the VM's name typed undo it (the inventory as before);
#   interrupted with SIGINT while the attach runs with a --task-grace
#   shorter than the task: nothing is undone beside the running task, the
#   plan file records it, and `failback undo` waits for it, then reverses
#   the run (as before).
#
#   scripts/e2e/vsphere.sh
#
# Exits 1 on the first failure (with the console's last screen when it
# runs); kills the servers and the tmux session and removes its temporary
# directory whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
sess="mtvs$$"
pid=
pid2=
bigpid=
cleanup() {
	tmux kill-session -t "$sess" 2>/dev/null || true
	for p in $bigpid $pid $pid2; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

# The console's screen and keys (screen, wait_for, keys); fail and step
# are this script's.
. scripts/e2e/lib.sh
fail() {
	echo "e2e vsphere: FAIL: $*" >&2
	if tmux has-session -t "$sess" 2>/dev/null; then
		echo "---- the console's last screen ----" >&2
		tmux capture-pane -p -t "$sess" >&2 || true
	fi
	exit 1
}
step() { echo "== $*"; }

step "build"
go build -o "$work/mtconsole" ./cmd/mtconsole
go build -o "$work/vcsim" ./scripts/vcsim
mt="$work/mtconsole"

pw="e2e-Pa55-$$-$RANDOM"
printf '%s\n' "$pw" >"$work/pw"
chmod 600 "$work/pw"
mkdir "$work/state"

step "start the simulator"
"$work/vcsim" -state "$work/state" -user administrator -password-file "$work/pw" >"$work/vcsim.out" 2>"$work/vcsim.err" &
pid=$!
for _ in $(seq 100); do
	[ -f "$work/state/env" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/vcsim.err" >&2; fail "vcsim exited"; }
	sleep 0.1
done
[ -f "$work/state/env" ] || fail "vcsim did not come up in 10 s"
# shellcheck disable=SC1091
. "$work/state/env"
echo "   $URL ($THUMBPRINT)"

store="$work/thumbprints"
sessions="$work/sessions"
conn=(--url "$URL" --user administrator --password-file "$work/pw" --trust-store "$store" --session-dir "$sessions"
	--uuid-file "$work/state/product_uuid" --dev-root "$work/state/root" --plan-dir "$work/plans0")
vcheck() { "$work/vcsim" -check "$1" -url "$URL" -thumbprint "$THUMBPRINT" -user administrator -password-file "$work/pw"; }
# sees VM LINE: the helper's own client sees LINE for VM (whole output
# read first: grep -q would cut the pipe under pipefail).
sees() {
	local out
	out=$(vcheck "$1") || fail "vcsim -check $1 failed"
	grep -qxF -- "$2" <<<"$out"
}
disks() {
	local out
	out=$(vcheck "$1") || fail "vcsim -check $1 failed"
	grep -c '^disk=' <<<"$out" || true
}
# run NAME WANT_EXIT ARGS...: runs mtconsole, keeps its output in
# $work/NAME.out and .err, checks the exit code and that the password
# shows nowhere.
run() {
	local name=$1 want=$2 rc=0
	shift 2
	"$mt" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
	if [ "$rc" != "$want" ]; then
		cat "$work/$name.out" "$work/$name.err" >&2
		fail "$name: exit $rc, want $want"
	fi
	if grep -qF -- "$pw" "$work/$name.out" "$work/$name.err"; then
		fail "$name: the password shows in the output"
	fi
}
has() { grep -qF -- "$2" "$work/$1.out" "$work/$1.err" || { cat "$work/$1.out" "$work/$1.err" >&2; fail "$1: no \"$2\""; }; }

step "check: this VM by BIOS UUID, pinned on first use"
run check 0 vsphere check "${conn[@]}"
has check "Pinned the certificate"
has check "$THUMBPRINT"
has check "VM $MT"
has check "disk.EnableUUID: TRUE"
has check "/dev/sdb"
has check "$RECOVERED1"
grep -qF "$THUMBPRINT" "$store" || fail "the trust store has no pin"
run check2 0 vsphere check "${conn[@]}" --json
grep -q '"pinnedNow": false' "$work/check2.out" || fail "pinned twice"
grep -q '"sessionReused": true' "$work/check2.out" || fail "the second command logged in again"
for f in "$sessions"/*.json; do
	[ "$(stat -c %a "$f")" = 600 ] || fail "session cache $f: mode $(stat -c %a "$f"), want 600"
	! grep -qF -- "$pw" "$f" || fail "session cache $f holds the password"
done
[ "$(stat -c %a "$sessions")" = 700 ] || fail "session cache directory: mode $(stat -c %a "$sessions")"

step "enable-uuid: refused on a running VM, set on a powered-off one"
run refuse 4 vsphere enable-uuid "${conn[@]}" --vm "$PVSCSIVM"
has refuse "power off"
has refuse "enable-uuid --vm"
sees "$PVSCSIVM" "enableuuid=unset" || fail "a refused enable-uuid changed $PVSCSIVM"
sees "$OFFVM" "enableuuid=unset" || fail "$OFFVM had EnableUUID before"
run enable 0 vsphere enable-uuid "${conn[@]}" --vm "$OFFVM"
has enable "set to TRUE"
sees "$OFFVM" "enableuuid=TRUE" || fail "enable-uuid did not set $OFFVM"

step "a changed certificate is refused"
cp "$store" "$work/store.good"
sed -i "s/$THUMBPRINT/$(printf '0A:%.0s' $(seq 31))0A/" "$store"
run changed 5 vsphere check "${conn[@]}"
has changed "changed"
has changed "$THUMBPRINT"
cp "$work/store.good" "$store"

step "bad password, unknown UUID, unreachable"
printf 'wrong\n' >"$work/badpw"
chmod 600 "$work/badpw"
run badpw 1 vsphere check --no-session-cache --url "$URL" --user administrator --password-file "$work/badpw" --thumbprint "$THUMBPRINT" --uuid-file "$work/state/product_uuid"
has badpw "wrong user name or password"
echo 00000000-0000-0000-0000-0000000000ff >"$work/uuid.bad"
run baduuid 1 vsphere check --no-session-cache --url "$URL" --user administrator --password-file "$work/pw" --thumbprint "$THUMBPRINT" --uuid-file "$work/uuid.bad"
has baduuid "VM not found"
run unreach 1 vsphere check --no-session-cache --url https://127.0.0.1:1 --user administrator --password-file "$work/pw" --insecure
has unreach "unreachable"

step "datastores"
run ds 0 vsphere datastores "${conn[@]}"
has ds "$DATASTORE"
has ds "$NETWORK"

step "readiness"
run ready 0 vsphere readiness "${conn[@]}" --disks 2 --need "$DATASTORE=1G" --name src01 --vm-datastore "$DATASTORE"
has ready "ok    Free SCSI slots"
run notready 4 vsphere readiness "${conn[@]}" --disks 20 --name "$OFFVM" --need "$DATASTORE=9000T"
has notready "FAIL  Free SCSI slots"
has notready "FAIL  Failback VM name free"
has notready "FAIL  Free space on $DATASTORE"
run pvscsi 4 vsphere readiness "${conn[@]}" --vm "$PVSCSIVM"
has pvscsi "paravirtual"

step "create-vm"
create=(vsphere create-vm "${conn[@]}" --source-hostname src01 --disk /dev/sdb --disk "$RECOVERED2"
	--nic "$NETWORK" --cpus 2 --memory-mb 1024)
run dry 0 "${create[@]}" --dry-run --socket "$work/no-agent.sock"
has dry "create VM src01"
sees src01 "exists=false" || fail "the dry run created the VM"
[ "$(disks "$MT")" = 3 ] || fail "the dry run changed the master target"
run create 0 "${create[@]}" --socket "$work/no-agent.sock"
has create "powered on"
vcheck src01 >"$work/src01" || fail "vcsim -check src01 failed"
grep -qx "power=poweredOn" "$work/src01" || fail "src01 is not powered on: $(cat "$work/src01")"
grep -qxF "disk=$RECOVERED1" "$work/src01" || fail "src01 lacks $RECOVERED1"
grep -qxF "disk=$RECOVERED2" "$work/src01" || fail "src01 lacks $RECOVERED2"
grep -qx "nic=vmxnet3" "$work/src01" || fail "src01 has no vmxnet3 NIC"
grep -qx "cpus=2" "$work/src01" || fail "src01 CPUs"
[ "$(disks "$MT")" = 1 ] || fail "the recovered disks are still on the master target"
run again 1 "${create[@]}" --socket "$work/no-agent.sock"
ls "$work"/plans0/src01-*.json >/dev/null || fail "create-vm kept no plan file in --plan-dir"

step "a slow simulator with 20 recovered disks"
mkdir "$work/state2"
"$work/vcsim" -state "$work/state2" -user administrator -password-file "$work/pw" -extra-disks 18 \
	-task-delay CreateVm:1500 -task-delay PowerOn:1500 -task-delay ReconfigVm:1500 >"$work/vcsim2.out" 2>"$work/vcsim2.err" &
pid2=$!
for _ in $(seq 600); do
	[ -f "$work/state2/env" ] && break
	kill -0 "$pid2" 2>/dev/null || { cat "$work/vcsim2.err" >&2; fail "vcsim (slow) exited"; }
	sleep 0.1
done
[ -f "$work/state2/env" ] || fail "vcsim (slow) did not come up in 60 s"
# shellcheck disable=SC1091
. "$work/state2/env"
[ "${#RECOVERED_FILES[@]}" = 20 ] || fail "the slow simulator has ${#RECOVERED_FILES[@]} recovered disks, want 20"
plans="$work/plans"
conn2=(--url "$URL" --user administrator --password-file "$work/pw" --thumbprint "$THUMBPRINT" --no-session-cache
	--uuid-file "$work/state2/product_uuid" --dev-root "$work/state2/root" --plan-dir "$plans")
files=$(IFS=,; echo "${RECOVERED_FILES[*]}")
inventory() {
	"$work/vcsim" -inventory -url "$URL" -thumbprint "$THUMBPRINT" -user administrator -password-file "$work/pw" -files "$files"
}
inventory >"$work/inv.before" || fail "vcsim -inventory failed"
big=(vsphere create-vm "${conn2[@]}" --socket "$work/no-agent.sock" --name big01 --cpus 2 --cores-per-socket 2 --memory-mb 2048
	--guest-id rhel9_64Guest --firmware efi --secure-boot --hw-version 19 --controller pvscsi --controller pvscsi
	--nic "network=$NETWORK,adapter=vmxnet3,mac=00:50:56:3a:00:01"
	--nic "network=DC0_DVPG0,adapter=e1000e,mac=00:50:56:3a:00:02,connected=false")
for f in "${RECOVERED_FILES[@]}"; do big+=(--disk "$f"); done
unfinished() { "$mt" vsphere failback list --plan-dir "$plans" --json | grep -c '"masterTarget"' || true; }
same_as() {
	inventory >"$work/inv.now" || fail "vcsim -inventory failed"
	diff -u "$1" "$work/inv.now" >&2 || fail "$2: the inventory differs from $1"
}
# start_big NAME: create-vm in the background, output in $work/NAME.out.
start_big() {
	"$mt" "${big[@]}" >"$work/$1.out" 2>"$work/$1.err" &
	bigpid=$!
}
# wait_step NAME PATTERN: until the run prints "running PATTERN".
wait_step() {
	for _ in $(seq 1200); do
		grep -qE "^running +$2" "$work/$1.out" && return 0
		kill -0 "$bigpid" 2>/dev/null || { cat "$work/$1.out" "$work/$1.err" >&2; fail "$1: ended before \"$2\" began"; }
		sleep 0.05
	done
	fail "$1: \"$2\" did not begin in 60 s"
}

for s in "detach" "create VM" "attach" "power on"; do
	name="int-${s// /-}"
	step "SIGINT while \"$s\" runs: every step undone"
	start_big "$name"
	wait_step "$name" "$s"
	kill -INT "$bigpid"
	rc=0
	wait "$bigpid" || rc=$?
	[ "$rc" = 1 ] || { cat "$work/$name.out" "$work/$name.err" >&2; fail "$name: exit $rc, want 1"; }
	has "$name" "Interrupted: waiting for the vSphere task"
	has "$name" "every step begun was undone"
	same_as "$work/inv.before" "$name"
	[ "$(unfinished)" = 0 ] || fail "$name: a plan is left unfinished"
done

step "made without interruption: the reference"
run bigref 0 "${big[@]}"
has bigref "Failback VM big01 created with 20 disk(s) and powered on"
inventory >"$work/inv.done"
grep -F 'big01: poweredOn cpu=2/2 mem=2048 fw=efi secure=true hw=vmx-19 ctl=[pvscsi@0 pvscsi@1]' "$work/inv.done" >/dev/null ||
	fail "big01 is not as asked: $(grep big01 "$work/inv.done")"
grep -F 'nics=[vmxnet3/00:50:56:3a:00:01/true e1000e/00:50:56:3a:00:02/false]' "$work/inv.done" >/dev/null ||
	fail "big01's NICs: $(grep big01 "$work/inv.done")"
[ "$(grep '^big01:' "$work/inv.done" | grep -o 'recovered/src01_[^ ]*@0:' | wc -l)" = 15 ] || fail "big01: not 15 disks on bus 0"
[ "$(grep '^big01:' "$work/inv.done" | grep -o 'recovered/src01_[^ ]*@1:' | wc -l)" = 5 ] || fail "big01: not 5 disks on bus 1"
refplan=$(ls -t "$plans"/big01-*.json | head -1)
[ "$(stat -c %a "$refplan")" = 600 ] || fail "plan file $refplan: mode $(stat -c %a "$refplan")"
run bigundo 0 vsphere failback undo "${conn2[@]}" "$refplan"
same_as "$work/inv.before" "undo of the reference run"

for s in "create VM" "attach"; do
	name="kill-${s// /-}"
	step "SIGKILL while \"$s\" runs, then resume, then undo"
	start_big "$name"
	wait_step "$name" "$s"
	kill -KILL "$bigpid"
	wait "$bigpid" 2>/dev/null || true
	[ "$(unfinished)" = 1 ] || fail "$name: no unfinished plan after the kill"
	plan=$(ls -t "$plans"/big01-*.json | head -1)
	run "$name-resume" 0 vsphere failback resume "${conn2[@]}" "$plan"
	has "$name-resume" "powered on"
	same_as "$work/inv.done" "$name, resumed"
	run "$name-undo" 0 vsphere failback undo "${conn2[@]}" "$plan"
	same_as "$work/inv.before" "$name, undone"
	[ "$(unfinished)" = 0 ] || fail "$name: a plan is left unfinished"

	step "SIGKILL while \"$s\" runs, then undo"
	start_big "$name-2"
	wait_step "$name-2" "$s"
	kill -KILL "$bigpid"
	wait "$bigpid" 2>/dev/null || true
	plan=$(ls -t "$plans"/big01-*.json | head -1)
	run "$name-undo2" 0 vsphere failback undo "${conn2[@]}" "$plan"
	same_as "$work/inv.before" "$name, undone without resume"
done

step "SIGKILL while \"attach\" runs, then undo from the console in tmux at 80x24"
name=kill-console
start_big "$name"
wait_step "$name" "attach"
kill -KILL "$bigpid"
wait "$bigpid" 2>/dev/null || true
[ "$(unfinished)" = 1 ] || fail "$name: no unfinished plan after the kill"
plan=$(ls -t "$plans"/big01-*.json | head -1)
# No agent: the dashboard has no pairs but reads the plan files. The
# session cache goes under $work, not the user's home.
tmux new-session -d -s "$sess" -x 80 -y 24 \
	"env XDG_CACHE_HOME=$work/cache $mt console --socket $work/no-agent.sock --config $work/agent.toml \
	--vsphere-conf /nonexistent --vsphere-url $URL --vsphere-user administrator --vsphere-password-file $work/pw \
	--vsphere-thumbprint $THUMBPRINT --vsphere-plan-dir $plans --vsphere-uuid-file $work/state2/product_uuid \
	--vsphere-dev-root $work/state2/root; echo console-exit=\$?; sleep 300"
wait_for 'an unfinished failback run \(big01\): f to resume or undo' 20 "the dashboard's unfinished-run notice"
keys f
wait_for 'Unfinished failback runs' 10 "the list of unfinished runs"
wait_for '▶ big01 +running' 5 "big01's killed run in the list"
screen | grep -qF "$(basename "$plan")" || fail "$name: the list does not show $plan"
keys u
wait_for 'Type big01' 5 "undo's typed confirmation"
tmux send-keys -t "$sess" -l big01
keys Enter
wait_for 'Undoing the failback run of big01' 10 "the undo under way"
wait_for 'enter or esc: back' 180 "the undo's report"
# The header's "agent ✗ unreachable" is expected: no agent runs here.
if screen | grep -q '^   ✗ '; then fail "$name: the console's undo failed"; fi
screen | grep -qF 'Undone: the disks are back on mt01, the failback VM big01 is gone.' || fail "$name: no undo report"
keys Enter
wait_for 'No unfinished failback run' 10 "the emptied list"
same_as "$work/inv.before" "$name, undone from the console"
[ "$(unfinished)" = 0 ] || fail "$name: a plan is left unfinished"
grep -q '"status": "undone"' "$plan" || fail "$name: the plan file is not marked undone: $(grep -o '"status": "[a-z-]*"' "$plan" | sort | uniq -c)"
tmux kill-session -t "$sess"

step "SIGINT while \"attach\" runs, its task outliving --task-grace: nothing undone beside it, then undo"
name=grace-attach
"$mt" "${big[@]}" --task-grace 100ms >"$work/$name.out" 2>"$work/$name.err" &
bigpid=$!
wait_step "$name" "attach"
kill -INT "$bigpid"
rc=0
wait "$bigpid" || rc=$?
[ "$rc" = 1 ] || { cat "$work/$name.out" "$work/$name.err" >&2; fail "$name: exit $rc, want 1"; }
plan=$(ls -t "$plans"/big01-*.json | head -1)
has "$name" "a vSphere task is still running"
has "$name" "nothing was undone while it runs"
has "$name" "mtconsole vsphere failback undo $plan"
[ "$(unfinished)" = 1 ] || fail "$name: the plan file is not left unfinished"
grep -q '"status": "running"' "$plan" || fail "$name: the plan file does not record the step as running"
grep -q '"task": "task-' "$plan" || fail "$name: the plan file does not record the task"
# undo waits for the task (the default grace), then reverses every step.
run "$name-undo" 0 vsphere failback undo "${conn2[@]}" "$plan"
same_as "$work/inv.before" "$name, undone"
[ "$(unfinished)" = 0 ] || fail "$name: a plan is left unfinished"

echo "e2e vsphere: ok"
