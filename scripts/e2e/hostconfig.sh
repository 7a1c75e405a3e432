#!/usr/bin/env bash
# End-to-end: registration through the host config screen, against a real
# configuration server, as an admin does it over SSH:
#   mtconsole cs init (the passphrase it prints goes to a 0600 file, never
#   to a command line), mtconsole cs serve on a free loopback port, then
#   mtconsole hostconfig in tmux at 80x24: Global, the server's address,
#   port and HTTPS typed, the passphrase pasted (tmux paste-buffer, as a
#   terminal paste), save, confirm the certificate fingerprint (checked
#   against the one cs serve printed), quit. The screens are read only
#   through `tmux capture-pane`. Then `mtconsole cs hosts --json` must list
#   the host with a recent heartbeat, and no screen, log or output may hold
#   the passphrase.
#
#   scripts/e2e/hostconfig.sh [BINARY]    (default: built from ./cmd/mtconsole)
#
# On failure it prints the last screen and exits 1. Runs in a few seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
umask 077

work=$(mktemp -d)
sess="mthc$$"
serve_pid=
cleanup() {
	tmux kill-session -t "$sess" 2>/dev/null || true
	if [ -n "$serve_pid" ]; then
		kill "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

bin=${1:-}
if [ -z "$bin" ]; then
	bin="$work/mtconsole"
	go build -o "$bin" ./cmd/mtconsole
fi
cs="$work/cs"
conf="$work/etc/host.conf"
pass="$work/passphrase"   # 0600 (umask)
screens="$work/screens.txt"

# screen prints the pane and keeps every capture, to grep them at the end.
e2e_fail_extra() {
	[ -f "$work/serve.log" ] && { echo "---- cs serve ----"; tail -20 "$work/serve.log"; }
}
key_delay=0.2
. scripts/e2e/lib.sh

step "cs init: the passphrase printed once, kept in a 0600 file"
"$bin" cs init --dir "$cs" --host 127.0.0.1 >"$work/init.out"
# the indented line after "passphrase (shown once ...):"
sed -n '/^passphrase/,/^certificate/{s/^    \([^ ].*\)$/\1/p}' "$work/init.out" >"$pass"
[ "$(wc -l <"$pass")" -eq 1 ] || fail "cs init printed no passphrase line"
[ "$(wc -c <"$pass")" -ge 17 ] || fail "the passphrase printed is shorter than 16 characters"
cmp -s <(tr -d '\n' <"$pass") <(tr -d '\n' <"$cs/connection.passphrase") || fail "the passphrase printed is not the one cs init stored"
[ "$(stat -c %a "$pass")" = 600 ] || fail "the passphrase file is not 0600"

step "cs serve on a free loopback port"
"$bin" cs serve --dir "$cs" --addr 127.0.0.1:0 >"$work/serve.log" 2>&1 &
serve_pid=$!
for i in $(seq 100); do
	[ -s "$cs/serve.addr" ] && break
	kill -0 "$serve_pid" 2>/dev/null || fail "cs serve stopped"
	sleep 0.1
done
addr=$(cat "$cs/serve.addr" 2>/dev/null) || fail "cs serve wrote no address"
host=${addr%:*}
port=${addr##*:}
fp=$(sed -n 's/^certificate fingerprint: //p' "$work/serve.log")
[ -n "$fp" ] || fail "cs serve printed no certificate fingerprint"
step "serving on $addr, certificate $fp"

step "mtconsole hostconfig in tmux at 80x24"
tmux new-session -d -s "$sess" -x 80 -y 24 \
	"$bin hostconfig --config $conf; echo hc-exit=\$?; sleep 300"
wait_for 'Host Config Interface' 10 "host config screen"
wait_for '\[ Global \]' 5 "Global chosen in the menu"
keys Enter
wait_for 'FQDN or IP:' 5 "the Global form"

step "Global: address, port, HTTPS, the passphrase pasted"
tmux send-keys -t "$sess" -l "$host"
keys Enter
keys C-u
tmux send-keys -t "$sess" -l "$port"
keys Enter
screen | grep -qE 'Use https: +< Yes >' || fail "HTTPS is not on"
keys Enter
wait_for 'Enter Passphrase:' 5 "the passphrase field"
# a terminal paste (bracketed, as PuTTY's Shift+Insert), with the copied
# line's newline: the buffer is loaded from the 0600 file
tmux load-buffer -b "hcpass$$" "$pass"
tmux paste-buffer -p -d -b "hcpass$$" -t "$sess"
sleep 0.3
wait_for 'Enter Passphrase: +\[\*{16,}' 5 "the passphrase masked"
screen | grep -qE "FQDN or IP: +\[$host " || fail "the address is not in its field"
screen | grep -qE "Port: +\[$port " || fail "the port is not in its field"

step "save: test the connection, confirm the fingerprint"
keys C-s
wait_for "First connection to $addr" 15 "the first-use confirmation"
screen | grep -qF "$fp" || fail "the fingerprint shown is not the one cs serve printed ($fp)"
keys y
wait_for '✓ registered and verified: host [0-9a-f-]+' 15 "registered and verified"
id=$(screen | sed -nE 's/.*✓ registered and verified: host ([0-9a-f-]+).*/\1/p' | head -1)
[ -n "$id" ] || fail "no host id on screen"
step "registered as $id"

step "quit"
keys Escape
wait_for 'Pick the command' 5 "the menu"
keys q
wait_for 'hc-exit=' 10 "the screen's exit"
screen | grep -q 'hc-exit=0' || fail "mtconsole hostconfig failed"

step "cs hosts --json lists the host with a recent heartbeat"
hosts=$("$bin" cs hosts --json --dir "$cs")
echo "$hosts" | grep -q "\"id\": \"$id\"" || fail "cs hosts does not list $id: $hosts"
last=$(echo "$hosts" | tr -d '\n ' | sed -nE "s/.*\"id\":\"$id\".*\"state\":\"([a-z]+)\",\"registered_at\":\"[^\"]*\",\"last_heartbeat\":\"([^\"]+)\".*/\1 \2/p")
[ -n "$last" ] || fail "no state and last heartbeat for $id: $hosts"
state=${last% *}
age=$(($(date +%s) - $(date -d "${last#* }" +%s)))
[ "$state" = registered ] || fail "host $id is $state on the server"
[ "$age" -ge 0 ] && [ "$age" -lt 60 ] || fail "the last heartbeat of $id is ${age}s old"
grep -q "^id = $id\$" "$conf" || fail "$conf does not hold host id $id"
[ "$(stat -c %a "$work/etc/private/connection.passphrase")" = 600 ] || fail "the stored passphrase is not 0600"
step "$id registered, last heartbeat ${age}s ago"

step "the passphrase is on no screen, in no log, output or config"
grep -qF -f "$pass" "$screens" && fail "a screen capture shows the passphrase"
for f in "$work/serve.log" "$conf" "$work/etc/cs_known_hosts"; do
	grep -qF -f "$pass" "$f" && fail "$f holds the passphrase"
done
echo "$hosts" | grep -qF -f "$pass" && fail "cs hosts shows the passphrase"
step "PASS ($(grep -c . "$screens") screen lines checked)"
