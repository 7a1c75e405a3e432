package csserver

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
)

func TestStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts.db")
	st, err := OpenStore(path, false)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, h := range []hostconfig.Host{
		{HostInfo: hostconfig.HostInfo{ID: "b", Hostname: "mt2"}, LastHeartbeat: now},
		{HostInfo: hostconfig.HostInfo{ID: "a", Hostname: "mt1"}, LastHeartbeat: now.Add(-hostconfig.LostAfter - time.Second)},
	} {
		if err := st.Put(h); err != nil {
			t.Fatal(err)
		}
	}
	// a second writer is refused with a message, not a hang
	if _, err := OpenStore(path, false); !errors.Is(err, ErrStoreLocked) {
		t.Errorf("second open: %v, want ErrStoreLocked", err)
	}
	hs, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	hs = WithState(hs, now)
	if len(hs) != 2 || hs[0].Hostname != "mt1" || hs[0].State != hostconfig.StateLost || hs[1].State != hostconfig.StateRegistered {
		t.Errorf("%+v", hs)
	}
	if found, err := st.Delete("a"); !found || err != nil {
		t.Errorf("delete: %v %v", found, err)
	}
	if found, _ := st.Delete("a"); found {
		t.Error("deleted twice")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenStore(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, found, _ := ro.Get("b"); !found {
		t.Error("b lost across reopen")
	}
}
