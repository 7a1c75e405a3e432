#!/usr/bin/env bash
# End-to-end: mtconsole setup in tmux at 80x24, driven by keys and read only
# through `tmux capture-pane`, on a temporary root (a copy of the fixture
# host vmware-good) with the example answers and --dry-run, so nothing
# needs root and no package is installed:
#   walk Role → Prerequisites (f: would run the install) → Disks → Custom
#   changes (review, cancel; review, y: would write the files) →
#   Configuration server → vSphere → Summary; check the review lists the
#   changes; d does not end the dry run; show the dry run; quit: the root
#   is the same file for file (no state file, no log); reopen: a dry run
#   keeps no state, so it starts on Role.
#
#   scripts/e2e/setup.sh [BINARY]    (default: built from ./cmd/mtconsole)
#
# On failure it prints the last screen and exits 1.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
sess="mtsetup$$"
cleanup() {
	tmux kill-session -t "$sess" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

bin=${1:-}
if [ -z "$bin" ]; then
	bin="$work/mtconsole"
	go build -o "$bin" ./cmd/mtconsole
fi
root="$work/root"
cp -a disks/testdata/hosts/vmware-good "$root"
# snap: every path below the root with its type, mode, size and checksum
snap() {
	(cd "$root" && find . -printf '%p %y %m %s\n' | sort && find . -type f -exec sha256sum {} + | sort)
}
snap >"$work/before"

. scripts/e2e/lib.sh
run="$bin setup --root $root --answers scripts/examples/mt.yaml --dry-run; echo setup-exit=\$?; sleep 300"

step "starting mtconsole setup in tmux at 80x24 on $root"
tmux new-session -d -s "$sess" -x 80 -y 24 "$run"
wait_for 'Step 1 of 7 · Role' 10 "the role step"
wait_for '\(•\) 1  Master target' 5 "master target chosen by the answers"

step "prerequisites and disks: checks with their status"
keys Enter
wait_for 'Step 2 of 7 · Prerequisites' 5 "the prerequisites step"
wait_for '[0-9]+ ok · [0-9]+ warnings? · [0-9]+ failed' 30 "the prerequisite checks"
keys f
wait_for 'would run: |no package is missing' 10 "f in a dry run: what it would run"
keys Enter
wait_for 'Step 3 of 7 · Disks' 5 "the disks step"
wait_for 'Retention volume' 30 "the disk checks"
wait_for 'Retention directory: /mnt/retention' 5 "the retention directory of the answers"

step "custom changes: the review lists the files, n changes nothing"
keys Enter
wait_for 'Step 4 of 7 · Custom changes' 5 "the custom changes step"
wait_for 'multipath +multipath: find_multipaths' 10 "the custom changes"
keys a
wait_for 'Review: apply the custom changes' 5 "the review"
wait_for 'create /etc/multipath.conf' 5 "multipath.conf in the review"
keys n
wait_for 'cancelled: nothing was changed' 5 "the cancel"
[ -e "$root/etc/multipath.conf" ] && fail "the cancelled review wrote multipath.conf"
keys a
wait_for 'Review: apply the custom changes' 5 "the review"
keys y
wait_for 'would write' 10 "what the apply would write"
wait_for 'Dry run: Applying the custom changes · ✓ done' 5 "the dry apply's end"
[ -e "$root/etc/multipath.conf" ] && fail "the dry run wrote multipath.conf"
[ -e "$root/etc/.appliedmtcustomchanges" ] && fail "the dry run wrote the marker"

step "configuration server and vSphere"
keys Enter
wait_for 'Step 5 of 7 · Configuration server' 5 "the configuration server step"
wait_for 'Answers +10\.0\.0\.4:443' 5 "the answers' configuration server"
keys Enter
wait_for 'Step 6 of 7 · vSphere' 5 "the vSphere step"
wait_for 'mtconsole vsphere check' 5 "how to check vSphere"

step "summary: the review lists the changes"
keys Enter
wait_for 'Step 7 of 7 · Summary' 5 "the summary"
wait_for 'These [0-9]+ changes, in this order' 30 "the plan"
wait_for 'custom create /etc/multipath.conf' 5 "the custom changes in the plan"
# the plan is longer than 24 rows: scroll through it, keeping every screen
seen="$work/review.txt"
screen >"$seen"
for i in $(seq 30); do
	keys j
	screen >>"$seen"
done
for want in 'run +.*apt-get install|run +.*(dnf|yum) install|Package' 'custom create /etc/lvm/lvm.conf' \
	'custom create /etc/\.appliedmtcustomchanges' 'mkdir  /etc/mtconsole' 'copy   /usr/local/bin/mtconsole' \
	'mkdir  /mnt/retention/mtconsole' 'write  /etc/systemd/system/mtconsole-agent.service' \
	'write  /etc/mtconsole/answers.yaml' 'write  /etc/mtconsole/install.yaml' 'run    systemctl enable mtconsole-agent.service'; do
	grep -qE -- "$want" "$seen" || fail "the review does not list /$want/"
done
wait_for 'DRY RUN' 5 "the dry-run mark"
keys d
sleep 0.5
screen | grep -q 'DRY RUN' || fail "d turned the dry run off"

step "the dry run: shown, nothing changed"
keys a
wait_for 'Show what a real run would do' 5 "the dry-run question"
keys y
wait_for 'Dry run: nothing changed\.' 10 "the dry run's end"
wait_for '✓ dry run shown' 5 "the summary's status"
[ -e "$root/etc/mtconsole" ] && fail "the dry run made /etc/mtconsole"
[ -e "$root/usr/local/bin/mtconsole" ] && fail "the dry run copied the binary"

step "quit: the root is as it was; reopen: a dry run keeps no state"
keys q
wait_for 'setup-exit=0' 5 "a clean exit"
snap >"$work/after"
diff "$work/before" "$work/after" >&2 || fail "the dry run changed $root (above)"
tmux respawn-pane -k -t "$sess" "$run"
wait_for 'Step 1 of 7 · Role' 10 "the role step after reopening"
keys q
wait_for 'setup-exit=0' 5 "a clean exit"
step "ok"
