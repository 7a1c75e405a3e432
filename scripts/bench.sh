#!/usr/bin/env bash
# The benchmarks of DESIGN §9: each figure is measured beside its baseline
# in the same run, on the same file system, the pair repeated interleaved
# (engine, baseline, engine, baseline, ...), and the MEDIAN ratio reported.
#
#   scripts/bench.sh [GROUP]     GROUP: engine (no argument: every group)
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
#                  be on the file system to measure. Created and removed at
#                  the end; if it already exists, a fresh directory inside it
#                  is used and removed instead.
#   BENCH_REPS     repetitions of each engine/baseline pair (default 3)
#   BENCH_PROFILE  a directory: keep a CPU profile of each engine run there
#                  (<figure>-<rep>.pprof) and the binary that made them, for
#                  `go tool pprof DIR/benchengine DIR/apply-1.pprof`
#
# Baselines are fio's (installed with apt-get when missing and root). Page
# caches are not dropped: every run uses fresh files and the fsyncs the
# figure calls for. Numbers on shared machines are noisy: compare ratios
# from one run, never absolute figures across runs.
set -euo pipefail
cd "$(dirname "$0")/.."

all_groups=(engine)
if (($#)); then groups=("$@"); else groups=("${all_groups[@]}"); fi
for g in "${groups[@]}"; do
	case " ${all_groups[*]} " in
	*" $g "*) ;;
	*) echo "usage: scripts/bench.sh [${all_groups[*]// /|}]: unknown group $g" >&2; exit 2 ;;
	esac
done
reps=${BENCH_REPS:-3}

log() { echo "bench: $*" >&2; }

if ! command -v fio >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "installing fio"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio >/dev/null
	else
		echo "bench: fio is missing (install it: apt-get install -y fio)" >&2
		exit 1
	fi
fi

tmp=$(mktemp -d)
base=${BENCH_DIR:-/var/tmp/mtconsole-bench}
if [ -e "$base" ]; then
	work=$(mktemp -d "$base/run.XXXXXX")
else
	mkdir -p "$base"
	work=$base
fi
cleanup() { rm -rf "$tmp" "$work"; }
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

group_engine() {
	bench_ack
	bench_apply
	bench_recover
}

for g in "${groups[@]}"; do
	"group_$g"
done
