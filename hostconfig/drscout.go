package hostconfig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Where the original product kept its settings and passphrase.
const (
	DefaultDrscoutPath   = "/usr/local/ASR/Vx/etc/drscout.conf"
	DefaultOldPassphrase = "/usr/local/InMage/private/connection.passphrase"
	drscoutTransport     = "vxagent.transport"
	drscoutAgent         = "vxagent"
	drscoutRequiredHost  = "[vxagent.transport] Hostname"
)

// ErrDrscout is a drscout.conf that cannot be imported; the message names
// the file, the line or the missing key.
var ErrDrscout = errors.New("drscout.conf")

// Drscout is what an original drscout.conf holds that this host's config
// takes over.
type Drscout struct {
	File           string
	CSHost         string
	CSPort         int // DefaultPort when missing
	HTTPS          bool
	HostID         string // "" when missing or not a UUID (the template's dummy)
	Role           string // "" when missing
	UseNATHostname bool
	NATHostname    string
	UseNATIP       bool
	NATIP          string
	CacheDir       string
	LogLevel       int // -1 when missing
	RemoteLogLevel int // -1 when missing
	// Missing lists the keys that were not there ("[section] Key"), so the
	// admin sees what was left at its default.
	Missing []string
}

// ParseDrscout reads a drscout.conf (INI, "Key = Value" with any spacing,
// sections written "[name]" or "[ name ]", keys matched ignoring case).
// Hostname in [vxagent.transport] is required: without it there is
// nothing to import.
func ParseDrscout(name string, data []byte) (Drscout, error) {
	vals := map[string]string{} // "section key" lower case → value
	lines := map[string]int{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return Drscout{}, fmt.Errorf("%w %s:%d: %q: a section header is [name]", ErrDrscout, name, n, line)
			}
			section = strings.ToLower(strings.TrimSpace(line[1:end]))
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Drscout{}, fmt.Errorf("%w %s:%d: %q: want Key = Value", ErrDrscout, name, n, line)
		}
		key := section + " " + strings.ToLower(strings.TrimSpace(k))
		vals[key] = strings.Trim(strings.TrimSpace(v), `"`)
		lines[key] = n
	}
	if err := sc.Err(); err != nil {
		return Drscout{}, fmt.Errorf("%w %s: %w", ErrDrscout, name, err)
	}
	d := Drscout{File: name, CSPort: DefaultPort, LogLevel: -1, RemoteLogLevel: -1}
	get := func(section, key string) (string, int, bool) {
		k := section + " " + strings.ToLower(key)
		v, ok := vals[k]
		if !ok {
			d.Missing = append(d.Missing, "["+section+"] "+key)
		}
		return v, lines[k], ok
	}
	bad := func(n int, section, key, v, want string) error {
		return fmt.Errorf("%w %s:%d: [%s] %s = %q: %s", ErrDrscout, name, n, section, key, v, want)
	}
	v, n, ok := get(drscoutTransport, "Hostname")
	if !ok || v == "" {
		return Drscout{}, fmt.Errorf("%w %s: no %s: nothing to import (enter the configuration server yourself)", ErrDrscout, name, drscoutRequiredHost)
	}
	if err := ValidateHost(v); err != nil {
		return Drscout{}, bad(n, drscoutTransport, "Hostname", v, err.Error())
	}
	d.CSHost = v
	if v, n, ok := get(drscoutTransport, "Port"); ok {
		p, err := ParsePort(v)
		if err != nil {
			return Drscout{}, bad(n, drscoutTransport, "Port", v, "want a port 1-65535")
		}
		d.CSPort = p
	}
	if v, n, ok := get(drscoutTransport, "Https"); ok {
		b, err := parseBool(v)
		if err != nil {
			return Drscout{}, bad(n, drscoutTransport, "Https", v, "want 0 or 1")
		}
		d.HTTPS = b
	} else {
		d.HTTPS = d.CSPort == 443
	}
	if v, _, ok := get(drscoutAgent, "HostId"); ok && validUUID(v) {
		d.HostID = strings.ToLower(v)
	}
	if v, _, ok := get(drscoutAgent, "Role"); ok {
		switch strings.ToLower(v) {
		case "mastertarget":
			d.Role = RoleMasterTarget
		case "agent":
			// a mobility-service source: not a role of this product's
			// registration; keep the master target default
		}
	}
	flag := func(key string) bool {
		v, _, ok := get(drscoutAgent, key)
		b, err := parseBool(v)
		return ok && err == nil && b
	}
	d.UseNATHostname = flag("UseConfiguredHostname")
	d.NATHostname, _, _ = get(drscoutAgent, "ConfiguredHostname")
	d.UseNATIP = flag("UseConfiguredIpAddress")
	d.NATIP, _, _ = get(drscoutAgent, "ConfiguredIpAddress")
	if d.UseNATIP && d.NATIP == "" {
		d.UseNATIP = false
	}
	if d.UseNATHostname && d.NATHostname == "" {
		d.UseNATHostname = false
	}
	d.CacheDir, _, _ = get(drscoutAgent, "CacheDirectory")
	for _, lv := range []struct {
		key string
		max int
		to  *int
	}{{"LogLevel", MaxLogLevel, &d.LogLevel}, {"RemoteLogLevel", MaxRemoteLevel, &d.RemoteLogLevel}} {
		if v, n, ok := get(drscoutAgent, lv.key); ok {
			l, err := strconv.Atoi(v)
			if err != nil || l < 0 || l > lv.max {
				return Drscout{}, bad(n, drscoutAgent, lv.key, v, fmt.Sprintf("want 0-%d", lv.max))
			}
			*lv.to = l
		}
	}
	return d, nil
}

// LoadDrscout reads and parses the drscout.conf at path.
func LoadDrscout(path string) (Drscout, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Drscout{}, fmt.Errorf("%w: %w", ErrDrscout, err)
	}
	return ParseDrscout(path, b)
}

// Apply copies what d holds into c and records d's file as imported (so
// the import is offered once). A host id already in c is kept: it is this
// host's identity from now on.
func (d Drscout) Apply(c *Config) {
	c.CSHost, c.CSPort, c.HTTPS = d.CSHost, d.CSPort, d.HTTPS
	if c.HostID == "" {
		c.HostID = d.HostID
	}
	if d.Role != "" {
		c.Role = d.Role
	}
	c.UseNATHostname, c.NATHostname = d.UseNATHostname, d.NATHostname
	c.UseNATIP, c.NATIP = d.UseNATIP, d.NATIP
	if d.CacheDir != "" && strings.HasPrefix(d.CacheDir, "/") {
		c.CacheDir = strings.TrimSuffix(d.CacheDir, "/")
		if c.CacheDir == "" {
			c.CacheDir = "/"
		}
	}
	if d.LogLevel >= 0 {
		c.LogLevel = d.LogLevel
	}
	if d.RemoteLogLevel >= 0 {
		c.RemoteLogLevel = d.RemoteLogLevel
	}
	c.Imported = d.File
}
