// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) for units of Type=notify: READY=1 once the service
// serves, STATUS= lines that systemctl status shows, and WATCHDOG=1
// keep-alives for WatchdogSec=. Each notification is one datagram of
// newline-separated KEY=VALUE lines sent to the unix socket named by
// $NOTIFY_SOCKET (a path, or an abstract name written with a leading @).
//
// Outside systemd (no $NOTIFY_SOCKET) a Notifier is nil and its methods do
// nothing, so callers never branch on how they were started. It never
// blocks the service: a send that fails is returned, not retried.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier sends notifications to the service manager. The nil Notifier
// sends nothing.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv is the Notifier of $NOTIFY_SOCKET, or nil when it is unset.
// It unsets the variable, as sd_notify's unset_environment does, so that
// commands the service runs do not notify in its name.
func FromEnv() *Notifier {
	name := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	return New(name)
}

// New is the Notifier of the socket name (a path, or @name for an
// abstract socket), or nil when name is "".
func New(name string) *Notifier {
	if name == "" {
		return nil
	}
	// net.UnixAddr takes a leading @ as the abstract namespace's NUL.
	return &Notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// Send sends the lines as one notification ("READY=1", "STATUS=...").
// A line must not hold a newline.
func (n *Notifier) Send(lines ...string) error {
	if n == nil {
		return nil
	}
	for _, l := range lines {
		if strings.ContainsRune(l, '\n') || !strings.Contains(l, "=") {
			return fmt.Errorf("sdnotify: %q is not one KEY=VALUE line", l)
		}
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.addr.Name, err)
	}
	return nil
}

// Ready tells the manager the service is up (READY=1), with a status
// line when status is not "".
func (n *Notifier) Ready(status string) error {
	if status == "" {
		return n.Send("READY=1")
	}
	return n.Send("READY=1", "STATUS="+status)
}

// Status sets the line systemctl status shows.
func (n *Notifier) Status(status string) error { return n.Send("STATUS=" + status) }

// Stopping tells the manager the service is shutting down.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1") }

// WatchdogInterval is the WatchdogSec= of the unit ($WATCHDOG_USEC, for
// this process when $WATCHDOG_PID names it or is unset); false when the
// watchdog is off or the variables are malformed.
func WatchdogInterval() (time.Duration, bool) {
	usec := os.Getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0, false
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, false
	}
	u, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || u == 0 {
		return 0, false
	}
	return time.Duration(u) * time.Microsecond, true
}

// Watchdog feeds the watchdog: on every tick it asks healthy and sends
// WATCHDOG=1 only when it returns nil. When it returns an error, no
// keep-alive goes out (the manager restarts the service once WatchdogSec
// passes without one) and "watchdog not fed: <error>" becomes the status
// line; otherwise status() (when status is not nil) is. A status line is
// sent when it changes. A failed send goes to onError (when not nil).
// It returns when ctx ends. Callers tick at half the interval or less
// (sd_watchdog_enabled(3)).
func (n *Notifier) Watchdog(ctx context.Context, tick <-chan time.Time, healthy func() error, status func() string, onError func(error)) {
	if n == nil {
		return
	}
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		var lines []string
		line := ""
		if err := healthy(); err != nil {
			line = "watchdog not fed: " + err.Error()
		} else {
			lines = append(lines, "WATCHDOG=1")
			if status != nil {
				line = status()
			}
		}
		if line != "" && line != last {
			lines = append(lines, "STATUS="+line)
			last = line
		}
		if len(lines) == 0 {
			continue
		}
		if err := n.Send(lines...); err != nil && onError != nil {
			onError(err)
		}
	}
}
