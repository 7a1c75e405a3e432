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
#
#   scripts/e2e/vsphere.sh
#
# Exits 1 on the first failure; kills the server and removes its temporary
# directory whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "e2e vsphere: FAIL: $*" >&2
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
	--uuid-file "$work/state/product_uuid" --dev-root "$work/state/root")
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
run dry 0 "${create[@]}" --dry-run
has dry "create VM src01"
sees src01 "exists=false" || fail "the dry run created the VM"
[ "$(disks "$MT")" = 3 ] || fail "the dry run changed the master target"
run create 0 "${create[@]}"
has create "powered on"
vcheck src01 >"$work/src01" || fail "vcsim -check src01 failed"
grep -qx "power=poweredOn" "$work/src01" || fail "src01 is not powered on: $(cat "$work/src01")"
grep -qxF "disk=$RECOVERED1" "$work/src01" || fail "src01 lacks $RECOVERED1"
grep -qxF "disk=$RECOVERED2" "$work/src01" || fail "src01 lacks $RECOVERED2"
grep -qx "nic=vmxnet3" "$work/src01" || fail "src01 has no vmxnet3 NIC"
grep -qx "cpus=2" "$work/src01" || fail "src01 CPUs"
[ "$(disks "$MT")" = 1 ] || fail "the recovered disks are still on the master target"
run again 1 "${create[@]}"

echo "e2e vsphere: ok"
