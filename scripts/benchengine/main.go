// Command benchengine runs the engine's benchmark workloads (DESIGN §9) on
// real files and prints what it measured, for scripts/bench.sh to set
// beside its fio baselines:
//
//	benchengine -mode ack     -dir DIR   the ack path: 1 MiB writes journaled and acknowledged
//	benchengine -mode apply   -dir DIR   sustained apply with retention, 64 KiB random writes
//	benchengine -mode recover -dir DIR   export and rollback of a few hundred MiB of changes
//	benchengine -mode view    -dir DIR   a point-in-time view read over NBD, and opened
//	benchengine -mode sparse  -dir DIR   a simulated day of sparse retention, compacted hourly
//
// and the replication modes of replication.go (resync-prep, resync-hash,
// resync-full, stream, rss) and of restart.go (restart).
//
// Output is one line per figure, "figure=NAME key=value ...", then lines
// "io class=... key=value ..." with the time spent in each kind of file
// (journal, retention, target), and "note ..." lines for people. Every
// size is in bytes, every rate in MiB/s (2^20 bytes per second).
//
// The program never asserts a timing: it measures and prints.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

type config struct {
	mode       string
	dir        string
	keep       bool
	cpuprofile string
	seed       uint64

	// ack
	ackBytes  int64
	writeSize int

	// apply and recover
	targetSize   int64
	ioSize       int
	warmup       int64
	applyBytes   int64
	recoverBytes int64
	batchRecords int
	batchBytes   int
	parallel     int
	readKeep     int64

	// sparse
	sparseDisk       int64
	sparseOverwrites float64
}

func main() {
	var c config
	flag.StringVar(&c.mode, "mode", "", "workload: ack, apply or recover")
	flag.StringVar(&c.dir, "dir", "", "work directory (created; its contents are removed at the end unless -keep)")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory's files")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured phase to this file")
	flag.StringVar(&traceFile, "trace", "", "write an execution trace of the measured phase to this file (go tool trace)")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the random offsets")
	flag.Int64Var(&c.ackBytes, "ack-bytes", 2<<30, "ack: bytes written through the journal")
	flag.IntVar(&c.writeSize, "write-size", 1<<20, "ack: size of one write")
	flag.Int64Var(&c.targetSize, "target-size", 1<<30, "apply, recover: size of the pre-filled target")
	flag.IntVar(&c.ioSize, "io-size", 64<<10, "apply, recover: size of one random write")
	flag.Int64Var(&c.warmup, "warmup", 64<<20, "apply: bytes written and drained before measuring")
	flag.Int64Var(&c.applyBytes, "apply-bytes", 512<<20, "apply: bytes measured")
	flag.Int64Var(&c.recoverBytes, "recover-bytes", 384<<20, "recover: bytes of random writes applied before export and rollback")
	// The engine's defaults unless given; bench.sh gives fio the fdatasync
	// cadence of the target that the run achieved.
	flag.IntVar(&c.batchRecords, "batch-records", 0, "apply, recover: writer.Options.BatchRecords (0: the engine's default)")
	flag.IntVar(&c.batchBytes, "batch-bytes", 0, "apply, recover: writer.Options.BatchBytes (0: the engine's default)")
	flag.IntVar(&c.parallel, "parallel", 0, "apply, recover: writer.Options.Parallel (0: the engine's default)")
	flag.Int64Var(&c.readKeep, "read-keep", -1, "bytes of durable journal groups kept for the appliers (journal.SetReadKeep; -1: the engine's default)")
	flag.Int64Var(&c.sparseDisk, "sparse-disk", 2<<20, "sparse: bytes of the hot set the day's writes fall in")
	flag.Float64Var(&c.sparseOverwrites, "sparse-overwrites", 8, "sparse: how many times an hour the writes cover the hot set's size")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "benchengine:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if c.dir == "" {
		return fmt.Errorf("-dir is required")
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	if !c.keep {
		defer removeContents(c.dir)
	}
	if c.readKeep >= 0 {
		journal.SetReadKeep(c.readKeep)
	}
	if ok, err := runReplication(c); ok {
		return err
	}
	switch c.mode {
	case "ack":
		return benchAck(c)
	case "apply":
		return benchApply(c)
	case "recover":
		return benchRecover(c)
	case "view":
		return benchView(c)
	case "sparse":
		return benchSparse(c)
	}
	return fmt.Errorf("-mode %q: want ack, apply, recover, view or sparse", c.mode)
}

// removeContents empties dir, leaving dir itself to its owner.
func removeContents(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		os.RemoveAll(dir + "/" + e.Name())
	}
}

// traceFile is -trace: where profile writes an execution trace.
var traceFile string

// profile starts the CPU profile, if one was asked for, and the execution
// trace of -trace; the returned function stops them.
func profile(path string) (func(), error) {
	stopTrace := func() {}
	if traceFile != "" {
		f, err := os.Create(traceFile)
		if err != nil {
			return nil, err
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("-trace %s: %w", traceFile, err)
		}
		stopTrace = func() {
			trace.Stop()
			f.Close()
		}
	}
	if path == "" {
		return stopTrace, nil
	}
	f, err := os.Create(path)
	if err != nil {
		stopTrace()
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		stopTrace()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		stopTrace()
	}, nil
}

// kv prints one machine-readable line: a head then key=value pairs.
func kv(head string, pairs ...any) {
	var b strings.Builder
	b.WriteString(head)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(&b, " %v=", pairs[i])
		switch v := pairs[i+1].(type) {
		case float64:
			fmt.Fprintf(&b, "%.3f", v)
		default:
			fmt.Fprintf(&b, "%v", v)
		}
	}
	fmt.Println(b.String())
}

// cpuTimes is the process's CPU time so far, user and system.
type cpuTimes struct{ user, sys time.Duration }

func cpuNow() cpuTimes {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTimes{}
	}
	return cpuTimes{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// cpuSince returns the key=value pairs of the CPU time used since c.
func cpuSince(c cpuTimes) []any {
	n := cpuNow()
	return []any{"cpu_user_s", (n.user - c.user).Seconds(), "cpu_sys_s", (n.sys - c.sys).Seconds()}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
