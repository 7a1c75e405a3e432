package agent_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// gateFS holds target writes at or past an offset until released.
type gateFS struct {
	vfs.FS
	at      int64
	reached chan struct{} // closed when a write reaches at
	release chan struct{}
	once    sync.Once
	rel     sync.Once
}

// open lets the held writes go on; once, so a test can also call it from
// a Cleanup that runs before its rig stops the agent: a held write is
// inside the writer's Hold, and an agent closed while it waits would
// wait for it for ever.
func (g *gateFS) open() { g.rel.Do(func() { close(g.release) }) }

func (g *gateFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return gateFile{f, g}, nil
}

type gateFile struct {
	vfs.File
	g *gateFS
}

func (f gateFile) WriteAt(b []byte, off int64) (int, error) {
	if off >= f.g.at {
		f.g.once.Do(func() { close(f.g.reached) })
		<-f.g.release
	}
	return f.File.WriteAt(b, off)
}

// TestFullResyncResumesAfterAgentRestart: a full resync goes straight to
// the target (no before-image kept) and is acknowledged by commits; an
// agent stopped mid-copy resumes, after a restart, from its last
// committed chunk, not from zero, and the target ends equal to the
// source.
func TestFullResyncResumesAfterAgentRestart(t *testing.T) {
	const size, chunk = 8 << 20, 64 << 10
	old := writer.DirectCommitBytes
	writer.DirectCommitBytes = 4 * chunk
	t.Cleanup(func() { writer.DirectCommitBytes = old })
	r := newRig(t, size, nil, ps.Config{ChunkSize: chunk})
	r.startPS()
	gate := &gateFS{FS: vfs.OS, at: size / 2, reached: make(chan struct{}), release: make(chan struct{})}
	// Registered after startPS's r.stop, so it runs first: a failure
	// while the gate is shut ends the test instead of hanging it.
	t.Cleanup(gate.open)
	r.agentCfgChange = func(c *agent.Config) { c.Writer.TargetFS = gate }
	key, _ := keys(t)
	cl := r.newAgent(key, r.addr, false)
	actx, acancel := context.WithCancel(r.ctx)
	adone := make(chan error, 1)
	go func() { adone <- cl.Run(actx) }()
	select {
	case <-gate.reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the resync never reached the middle of the disk")
	}
	// Half copied, the rest held. No acknowledgement is awaited here:
	// the held write is inside the writer's Hold, and a direct commit
	// takes Hold after its fdatasync, so a commit whose fdatasync ends
	// after the copy reached the gate waits behind the held write;
	// whether one ended before is up to the disk. The stop below commits
	// what was written (the connection's end commits its direct writes),
	// which the restart checks.
	if st := r.cl.Status()[0]; st.State != agent.StateResync1 {
		t.Fatalf("state %s mid-copy", st.State)
	}
	acancel()
	gate.open()
	if err := <-adone; err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	first := cl.Stats()
	r.agentCfgChange = nil
	r.newAgent(key, r.addr, false)
	if next := r.cl.Pair("disk0").Next(); next < size/2/chunk {
		t.Fatalf("restarted mid-resync at sequence %d: want at least %d (what was copied before the stop)", next, size/2/chunk)
	}
	if segs := r.cl.Pair("disk0").Store().Segments(); len(segs) != 0 {
		t.Fatalf("a full resync kept before-images: %+v", segs)
	}
	r.runAgent()
	r.waitFor("differential sync", 15*time.Second, func() bool { return r.state() == agent.StateDiffSync && r.caughtUp() })
	r.assertTargetEqualsSource()
	st := r.cl.Stats()
	if moved := st.ResyncBytes + st.ZeroBytes; moved > size/2 || st.HashRequests != 0 {
		t.Fatalf("after the restart the resync moved %d bytes with %d hash requests (before it: %+v): want the rest of the copy, at most %d, no hashes",
			moved, st.HashRequests, first, size/2)
	}
}
