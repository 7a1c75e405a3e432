package units

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1500: "1.5 kB", 67_108_864: "67.1 MB", 5e15: "5000.0 TB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Millisecond: "0s", 42 * time.Second: "42s", 185 * time.Second: "3m05s",
		130 * time.Minute: "2h10m", 47*time.Hour + 59*time.Minute: "47h59m", 72 * time.Hour: "3d",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestYesNo(t *testing.T) {
	if got := YesNo(true); got != "yes" {
		t.Errorf("YesNo(true) = %q", got)
	}
	if got := YesNo(false); got != "no" {
		t.Errorf("YesNo(false) = %q", got)
	}
}
