package logging

import (
	"log/slog"
	"strings"
	"testing"
)

// Whatever a record holds, journald reads back the same message and
// field values, and the field names are ones it accepts.
func FuzzJournalRoundTrip(f *testing.F) {
	f.Add("applied", "pair", "sda")
	f.Add("two\nlines", "err", "a\nb\n")
	f.Add("", "9 bad-key", "=")
	f.Add("m", "", "v")
	f.Fuzz(func(t *testing.T, msg, key, value string) {
		j := newFakeJournald(t)
		h := NewJournal(j.path, "fuzz", slog.LevelInfo, slog.DiscardHandler)
		slog.New(h).Info(msg, key, value)
		fields := j.next(t)
		if got := one(t, fields, "PRIORITY"); got != "6" {
			t.Fatalf("PRIORITY=%q", got)
		}
		if got := one(t, fields, "MESSAGE"); !strings.HasPrefix(got, msg) {
			t.Fatalf("MESSAGE=%q, want it to start with %q", got, msg)
		}
		for k := range fields {
			if k == "" || len(k) > 64 || k[0] < 'A' || k[0] > 'Z' || strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
				t.Fatalf("field name %q", k)
			}
		}
		name := fieldName(key)
		if reserved[name] {
			name = "ATTR_" + name
		}
		if len(name) > 64 {
			name = name[:64]
		}
		found := false
		for _, v := range fields[name] {
			found = found || v == value
		}
		if !found {
			t.Fatalf("field %s=%q, want %q", name, fields[name], value)
		}
	})
}
