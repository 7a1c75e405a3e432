#!/usr/bin/env bash
# The benchmarks of DESIGN §9: each figure is measured beside its baseline
# in the same run, on the same file system, the pair repeated interleaved
# (engine, baseline, engine, baseline, ...), and the MEDIAN ratio reported.
#
#   scripts/bench.sh [GROUP]     GROUP: engine, replication, console (no argument: every group)
#
# Output: one line per figure, "<name> ratio=<x.xx> goal=<op><y>", then
# detail lines that start with two spaces: raw MiB/s of each side, sizes,
# cadences, and for the run with the median ratio the engine's CPU time and
# its I/O per kind of file (calls, MiB, seconds summed over goroutines, and
# when that kind of I/O was busy, from the start of the measured phase).
# Progress goes to stderr.
#
# Environment:
#   BENCH_DIR      work directory (default /var/tmp/mtconsole-bench); it must
#                  be on the file system to measure. Each run uses a fresh
#                  directory inside it and removes it at the end (and
#                  BENCH_DIR too when that leaves it empty).
#   BENCH_REPS     repetitions of each engine/baseline pair (default 3)
#   BENCH_ONLY     run only these figures of the groups (space-separated:
#                  ack apply recover view sparse_reclaim resync_hash resync_full
#                  stream rss churn restart tui_frame tui_idle), e.g. BENCH_ONLY=recover
#   BENCH_PROFILE  a directory: keep a CPU profile of each engine run there
#                  (<figure>-<rep>.pprof) and the binary that made them, for
#                  `go tool pprof DIR/benchengine DIR/apply-1.pprof`
#   BENCH_RESYNC_SIZE  replication: bytes of the resync disks (default 1 GiB)
#   BENCH_STREAM_BYTES replication: bytes of the stream figure and of the
#                  apply_retention run beside it (default 256 MiB)
#   BENCH_RSS_SECONDS  replication: how long the 64 pairs stream (default 60)
#   BENCH_CHURN_SECONDS replication: length of each churn_64 trial (default 60)
#   BENCH_IDLE_SECONDS console: how long the idle dashboard is watched (default 60)
#
# Baselines are fio's and rsync's (installed with apt-get when missing and
# root). Page
# caches are not dropped: every run uses fresh files and the fsyncs the
# figure calls for. Numbers on shared machines are noisy: compare ratios
# from one run, never absolute figures across runs.
set -euo pipefail
cd "$(dirname "$0")/.."

all_groups=(engine replication console)
if (($#)); then groups=("$@"); else groups=("${all_groups[@]}"); fi
for g in "${groups[@]}"; do
	case " ${all_groups[*]} " in
	*" $g "*) ;;
	*) echo "usage: scripts/bench.sh [${all_groups[*]// /|}]: unknown group $g" >&2; exit 2 ;;
	esac
done
reps=${BENCH_REPS:-3}

log() { echo "bench: $*" >&2; }

need() {
	command -v "$1" >/dev/null 2>&1 && return
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "installing $1"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
	else
		echo "bench: $1 is missing (install it: apt-get install -y $1)" >&2
		exit 1
	fi
}
need fio
case " ${groups[*]} " in *" replication "*) need rsync ;; esac
case " ${groups[*]} " in *" console "*) need tmux ;; esac

tmp=$(mktemp -d)
base=${BENCH_DIR:-/var/tmp/mtconsole-bench}
# Every run works in a directory of its own inside base, so that runs side
# by side never remove each other's files; base goes when it is empty.
mkdir -p "$base"
work=$(mktemp -d "$base/run.XXXXXX")
cleanup() { rm -rf "$tmp" "$work"; rmdir "$base" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building scripts/benchengine"
go build -o "$tmp/benchengine" ./scripts/benchengine
if [ -n "${BENCH_PROFILE:-}" ]; then
	mkdir -p "$BENCH_PROFILE"
	cp "$tmp/benchengine" "$BENCH_PROFILE/benchengine"
fi

# engine FIGURE REP OUT ARGS...: one run of the engine program, its output
# in OUT.
engine() {
	local fig=$1 rep=$2 out=$3
	shift 3
	local prof=()
	if [ -n "${BENCH_PROFILE:-}" ]; then
		prof=(-cpuprofile "$BENCH_PROFILE/$fig-$rep.pprof")
	fi
	rm -rf "$work/engine"
	settle
	"$tmp/benchengine" -dir "$work/engine" "${prof[@]}" "$@" >"$out"
	rm -rf "$work/engine"
}

# val KEY FILE HEAD: the value of KEY on the first line of FILE starting
# with HEAD ("figure=ack_path" and the like).
val() {
	awk -v k="$1" -v h="$3" 'index($0, h) == 1 {
		for (i = 1; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } }
	}' "$2"
}

# fio_mibps ARGS...: run one fio job writing to a fresh file, print its
# write MiB/s (terse v3: field 47 is KiB written, field 50 the runtime in
# ms, which includes the fsyncs and --end_fsync).
# settle lets the file system finish the writeback and frees of the run
# before, so neither side pays for the other's.
settle() { sync; sleep 1; }

fio_mibps() {
	settle
	fio --name=bench --ioengine=psync --output-format=terse --terse-version=3 "$@" |
		awk -F';' '$1 == "3" && $50 > 0 { printf "%.3f\n", ($47 / 1024) / ($50 / 1000); found = 1 }
			END { if (!found) exit 1 }'
}

# round X: the nearest integer, at least 1.
round() { awk -v x="$1" 'BEGIN { n = int(x + 0.5); print (n < 1 ? 1 : n) }'; }

# median X...: the median of the numbers (the mean of the middle two when
# even).
median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# median_index X...: the (1-based) position of the median among the numbers.
median_index() {
	printf '%s\n' "$@" | awk '{ print $1, NR }' | sort -g | awk '{ a[NR] = $2 } END { print a[int((NR + 1) / 2)] }'
}

# report NAME GOAL ENGINE_MIBPS FIO_MIBPS RUN_OUTPUTS DETAIL...: print a
# figure and its detail lines. The lists are space-separated, one value
# per repetition; the engine's io lines are taken from the median run.
report() {
	local name=$1 goal=$2 eng=($3) base=($4) outs=($5)
	shift 5
	local ratios=() i
	for i in "${!eng[@]}"; do
		ratios+=("$(awk -v e="${eng[$i]}" -v b="${base[$i]}" 'BEGIN { printf "%.4f", (b > 0 ? e / b : 0) }')")
	done
	local m mi
	m=$(median "${ratios[@]}")
	mi=$(median_index "${ratios[@]}")
	printf '%s ratio=%.2f goal=%s\n' "$name" "$m" "$goal"
	printf '  engine MiB/s: %s(median %.1f)\n' "$(printf '%.1f ' "${eng[@]}")" "$(median "${eng[@]}")"
	printf '  fio    MiB/s: %s(median %.1f)\n' "$(printf '%.1f ' "${base[@]}")" "$(median "${base[@]}")"
	printf '  ratios: %s\n' "$(printf '%.2f ' "${ratios[@]}" | sed 's/ $//')"
	local d
	for d in "$@"; do
		printf '  %s\n' "$d"
	done
	local f=${outs[$((mi - 1))]}
	awk -v n="$name" -v cores="$(nproc)" '
	function kv(a,   i, k) { delete a; for (i = 2; i <= NF; i++) { k = index($i, "="); a[substr($i, 1, k - 1)] = substr($i, k + 1) } }
	function part(count, what, mib, s) { return count > 0 ? sprintf(", %d %s %s%.2f s", count, what, (mib == "" ? "" : sprintf("%.1f MiB ", mib)), s) : "" }
	/^figure=/ { on = ($1 == "figure=" n); if (on) { kv(a); secs = a["seconds"] } next }
	!on { next }
	/^cpu / { kv(a); printf "  engine cpu (median run): %.2f s user + %.2f s sys in %.2f s: %.2f of %d cores busy\n", a["cpu_user_s"], a["cpu_sys_s"], secs, (a["cpu_user_s"] + a["cpu_sys_s"]) / secs, cores }
	/^io / {
		kv(a)
		s = part(a["writes"], "writes", a["write_mib"], a["write_s"]) part(a["reads"], "reads", a["read_mib"], a["read_s"]) \
			part(a["fdatasyncs"], "fdatasyncs", "", a["fdatasync_s"]) part(a["dirsyncs"], "dir fsyncs", "", a["dirsync_s"])
		printf "  engine io (median run) %s: %s; busy from %.2f to %.2f s\n", a["class"], substr(s, 3), a["active_from_s"], a["active_to_s"]
	}' "$f"
}

# ack_path: 1 MiB writes durably journaled and acknowledged ÷ fio
# sequential 1 MiB writes with the same fdatasync cadence.
bench_ack() {
	local eng=() base=() outs=() cad=() rep n out bytes bpg
	for rep in $(seq "$reps"); do
		out="$tmp/ack-$rep.out"
		log "ack_path $rep/$reps: engine"
		engine ack "$rep" "$out" -mode ack
		bytes=$(val bytes "$out" figure=ack_path)
		bpg=$(val bytes_per_group "$out" figure=ack_path)
		n=$(round "$(awk -v b="$bpg" 'BEGIN { print b / 1048576 }')")
		eng+=("$(val mibps "$out" figure=ack_path)")
		outs+=("$out")
		cad+=("$(awk -v b="$bpg" 'BEGIN { printf "%.1f", b / 1048576 }')/$n")
		log "ack_path $rep/$reps: fio --fdatasync=$n"
		base+=("$(fio_mibps --filename="$work/fio-ack" --rw=write --bs=1M --size="$bytes" --fdatasync="$n" --end_fsync=1)")
		rm -f "$work/fio-ack"
	done
	report ack_path ">=0.9" "${eng[*]}" "${base[*]}" "${outs[*]}" \
		"size: $(awk -v b="$bytes" 'BEGIN { print b / 1048576 }') MiB of 1 MiB writes, one writer" \
		"cadence (MiB per group commit / fio --fdatasync) per run: ${cad[*]}"
}

# apply_retention: steady-state apply of 64 KiB random writes with
# retention into a pre-filled 1 GiB target ÷ fio 64 KiB random writes to a
# pre-filled 1 GiB file, QD1, fsync as often as the engine synced the target.
bench_apply() {
	local eng=() base=() outs=() per=() rep out bytes size n
	for rep in $(seq "$reps"); do
		out="$tmp/apply-$rep.out"
		log "apply_retention $rep/$reps: engine"
		engine apply "$rep" "$out" -mode apply
		bytes=$(val bytes "$out" figure=apply_retention)
		size=$(val target_size "$out" figure=apply_retention)
		n=$(awk -v p="$(val writes_per_target_fdatasync "$out" figure=apply_retention)" 'BEGIN { n = int(p + 0.5); print (n < 1) ? 1 : n }')
		per+=("$(val writes_per_target_fdatasync "$out" figure=apply_retention)")
		eng+=("$(val mibps "$out" figure=apply_retention)")
		outs+=("$out")
		log "apply_retention $rep/$reps: fio randwrite --fsync=$n"
		fio_mibps --filename="$work/fio-apply" --rw=write --bs=1M --size="$size" --end_fsync=1 >/dev/null
		base+=("$(fio_mibps --filename="$work/fio-apply" --rw=randwrite --bs=64k --iodepth=1 --size="$size" \
			--io_size="$bytes" --fsync="$n" --end_fsync=1)")
		rm -f "$work/fio-apply"
	done
	report apply_retention ">=0.3" "${eng[*]}" "${base[*]}" "${outs[*]}" \
		"size: $(awk -v b="$bytes" 'BEGIN { print b / 1048576 }') MiB of 64 KiB random writes into a pre-filled $(awk -v b="$size" 'BEGIN { print b / 1048576 }') MiB target, after a $(awk -v b="$(val warmup "$out" figure=apply_retention)" 'BEGIN { print b / 1048576 }') MiB warm-up" \
		"cadence: writes per target fdatasync achieved per run: ${per[*]} (fio --fsync=$n, the last run's)"
}

# rollback, export: MiB/s restored (rollback) and copied + restored
# (export) ÷ fio sequential write of the same bytes, fdatasync at the end.
bench_recover() {
	local reng=() rbase=() eeng=() ebase=() outs=() rep out rb eb
	for rep in $(seq "$reps"); do
		out="$tmp/recover-$rep.out"
		log "rollback, export $rep/$reps: engine"
		engine recover "$rep" "$out" -mode recover
		rb=$(val bytes "$out" figure=rollback)
		eb=$(val bytes "$out" figure=export)
		reng+=("$(val mibps "$out" figure=rollback)")
		eeng+=("$(val mibps "$out" figure=export)")
		outs+=("$out")
		log "rollback, export $rep/$reps: fio"
		rbase+=("$(fio_mibps --filename="$work/fio-rollback" --rw=write --bs=1M --size="$rb" --end_fsync=1)")
		rm -f "$work/fio-rollback"
		ebase+=("$(fio_mibps --filename="$work/fio-export" --rw=write --bs=1M --size="$eb" --end_fsync=1)")
		rm -f "$work/fio-export"
	done
	local f=${outs[0]}
	report rollback ">=0.8" "${reng[*]}" "${rbase[*]}" "${outs[*]}" \
		"size: $(awk -v b="$rb" 'BEGIN { printf "%.1f", b / 1048576 }') MiB of before-images restored in place ($(val undo_records "$f" figure=rollback) undo records, $(awk -v b="$(val undo_bytes "$f" figure=rollback)" 'BEGIN { printf "%.1f", b / 1048576 }') MiB of undo data) after $(awk -v b="$(val written "$f" figure=rollback)" 'BEGIN { print b / 1048576 }') MiB of $(awk -v b="$(val io_size "$f" figure=rollback)" 'BEGIN { print b / 1024 }') KiB random writes into $(awk -v b="$(val target_size "$f" figure=rollback)" 'BEGIN { print b / 1048576 }') MiB"
	report export ">=0.8" "${eeng[*]}" "${ebase[*]}" "${outs[*]}" \
		"size: $(awk -v b="$(val copied "$f" figure=export)" 'BEGIN { printf "%.1f", b / 1048576 }') MiB copied + $(awk -v b="$(val restored "$f" figure=export)" 'BEGIN { printf "%.1f", b / 1048576 }') MiB restored to a new file"
}

# view_read: sequential read MiB/s of a point-in-time view (served over
# NBD, 8 READs of 1 MiB in flight) of a point 1 GiB of 64 KiB random
# writes back on a 1 GiB disk ÷ a sequential 1 MiB read of the exported
# image of the same point, page caches of every file read dropped first.
# view_open: seconds to open a view on that disk with 10 000 undo
# records behind its point (the applier held, the plan made).
bench_view() {
	local ratios=() opens=() outs=() veng=() vexp=() rep out
	for rep in $(seq "$reps"); do
		out="$tmp/view-$rep.out"
		log "view $rep/$reps: engine"
		engine view "$rep" "$out" -mode view -recover-bytes $((1 << 30))
		veng+=("$(val view_mibps "$out" figure=view_read)")
		vexp+=("$(val export_mibps "$out" figure=view_read)")
		ratios+=("$(awk -v e="${veng[-1]}" -v b="${vexp[-1]}" 'BEGIN { printf "%.4f", (b > 0 ? e / b : 0) }')")
		opens+=("$(val seconds "$out" figure=view_open)")
		outs+=("$out")
	done
	local f=${outs[0]}
	report_ratio view_read ">=0.7" "${ratios[*]}" "${outs[*]}" \
		"view over NBD MiB/s: $(printf '%.1f ' "${veng[@]}")(median $(median "${veng[@]}"))" \
		"export image MiB/s:  $(printf '%.1f ' "${vexp[@]}")(median $(median "${vexp[@]}"))" \
		"size: $(awk -v b="$(val bytes "$f" figure=view_read)" 'BEGIN { print b / 1048576 }') MiB disk, $(val undo_records "$f" figure=view_read) undo records ($(awk -v b="$(val undo_bytes "$f" figure=view_read)" 'BEGIN { printf "%.1f", b / 1048576 }') MiB) behind the point"
	printf 'view_open seconds=%.3f goal=<1\n' "$(median "${opens[@]}")"
	printf '  seconds: %s\n' "$(printf '%.3f ' "${opens[@]}" | sed 's/ $//')"
	printf '  undo records behind the point: %s, disk %s MiB\n' "$(val undo_records "$f" figure=view_open)" \
		"$(awk -v b="$(val target_size "$f" figure=view_open)" 'BEGIN { print b / 1048576 }')"
}

# fig NAME: run bench_NAME unless BENCH_ONLY leaves it out.
fig() {
	if [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; then
		"bench_$1"
	fi
}

# sparse_reclaim: retention bytes after a simulated day (injected clock) of
# 64 KiB random writes under hourly tiers ("all 1h; 1 per 1h for 23h"),
# compacted every simulated hour, over the bytes of before-images written
# (benchengine/sparse.go). The ratio follows from the workload: how many
# times an hour the writes cover their hot set (8 here), scaled down to a
# 2 MiB hot set so that it runs in well under a minute.
bench_sparse_reclaim() {
	local out="$tmp/sparse.out" h="figure=sparse_reclaim"
	log "sparse_reclaim: a simulated day of sparse retention"
	engine sparse_reclaim 1 "$out" -mode sparse
	printf 'sparse_reclaim ratio=%.2f goal=<=0.2\n' "$(val ratio "$out" "$h")"
	printf '  %s MiB of before-images written, %s MiB kept: %s writes of %s KiB into a %s MiB hot set (%s times over an hour), a tag every 5 min (%s, %s kept)\n' \
		"$(mibs "$(val before "$out" "$h")")" "$(mibs "$(val after "$out" "$h")")" "$(val writes "$out" "$h")" "$(awk -v b="$(val io_size "$out" "$h")" 'BEGIN { print b / 1024 }')" \
		"$(mibs "$(val disk "$out" "$h")")" "$(val overwrites_per_hour "$out" "$h")" "$(val tags "$out" "$h")" "$(val tags_kept "$out" "$h")"
	printf '  %s compactions took %s s of the run'"'"'s %s s\n' "$(val compactions "$out" "$h")" "$(val compact_s "$out" "$h")" "$(val seconds "$out" "$h")"
}

group_engine() {
	fig ack
	fig apply
	fig recover
	fig view
	fig sparse_reclaim
}

# report_ratio NAME GOAL RATIOS RUN_OUTPUTS DETAIL...: print a figure
# whose per-repetition ratios are given (space-separated), its detail
# lines, and the engine's CPU time in the run with the median ratio.
report_ratio() {
	local name=$1 goal=$2 ratios=($3) outs=($4)
	shift 4
	local m mi d
	m=$(median "${ratios[@]}")
	mi=$(median_index "${ratios[@]}")
	printf '%s ratio=%.2f goal=%s\n' "$name" "$m" "$goal"
	printf '  ratios: %s\n' "$(printf '%.2f ' "${ratios[@]}" | sed 's/ $//')"
	for d in "$@"; do
		printf '  %s\n' "$d"
	done
	awk -v n="$name" -v cores="$(nproc)" '
	function kv(a,   i, k) { delete a; for (i = 2; i <= NF; i++) { k = index($i, "="); a[substr($i, 1, k - 1)] = substr($i, k + 1) } }
	/^figure=/ { on = ($1 == "figure=" n); if (on) { kv(a); secs = a["seconds"] } next }
	on && /^cpu / { kv(a); printf "  engine cpu, ps + agent in one process (median run): %.2f s user + %.2f s sys in %.2f s: %.2f of %d cores busy\n", a["cpu_user_s"], a["cpu_sys_s"], secs, (a["cpu_user_s"] + a["cpu_sys_s"]) / secs, cores }
	' "${outs[$((mi - 1))]}"
}

# div A B: A / B to 4 places (0 when B is 0).
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }'; }
mibs() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

resync_size=${BENCH_RESYNC_SIZE:-1073741824}
stream_bytes=${BENCH_STREAM_BYTES:-268435456}
rss_seconds=${BENCH_RSS_SECONDS:-60}
churn_seconds=${BENCH_CHURN_SECONDS:-60}

# resync_prep: DIR/source.img, random, and DIR/target.img, the source
# before 1 % of its 4 KiB blocks (scattered, distinct) were changed.
resync_prep() {
	if [ ! -e "$work/prep/source.img" ]; then
		log "resync: preparing a random $(mibs "$resync_size") MiB source and its 1 %-different target"
		"$tmp/benchengine" -mode resync-prep -keep -dir "$work/prep" -disk-size "$resync_size" >"$tmp/prep.out"
	fi
}

# now: seconds since the epoch, to the nanosecond.
now() { date +%s.%N; }

# resync_hash: time of a hash resync ps + agent of a target differing from
# its source in 1 % of scattered 4 KiB blocks ÷ time of rsync --inplace
# --no-whole-file of the same source onto a fresh copy of the same target
# (then fsync of the result, as the engine's time includes the target's
# durability).
bench_resync_hash() {
	resync_prep
	local eng=() base=() ratios=() outs=() rsent=() rlit=() rep out t0 t1 s
	for rep in $(seq "$reps"); do
		out="$tmp/resync-hash-$rep.out"
		cp --reflink=never "$work/prep/target.img" "$work/target-engine.img"
		log "resync_hash $rep/$reps: engine"
		local verify=()
		if ((rep == 1)); then verify=(-verify); fi
		engine resync-hash "$rep" "$out" -mode resync-hash -source "$work/prep/source.img" -target "$work/target-engine.img" "${verify[@]}"
		rm -f "$work/target-engine.img"
		eng+=("$(val seconds "$out" figure=resync_hash)")
		outs+=("$out")
		cp --reflink=never "$work/prep/target.img" "$work/target-rsync.img"
		log "resync_hash $rep/$reps: rsync --inplace --no-whole-file"
		settle
		t0=$(now)
		rsync --inplace --no-whole-file --stats "$work/prep/source.img" "$work/target-rsync.img" >"$tmp/rsync-$rep.out"
		sync "$work/target-rsync.img"
		t1=$(now)
		if ((rep == 1)) && ! cmp -s "$work/prep/source.img" "$work/target-rsync.img"; then
			echo "bench: rsync did not reproduce the source" >&2
			exit 1
		fi
		rm -f "$work/target-rsync.img"
		s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
		base+=("$s")
		ratios+=("$(div "${eng[-1]}" "$s")")
		rsent+=("$(awk -F: '/^Total bytes sent/ { gsub(/[ ,]/, "", $2); print $2 }' "$tmp/rsync-$rep.out")")
		rlit+=("$(awk -F: '/^Literal data/ { gsub(/[ ,a-z]/, "", $2); print $2 }' "$tmp/rsync-$rep.out")")
	done
	local f=${outs[0]}
	report_ratio resync_hash "<=0.5" "${ratios[*]}" "${outs[*]}" \
		"engine s: $(printf '%.2f ' "${eng[@]}")(median $(median "${eng[@]}"))" \
		"rsync  s: $(printf '%.2f ' "${base[@]}")(median $(median "${base[@]}"); each includes an fsync of the result)" \
		"size: $(mibs "$resync_size") MiB, $(val blocks_changed "$tmp/prep.out" figure=resync_prep) of $((resync_size / 4096)) 4 KiB blocks changed; engine chunk $(($(val chunk "$f" figure=resync_hash) / 1024)) KiB, $(val hash_requests "$f" figure=resync_hash) hash requests" \
		"bytes sent: engine $(val resync_bytes "$f" figure=resync_hash) resync data ($(mibs "$(val resync_bytes "$f" figure=resync_hash)") MiB) + $(val hash_bytes "$f" figure=resync_hash) of chunk hashes the other way; rsync total bytes sent ${rsent[0]} ($(mibs "${rsent[0]}") MiB), literal data ${rlit[0]} ($(mibs "${rlit[0]}") MiB)"
}

# resync_full: MiB/s of a full resync ps + agent (journal and retention
# on) of a random source into an empty (sparse) target ÷ fio sequential
# 1 MiB writes of the same size, fsync at the end.
bench_resync_full() {
	resync_prep
	local eng=() base=() ratios=() outs=() rep out
	for rep in $(seq "$reps"); do
		out="$tmp/resync-full-$rep.out"
		log "resync_full $rep/$reps: engine"
		local verify=()
		if ((rep == 1)); then verify=(-verify); fi
		engine resync-full "$rep" "$out" -mode resync-full -source "$work/prep/source.img" "${verify[@]}"
		eng+=("$(val mibps "$out" figure=resync_full)")
		outs+=("$out")
		log "resync_full $rep/$reps: fio"
		base+=("$(fio_mibps --filename="$work/fio-full" --rw=write --bs=1M --size="$resync_size" --end_fsync=1)")
		rm -f "$work/fio-full"
		ratios+=("$(div "${eng[-1]}" "${base[-1]}")")
	done
	local f=${outs[0]}
	report_ratio resync_full ">=0.8" "${ratios[*]}" "${outs[*]}" \
		"engine MiB/s: $(printf '%.1f ' "${eng[@]}")(median $(median "${eng[@]}"))" \
		"fio    MiB/s: $(printf '%.1f ' "${base[@]}")(median $(median "${base[@]}"))" \
		"size: $(mibs "$resync_size") MiB random into a sparse target, 1 MiB chunks; $(mibs "$(val retention_used "$f" figure=resync_full)") MiB of retention used after it"
}

# stream: MiB/s end to end ps → agent (retention on) of the workload
# generator's 64 KiB random writes into a 1 GiB pre-filled target, first
# write to last applied ÷ apply_retention (the engine alone, -mode apply)
# of the same bytes, run beside it.
bench_stream() {
	local eng=() base=() ratios=() outs=() rep out aout
	for rep in $(seq "$reps"); do
		out="$tmp/stream-$rep.out"
		log "stream $rep/$reps: ps + agent"
		local verify=()
		if ((rep == 1)); then verify=(-verify); fi
		engine stream "$rep" "$out" -mode stream -stream-bytes "$stream_bytes" "${verify[@]}"
		eng+=("$(val mibps "$out" figure=stream)")
		outs+=("$out")
		aout="$tmp/stream-apply-$rep.out"
		log "stream $rep/$reps: apply_retention (-mode apply)"
		engine stream-apply "$rep" "$aout" -mode apply -apply-bytes "$stream_bytes"
		base+=("$(val mibps "$aout" figure=apply_retention)")
		ratios+=("$(div "${eng[-1]}" "${base[-1]}")")
	done
	local f=${outs[0]}
	report_ratio stream "info" "${ratios[*]}" "${outs[*]}" \
		"stream          MiB/s: $(printf '%.1f ' "${eng[@]}")(median $(median "${eng[@]}"))" \
		"apply_retention MiB/s: $(printf '%.1f ' "${base[@]}")(median $(median "${base[@]}"))" \
		"size: $(mibs "$stream_bytes") MiB of 64 KiB random writes from ps.Workload (no rate limit; the ps buffers what is unacknowledged) into a pre-filled $(mibs "$(val target_size "$f" figure=stream)") MiB target; generator done after $(val generator_s "$f" figure=stream) s in the first run"
}

# agent_rss: peak and final RSS of an agent process streaming 64 pairs of
# 16 MiB disks, a workload of 16 KiB random writes at 10/s on each.
bench_rss() {
	local out="$tmp/rss.out"
	log "agent_rss: 64 pairs streaming for ${rss_seconds} s"
	engine rss 1 "$out" -mode rss -duration "${rss_seconds}s"
	local h="figure=agent_rss"
	printf 'agent_rss value=%.0fMiB goal=<256MiB\n' "$(val peak_mib "$out" "$h")"
	printf '  peak (VmHWM) %.1f MiB, final (VmRSS) %.1f MiB; after the %.0f s warm-up the samples range %.1f to %.1f MiB\n' \
		"$(val peak_mib "$out" "$h")" "$(val final_mib "$out" "$h")" "$(val warmup_s "$out" "$h")" \
		"$(val min_after_warmup_mib "$out" "$h")" "$(val max_after_warmup_mib "$out" "$h")"
	printf '  VmRSS MiB every %.0f s: %s; final RssAnon %.1f MiB, RssFile %.1f MiB\n' "$(val sample_s "$out" "$h")" \
		"$(val samples_mib "$out" "$h" | tr , ' ')" "$(val final_anon_mib "$out" "$h")" "$(val final_file_mib "$out" "$h")"
	printf '  %s pairs of %s MiB, %s writes/s of %s KiB on each for %.0f s (%s sequences numbered, %s acknowledged at the end); setup %.1f s\n' \
		"$(val pairs "$out" "$h")" "$(mibs "$(val pair_size "$out" "$h")")" "$(val rate "$out" "$h")" \
		"$(($(val write_size "$out" "$h") / 1024))" "$(val seconds "$out" "$h")" "$(val seqs "$out" "$h")" \
		"$(val acked "$out" "$h")" "$(val setup_s "$out" "$h")"
}

# restart_64: time from a restarted agent's start to all 64 pairs open
# and accepting writes, after a clean stop with 8 MiB journaled (and not
# applied) on each.
bench_restart() {
	local out="$tmp/restart.out" h="figure=restart_64"
	log "restart_64: 64 pairs, clean stop, restart"
	engine restart 1 "$out" -mode restart -pairs 64
	printf 'restart_64 seconds=%.2f goal=<5\n' "$(val seconds "$out" "$h")"
	printf '  %s pairs of %s MiB targets, %s MiB journaled on each before the clean stop\n' \
		"$(val pairs "$out" "$h")" "$(mibs "$(val pair_size "$out" "$h")")" "$(mibs "$(val journal_bytes_per_pair "$out" "$h")")"
}

# churn_64: the highest aggregate MiB/s of 64 KiB random writes that 64
# pairs (ps + agent in one process) sustain with every pair's RPO under
# 30 s (benchengine/churn.go: trials of BENCH_CHURN_SECONDS at doubling
# rates, then two bisection steps), beside apply_retention (one pair, the
# engine alone) run after it.
bench_churn() {
	local out="$tmp/churn.out" aout="$tmp/churn-apply.out" h="figure=churn_64"
	log "churn_64: 64 pairs, trials of ${churn_seconds} s"
	engine churn 1 "$out" -mode churn -pairs 64 -churn-trial "${churn_seconds}s"
	log "churn_64: apply_retention beside it"
	engine churn-apply 1 "$aout" -mode apply
	local c a
	c=$(val mibps "$out" "$h")
	a=$(val mibps "$aout" figure=apply_retention)
	printf 'churn_64 value=%.1fMiB/s goal=info\n' "$c"
	printf '  apply_retention beside it (one pair, the engine alone): %.1f MiB/s; churn_64 / apply_retention = %.2f\n' "$a" "$(div "$c" "$a")"
	printf '  %s pairs of %s MiB, 64 KiB random writes, trials of %.0f s, RPO limit %.0f s; first rate that failed: %.1f MiB/s\n' \
		"$(val pairs "$out" "$h")" "$(mibs "$(val pair_size "$out" "$h")")" "$(val trial_s "$out" "$h")" "$(val rpo_limit_s "$out" "$h")" "$(val first_failed_mibps "$out" "$h")"
	awk '$1 == "trial" {
		for (i = 2; i <= NF; i++) { k = index($i, "="); a[substr($i, 1, k - 1)] = substr($i, k + 1) }
		printf "  trial: %.1f MiB/s offered, %.1f generated, worst RPO %.1f s, climb %.1f s: %s\n", a["offered_mibps"], a["generated_mibps"], a["max_rpo_s"], a["climb_s"], (a["held"] == "true" ? "held" : "failed")
	}' "$out"
}

group_replication() {
	fig resync_hash
	fig resync_full
	rm -rf "$work/prep"
	fig stream
	fig churn
	fig rss
	fig restart
}

# tui_frame: ns per View() of the dashboard with 256 pairs (Go benchmark).
bench_tui_frame() {
	log "tui_frame: go test -bench BenchmarkDashboardView256"
	local out="$tmp/tui-frame.out" ns
	go test -run '^$' -bench 'BenchmarkDashboardView256$' -benchtime 2s -count 3 ./tui/ >"$out"
	ns=$(awk '/^BenchmarkDashboardView256/ { print $3 }' "$out" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
	printf 'tui_frame value=%.3fms goal=<1ms
' "$(awk -v n="$ns" 'BEGIN { print n / 1e6 }')"
	printf '  View() of the dashboard with 256 pairs at 120x40, median of 3 runs: %s ns/op
' "$ns"
}

# tui_idle: the console open on a demo agent's dashboard (1 s refresh, a
# slow workload) in tmux at 80x24: its CPU (utime + stime from /proc) and
# the bytes it writes to the terminal (tmux pipe-pane), over
# BENCH_IDLE_SECONDS; and demo_start, the time from starting the demo to
# its first frame with live data (a pair state on screen).
bench_tui_idle() {
	local secs=${BENCH_IDLE_SECONDS:-60} bin="$tmp/mtconsole" d="$work/console" sess="mtbench$$"
	go build -o "$bin" ./cmd/mtconsole
	mkdir -p "$d"
	log "demo_start: mtconsole demo in tmux at 80x24 until a pair state shows"
	local t0 t1 i
	tmux kill-session -t "$sess" 2>/dev/null || true
	t0=$(date +%s.%N)
	tmux new-session -d -s "$sess" -x 80 -y 24 "$bin demo --dir $d/start --disks 3 --size 64"
	# the dashboard's state column: "Resync I", "Resync II", "Diff sync"
	# at 80 columns (data from the agent; "Queued" is not yet replication)
	local deadline=$(($(date +%s) + 30))
	until tmux capture-pane -p -t "$sess" | grep -qE 'Resync I|Diff sync|Resync Step|Differential Sync'; do
		if (($(date +%s) > deadline)); then log "demo_start: no pair state on screen after 30 s"; break; fi
		sleep 0.01
	done
	t1=$(date +%s.%N)
	tmux send-keys -t "$sess" q
	for i in $(seq 300); do tmux has-session -t "$sess" 2>/dev/null || break; sleep 0.1; done
	tmux kill-session -t "$sess" 2>/dev/null || true
	printf 'demo_start value=%.2fs goal=<2s
' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
	printf '  from starting mtconsole demo (3 disks of 64 MiB made first) to a pair state in tmux capture-pane, polled every 10 ms
'

	log "tui_idle: the console on a demo agent for ${secs} s"
	"$bin" demo --no-console --dir "$d/agent" --disks 3 --size 16 --rate 2 --for 1h >"$d/demo.out" 2>&1 &
	local demo=$!
	for i in $(seq 200); do [ -S "$d/agent/agent.sock" ] && break; sleep 0.05; done
	tmux new-session -d -s "$sess" -x 80 -y 24 "$bin console --socket $d/agent/agent.sock"
	sleep 3 # the first frames and the dashboard's history
	local pid
	pid=$(pgrep -f "console --socket $d/agent/agent.sock" | head -1)
	tmux pipe-pane -t "$sess" "cat >$d/pane.bytes"
	local c0 c1 hz
	hz=$(getconf CLK_TCK)
	c0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	sleep "$secs"
	c1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	tmux pipe-pane -t "$sess"
	local bytes
	bytes=$(stat -c %s "$d/pane.bytes")
	tmux send-keys -t "$sess" q
	sleep 0.5
	tmux kill-session -t "$sess" 2>/dev/null || true
	kill -INT "$demo" 2>/dev/null || true
	wait "$demo" 2>/dev/null || true
	printf 'tui_idle_cpu value=%.2f%% goal=<0.5%%
' "$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v s="$secs" 'BEGIN { print (b - a) / hz / s * 100 }')"
	printf 'tui_idle_bytes value=%.0fB/s goal=<2048B/s
' "$(awk -v b="$bytes" -v s="$secs" 'BEGIN { print b / s }')"
	printf '  the console at 80x24 in tmux on a demo agent (3 pairs, 2 writes/s each) for %s s: %s clock ticks of CPU, %s bytes to the terminal
' \
		"$secs" "$((c1 - c0))" "$bytes"
}

group_console() {
	fig tui_frame
	fig tui_idle
}

for g in "${groups[@]}"; do
	"group_$g"
done
