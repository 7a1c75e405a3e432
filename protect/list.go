package protect

import (
	"github.com/mtconsole/mtconsole/internal/units"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// Listing is the protection of this host: agent.toml's groups and pairs,
// with the running agent's state of each pair when it answered.
type Listing struct {
	Config        string        `json:"config"`
	ProcessServer string        `json:"process_server"`
	Agent         bool          `json:"agent"` // live state is from a running agent
	Groups        []ListedGroup `json:"groups"`
}

// ListedGroup is a protected machine: a [[group]], or a pair in none
// (a group of its own, named by its id).
type ListedGroup struct {
	Name                string `json:"name"`
	Declared            bool   `json:"declared"` // a [[group]] table
	ConsistencyInterval string `json:"consistency_interval,omitempty"`
	// AppConsistent is the group's application-consistent interval as
	// the process server reports it, for people: "every 1h (reported by
	// the process server)", "none reported", or not known without an
	// agent connected.
	AppConsistent string       `json:"app_consistent"`
	Pairs         []ListedPair `json:"pairs"`
}

// ListedPair is a pair with its effective policy (defaults, then its
// group's, then its own: the agent's reading) and live state.
type ListedPair struct {
	ID           string `json:"id"`
	Disk         string `json:"disk"`
	Target       string `json:"target"`
	Retention    string `json:"retention"`
	SizeCapMB    int64  `json:"size_cap_mb"`
	OnFull       string `json:"on_full"`
	RPOThreshold string `json:"rpo_threshold"`
	// AlertThresholdPercent is the low-space trigger of its group, in
	// percent of the retention volume.
	AlertThresholdPercent float64 `json:"alert_threshold_percent"`
	State                 string  `json:"state,omitempty"`  // from the agent: Queued, Resync Step I, ...
	Health                string  `json:"health,omitempty"` // from the agent
	Reason                string  `json:"reason,omitempty"`
	RPOSeconds            float64 `json:"rpo_seconds,omitempty"`
	Running               bool    `json:"running"` // the agent runs this pair
	// AppConsistentInterval is the source's application-consistent
	// interval as the process server reports it ("1h"; "" none
	// reported); AppConsistentKnown is false without a running agent
	// connected to the process server.
	AppConsistentInterval string `json:"app_consistent_interval"`
	AppConsistentKnown    bool   `json:"app_consistent_known"`
}

// List reads the agent.toml at path; st, when not nil, is the running
// agent's status.
func List(path string, st *api.Status) (*Listing, error) {
	fc, err := agent.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	cc := fc.ClientConfig()
	l := &Listing{Config: path, ProcessServer: cc.Addr, Agent: st != nil}
	live := map[string]api.PairStatus{}
	if st != nil {
		for _, p := range st.Pairs {
			live[p.ID] = p
		}
	}
	index := map[string]int{}
	for _, g := range cc.Groups {
		index[g.Name] = len(l.Groups)
		lg := ListedGroup{Name: g.Name, Declared: true, Pairs: []ListedPair{}}
		if g.ConsistencyInterval > 0 {
			lg.ConsistencyInterval = units.ConfigDuration(g.ConsistencyInterval)
		}
		l.Groups = append(l.Groups, lg)
	}
	for _, p := range cc.Pairs {
		i, ok := index[p.Group]
		if !ok {
			i = len(l.Groups)
			index[p.Group] = i
			l.Groups = append(l.Groups, ListedGroup{Name: p.Group})
		}
		lp := ListedPair{ID: p.ID, Disk: p.Disk, Target: p.Target, Retention: units.ConfigDuration(p.Policy.Window), SizeCapMB: p.Policy.SizeCap >> 20,
			OnFull: string(p.Policy.OnFull), RPOThreshold: units.ConfigDuration(p.RPOThreshold), AlertThresholdPercent: p.AlertPercent}
		if s, ok := live[p.ID]; ok {
			lp.Running, lp.State, lp.Health, lp.Reason, lp.RPOSeconds = true, s.State, s.Health, s.Reason, s.RPOSeconds
			if a := s.AppConsistentSeconds; a != nil {
				lp.AppConsistentKnown = true
				if *a > 0 {
					lp.AppConsistentInterval = units.ConfigDuration(time.Duration(*a * float64(time.Second)))
				}
			}
		}
		l.Groups[i].Pairs = append(l.Groups[i].Pairs, lp)
	}
	for i := range l.Groups {
		l.Groups[i].AppConsistent = appConsistentListed(l.Groups[i].Pairs)
	}
	return l, nil
}

// Defaults are the agent's [agent] settings when a file leaves them out
// (agent.LoadConfig's, read from it): what a host without agent.toml uses.
func Defaults() (journalDir, retentionDir, trustStore string, err error) {
	dir, err := os.MkdirTemp("", "mtconsole-protect-")
	if err != nil {
		return "", "", "", err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "agent.toml")
	text := "[process_server]\naddress = \"x:1\"\npassphrase_file = \"/x\"\n[[pair]]\ndisk = \"d\"\ntarget = \"/t\"\n"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		return "", "", "", err
	}
	fc, err := agent.LoadConfig(p)
	if err != nil {
		return "", "", "", err
	}
	return fc.Agent.JournalDir, fc.Agent.RetentionDir, fc.Agent.TrustStore, nil
}

// appConsistentListed is a group's application-consistent interval for
// people: one for all its pairs, or each pair's.
func appConsistentListed(ps []ListedPair) string {
	text := func(p ListedPair) string {
		if !p.AppConsistentKnown {
			return "not known (no agent connected to the process server)"
		}
		return AppConsistentText(p.AppConsistentInterval)
	}
	if len(ps) == 0 {
		return text(ListedPair{})
	}
	same := true
	for _, p := range ps {
		same = same && text(p) == text(ps[0])
	}
	if same {
		return text(ps[0])
	}
	var parts []string
	for _, p := range ps {
		parts = append(parts, p.Disk+" "+text(p))
	}
	return strings.Join(parts, "; ")
}
