package vsphere

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"

	"github.com/mtconsole/mtconsole/internal/atomicfile"
)

// The session cache keeps the cookie of a vCenter or ESXi session, so
// that consecutive commands reuse it instead of logging in each time.
// One file per URL and user, named by the SHA-256 of both, mode 0600 in a
// 0700 directory. It holds the cookie, the URL, the user and the server's
// certificate thumbprint; never the password. A cached cookie is sent
// only to a server showing the same certificate, and only after the pin
// check; it is validated with SessionManager.UserSession before use, and
// a session that expired or was ended is replaced by a new login.

// DefaultSessionDir is where the session cache lives:
// $XDG_CACHE_HOME/mtconsole/vsphere-sessions, or ~/.cache/… .
func DefaultSessionDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("session cache: %w", err)
	}
	return filepath.Join(d, "mtconsole", "vsphere-sessions"), nil
}

// SessionFile is the cache file of the session of user on the server at
// rawURL (as ParseURL makes it) in dir.
func SessionFile(dir, rawURL, user string) (string, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return "", err
	}
	return sessionFile(dir, u, user), nil
}

func sessionFile(dir string, u *url.URL, user string) string {
	sum := sha256.Sum256([]byte(u.String() + "\x00" + user))
	return filepath.Join(dir, hex.EncodeToString(sum[:])+".json")
}

// cachedSession is a cache file's contents.
type cachedSession struct {
	URL        string    `json:"url"`
	User       string    `json:"user"`
	Thumbprint string    `json:"thumbprint"`
	Cookie     string    `json:"cookie"`
	Saved      time.Time `json:"saved"`
}

// readSession reads a cache file; one that is not a regular file of this
// user with no group or other permission is not trusted (nil).
func readSession(path string) *cachedSession {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var cs cachedSession
	if json.Unmarshal(b, &cs) != nil || cs.Cookie == "" {
		return nil
	}
	return &cs
}

func writeSession(path string, cs cachedSession) error {
	b, err := json.MarshalIndent(cs, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := atomicfile.Write(path, append(b, '\n'), 0o600, 0o700); err != nil {
		return fmt.Errorf("session cache: %w", err)
	}
	// A directory made earlier with a looser mode is tightened.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("session cache: %w", err)
	}
	return nil
}

// resume puts the cached cookie in the client's jar and asks the server
// whether its session is still alive. It returns false, with the jar
// cleared of it, when there is nothing to reuse.
func resume(ctx context.Context, vc *vim25.Client, u *url.URL, path, user, thumbprint string) (bool, error) {
	cs := readSession(path)
	if cs == nil || cs.URL != u.String() || cs.User != user || cs.Thumbprint != thumbprint {
		return false, nil
	}
	root := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/"}
	vc.Client.Jar.SetCookies(root, []*http.Cookie{{Name: soap.SessionCookieName, Value: cs.Cookie, Path: "/"}})
	us, err := session.NewManager(vc).UserSession(ctx)
	if err != nil && (soap.IsSoapFault(err) || soap.IsVimFault(err)) {
		// A fault other than NotAuthenticated (which UserSession turns
		// into nil): the session is no good; log in anew.
		err, us = nil, nil
	}
	if err != nil {
		return false, err
	}
	if us == nil {
		// Expired or ended: forget the cookie, so that the login's
		// replaces it.
		vc.Client.Jar.SetCookies(root, []*http.Cookie{{Name: soap.SessionCookieName, Value: "", Path: "/", MaxAge: -1}})
		os.Remove(path)
		return false, nil
	}
	return true, nil
}

// saveSession writes the client's session cookie to its cache file.
func (c *Client) saveSession(u *url.URL, user string) error {
	ck := c.gc.Client.Client.SessionCookie()
	if ck == nil || ck.Value == "" {
		return errors.New("session cache: the server set no session cookie")
	}
	return writeSession(c.sessionFile, cachedSession{URL: u.String(), User: user, Thumbprint: c.Thumbprint,
		Cookie: ck.Value, Saved: time.Now().UTC()})
}

// Close ends the use of the client: a cached session is kept alive on the
// server for the next command; otherwise it logs out.
func (c *Client) Close(ctx context.Context) error {
	if c.sessionFile != "" {
		c.gc.Client.CloseIdleConnections()
		return nil
	}
	return c.Logout(ctx)
}
