package protect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mtconsole/mtconsole/replication/agent"
)

// ErrBadKeys is a protection asked for with a missing or malformed key:
// a usage error, nothing was read from the process server.
var ErrBadKeys = errors.New("bad protection keys")

// keysError is an ErrBadKeys with its own message (no prefix).
type keysError struct{ msg string }

func (e *keysError) Error() string        { return e.msg }
func (e *keysError) Is(target error) bool { return target == ErrBadKeys }

func badKeys(format string, args ...any) error {
	return &keysError{fmt.Sprintf(format, args...)}
}

// Keys are a protection as the user gives it: `mtconsole protect`'s
// flags and an entry of the answers file's protect: list are both read
// into Keys, and Prepare is the one mapping from them to a Request and
// the process server to discover, so both give the same agent.toml.
type Keys struct {
	// Config is agent.toml.
	Config string
	// Root, when not "" or "/", is the tree an install writes (mtconsole
	// install --root): the trust store a first-seen certificate is pinned
	// in is read and written under it. agent.toml's paths stay the host's.
	Root string
	// PS and PassphraseFile: the process server; default agent.toml's,
	// required when there is no agent.toml.
	PS, PassphraseFile  string
	Group               string
	Map                 map[string]string // source disk → target
	Policy              Policy
	ConsistencyInterval string
	// Overwrite names the targets that may be overwritten (the typed
	// confirmation): a target's path or its base name (sdd).
	Overwrite     []string
	AllowFiles    bool
	AllowNoSCSIID bool
	// A new agent.toml's [agent] keys; "" takes the agent's default.
	JournalDir, RetentionDir, TrustStore, Socket string
}

// Prepared is what Prepare made of Keys: the request (Disks still to be
// filled from Discover) and the process server to ask.
type Prepared struct {
	Request Request
	// Server: Addr, Key, TrustStore and HostID set; the caller sets
	// Confirm and NoPin.
	Server Server
	// Socket is agent.toml's [agent] socket ("" without agent.toml or
	// when it names none).
	Socket string
}

// ParseMap reads the command line's DISK=TARGET[,DISK=TARGET] list.
func ParseMap(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, badKeys("--map is required: source disks to targets, e.g. --map sda=/dev/sdc,sdb=/dev/sdd")
	}
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		disk, target, ok := strings.Cut(strings.TrimSpace(kv), "=")
		disk, target = strings.TrimSpace(disk), strings.TrimSpace(target)
		if !ok || disk == "" || target == "" {
			return nil, badKeys("--map %q: want DISK=TARGET, e.g. sda=/dev/sdc", kv)
		}
		if _, dup := m[disk]; dup {
			return nil, badKeys("--map: source disk %s is mapped twice", disk)
		}
		m[disk] = target
	}
	return m, nil
}

func underRoot(root, p string) string {
	if root == "" || root == "/" || p == "" {
		return p
	}
	return filepath.Join(root, p)
}

// Prepare maps k to a request: the process server and passphrase from
// the keys or agent.toml, a complete new file's keys on a host without
// one, the policy and the overwrite confirmations. It reads agent.toml
// and the passphrase file and writes nothing. A missing key is
// ErrBadKeys.
func Prepare(k Keys) (*Prepared, error) {
	if k.Group == "" {
		return nil, badKeys("the group is required: the protected machine's name, e.g. web01")
	}
	if len(k.Map) == 0 {
		return nil, badKeys("the map is required: source disks to targets, e.g. sda=/dev/sdc")
	}
	for disk, target := range k.Map {
		if strings.TrimSpace(disk) == "" || strings.TrimSpace(target) == "" {
			return nil, badKeys("map %q=%q: want a source disk and its target, e.g. sda=/dev/sdc", disk, target)
		}
	}
	pr := &Prepared{Server: Server{Addr: k.PS}}
	req := &pr.Request
	*req = Request{Group: k.Group, Map: k.Map, Policy: k.Policy, ConsistencyInterval: k.ConsistencyInterval,
		AllowFiles: k.AllowFiles, AllowNoSCSIID: k.AllowNoSCSIID, Overwrite: map[string]string{}}
	for _, name := range k.Overwrite {
		name = strings.TrimSpace(name)
		for _, t := range k.Map {
			if name == t || name == filepath.Base(t) {
				req.Overwrite[t] = name
			}
		}
	}
	passFile := k.PassphraseFile
	_, err := os.Stat(k.Config)
	switch {
	case err == nil:
		fc, err := agent.LoadConfig(k.Config)
		if err != nil {
			return nil, err
		}
		if pr.Server.Addr == "" {
			pr.Server.Addr = fc.ProcessServer.Address
		}
		if passFile == "" {
			passFile = fc.ProcessServer.PassphraseFile
		}
		pr.Server.TrustStore, pr.Server.HostID = underRoot(k.Root, fc.Agent.TrustStore), fc.Agent.HostID
		pr.Socket = fc.Agent.Socket
		req.PSAddr = pr.Server.Addr
	case errors.Is(err, fs.ErrNotExist):
		if k.PS == "" || k.PassphraseFile == "" {
			return nil, badKeys("%s does not exist: give the process server (--ps HOST:PORT) and its passphrase file (--passphrase-file FILE) to write a new one", k.Config)
		}
		_, _, trust, err := Defaults()
		if err != nil {
			return nil, err
		}
		if k.TrustStore != "" {
			trust = k.TrustStore
		}
		pr.Server.TrustStore = underRoot(k.Root, trust)
		req.Fresh = Fresh{PSAddr: k.PS, PassphraseFile: k.PassphraseFile, JournalDir: k.JournalDir, RetentionDir: k.RetentionDir,
			TrustStore: k.TrustStore, Socket: k.Socket}
	default:
		return nil, err
	}
	if pr.Server.Key, err = KeyFromFile(passFile); err != nil {
		return nil, err
	}
	return pr, nil
}

// Chain makes plans, each made on the previous one's New (several
// groups at once), one plan to Apply: the first's old file, the last's
// new one, so they are written together or not at all.
func Chain(plans []*Plan) *Plan {
	if len(plans) == 0 {
		return nil
	}
	first, last := plans[0], *plans[len(plans)-1]
	last.Path, last.Fresh, last.Old, last.mode = first.Path, first.Fresh, first.Old, first.mode
	last.Pairs = nil
	for _, p := range plans {
		last.Pairs = append(last.Pairs, p.Pairs...)
	}
	return &last
}
