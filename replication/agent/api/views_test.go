package api

import (
	"bytes"
	"errors"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// needTool skips a test whose real NBD client is not installed.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install %s): this test reads views with real NBD clients", name, pkg)
	}
	return p
}

// qemuRead copies the export at uri to a file with qemu-img and returns
// its bytes.
func qemuRead(t *testing.T, uri string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "copy.raw")
	if b, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "raw", uri, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v\n%s", uri, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (a *agent) export(t *testing.T, point string) []byte {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "export.img")
	j, err := a.cl.Recover(ctxT(t), RecoverRequest{Point: point, Mode: ModeExport, Dest: dest, Pairs: []string{"p1"}})
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, a.cl, j.ID); j.State != JobDone {
		t.Fatalf("export job %+v", j)
	}
	b, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A view read by qemu-img and nbdcopy is bit for bit the export of the
// same point; the view shows in status; closing it removes its socket.
func TestViewBitExact(t *testing.T) {
	needTool(t, "qemu-img", "qemu-utils")
	a := newAgent(t, "p1")
	a.b.SetViewDir(filepath.Join(a.dir, "views"))
	exp := a.export(t, "tag:t02")
	if !bytes.Equal(exp, a.images["p1"]["t02"]) {
		t.Fatal("fixture: the export differs from the source at t02")
	}
	v, err := a.cl.OpenView(ctxT(t), ViewRequest{Pairs: []string{"p1"}, Point: "tag:t02"})
	if err != nil {
		t.Fatal(err)
	}
	if v.ID != "v1" || len(v.Exports) != 1 || v.Exports[0].Size != fxSize || v.Writable {
		t.Fatalf("view %+v", v)
	}
	sock := strings.TrimPrefix(v.Listen, "unix:")
	if filepath.Dir(sock) != filepath.Join(a.dir, "views") {
		t.Fatalf("socket %s is not in the runtime directory", sock)
	}
	if got := qemuRead(t, v.Exports[0].URI); !bytes.Equal(got, exp) {
		t.Fatalf("qemu-img read of the view (%d bytes) differs from the export (%d bytes)", len(got), len(exp))
	}
	if _, err := exec.LookPath("nbdcopy"); err == nil {
		out := filepath.Join(t.TempDir(), "nbdcopy.raw")
		if b, err := exec.Command("nbdcopy", v.Exports[0].URI, out).CombinedOutput(); err != nil {
			t.Fatalf("nbdcopy: %v\n%s", err, b)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, exp) {
			t.Fatal("nbdcopy read of the view differs from the export")
		}
	}
	st, err := a.cl.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Views) != 1 || st.Views[0].ID != "v1" || st.Views[0].Points["p1"].Tag.Name != "t02" {
		t.Fatalf("status views: %+v", st.Views)
	}
	// a second view of the pair is refused, naming the first
	if _, err := a.cl.OpenView(ctxT(t), ViewRequest{Pairs: []string{"p1"}, Point: "tag:t01"}); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "v1") {
		t.Fatalf("second view of p1: %v", err)
	}
	if err := a.cl.CloseView(ctxT(t), "v1"); err != nil {
		t.Fatal(err)
	}
	if exists(sock) {
		t.Fatal("the view's socket is left after close")
	}
	if err := a.cl.CloseView(ctxT(t), "v1"); !errors.Is(err, ErrUnknownView) {
		t.Fatalf("closing a closed view: %v", err)
	}
	if vs, err := a.cl.Views(ctxT(t)); err != nil || len(vs) != 0 {
		t.Fatalf("views after close: %v %v", vs, err)
	}
}

// A view stays the disk at its point while the pair keeps applying new
// writes all over it, read by qemu-img during and after them; a rollback
// of the pair is refused while it is open.
func TestViewWhileWriting(t *testing.T) {
	needTool(t, "qemu-img", "qemu-utils")
	a := newAgent(t, "p1")
	a.b.SetViewDir(filepath.Join(a.dir, "views"))
	want := a.images["p1"]["t03"]
	v, err := a.cl.OpenView(ctxT(t), ViewRequest{Pairs: []string{"p1"}, Point: "tag:t03"})
	if err != nil {
		t.Fatal(err)
	}
	p := a.w.Pair("p1")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	werr := make(chan error, 1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(99))
		clock := fxStart.Add(time.Minute)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			clock = clock.Add(time.Millisecond)
			data := make([]byte, 4096)
			rng.Read(data)
			off := int64(rng.Intn(fxSize/4096)) * 4096
			if err := p.Write(p.Next(), off, clock, data, 0); err != nil {
				werr <- err
				return
			}
		}
	}()
	for range 3 {
		if got := qemuRead(t, v.Exports[0].URI); !bytes.Equal(got, want) {
			close(stop)
			wg.Wait()
			t.Fatal("a view read while the pair applied writes differs from the disk at its point")
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-werr:
		t.Fatal(err)
	default:
	}
	a.drain(t, "p1")
	if tgt, _ := os.ReadFile(a.cfgs["p1"].Target); bytes.Equal(tgt, want) {
		t.Fatal("the workload changed nothing on the target: the test proves nothing")
	}
	if got := qemuRead(t, v.Exports[0].URI); !bytes.Equal(got, want) {
		t.Fatal("after the writes, the view differs from the disk at its point")
	}
	_, err = a.cl.Recover(ctxT(t), RecoverRequest{Point: "tag:t01", Mode: ModeRollback, Pairs: []string{"p1"}})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "view v1") {
		t.Fatalf("rollback with a view open: %v", err)
	}
	if a.w.Pair("p1") == nil {
		t.Fatal("the refused rollback ended the pair")
	}
}

// A writable view takes writes into its overlay, the target untouched; a
// write past the overlay's cap gets ENOSPC; on close the overlay is gone
// and a new view shows the point as it was.
func TestViewWritable(t *testing.T) {
	needTool(t, "qemu-img", "qemu-utils")
	qio := needTool(t, "qemu-io", "qemu-utils")
	a := newAgent(t, "p1")
	a.b.SetViewDir(filepath.Join(a.dir, "views"))
	want := a.images["p1"]["t02"]
	v, err := a.cl.OpenView(ctxT(t), ViewRequest{Pairs: []string{"p1"}, Point: "tag:t02", Writable: true, OverlayCap: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	e := v.Exports[0]
	if !v.Writable || e.OverlayCap != 64<<10 || !exists(e.Overlay) {
		t.Fatalf("writable view %+v", v)
	}
	if b, err := exec.Command(qio, "-f", "raw", "-c", "write -P 0xab 1000 5000", e.URI).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io write: %v\n%s", err, b)
	}
	got := qemuRead(t, e.URI)
	model := bytes.Clone(want)
	for i := 1000; i < 6000; i++ {
		model[i] = 0xab
	}
	if !bytes.Equal(got, model) {
		t.Fatal("the writable view does not read back its write over the point")
	}
	if tgt, _ := os.ReadFile(a.cfgs["p1"].Target); !bytes.Equal(tgt, a.final["p1"]) {
		t.Fatal("a write to a view reached the target")
	}
	b, err := exec.Command(qio, "-f", "raw", "-c", "write -P 0xcd 65536 131072", e.URI).CombinedOutput()
	if err == nil && !strings.Contains(string(b), "No space left") {
		t.Fatalf("a write past the overlay cap: %s", b)
	}
	if !strings.Contains(string(b), "No space left") {
		t.Fatalf("a write past the overlay cap did not say ENOSPC: %s", b)
	}
	vs, _ := a.cl.Views(ctxT(t))
	if len(vs) != 1 || vs[0].Exports[0].OverlayBytes != 2*4096 {
		t.Fatalf("overlay use after one 5000-byte write at 1000: %+v", vs)
	}
	if err := a.cl.CloseView(ctxT(t), v.ID); err != nil {
		t.Fatal(err)
	}
	if exists(e.Overlay) {
		t.Fatal("the overlay is left after close")
	}
	v2, err := a.cl.OpenView(ctxT(t), ViewRequest{Pairs: []string{"p1"}, Point: "tag:t02"})
	if err != nil {
		t.Fatal(err)
	}
	if got := qemuRead(t, v2.Exports[0].URI); !bytes.Equal(got, want) {
		t.Fatal("after the writable view closed, a new view does not show the point as it was")
	}
	// read-only: qemu-io's write fails
	if b, err := exec.Command(qio, "-f", "raw", "-c", "write -P 1 0 512", v2.Exports[0].URI).CombinedOutput(); err == nil && !strings.Contains(string(b), "failed") {
		t.Fatalf("a write to a read-only view: %s", b)
	}
}

// Garbage and vanishing clients on a view's socket do not stop it; the
// agent stopping closes the view, removes its socket and overlay, and
// says so.
func TestViewGarbageAndAgentStop(t *testing.T) {
	needTool(t, "qemu-img", "qemu-utils")
	a := newAgent(t, "p1")
	a.b.SetViewDir(filepath.Join(a.dir, "views"))
	ch, err := a.cl.Events(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.cl.OpenView(ctxT(t), ViewRequest{Pairs: []string{"p1"}, Point: "tag:t04", Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	sock := strings.TrimPrefix(v.Listen, "unix:")
	rng := rand.New(rand.NewSource(3))
	for i := range 20 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, rng.Intn(200))
		rng.Read(junk)
		if i%2 == 0 {
			junk = append([]byte{0, 0, 0, 3}, junk...)
		}
		c.Write(junk)
		c.Close()
	}
	if got := qemuRead(t, v.Exports[0].URI); !bytes.Equal(got, a.images["p1"]["t04"]) {
		t.Fatal("after garbage clients the view reads wrong")
	}
	a.b.Close()
	if exists(sock) || exists(v.Exports[0].Overlay) {
		t.Fatal("the agent stopped and left the view's socket or overlay")
	}
	for {
		e := next(t, ch, "log")
		if strings.Contains(e.Message, "view v1") && strings.Contains(e.Message, "closed: the agent stops") {
			if !strings.Contains(e.Message, "overlay removed") {
				t.Fatalf("log line %q does not say the overlay went", e.Message)
			}
			break
		}
	}
}

// Bad requests name what is wrong: a point outside the window names the
// nearest kept points; a relative socket, a missing pair.
func TestViewBadInput(t *testing.T) {
	a := newAgent(t, "p1")
	a.b.SetViewDir(filepath.Join(a.dir, "views"))
	for _, tc := range []struct {
		req   ViewRequest
		field string
		says  string
	}{
		{ViewRequest{Pairs: []string{"p1"}, Point: "time:2020-01-01T00:00:00Z"}, "point", "nearest points kept: earliest"},
		{ViewRequest{Pairs: []string{"p1"}, Point: "soon"}, "point", "want latest-tag"},
		{ViewRequest{Pairs: []string{"p1"}, Point: "earliest", Listen: "unix:rel.sock"}, "listen", "absolute"},
		{ViewRequest{Pairs: []string{"p1"}, Point: "earliest", Listen: "udp:x"}, "listen", "unix:PATH or tcp:HOST:PORT"},
		{ViewRequest{Pairs: []string{"p1"}, Point: "earliest", OverlayCap: 5}, "overlay_cap", "writable"},
	} {
		_, err := a.cl.OpenView(ctxT(t), tc.req)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != http.StatusBadRequest || ae.Field != tc.field || !strings.Contains(ae.Msg, tc.says) {
			t.Errorf("%+v: %v; want 400 on %s saying %q", tc.req, err, tc.field, tc.says)
		}
	}
	if _, err := a.cl.OpenView(ctxT(t), ViewRequest{Pairs: []string{"nope"}, Point: "earliest"}); !errors.Is(err, ErrUnknownPair) {
		t.Errorf("view of an unknown pair: %v", err)
	}
	if vs, _ := a.cl.Views(ctxT(t)); len(vs) != 0 {
		t.Errorf("refused requests left views: %+v", vs)
	}
}

// A view of several pairs serves one export per pair, by name, at one
// common point; closing the views of one pair (it is removed) closes that
// view and says why.
func TestViewSeveralPairs(t *testing.T) {
	needTool(t, "qemu-img", "qemu-utils")
	a := newAgent(t, "p1", "p2")
	a.b.SetViewDir(filepath.Join(a.dir, "views"))
	v, err := a.cl.OpenView(ctxT(t), ViewRequest{Pairs: []string{"p1", "p2"}, Point: "tag:t05"})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Exports) != 2 {
		t.Fatalf("exports %+v", v.Exports)
	}
	for _, e := range v.Exports {
		if e.Name != e.Pair || !strings.HasPrefix(e.URI, "nbd+unix:///"+e.Pair+"?socket=") {
			t.Fatalf("export %+v", e)
		}
		if got := qemuRead(t, e.URI); !bytes.Equal(got, a.images[e.Pair]["t05"]) {
			t.Fatalf("export %s differs from the source at t05", e.Pair)
		}
	}
	ch, err := a.cl.Events(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	a.b.CloseViews("p2", "closed: its pair was removed")
	if vs, _ := a.cl.Views(ctxT(t)); len(vs) != 0 {
		t.Fatalf("views after their pair was removed: %+v", vs)
	}
	for e := next(t, ch, "log"); !strings.Contains(e.Message, "view v1 of p1,p2 closed: its pair was removed"); e = next(t, ch, "log") {
	}
}

// An overlay a killed agent left is removed when a writable view opens
// beside it, and said; the new view's own overlay is made afresh.
func TestViewStaleOverlay(t *testing.T) {
	a := newAgent(t, "p1")
	a.b.SetViewDir(filepath.Join(a.dir, "views"))
	odir := filepath.Join(filepath.Dir(a.cfgs["p1"].RetentionDir), ".views")
	if err := os.MkdirAll(odir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(odir, "v1-p1.overlay")
	if err := os.WriteFile(stale, []byte("left by a killed agent"), 0o600); err != nil {
		t.Fatal(err)
	}
	ch, err := a.cl.Events(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.cl.OpenView(ctxT(t), ViewRequest{Pairs: []string{"p1"}, Point: "earliest", Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if v.Exports[0].Overlay != stale {
		t.Fatalf("overlay %s, want %s", v.Exports[0].Overlay, stale)
	}
	if b, _ := os.ReadFile(stale); len(b) != 0 {
		t.Fatalf("the new overlay holds the stale one's bytes: %q", b)
	}
	for e := next(t, ch, "log"); !strings.Contains(e.Message, "removed the view overlay "+stale); e = next(t, ch, "log") {
	}
}

// A view of a pair that a rollback is rewriting is refused, naming the
// job: it would read a target being rewritten. Once the rollback is
// over, a view opens and reads the point the pair was rolled back to.
func TestViewRefusedDuringRollback(t *testing.T) {
	a := newAgent(t, "p1")
	a.b.SetViewDir(filepath.Join(a.dir, "views"))
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a.b.onProgress = func(string, int64) { once.Do(func() { close(reached); <-release }) }
	j, err := a.cl.Recover(ctxT(t), RecoverRequest{Point: "tag:t02", Mode: ModeRollback, Pairs: []string{"p1"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-reached:
	case <-ctxT(t).Done():
		t.Fatal("the rollback never reported progress")
	}
	_, err = a.cl.OpenView(ctxT(t), ViewRequest{Pairs: []string{"p1"}, Point: "tag:t01"})
	close(release)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "being rolled back by job "+j.ID) {
		t.Fatalf("a view of a pair being rolled back: %v; want a conflict naming job %s", err, j.ID)
	}
	if vs, _ := a.cl.Views(ctxT(t)); len(vs) != 0 {
		t.Fatalf("the refused view is listed: %+v", vs)
	}
	if j = waitJob(t, a.cl, j.ID); j.State != JobDone {
		t.Fatalf("the rollback after the refused view: %+v", j)
	}
}
