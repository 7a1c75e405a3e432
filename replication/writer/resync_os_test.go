package writer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// The direct resync on real files: 64 KiB chunks (aligned: they go past
// the page cache where the file system allows), one in four zero (a
// hole punched in a target that held data there).
const (
	osChunk      = 64 << 10
	osDisk       = 8 << 20
	killDirEnv   = "MTCONSOLE_KILL_DIRECT_DIR"
	killDirSeed  = 77
	killDirCommt = 4 * osChunk
)

func osSource() []byte {
	src := make([]byte, osDisk)
	rand.New(rand.NewSource(killDirSeed)).Read(src)
	for c := 0; c < osDisk/osChunk; c += 4 {
		clear(src[c*osChunk : (c+1)*osChunk])
	}
	return src
}

// osOldTarget is what the target held before the resync: random bytes
// everywhere, so a zero range that wrote nothing would show.
func osOldTarget() []byte {
	b := make([]byte, osDisk)
	rand.New(rand.NewSource(killDirSeed + 1)).Read(b)
	return b
}

func osDirectConfig(dir string) PairConfig {
	return PairConfig{ID: "d1", Target: filepath.Join(dir, "target.img"), JournalDir: filepath.Join(dir, "journal"),
		RetentionDir: filepath.Join(dir, "retention"), JournalSegmentSize: 1 << 20, UndoSegmentSize: 1 << 20,
		Policy: journal.Policy{OnFull: journal.Purge}}
}

// feedOSDirect sends the chunks from seq from on, each sent calling
// after (if not nil).
func feedOSDirect(p *Pair, src []byte, from uint64, after func(seq uint64)) error {
	n := uint64(len(src) / osChunk)
	for seq := max(from, 1); seq <= n; seq++ {
		off := int64(seq-1) * osChunk
		data := src[off : off+osChunk]
		ok, err := p.WriteDirect(context.Background(), seq, off, resyncStart.Add(time.Duration(seq)*time.Millisecond), data, journal.IsZero(data))
		if err != nil {
			return fmt.Errorf("seq %d: %w", seq, err)
		}
		if !ok {
			return fmt.Errorf("seq %d: not taken directly", seq)
		}
		if after != nil {
			after(seq)
		}
	}
	return nil
}

// allocated is the bytes of disk the file at path holds.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestKillDirectChild is the child of TestKill9DirectResync: it copies
// the source into the target with direct resync writes, printing every
// acknowledgement, until it is killed.
func TestKillDirectChild(t *testing.T) {
	dir := os.Getenv(killDirEnv)
	if dir == "" {
		t.Skip("run by TestKill9DirectResync")
	}
	DirectCommitBytes = killDirCommt
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, a ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", a...)
		out.Flush()
		mu.Unlock()
	}
	p, _, err := OpenPair(osDirectConfig(dir), Options{OnAck: func(_ string, seq uint64) { say("ack %d", seq) }})
	if err != nil {
		say("error %v", err)
		os.Exit(1)
	}
	say("next %d", p.Next())
	// Paced, so the kill lands in the middle of the copy.
	if err := feedOSDirect(p, osSource(), p.Next(), func(uint64) { time.Sleep(2 * time.Millisecond) }); err != nil {
		say("error %v", err)
		os.Exit(1)
	}
	time.Sleep(time.Hour) // wait for the kill
}

// TestKill9DirectResync kills a process copying a full resync straight
// to a real target file with SIGKILL, twice, mid-copy: each restart
// resumes after the last acknowledged chunk (never from zero, never
// after a chunk that is not on the target), the finished target equals
// the source, and its zero ranges are holes.
func TestKill9DirectResync(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	tgt := filepath.Join(dir, "target.img")
	if err := os.WriteFile(tgt, osOldTarget(), 0o600); err != nil {
		t.Fatal(err)
	}
	src := osSource()
	n := uint64(osDisk / osChunk)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var acked uint64
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillDirectChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), killDirEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := acked + uint64(8+rng.Intn(int(n)/4))
		sc := bufio.NewScanner(stdout)
		killed := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && f[0] == "next" {
				next, _ := strconv.ParseUint(f[1], 10, 64)
				if next <= acked {
					t.Fatalf("round %d: restarted pair resumes at %d but %d was acknowledged", round, next, acked)
				}
				if round > 0 && next == 1 {
					t.Fatalf("round %d: the copy restarted from zero", round)
				}
			}
			if len(f) == 2 && f[0] == "ack" {
				a, _ := strconv.ParseUint(f[1], 10, 64)
				acked = max(acked, a)
				if acked >= killAt && !killed {
					cmd.Process.Signal(syscall.SIGKILL)
					killed = true
				}
			}
			if len(f) > 0 && f[0] == "error" {
				t.Fatalf("child: %s", sc.Text())
			}
		}
		cmd.Wait()
		if !killed {
			t.Fatalf("round %d: the child ended before the kill (acked %d)", round, acked)
		}
		t.Logf("round %d: killed with chunks 1-%d acknowledged", round, acked)
	}

	withDirectCommit(t, killDirCommt)
	p, _, err := OpenPair(osDirectConfig(dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if d := p.Durable(); d < acked {
		t.Fatalf("acknowledged %d, durable after restart %d", acked, d)
	}
	applied := p.Store().State().Applied
	got, err := os.ReadFile(tgt)
	if err != nil {
		t.Fatal(err)
	}
	// Every chunk through the last commit is on the target.
	if d := testutil.Diff(got[:applied*osChunk], src[:applied*osChunk]); d != "" {
		t.Fatalf("chunks 1-%d committed but not on the target: %s", applied, d)
	}
	if p.Next() != applied+1 {
		t.Fatalf("resumes at %d, want after the last commit %d", p.Next(), applied+1)
	}
	if err := feedOSDirect(p, src, p.Next(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.EndDirect(); err != nil {
		t.Fatal(err)
	}
	if p.Store().State().Applied != n {
		t.Fatalf("applied %d after the copy, want %d", p.Store().State().Applied, n)
	}
	got, err = os.ReadFile(tgt)
	if err != nil {
		t.Fatal(err)
	}
	if d := testutil.Diff(got, src); d != "" {
		t.Fatalf("target differs from the source: %s", d)
	}
	checkHoles(t, tgt, src)
}

// checkHoles checks, where the file system punches holes, that the
// target's zero chunks hold no blocks.
func checkHoles(t *testing.T, path string, src []byte) {
	t.Helper()
	var data int64
	for off := 0; off < len(src); off += osChunk {
		if !journal.IsZero(src[off : off+osChunk]) {
			data += osChunk
		}
	}
	if !punches(t) {
		t.Log("this file system does not punch holes: zeros written")
		return
	}
	// A little slack for the file system's own metadata blocks.
	if a := allocated(t, path); a > data+osChunk {
		t.Fatalf("target holds %d bytes of blocks, want at most %d: its zero ranges were written, not punched", a, data+osChunk)
	}
}

// punches says whether the temp file system punches holes.
func punches(t *testing.T) bool {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "punch")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(make([]byte, 1<<20))
	return syscall.Fallocate(int(f.Fd()), 0x01|0x02, 0, 1<<20) == nil // KEEP_SIZE|PUNCH_HOLE
}

// TestDirectZeroRangePunchesHole: a zero range of a direct resync over a
// real file that held data there reads back as zeros and frees its
// blocks; the data around it is untouched; the file keeps its size.
func TestDirectZeroRangePunchesHole(t *testing.T) {
	dir := t.TempDir()
	tgt := filepath.Join(dir, "target.img")
	old := osOldTarget()
	if err := os.WriteFile(tgt, old, 0o600); err != nil {
		t.Fatal(err)
	}
	p, _, err := OpenPair(osDirectConfig(dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	before := allocated(t, tgt)
	data := bytes.Repeat([]byte{0xa5}, osChunk)
	// Chunk 1 data, chunks 2-5 zero (one range of 256 KiB), chunk 6 data.
	if ok, err := p.WriteDirect(context.Background(), 1, 0, resyncStart, data, false); !ok || err != nil {
		t.Fatalf("data chunk: taken %v, err %v", ok, err)
	}
	if ok, err := p.WriteDirect(context.Background(), 2, osChunk, resyncStart, make([]byte, 4*osChunk), true); !ok || err != nil {
		t.Fatalf("zero range: taken %v, err %v", ok, err)
	}
	if ok, err := p.WriteDirect(context.Background(), 3, 5*osChunk, resyncStart, data, false); !ok || err != nil {
		t.Fatalf("data chunk after: taken %v, err %v", ok, err)
	}
	if err := p.EndDirect(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(tgt)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), old...)
	copy(want, data)
	clear(want[osChunk : 5*osChunk])
	copy(want[5*osChunk:], data)
	if d := testutil.Diff(got, want); d != "" {
		t.Fatalf("target after a zero range: %s", d)
	}
	if punches(t) {
		if after := allocated(t, tgt); after > before-4*osChunk+osChunk {
			t.Fatalf("blocks held: %d before, %d after a 256 KiB zero range: no hole punched", before, after)
		}
	}
}

// TestZeroFallsBackToWriting: a file that cannot zero a range without
// writing (the Mem file system) gets the zeros written, through buffers
// shorter than the range.
func TestZeroFallsBackToWriting(t *testing.T) {
	fs := vfs.NewMem()
	f, err := fs.OpenFile("/t", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	old := bytes.Repeat([]byte{7}, 10000)
	f.WriteAt(old, 0)
	if err := vfs.Zero(f, 100, 9000, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(old))
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), old...)
	clear(want[100:9100])
	if d := testutil.Diff(got, want); d != "" {
		t.Fatalf("after Zero: %s", d)
	}
}

// TestPauseWhileDirectDrains: a pause that lands after WriteDirect saw
// the pair running, while it waits for the journal to drain, makes it
// hand the write back to be journaled (false, no error), not fail the
// connection; the pair keeps no error, and the write journaled instead is
// applied once resumed.
func TestPauseWhileDirectDrains(t *testing.T) {
	m := newMemPair(t, nil)
	p, _ := m.open()
	defer p.Close()
	// A journaled write the applier cannot apply yet: the direct write
	// after it must wait for the drain.
	release := holdOpen(p)
	if err := p.Write(1, 0, resyncStart, bytes.Repeat([]byte{1}, 4096), journal.FlagResync); err != nil {
		t.Fatal(err)
	}
	draining := make(chan struct{})
	paused := make(chan struct{})
	directDrainHook = func() {
		close(draining)
		<-paused
	}
	t.Cleanup(func() { directDrainHook = nil })
	type result struct {
		ok  bool
		err error
	}
	res := make(chan result, 1)
	chunk := bytes.Repeat([]byte{2}, 4096)
	go func() {
		ok, err := p.WriteDirect(context.Background(), 2, 4096, resyncStart, chunk, false)
		res <- result{ok, err}
	}()
	<-draining
	if err := p.Pause("test"); err != nil {
		t.Fatal(err)
	}
	close(paused)
	r := <-res
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if r.ok || r.err != nil {
		t.Fatalf("WriteDirect paused while draining: taken %v, err %v; want not taken, no error (journaled instead)", r.ok, r.err)
	}
	if p.failed() {
		t.Fatalf("pair stopped on an error after a pause: %s", p.Status().Reason)
	}
	if err := p.Write(2, 4096, resyncStart, chunk, journal.FlagResync); err != nil {
		t.Fatalf("journal the write handed back: %v", err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	syncDrain(t, p)
	want := make([]byte, diskSize)
	copy(want, bytes.Repeat([]byte{1}, 4096))
	copy(want[4096:], chunk)
	if d := testutil.Diff(m.target(), want); d != "" {
		t.Fatalf("target: %s", d)
	}
}

// cached says which pages of [off, off+n) of path are in the page cache.
func cached(t *testing.T, path string, off, n int64) []bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), off, int(n), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (n+page-1)/page)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(n), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	out := make([]bool, len(vec))
	for i, v := range vec {
		out[i] = v&1 != 0
	}
	return out
}

// A direct resync write smaller than directMin (a hash resync's
// scattered 4 KiB blocks) goes through the page cache, which the
// commit's fdatasync writes out together; a chunk of directMin or more
// goes past it (O_DIRECT). Both are on the target when the commit
// acknowledges them.
func TestSmallDirectWritesThroughPageCache(t *testing.T) {
	dir := t.TempDir()
	if f, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_RDWR|os.O_CREATE|syscall.O_DIRECT, 0o600); err != nil {
		t.Skipf("%s takes no O_DIRECT: %v", dir, err)
	} else {
		f.Close()
	}
	tgt := filepath.Join(dir, "target.img")
	old := osOldTarget()
	if err := os.WriteFile(tgt, old, 0o600); err != nil {
		t.Fatal(err)
	}
	// Written back and dropped from the page cache: what is cached after
	// comes from the resync.
	f, err := os.OpenFile(tgt, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, 4 /* POSIX_FADV_DONTNEED */, 0, 0); e != 0 {
		t.Fatal(e)
	}
	f.Close()
	region := 2 * directMin
	for i, c := range cached(t, tgt, 0, region) {
		if c {
			t.Skipf("page %d of the target stays cached after POSIX_FADV_DONTNEED: nothing to tell apart", i)
		}
	}
	p, _, err := OpenPair(osDirectConfig(dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	small := bytes.Repeat([]byte{3}, 4096)
	big := bytes.Repeat([]byte{4}, int(directMin))
	if ok, err := p.WriteDirect(context.Background(), 1, 0, resyncStart, small, false); !ok || err != nil {
		t.Fatalf("small write: taken %v, %v", ok, err)
	}
	if ok, err := p.WriteDirect(context.Background(), 2, directMin, resyncStart, big, false); !ok || err != nil {
		t.Fatalf("large write: taken %v, %v", ok, err)
	}
	if err := p.EndDirect(); err != nil {
		t.Fatal(err)
	}
	if p.Durable() != 2 {
		t.Errorf("durable through %d after EndDirect, want 2", p.Durable())
	}
	c := cached(t, tgt, 0, region)
	pages := int64(len(c))
	perPage := region / pages
	if !c[0] {
		t.Error("the 4 KiB write is not in the page cache: it went past it")
	}
	for i := directMin / perPage; i < pages; i++ {
		if c[i] {
			t.Errorf("page %d of the %d-byte write is in the page cache: it did not go past it", i-directMin/perPage, directMin)
			break
		}
	}
	got, err := os.ReadFile(tgt)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), old...)
	copy(want, small)
	copy(want[directMin:], big)
	if d := testutil.Diff(got, want); d != "" {
		t.Fatalf("target: %s", d)
	}
}
