package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/mtconsole/mtconsole/internal/sdnotify"
)

// serviceReady tells systemd (Type=notify) that a server listens, with
// status as its status line, and, when the unit has WatchdogSec, sends
// keep-alives until stopping is called (or ctx ends). The returned func
// sends STOPPING=1 and stops the keep-alives. Outside systemd it does
// nothing.
func serviceReady(ctx context.Context, status string, log *slog.Logger) (stopping func()) {
	ctx, cancel := context.WithCancel(ctx)
	n := sdnotify.FromEnv()
	if err := n.Ready(status); err != nil {
		log.Warn("telling systemd the service is ready", "err", err)
	}
	done := make(chan struct{})
	wd, ok := sdnotify.WatchdogInterval()
	if n == nil || !ok {
		close(done)
	} else {
		go func() {
			defer close(done)
			t := time.NewTicker(wd / 3)
			defer t.Stop()
			n.Watchdog(ctx, t.C, func() error { return nil }, nil, func(err error) { log.Warn("notifying systemd", "err", err) })
		}()
	}
	return func() {
		n.Stopping()
		cancel()
		<-done
	}
}
