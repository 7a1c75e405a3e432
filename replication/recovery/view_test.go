package recovery

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"runtime"
	"sync"
	"testing"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// readView reads all of v in chunks of random size.
func readView(t *testing.T, v *View, rng *rand.Rand) []byte {
	t.Helper()
	out := make([]byte, v.Size())
	for off := int64(0); off < v.Size(); {
		n := min(int64(1+rng.Intn(9000)), v.Size()-off)
		if _, err := v.ReadAt(out[off:off+n], off); err != nil {
			t.Fatalf("view read at %d: %v", off, err)
		}
		off += n
	}
	return out
}

// A view of any point reads as the disk was then, as its export does.
func TestViewMatchesExport(t *testing.T) {
	f := newFixture(t, 11, 400, true)
	rng := rand.New(rand.NewSource(2))
	applied := f.st.State().Applied
	for _, seq := range []uint64{0, 1, 17, 200, applied - 1, applied} {
		r := Resolved{Pair: "p", Seq: seq}
		v, err := OpenView(context.Background(), f.st, f.target, 64<<10, r, "test view")
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		got := readView(t, v, rng)
		if !bytes.Equal(got, f.images[seq]) {
			t.Fatalf("view of sequence %d differs from the image at that point", seq)
		}
		if exp := f.export(t, r); !bytes.Equal(got, exp) {
			t.Fatalf("view of sequence %d differs from its export", seq)
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := v.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrViewClosed) {
			t.Fatalf("read after close: %v", err)
		}
	}
	if _, err := OpenView(context.Background(), f.st, f.target, 64<<10, Resolved{Seq: applied + 1}, "x"); !errors.Is(err, ErrNoPoint) {
		t.Fatalf("a point past the applied position: %v", err)
	}
	v, err := OpenView(context.Background(), f.st, f.target, 64<<10, Resolved{Seq: 3}, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, bad := range [][2]int64{{-1, 10}, {64<<10 - 5, 10}} {
		if _, err := v.ReadAt(make([]byte, bad[1]), bad[0]); err == nil {
			t.Fatalf("read of %d at %d past the disk succeeded", bad[1], bad[0])
		}
	}
}

// While the pair keeps applying (before-image appended, then the target
// written, then committed), a view opened earlier reads the disk at its
// point, every byte, from readers running beside the applier; its pin
// keeps pruning from the segments it reads.
func TestViewWhileApplying(t *testing.T) {
	f := newFixture(t, 12, 200, true)
	seq := uint64(120)
	v, err := OpenView(context.Background(), f.st, f.target, 64<<10, Resolved{Pair: "p", Seq: seq}, "view v1")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	want := f.images[seq]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			b := make([]byte, 16<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				off := int64(rng.Intn(64<<10 - len(b)))
				n := 1 + rng.Intn(len(b))
				if _, err := v.ReadAt(b[:n], off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(b[:n], want[off:off+int64(n)]) {
					errs <- errors.New("a view read met a write applied after it opened")
					return
				}
			}
		}()
	}
	// the applier: 600 more writes, each before-image first
	for range 600 {
		prev := append([]byte(nil), f.w.Source...)
		op := f.w.Next()
		c := journal.Commit{Applied: op.Seq, AppliedTime: op.Time, Accuracy: journal.Exact, FirstTime: op.Time}
		if op.Tag == nil {
			before := prev[op.Offset : op.Offset+int64(len(op.Data))]
			rec := journal.Record{Type: journal.TypeUndo, Seq: op.Seq, Offset: op.Offset, Time: op.Time, Data: before}
			if journal.IsZero(before) {
				rec.Flags |= journal.FlagZero
			}
			if err := f.st.Append([]journal.Record{rec}); err != nil {
				t.Fatal(err)
			}
			if err := f.st.Sync(); err != nil {
				t.Fatal(err)
			}
			if _, err := f.target.WriteAt(op.Data, op.Offset); err != nil {
				t.Fatal(err)
			}
		} else {
			c.AppliedTime = f.st.State().AppliedTime
		}
		if err := f.st.Commit(c); err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.Prune(journal.PruneOptions{ToSize: 1}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if v.Late() == 0 {
		t.Fatal("the view took nothing from before-images appended after it opened: the test applied nothing it could meet")
	}
	if e, _ := f.st.Earliest(); e > seq {
		t.Fatalf("pruning removed what the view reads: earliest %d is past its point %d", e, seq)
	}
	if got := readView(t, v, rand.New(rand.NewSource(9))); !bytes.Equal(got, want) {
		t.Fatal("after the applier went on, the view differs from the disk at its point")
	}
	v.Close()
	res, err := f.st.Prune(journal.PruneOptions{ToSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments == 0 {
		t.Fatal("closing the view did not let pruning go on")
	}
}

// A view closed while readers read it ends their reads with an error
// (ErrViewClosed, or the closed segment's), never a panic or wrong bytes.
func TestViewCloseWhileReading(t *testing.T) {
	f := newFixture(t, 13, 300, true)
	seq := uint64(100)
	want := f.images[seq]
	for i := range 100 {
		v, err := OpenView(context.Background(), f.st, f.target, 64<<10, Resolved{Pair: "p", Seq: seq}, "view")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var wrong, reads sync.Map
		for g := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewSource(int64(i*10 + g)))
				b := make([]byte, 8<<10)
				for {
					off := int64(rng.Intn(64<<10 - len(b)))
					if _, err := v.ReadAt(b, off); err != nil {
						return
					}
					reads.Store(g, true)
					if !bytes.Equal(b, want[off:off+int64(len(b))]) {
						wrong.Store(g, off)
						return
					}
				}
			})
		}
		for {
			n := 0
			reads.Range(func(any, any) bool { n++; return true })
			if n > 0 {
				break
			}
			runtime.Gosched()
		}
		v.Close()
		wg.Wait()
		wrong.Range(func(g, off any) bool {
			t.Fatalf("round %d: reader %v read wrong bytes at %v", i, g, off)
			return false
		})
		if _, err := v.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrViewClosed) {
			t.Fatalf("read after close: %v", err)
		}
	}
}
