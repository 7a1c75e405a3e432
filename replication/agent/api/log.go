package api

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/mtconsole/mtconsole/replication/writer"
)

// LogHandler returns a slog handler that gives each record next handles
// to the hub too, as a writer.EventLog event: the message followed by its
// attributes as key=value, the "pair" attribute as the event's pair. It
// never blocks the logger (Hub.Publish does not).
func LogHandler(h *Hub, next slog.Handler) slog.Handler {
	return &logHandler{hub: h, next: next}
}

type logHandler struct {
	hub   *Hub
	next  slog.Handler
	attrs []slog.Attr
	group string
}

func (l *logHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return l.next.Enabled(ctx, lv)
}

func (l *logHandler) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	pair := ""
	add := func(k string, a slog.Attr) {
		if k == "pair" {
			pair = a.Value.String()
			return
		}
		v := a.Value.String()
		if strings.ContainsAny(v, " \t\"=") || v == "" {
			v = fmt.Sprintf("%q", v)
		}
		b.WriteString(" " + k + "=" + v)
	}
	for _, a := range l.attrs {
		add(a.Key, a) // prefixed when added
	}
	r.Attrs(func(a slog.Attr) bool { add(l.prefix()+a.Key, a); return true })
	l.hub.Publish(writer.Event{Time: r.Time.UTC(), Pair: pair, Kind: writer.EventLog, Level: r.Level, Message: b.String()})
	return l.next.Handle(ctx, r)
}

func (l *logHandler) prefix() string {
	if l.group == "" {
		return ""
	}
	return l.group + "."
}

func (l *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *l
	c.attrs = append([]slog.Attr(nil), l.attrs...)
	for _, a := range as {
		c.attrs = append(c.attrs, slog.Attr{Key: l.prefix() + a.Key, Value: a.Value})
	}
	c.next = l.next.WithAttrs(as)
	return &c
}

func (l *logHandler) WithGroup(name string) slog.Handler {
	c := *l
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	c.next = l.next.WithGroup(name)
	return &c
}

// EventSink returns the writer.Options.OnEvent of an agent whose logger
// is slog.New(LogHandler(h, next)): every event goes to the hub, and
// alert and state events (a purge, a pause, a resume, an RPO breach, an
// ended pair) are also written to the agent's log through next, at the
// event's level with its pair and kind as fields. They go to next and
// not through LogHandler, so the event stream does not get them twice.
func EventSink(h *Hub, next slog.Handler) func(writer.Event) {
	return func(e writer.Event) {
		h.Publish(e)
		if e.Kind != writer.EventAlert && e.Kind != writer.EventState {
			return
		}
		ctx := context.Background()
		if !next.Enabled(ctx, e.Level) {
			return
		}
		r := slog.NewRecord(e.Time, e.Level, e.Message, 0)
		r.AddAttrs(slog.String("pair", e.Pair), slog.String("kind", e.Kind))
		_ = next.Handle(ctx, r) // a log that cannot be written must not stop the applier
	}
}
