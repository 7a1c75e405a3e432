package vsphere

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// ConfigFile is a vSphere connection as a file holds it (the console's
// /etc/mtconsole/vsphere.conf): TOML,
//
//	url           = "https://vc.example/sdk"
//	user          = "mt@vsphere.local"
//	password_file = "/etc/mtconsole/vsphere.pw"  # its first line is the password
//	thumbprint    = "AB:CD:…"                    # or trust_store = "…"
//
// Never the password itself. Files of the earlier format, the same keys
// with unquoted values (url = vc.example), still load.
type ConfigFile struct {
	URL          string `toml:"url"`
	User         string `toml:"user"`
	PasswordFile string `toml:"password_file"`
	Thumbprint   string `toml:"thumbprint"`
	TrustStore   string `toml:"trust_store"`
}

const confKeys = "url, user, password_file, thumbprint, trust_store"

// LoadConfig reads a connection file that no one but its owner can read
// (it names the password file). Errors name the file and, for what is
// in it, the line and the key; a file that cannot be opened is an error
// that errors.Is finds fs.ErrNotExist or fs.ErrPermission in.
func LoadConfig(path string) (ConfigFile, error) {
	var c ConfigFile
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return c, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return c, fmt.Errorf("%s: mode %04o: it names the password file; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	text := string(b)
	md, err := toml.Decode(text, &c)
	if err != nil {
		var pe toml.ParseError
		var generic map[string]any
		if _, serr := toml.Decode(text, &generic); serr != nil {
			// Not TOML: the earlier format, or a line wrong in it.
			bad := notLegacy(text)
			if bad == 0 {
				return loadLegacy(path, text)
			}
			if errors.As(serr, &pe) && pe.Position.Line != bad && notLegacy(lineAt(text, pe.Position.Line)) == 0 {
				return c, fmt.Errorf("%s:%d: want key = \"value\" (keys %s)", path, bad, confKeys)
			}
		}
		if errors.As(err, &pe) {
			return c, fmt.Errorf("%s:%d: %s (want TOML: key = \"value\", keys %s)", path, pe.Position.Line, pe.Message, confKeys)
		}
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return ConfigFile{}, confKeyErr(path, lineOf(text, und[0][0]), und[0].String())
	}
	return c, nil
}

// confKeyErr is the error of a key no connection file has.
func confKeyErr(path string, line int, key string) error {
	if key == "password" {
		return fmt.Errorf("%s:%d: no password here: give password_file, a 0600 file whose first line is the password", path, line)
	}
	return fmt.Errorf("%s:%d: unknown key %q (%s)", path, line, key, confKeys)
}

// lineOf is the line (from 1) that sets key, or heads a table named
// key; 0 when none does.
func lineOf(text, key string) int {
	for i, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "["+key+"]" {
			return i + 1
		}
		if rest, ok := strings.CutPrefix(l, key); ok && strings.HasPrefix(strings.TrimSpace(rest), "=") {
			return i + 1
		}
	}
	return 0
}

// notLegacy is the first line (from 1) of text not in the earlier
// format (blank, a # comment, or key = value); 0 when every line is.
func notLegacy(text string) int {
	for i, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if k, _, ok := strings.Cut(l, "="); !ok || strings.TrimSpace(k) == "" {
			return i + 1
		}
	}
	return 0
}

// lineAt is line n (from 1) of text.
func lineAt(text string, n int) string {
	ls := strings.Split(text, "\n")
	if n < 1 || n > len(ls) {
		return ""
	}
	return ls[n-1]
}

// loadLegacy reads the earlier format: key = value lines, the value
// unquoted or in double quotes.
func loadLegacy(path, text string) (ConfigFile, error) {
	var c ConfigFile
	for n, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
		switch k {
		case "url":
			c.URL = v
		case "user":
			c.User = v
		case "password_file":
			c.PasswordFile = v
		case "thumbprint":
			c.Thumbprint = v
		case "trust_store":
			c.TrustStore = v
		default:
			return ConfigFile{}, confKeyErr(path, n+1, k)
		}
	}
	return c, nil
}
