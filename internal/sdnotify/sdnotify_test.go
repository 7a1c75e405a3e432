package sdnotify

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// listen is a fake service manager: a unixgram socket in a temp dir.
func listen(t *testing.T) (string, func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	recv := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(time.Minute))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("the manager got no notification: %v", err)
		}
		return string(buf[:n])
	}
	return path, recv
}

func TestFromEnvAndReady(t *testing.T) {
	path, recv := listen(t)
	t.Setenv("NOTIFY_SOCKET", path)
	n := FromEnv()
	if n == nil {
		t.Fatal("FromEnv with NOTIFY_SOCKET set is nil")
	}
	if v, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
		t.Fatalf("NOTIFY_SOCKET is still set (%q): children would notify as the service", v)
	}
	if err := n.Ready("3 pairs, 2 in Differential Sync"); err != nil {
		t.Fatal(err)
	}
	if got, want := recv(), "READY=1\nSTATUS=3 pairs, 2 in Differential Sync\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if err := n.Status("stopping"); err != nil {
		t.Fatal(err)
	}
	if got, want := recv(), "STATUS=stopping\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestAbstractSocket(t *testing.T) {
	name := "@mtconsole-sdnotify-test-" + strconv.Itoa(os.Getpid())
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Skipf("no abstract unix sockets here: %v", err)
	}
	defer c.Close()
	if err := New(name).Send("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1\n" {
		t.Fatalf("abstract socket got %q, %v", buf[:n], err)
	}
}

func TestNilAndErrors(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n != nil {
		t.Fatal("FromEnv without NOTIFY_SOCKET is not nil")
	}
	if err := n.Ready("x"); err != nil {
		t.Fatalf("the nil Notifier: %v", err)
	}
	n.Watchdog(context.Background(), nil, nil, nil, nil) // returns at once
	path, _ := listen(t)
	if err := New(path).Send("READY=1\nSTATUS=x"); err == nil {
		t.Fatal("a line with a newline was sent")
	}
	if err := New(path).Send("READY"); err == nil {
		t.Fatal("a line without = was sent")
	}
	if err := New(filepath.Join(t.TempDir(), "none")).Send("READY=1"); err == nil {
		t.Fatal("a send to a missing socket succeeded")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"", "", 0, false},
		{"60000000", "", time.Minute, true},
		{"60000000", strconv.Itoa(os.Getpid()), time.Minute, true},
		{"60000000", strconv.Itoa(os.Getpid() + 1), 0, false},
		{"0", "", 0, false},
		{"sixty", "", 0, false},
	} {
		t.Setenv("WATCHDOG_USEC", c.usec)
		t.Setenv("WATCHDOG_PID", c.pid)
		if got, ok := WatchdogInterval(); got != c.want || ok != c.ok {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, %v; want %v, %v", c.usec, c.pid, got, ok, c.want, c.ok)
		}
	}
}

// TestWatchdog: keep-alives go out only while healthy; a stuck loop
// stops them and says why in the status line; healthy again, they resume.
// Each tick is answered by the test's health for it, so the datagrams
// received are exactly what each tick sent, in order.
func TestWatchdog(t *testing.T) {
	path, recv := listen(t)
	n := New(path)
	tick := make(chan time.Time)
	answers := make(chan error)
	var mu sync.Mutex
	status := "3 pairs, 2 in Differential Sync"
	line := func() string { mu.Lock(); defer mu.Unlock(); return status }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sendErr := make(chan error, 10)
	go func() {
		defer close(done)
		n.Watchdog(ctx, tick, func() error { return <-answers }, line, func(err error) { sendErr <- err })
	}()
	// beat is one tick whose health check returns health; once the
	// answer is taken, the tick's notification (if any) is on its way.
	beat := func(health error) {
		tick <- time.Time{}
		answers <- health
	}
	beat(nil)
	if got, want := recv(), "WATCHDOG=1\nSTATUS=3 pairs, 2 in Differential Sync\n"; got != want {
		t.Fatalf("first tick: got %q, want %q", got, want)
	}
	beat(nil) // the same status: not sent again
	if got, want := recv(), "WATCHDOG=1\n"; got != want {
		t.Fatalf("second tick: got %q, want %q", got, want)
	}
	stuck := errors.New("pair p1's applier stalled for 2m0s")
	beat(stuck)
	if got, want := recv(), "STATUS=watchdog not fed: pair p1's applier stalled for 2m0s\n"; got != want {
		t.Fatalf("stuck tick: got %q, want %q (no WATCHDOG=1)", got, want)
	}
	beat(stuck) // still stuck, the same line: nothing at all is sent
	mu.Lock()
	status = "3 pairs, 3 in Differential Sync"
	mu.Unlock()
	beat(nil)
	// Had the still-stuck tick sent anything, it would arrive here first.
	if got, want := recv(), "WATCHDOG=1\nSTATUS=3 pairs, 3 in Differential Sync\n"; got != want {
		t.Fatalf("after recovery: got %q, want %q", got, want)
	}
	cancel()
	<-done
	select {
	case err := <-sendErr:
		t.Fatal(err)
	default:
	}
}
