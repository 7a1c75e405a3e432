package hostconfig

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestConfigRoundTrip(t *testing.T) {
	c := Default()
	c.CSHost, c.CSPort, c.HTTPS = "cs.example.com", 8443, false
	c.HostID = NewHostID()
	c.UseNATIP, c.NATIP = true, "203.0.113.9"
	c.UseNATHostname, c.NATHostname = true, "mt.example.com"
	c.CacheDir, c.LogLevel, c.RemoteLogLevel = "/srv/retention", 7, 0
	got, err := Parse("x", c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
	}
}

func TestParseErrorsNameFileLineKey(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		line       int
		key, msg   string
	}{
		{"bad port", "[cs]\nhost = a\nport = 70000\n", 3, "cs.port", "want 1-65535"},
		{"port word", "[cs]\n\n# c\nport=abc\n", 4, "cs.port", "want a number"},
		{"long host", "[cs]\nhost = " + strings.Repeat("a", 256) + "\n", 2, "cs.host", "256 characters, at most 255"},
		{"unknown key", "[cs]\nhots = a\n", 2, "cs.hots", "unknown key"},
		{"no equals", "[nat]\nuse_ip yes\n", 2, "", "want key = value"},
		{"unknown section", "[foo]\n", 1, "", "unknown section"},
		{"before section", "host = a\n", 1, "", "before any [section]"},
		{"bool", "[cs]\nhttps = maybe\n", 2, "cs.https", "want yes or no"},
		{"twice", "[cs]\nport = 1\nport = 2\n", 3, "cs.port", "first on line 2"},
		{"bad id", "[host]\nid = 1234\n", 2, "host.id", "not a UUID"},
		{"level", "[logging]\nlevel = 8\n", 2, "logging.level", "0-7"},
		{"nat enabled empty", "[nat]\nuse_ip = yes\n", 0, "nat.ip", "empty while"},
		{"relative cache", "[agent]\ncache_dir = var/x\n", 2, "agent.cache_dir", "absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/etc/mtconsole/host.conf", []byte(tc.file))
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want a *ConfigError", err)
			}
			if ce.Line != tc.line || ce.Key != tc.key || !strings.Contains(ce.Msg, tc.msg) {
				t.Errorf("got line %d key %q msg %q; want %d %q %q", ce.Line, ce.Key, ce.Msg, tc.line, tc.key, tc.msg)
			}
			want := "/etc/mtconsole/host.conf"
			if tc.line > 0 {
				want += fmt.Sprintf(":%d", tc.line)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not name %s", err, want)
			}
		})
	}
}

func TestUpdateKeepsHostIDAndMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "host.conf")
	c1, err := Update(path, func(c *Config) error { c.CSHost = "10.0.0.4"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !validUUID(c1.HostID) {
		t.Fatalf("host id %q", c1.HostID)
	}
	// concurrent writers: none loses another's change, the id stays
	var wg sync.WaitGroup
	for i := 1; i <= 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Update(path, func(c *Config) error { c.LogLevel = (c.LogLevel + 1) % 8; return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	c2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c2.HostID != c1.HostID || c2.LogLevel != (3+8)%8 || c2.CSHost != "10.0.0.4" {
		t.Errorf("after updates: %+v (first %+v)", c2, c1)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o", fi.Mode().Perm())
	}
	// a failed update writes nothing
	before, _ := os.ReadFile(path)
	if _, err := Update(path, func(c *Config) error { c.CSPort = 0; return nil }); !errors.Is(err, ErrBadPort) {
		t.Errorf("port 0: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("a refused update changed the file")
	}
	// a malformed file is refused, not overwritten
	if err := os.WriteFile(path, []byte("[cs]\nport = x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Update(path, func(c *Config) error { return nil }); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), ":2: cs.port") {
		t.Errorf("malformed: %v", err)
	}
}

func TestSplitCSAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.4": "10.0.0.4:443", "10.0.0.4:8443": "10.0.0.4:8443", "cs.example.com": "cs.example.com:443",
		"[fd00::1]:9": "[fd00::1]:9", "fd00::1": "[fd00::1]:443",
	} {
		h, p, err := SplitCSAddr(in, 443)
		c := Config{CSHost: h, CSPort: p}
		if err != nil || c.CSAddr() != want {
			t.Errorf("%s: %s %v, want %s", in, c.CSAddr(), err, want)
		}
	}
	for _, bad := range []string{"", "a:0", "a:99999", "a_b", "-a.com", "a:x"} {
		if _, _, err := SplitCSAddr(bad, 443); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPassphrase(t *testing.T) {
	const secret = "0123456789abcdefXYZ"
	p, err := CleanPassphrase(secret + "\r\n")
	if err != nil || string(p) != secret {
		t.Fatalf("%q %v", p, err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "p", p, "k", SigningKey{1})
	shown := fmt.Sprintf("%s %v %+v %#v %q %x", p, p, p, p, p, p) + logs.String() + fmt.Sprint(SigningKey{1})
	if strings.Contains(shown, secret) || strings.Contains(shown, "0123") {
		t.Errorf("the passphrase shows: %s", shown)
	}
	if _, err := CleanPassphrase("fifteen-chars!!"); !errors.Is(err, ErrPassphraseShort) {
		t.Errorf("15 characters: %v", err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "p")
	if err := os.WriteFile(f, []byte(secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPassphraseFile(f); !errors.Is(err, ErrPassphraseFile) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("0644 file: %v", err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("fifteen-chars!!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPassphraseFile(short); !errors.Is(err, ErrPassphraseFile) || !errors.Is(err, ErrPassphraseShort) || !strings.Contains(err.Error(), short) {
		t.Errorf("short passphrase file: %v", err)
	}
	if err := SavePassphrase(filepath.Join(dir, "private", "p"), p); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadPassphraseFile(filepath.Join(dir, "private", "p")); err != nil || got != p {
		t.Errorf("read back: %v", err)
	}
	if g := GeneratePassphrase(); len(g) < MinPassphraseLength {
		t.Errorf("generated %d characters", len(g))
	}
}

func TestDrscoutImport(t *testing.T) {
	odd := "\ufeff# drscout\n[ vxagent ]\n  HostId   =  6F9619FF-8B86-D011-B42D-00CF4FC964FF \nRole= MasterTarget\n" +
		"UseConfiguredIpAddress=1\nConfiguredIpAddress =203.0.113.5\nCacheDirectory = /usr/local/ASR/Vx/var/\nLogLevel=7\n" +
		"\n[vxagent.transport]\nHostname=  10.0.0.4\nPort =443\n\tHttps = 1\n"
	d, err := ParseDrscout("drscout.conf", []byte(odd))
	if err != nil {
		t.Fatal(err)
	}
	if d.CSHost != "10.0.0.4" || d.CSPort != 443 || !d.HTTPS || d.HostID != "6f9619ff-8b86-d011-b42d-00cf4fc964ff" ||
		!d.UseNATIP || d.NATIP != "203.0.113.5" || d.LogLevel != 7 || d.RemoteLogLevel != -1 || d.Role != RoleMasterTarget {
		t.Errorf("%+v", d)
	}
	if !strings.Contains(strings.Join(d.Missing, ","), "[vxagent] RemoteLogLevel") {
		t.Errorf("missing %v", d.Missing)
	}
	c := Default()
	d.Apply(&c)
	if err := c.Validate(); err != nil || c.CacheDir != "/usr/local/ASR/Vx/var" || c.Imported != "drscout.conf" {
		t.Errorf("applied %+v: %v", c, err)
	}
	// only a host name: the rest defaults and is listed missing
	d, err = ParseDrscout("d", []byte("[vxagent.transport]\nHostname=cs.example.com\n"))
	if err != nil || d.CSPort != 443 || !d.HTTPS || d.HostID != "" || len(d.Missing) < 5 {
		t.Errorf("minimal: %+v %v", d, err)
	}
	for name, bad := range map[string]string{
		"no host":    "[vxagent]\nHostId=x\n",
		"empty host": "[vxagent.transport]\nHostname=\n",
		"bad port":   "[vxagent.transport]\nHostname=a\nPort=http\n",
		"no equals":  "[vxagent.transport]\nHostname a\n",
		"bad level":  "[vxagent.transport]\nHostname=a\n[vxagent]\nLogLevel=9\n",
	} {
		if _, err := ParseDrscout("d", []byte(bad)); !errors.Is(err, ErrDrscout) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseDrscout("d", []byte("[vxagent.transport]\nHostname=a\nPort=http\n")); err == nil || !strings.Contains(err.Error(), "d:3: [vxagent.transport] Port") {
		t.Errorf("line not named: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Default().Marshal())
	f.Add([]byte("[cs]\nport = 1\n[nat]\nuse_ip=yes\nip=::1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("f", b)
		if err != nil {
			return
		}
		// whatever parses writes back to the same config
		c2, err := Parse("f", c.Marshal())
		if err != nil || c2 != c {
			t.Fatalf("round trip: %+v -> %+v %v", c, c2, err)
		}
	})
}

func FuzzDrscout(f *testing.F) {
	f.Add([]byte("[vxagent.transport]\nHostname=a\nPort=443\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDrscout("f", b)
		if err != nil {
			return
		}
		c := Default()
		d.Apply(&c)
		_ = c.Validate()
	})
}
