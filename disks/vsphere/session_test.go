package vsphere_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmware/govmomi/session"

	"github.com/mtconsole/mtconsole/disks/vsphere"
)

// sessionKey is the server's key of the client's session.
func sessionKey(t *testing.T, c *vsphere.Client) string {
	t.Helper()
	us, err := session.NewManager(c.Vim()).UserSession(context.Background())
	if err != nil || us == nil {
		t.Fatalf("no session: %v", err)
	}
	return us.Key
}

func TestSessionCache(t *testing.T) {
	s := scene(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "sessions")
	logins := 0
	cfg := vsphere.Config{URL: s.URL, User: s.User, Thumbprint: s.Thumbprint, SessionDir: dir,
		PasswordFunc: func() (string, error) { logins++; return s.Password, nil }}

	// The first Connect logs in and caches the session.
	c1, err := vsphere.Connect(ctx, cfg)
	if err != nil || c1.Reused || c1.CacheErr != nil || logins != 1 {
		t.Fatalf("first: %v reused=%v cacheErr=%v logins=%d", err, c1 != nil && c1.Reused, c1.CacheErr, logins)
	}
	key1 := sessionKey(t, c1)
	c1.Close(ctx)
	file, err := vsphere.SessionFile(dir, s.URL, s.User)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v", err, fi)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v %v", err, di)
	}
	b, _ := os.ReadFile(file)
	if strings.Contains(string(b), s.Password) || !strings.Contains(string(b), key1) {
		t.Fatalf("cache file holds the password, or not the session:\n%s", b)
	}

	// The second reuses it: no login, the same session.
	c2, err := vsphere.Connect(ctx, cfg)
	if err != nil || !c2.Reused || logins != 1 {
		t.Fatalf("second: %v reused=%v logins=%d", err, c2 != nil && c2.Reused, logins)
	}
	if k := sessionKey(t, c2); k != key1 {
		t.Fatalf("second session %s, want the cached %s", k, key1)
	}
	if _, err := c2.FindVM(ctx, s.MTUUID); err != nil {
		t.Fatalf("the reused session does not work: %v", err)
	}

	// A session ended on the server (as when it expires): a new login.
	if err := session.NewManager(c2.Vim()).Logout(ctx); err != nil {
		t.Fatal(err)
	}
	c3, err := vsphere.Connect(ctx, cfg)
	if err != nil || c3.Reused || logins != 2 {
		t.Fatalf("after expiry: %v reused=%v logins=%d", err, c3 != nil && c3.Reused, logins)
	}
	key3 := sessionKey(t, c3)
	if key3 == key1 {
		t.Fatal("the ended session was reused")
	}
	b, _ = os.ReadFile(file)
	if !strings.Contains(string(b), key3) {
		t.Fatal("the new session was not cached")
	}

	// A cookie the server does not know: a new login.
	os.WriteFile(file, []byte(strings.ReplaceAll(string(b), key3, "00000000-bogus")), 0o600)
	c4, err := vsphere.Connect(ctx, cfg)
	if err != nil || c4.Reused || logins != 3 {
		t.Fatalf("invalid cookie: %v reused=%v logins=%d", err, c4 != nil && c4.Reused, logins)
	}

	// A cache file others can read is not trusted.
	os.Chmod(file, 0o644)
	c5, err := vsphere.Connect(ctx, cfg)
	if err != nil || c5.Reused || logins != 4 {
		t.Fatalf("loose file: %v reused=%v logins=%d", err, c5 != nil && c5.Reused, logins)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("rewritten with %v", fi.Mode())
	}

	// Logout ends the session and forgets it.
	if err := c5.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cache file after logout: %v", err)
	}

	// Another user's session is another file; a wrong password with no
	// cached session is refused and caches nothing.
	bad := cfg
	bad.User = "nobody"
	bad.PasswordFunc = func() (string, error) { return "wrong", nil }
	if _, err := vsphere.Connect(ctx, bad); !errors.Is(err, vsphere.ErrLogin) {
		t.Fatalf("wrong login: %v", err)
	}
	if f, _ := vsphere.SessionFile(dir, s.URL, "nobody"); f == file {
		t.Fatal("one file for two users")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files left: %v", ents)
	}

	// Without SessionDir, nothing is cached and Close logs out.
	cfg.SessionDir = ""
	c6, err := vsphere.Connect(ctx, cfg)
	if err != nil || c6.Reused {
		t.Fatal(err)
	}
	vim := c6.Vim()
	c6.Close(ctx)
	if us, _ := session.NewManager(vim).UserSession(ctx); us != nil {
		t.Fatal("Close without a cache did not log out")
	}
}
