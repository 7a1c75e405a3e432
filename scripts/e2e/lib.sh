# Shared by the end-to-end scripts: read the screen of tmux session $sess
# only through capture-pane, and drive it with send-keys. Source it after
# setting sess. Optional: screens (a file every capture is appended to),
# key_delay (seconds after each send-keys, default 0.3), and a function
# e2e_fail_extra that fail calls to print more (logs) before exiting.

screen() {
	if [ -n "${screens:-}" ]; then
		tmux capture-pane -p -t "$sess" | tee -a "$screens"
	else
		tmux capture-pane -p -t "$sess"
	fi
}

fail() {
	echo "e2e: FAIL: $*" >&2
	if tmux has-session -t "$sess" 2>/dev/null; then
		echo "---- last screen ----" >&2
		screen >&2 || true
		echo "---------------------" >&2
	fi
	if declare -F e2e_fail_extra >/dev/null; then e2e_fail_extra >&2; fi
	exit 1
}

# wait_for REGEX SECONDS WHAT: until the screen matches REGEX.
wait_for() {
	local re=$1 secs=$2 what=$3 i
	for i in $(seq $((secs * 10))); do
		if screen | grep -qE -- "$re"; then return 0; fi
		sleep 0.1
	done
	fail "no $what on screen after ${secs}s (waited for /$re/)"
}

keys() { tmux send-keys -t "$sess" "$@"; sleep "${key_delay:-0.3}"; }
step() { echo "e2e: $*"; }
