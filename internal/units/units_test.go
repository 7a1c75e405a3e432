package units

import (
	"strconv"
	"strings"
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

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1048576": 1 << 20, "1G": 1 << 30, "1GiB": 1 << 30, "1GB": 1 << 30, "1Gi": 1 << 30, "1g": 1 << 30,
		"1gib": 1 << 30, "512M": 512 << 20, "512MiB": 512 << 20, "1K": 1024, "1T": 1 << 40, "900T": 900 << 40,
		"1.5G": 3 << 29, ".5K": 512, " 20 G ": 20 << 30, "1.5": 1, "8388607T": 8388607 << 40,
		"9223372036854775807": 1<<63 - 1,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "B", "G", "GiB", "I", "i", "abc", "-1G", "+1G", "1e3", "NaN", "Inf", "1.G", "1..5G",
		"1.2.3", "1P", "1 X", "0x10", "8388608T", "9223372036854775808", "1e30T", "99999999999999999999.5T"} {
		got, err := ParseBytes(in)
		if err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), strconv.Quote(in)) {
			t.Errorf("ParseBytes(%q): error %q does not name the value", in, err)
		}
	}
}

func TestConfigDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15m", 24 * time.Hour: "24h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s",
		72 * time.Hour: "72h", time.Minute + 5*time.Second: "1m5s", 0: "0s",
	} {
		if got := ConfigDuration(d); got != want {
			t.Errorf("ConfigDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
