package hostconfig

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/mtconsole/mtconsole/internal/atomicfile"
	"github.com/mtconsole/mtconsole/internal/units"
)

// DefaultConfigPath is where the host config lives unless a flag says
// otherwise. The passphrase and the trust file sit beside it (see Paths).
const DefaultConfigPath = "/etc/mtconsole/host.conf"

// DefaultPort and DefaultCacheDir are the values of a fresh config.
const (
	DefaultPort     = 443
	DefaultCacheDir = "/var/lib/mtconsole"
)

// Roles a host registers with; the names are the original's drscout.conf
// values (Role=MasterTarget), plus the process server.
const (
	RoleMasterTarget  = "MasterTarget"
	RoleProcessServer = "ProcessServer"
)

// Limits of the fields, the original's.
const (
	MaxHostLen     = 255
	MaxLogLevel    = 7
	MaxRemoteLevel = 3
)

// ErrConfig is a config file that cannot be read as one; errors.As gives
// a *ConfigError with its file, line and key.
var ErrConfig = errors.New("host config")

// ConfigError is a bad line of the config file.
type ConfigError struct {
	File string
	Line int    // 1-based; 0 when the whole file is concerned
	Key  string // "section.key", or "" for a line that is no key
	Msg  string // what was wrong and what to write instead
}

func (e *ConfigError) Error() string {
	where := e.File
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("host config %s: %s: %s", where, e.Key, e.Msg)
	}
	return fmt.Sprintf("host config %s: %s", where, e.Msg)
}

// Is matches ErrConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// Config is the host's registration settings. On disk it is a small INI
// file, one "key = value" a line under the sections below; '#' starts a
// comment line; booleans are yes/no (also true/false, 1/0); unknown
// sections and keys are refused (a typo must not silently mean a default):
//
//	[cs]
//	host = 10.0.0.4          # configuration server, FQDN or IP, up to 255 characters
//	port = 443               # 1-65535
//	https = yes
//
//	[host]
//	id = 7c9e6679-7425-40de-944b-e07fc1f90ae7   # made once, never changed
//	role = MasterTarget      # MasterTarget or ProcessServer
//	data_addr =              # a process server: where master targets dial it
//	data_fingerprint =       # a process server: its data certificate
//	imported =               # the drscout.conf already imported (offered once)
//
//	[nat]
//	use_hostname = no        # advertise hostname instead of the real one
//	hostname =
//	use_ip = no              # advertise ip instead of the real addresses
//	ip =
//
//	[agent]
//	cache_dir = /var/lib/mtconsole
//
//	[logging]
//	level = 3                # 0-7, a syslog severity: the agent logs records this severe or worse (3 error, 4 warning, 6 info, 7 debug)
//	remote_level = 3         # 0-3
type Config struct {
	CSHost                    string
	CSPort                    int
	HTTPS                     bool
	HostID                    string
	Role                      string
	DataAddr, DataFingerprint string
	Imported                  string

	UseNATHostname bool
	NATHostname    string
	UseNATIP       bool
	NATIP          string

	CacheDir       string
	LogLevel       int
	RemoteLogLevel int
}

// Default is a fresh config: port 443, HTTPS, master target, level 3.
func Default() Config {
	return Config{CSPort: DefaultPort, HTTPS: true, Role: RoleMasterTarget, CacheDir: DefaultCacheDir,
		LogLevel: 3, RemoteLogLevel: 3}
}

// CSAddr is the configuration server's host:port, or "" when unset.
func (c Config) CSAddr() string {
	if c.CSHost == "" {
		return ""
	}
	return net.JoinHostPort(c.CSHost, strconv.Itoa(c.CSPort))
}

// Validate checks every field and returns the first problem as a
// *FieldError naming the field.
func (c Config) Validate() error {
	if c.CSHost != "" {
		if err := ValidateHost(c.CSHost); err != nil {
			return &FieldError{Field: "cs.host", Err: err}
		}
	}
	if err := ValidatePort(c.CSPort); err != nil {
		return &FieldError{Field: "cs.port", Err: err}
	}
	if c.HostID != "" && !validUUID(c.HostID) {
		return &FieldError{Field: "host.id", Err: fmt.Errorf("%q is not a UUID", c.HostID)}
	}
	if c.Role != RoleMasterTarget && c.Role != RoleProcessServer {
		return &FieldError{Field: "host.role", Err: fmt.Errorf("%q: want %s or %s", c.Role, RoleMasterTarget, RoleProcessServer)}
	}
	if c.UseNATHostname {
		if c.NATHostname == "" {
			return &FieldError{Field: "nat.hostname", Err: errors.New("empty while the fixed NAT hostname is enabled: enter one or disable it")}
		}
		if err := ValidateHost(c.NATHostname); err != nil {
			return &FieldError{Field: "nat.hostname", Err: err}
		}
	}
	if c.UseNATIP {
		if c.NATIP == "" {
			return &FieldError{Field: "nat.ip", Err: errors.New("empty while the fixed NAT IP address is enabled: enter one or disable it")}
		}
		if net.ParseIP(c.NATIP) == nil {
			return &FieldError{Field: "nat.ip", Err: fmt.Errorf("%q is not an IP address", c.NATIP)}
		}
	}
	if c.CacheDir == "" || !filepath.IsAbs(c.CacheDir) {
		return &FieldError{Field: "agent.cache_dir", Err: fmt.Errorf("%q: want an absolute path", c.CacheDir)}
	}
	if c.LogLevel < 0 || c.LogLevel > MaxLogLevel {
		return &FieldError{Field: "logging.level", Err: fmt.Errorf("%d: want 0-%d", c.LogLevel, MaxLogLevel)}
	}
	if c.RemoteLogLevel < 0 || c.RemoteLogLevel > MaxRemoteLevel {
		return &FieldError{Field: "logging.remote_level", Err: fmt.Errorf("%d: want 0-%d", c.RemoteLogLevel, MaxRemoteLevel)}
	}
	return nil
}

// FieldError is a bad value of one field; the screen shows it under that
// field.
type FieldError struct {
	Field string // section.key, as in the file
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Errors of the field checks.
var (
	ErrBadHost = errors.New("not a host name or IP address")
	ErrBadPort = errors.New("not a valid port")
)

// ValidateHost accepts an IP address or a DNS name of at most 255
// characters (labels of 1-63 letters, digits and hyphens, not starting or
// ending with a hyphen; a trailing dot is allowed).
func ValidateHost(h string) error {
	if h == "" {
		return fmt.Errorf("%w: FQDN or IP address is empty", ErrBadHost)
	}
	if len(h) > MaxHostLen {
		return fmt.Errorf("%w: %d characters, at most %d", ErrBadHost, len(h), MaxHostLen)
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%w: %q: each dot-separated label needs 1-63 characters and may not start or end with '-'", ErrBadHost, h)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%w: %q: %q is not allowed (letters, digits, '-' and '.')", ErrBadHost, h, r)
			}
		}
	}
	return nil
}

// ValidatePort accepts 1-65535.
func ValidatePort(p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%w: %d, want 1-65535", ErrBadPort, p)
	}
	return nil
}

// ParsePort reads a port number.
func ParsePort(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%w: %q, want a number 1-65535", ErrBadPort, s)
	}
	return p, ValidatePort(p)
}

// SplitCSAddr reads HOST, HOST:PORT or [IPv6]:PORT; the port is
// defaultPort when absent.
func SplitCSAddr(s string, defaultPort int) (host string, port int, err error) {
	s = strings.TrimSpace(s)
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		// no port (or a bare IPv6 address)
		host, ps = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), ""
	}
	port = defaultPort
	if ps != "" {
		if port, err = ParsePort(ps); err != nil {
			return "", 0, err
		}
	}
	if err := ValidateHost(host); err != nil {
		return "", 0, err
	}
	return host, port, ValidatePort(port)
}

// NewHostID makes a random (version 4) UUID.
func NewHostID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// configKeys maps "section.key" to a setter, for Parse.
var configKeys = map[string]func(c *Config, v string) error{
	"cs.host": func(c *Config, v string) error {
		if v == "" {
			c.CSHost = ""
			return nil
		}
		if err := ValidateHost(v); err != nil {
			return err
		}
		c.CSHost = v
		return nil
	},
	"cs.port": func(c *Config, v string) (err error) { c.CSPort, err = ParsePort(v); return err },
	"cs.https": func(c *Config, v string) (err error) {
		c.HTTPS, err = parseBool(v)
		return err
	},
	"host.id": func(c *Config, v string) error {
		if v != "" && !validUUID(v) {
			return fmt.Errorf("%q is not a UUID (8-4-4-4-12 hex digits); delete the line to have one made", v)
		}
		c.HostID = strings.ToLower(v)
		return nil
	},
	"host.role": func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "mastertarget", "mt", "master target":
			c.Role = RoleMasterTarget
		case "processserver", "ps", "process server":
			c.Role = RoleProcessServer
		default:
			return fmt.Errorf("%q: want %s or %s", v, RoleMasterTarget, RoleProcessServer)
		}
		return nil
	},
	"host.data_addr":        func(c *Config, v string) error { c.DataAddr = v; return nil },
	"host.data_fingerprint": func(c *Config, v string) error { c.DataFingerprint = v; return nil },
	"host.imported":         func(c *Config, v string) error { c.Imported = v; return nil },
	"nat.use_hostname":      func(c *Config, v string) (err error) { c.UseNATHostname, err = parseBool(v); return err },
	"nat.hostname":          func(c *Config, v string) error { c.NATHostname = v; return nil },
	"nat.use_ip":            func(c *Config, v string) (err error) { c.UseNATIP, err = parseBool(v); return err },
	"nat.ip": func(c *Config, v string) error {
		if v != "" && net.ParseIP(v) == nil {
			return fmt.Errorf("%q is not an IP address", v)
		}
		c.NATIP = v
		return nil
	},
	"agent.cache_dir": func(c *Config, v string) error {
		if !filepath.IsAbs(v) {
			return fmt.Errorf("%q: want an absolute path", v)
		}
		c.CacheDir = v
		return nil
	},
	"logging.level": func(c *Config, v string) (err error) { c.LogLevel, err = parseLevel(v, MaxLogLevel); return err },
	"logging.remote_level": func(c *Config, v string) (err error) {
		c.RemoteLogLevel, err = parseLevel(v, MaxRemoteLevel)
		return err
	},
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "y", "true", "1", "on":
		return true, nil
	case "no", "n", "false", "0", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q: want yes or no", v)
}

func parseLevel(v string, max int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > max {
		return 0, fmt.Errorf("%q: want a level 0-%d", v, max)
	}
	return n, nil
}

// Parse reads a config file's contents; name is the file, for errors.
// Keys not in the file keep their Default values.
func Parse(name string, data []byte) (Config, error) {
	c := Default()
	section := ""
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return Config{}, &ConfigError{File: name, Line: n, Msg: fmt.Sprintf("%q: a section header is [name]", line)}
			}
			section = strings.ToLower(strings.TrimSpace(line[1 : len(line)-1]))
			switch section {
			case "cs", "host", "nat", "agent", "logging":
			default:
				return Config{}, &ConfigError{File: name, Line: n, Msg: fmt.Sprintf("unknown section [%s]: the sections are [cs], [host], [nat], [agent], [logging]", section)}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Config{}, &ConfigError{File: name, Line: n, Msg: fmt.Sprintf("%q: want key = value", line)}
		}
		if section == "" {
			return Config{}, &ConfigError{File: name, Line: n, Msg: "key before any [section]"}
		}
		key := section + "." + strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		// a trailing comment, as in the documented example
		if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		set, ok := configKeys[key]
		if !ok {
			return Config{}, &ConfigError{File: name, Line: n, Key: key, Msg: "unknown key (see mtconsole register --help for the format)"}
		}
		if prev, dup := seen[key]; dup {
			return Config{}, &ConfigError{File: name, Line: n, Key: key, Msg: fmt.Sprintf("set twice (first on line %d): keep one", prev)}
		}
		seen[key] = n
		if err := set(&c, v); err != nil {
			return Config{}, &ConfigError{File: name, Line: n, Key: key, Msg: err.Error()}
		}
	}
	if err := sc.Err(); err != nil {
		return Config{}, &ConfigError{File: name, Msg: err.Error()}
	}
	if err := c.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return Config{}, &ConfigError{File: name, Line: seen[fe.Field], Key: fe.Field, Msg: fe.Err.Error()}
		}
		return Config{}, &ConfigError{File: name, Msg: err.Error()}
	}
	return c, nil
}

// Marshal is the file form of c, commented.
func (c Config) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("# mtconsole host configuration, written by mtconsole hostconfig / register.\n")
	b.WriteString("# One \"key = value\" a line; booleans yes/no. See `mtconsole register --help`.\n\n")
	fmt.Fprintf(&b, "[cs]\n# the configuration server: FQDN or IP (up to 255 characters), port 1-65535\nhost = %s\nport = %d\nhttps = %s\n\n",
		c.CSHost, c.CSPort, units.YesNo(c.HTTPS))
	fmt.Fprintf(&b, "[host]\n# made once; the configuration server knows this host by it\nid = %s\nrole = %s\n", c.HostID, c.Role)
	fmt.Fprintf(&b, "data_addr = %s\ndata_fingerprint = %s\nimported = %s\n\n", c.DataAddr, c.DataFingerprint, c.Imported)
	fmt.Fprintf(&b, "[nat]\n# fixed name / address to advertise instead of this host's own\nuse_hostname = %s\nhostname = %s\nuse_ip = %s\nip = %s\n\n",
		units.YesNo(c.UseNATHostname), c.NATHostname, units.YesNo(c.UseNATIP), c.NATIP)
	fmt.Fprintf(&b, "[agent]\n# cache and retention; changing it means moving the data (stop the agent first)\ncache_dir = %s\n\n", c.CacheDir)
	fmt.Fprintf(&b, "[logging]\n# level 0-7, remote_level 0-3\nlevel = %d\nremote_level = %d\n", c.LogLevel, c.RemoteLogLevel)
	// an empty value is written "key =", without a trailing space
	return bytes.ReplaceAll(b.Bytes(), []byte(" = \n"), []byte(" =\n"))
}

// Load reads the config file at path. A missing file is fs.ErrNotExist
// (wrapped); use LoadOrDefault to start from defaults.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("host config: %w", err)
	}
	return Parse(path, data)
}

// LoadOrDefault is Load, or Default when the file does not exist yet.
func LoadOrDefault(path string) (Config, error) {
	c, err := Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	return c, err
}

// Save validates c and writes it to path atomically, mode 0600, under the
// config's lock.
func Save(path string, c Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("host config %s: %w", path, err)
	}
	unlock, err := lockFile(path)
	if err != nil {
		return err
	}
	defer unlock()
	return atomicfile.Write(path, c.Marshal(), 0o600, 0o700)
}

// Update reads the config at path (or Default), lets fn change it, gives
// it a host id if it has none (made once, kept from then on), and writes
// it back, all under the config's lock, so two writers never lose each
// other's change. Nothing is written when fn or the validation fails.
func Update(path string, fn func(*Config) error) (Config, error) {
	unlock, err := lockFile(path)
	if err != nil {
		return Config{}, err
	}
	defer unlock()
	c, err := LoadOrDefault(path)
	if err != nil {
		return Config{}, err
	}
	if err := fn(&c); err != nil {
		return Config{}, err
	}
	if c.HostID == "" {
		c.HostID = NewHostID()
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("host config %s: %w", path, err)
	}
	if err := atomicfile.Write(path, c.Marshal(), 0o600, 0o700); err != nil {
		return Config{}, fmt.Errorf("host config %s: %w", path, err)
	}
	return c, nil
}

// lockFile takes an exclusive flock on path+".lock" (the original's
// drscout.conf.lck) and returns its release.
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("host config: %w", err)
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("host config: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("host config: lock %s: %w", f.Name(), err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
