// Package console is the console's Protect and Unprotect screens on
// package protect: tui.Protector implemented with the calls mtconsole
// protect and mtconsole unprotect make, for one agent.toml and the agent
// behind its socket. It holds no rule of its own: discovery, target rules,
// plans and the reload are protect's, setup's and the agent's.
package console

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/setup"
	"github.com/mtconsole/mtconsole/tui"
)

// Protector is the console's Protect and Unprotect screens on package
// protect: the calls `mtconsole protect` and `unprotect` make, for the
// agent.toml at Config.
type Protector struct {
	Config string
	Socket string // the agent's socket when agent.toml names none
	// AllowFiles allows regular files as targets (the demo's).
	AllowFiles bool
	// FileTargets, when set, is where file targets lie (the demo's
	// DIR/targets): a source disk NAME whose free NAME.img is there gets
	// it suggested.
	FileTargets string
	// Env is the host the target rules look at (nil: this host).
	Env *setup.Env
	// Reload asks the agent to start the new pairs (nil: protect.ReloadAgent).
	Reload func(ctx context.Context, socket string) ([]string, error)
	// ReloadRemove asks the agent to stop the pairs taken out, purging
	// their retention when told (nil: protect.ReloadAgentRemove).
	ReloadRemove func(ctx context.Context, socket string, purge bool) ([]string, error)
}

var _ tui.Protector = (*Protector)(nil)

// file is agent.toml, nil when there is none (or it has an error: the
// plan says so).
func (c *Protector) file() *agent.FileConfig {
	if _, err := os.Stat(c.Config); err != nil {
		return nil
	}
	fc, err := agent.LoadConfig(c.Config)
	if err != nil {
		return nil
	}
	return fc
}

func (c *Protector) hostEnv() *setup.Env {
	if c.Env != nil {
		return c.Env
	}
	return &setup.Env{Root: "/"}
}

// Defaults: agent.toml's process server and [defaults] policy (the
// agent's own without a file, or for what [defaults] leaves out).
func (c *Protector) Defaults() tui.ProtectDefaults {
	var d tui.ProtectDefaults
	fc := c.file()
	if fc != nil {
		d.Addr, d.PassFile = fc.ProcessServer.Address, fc.ProcessServer.PassphraseFile
	} else {
		fc = &agent.FileConfig{}
	}
	pol, rpo := fc.DefaultPolicy()
	d.Retention, d.SizeCapMB, d.OnFull, d.RPOThreshold = pol.Window, pol.SizeCap>>20, string(pol.OnFull), rpo
	d.AlertPercent = fc.DefaultAlert()
	d.Sparse = journal.FormatTiers(pol.Tiers)
	return d
}

func (c *Protector) Discover(ctx context.Context, addr, passFile, trust string) (*tui.PSDiscovery, error) {
	key, err := protect.KeyFromFile(passFile)
	if err != nil {
		return nil, err
	}
	srv := protect.Server{Addr: addr, Key: key}
	fc := c.file()
	if fc != nil {
		srv.TrustStore, srv.HostID = fc.Agent.TrustStore, fc.Agent.HostID
	} else if _, _, srv.TrustStore, err = protect.Defaults(); err != nil {
		return nil, err
	}
	var seen wire.Fingerprint
	srv.Confirm = func(_ string, fp wire.Fingerprint) bool {
		seen = fp
		return trust != "" && fp.String() == trust
	}
	d, err := protect.Discover(ctx, srv)
	if errors.Is(err, protect.ErrUntrusted) && !seen.IsZero() {
		return nil, &tui.UntrustedError{Addr: protect.NormAddr(addr), Fingerprint: seen.String(), TrustStore: srv.TrustStore}
	}
	if err != nil {
		return nil, err
	}
	paired := map[string]string{}
	if fc != nil && protect.NormAddr(fc.ProcessServer.Address) == d.Addr {
		for _, p := range fc.Pairs {
			paired[p.Disk] = p.ID
		}
	}
	out := &tui.PSDiscovery{Addr: d.Addr, HostName: d.HostName, Fingerprint: d.Fingerprint.String(), FirstUse: d.FirstUse}
	for _, x := range d.Disks {
		out.Disks = append(out.Disks, tui.PSDisk{Name: x.Name, Size: x.Size, BlockSize: x.BlockSize, Paired: paired[x.Name], AppConsistent: x.AppConsistentInterval})
	}
	return out, nil
}

// inUse are agent.toml's targets and the agent's directories, as
// MakePlan gives them to the rules.
func (c *Protector) inUse() (targets []string, dirs []string) {
	if fc := c.file(); fc != nil {
		for _, p := range fc.Pairs {
			targets = append(targets, p.Target)
		}
		return targets, []string{fc.Agent.JournalDir, fc.Agent.RetentionDir}
	}
	if j, r, _, err := protect.Defaults(); err == nil {
		dirs = []string{j, r}
	}
	return nil, dirs
}

func (c *Protector) Suggest(_ context.Context, disks []tui.PSDisk) map[string]string {
	targets, dirs := c.inUse()
	inUse := map[string]string{}
	for _, t := range targets {
		inUse[t] = "in agent.toml"
	}
	var src []setup.TargetRequest
	for _, d := range disks {
		src = append(src, setup.TargetRequest{SourceName: d.Name, SourceSize: d.Size, SourceBlockSize: d.BlockSize,
			AllowFiles: c.AllowFiles, InUse: inUse, RetentionDirs: dirs})
	}
	out := setup.SuggestTargets(c.hostEnv(), src)
	if c.AllowFiles && c.FileTargets != "" {
		for _, r := range src {
			f := filepath.Join(c.FileTargets, r.SourceName+".img")
			if _, done := out[r.SourceName]; done {
				continue
			}
			r.Path = f
			if v := setup.CheckTarget(c.hostEnv(), r); v.OK {
				out[r.SourceName] = f
			}
		}
	}
	return out
}

func (c *Protector) Check(_ context.Context, d tui.PSDisk, target, overwrite string) tui.TargetCheck {
	targets, dirs := c.inUse()
	v := protect.SetupTarget(c.hostEnv())(protect.TargetCheck{Path: target, SourceName: d.Name, SourceSize: d.Size,
		SourceBlockSize: d.BlockSize, AllowFiles: c.AllowFiles, Overwrite: overwrite, InUse: targets, RetentionDirs: dirs})
	return tui.TargetCheck{OK: v.OK, Reason: v.Reason, Confirm: v.Confirm}
}

func (c *Protector) Plan(ctx context.Context, r tui.ProtectRequest) (*tui.ProtectPlan, error) {
	req := protect.Request{Group: r.Group, Map: r.Map, Overwrite: r.Overwrite, AllowFiles: c.AllowFiles,
		ConsistencyInterval: r.ConsistencyInterval,
		Policy:              protect.Policy{Retention: r.Retention, OnFull: r.OnFull, RPOThreshold: r.RPOThreshold}}
	if s := strings.TrimSpace(r.SizeCapMB); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return &tui.ProtectPlan{Refusals: []tui.ProtectRefusal{{Reason: fmt.Sprintf("size cap MB %q: give a whole number of MB, 0 for none", s)}}}, nil
		}
		req.Policy.SizeCapMB = &n
	}
	if s := strings.TrimSpace(r.AlertPercent); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err == nil {
			err = agent.CheckAlertPercent(v)
		} else {
			err = fmt.Errorf("%q is not a number", s)
		}
		if err != nil {
			return &tui.ProtectPlan{Refusals: []tui.ProtectRefusal{{Reason: fmt.Sprintf("Alert at %% free: %v: give a percentage above 0 and at most 50, e.g. 5", err)}}}, nil
		}
		req.Policy.AlertThresholdPercent = &v
	}
	if s := strings.TrimSpace(r.Sparse); s != "" {
		w := c.Defaults().Retention
		if r.Retention != "" {
			if rw, err := journal.ParseWindow(r.Retention); err == nil {
				w = rw
			}
		}
		if _, err := journal.CheckTiers(s, w); err != nil {
			return &tui.ProtectPlan{Refusals: []tui.ProtectRefusal{{Reason: fmt.Sprintf("Sparse tiers: %v (retention %s): e.g. all 1d; 1 per 1h for 6d with 7 days", err, journal.FormatAge(w))}}}, nil
		}
		req.Policy.Sparse = s
	}
	for _, d := range r.Disks {
		req.Disks = append(req.Disks, protect.Disk{Name: d.Name, Size: d.Size, BlockSize: d.BlockSize, AppConsistentInterval: d.AppConsistent})
	}
	if c.file() != nil {
		req.PSAddr = r.Addr
	} else {
		req.Fresh = protect.Fresh{PSAddr: r.Addr, PassphraseFile: r.PassFile}
	}
	plan, err := protect.MakePlan(ctx, c.Config, req, protect.Options{CheckTarget: protect.SetupTarget(c.hostEnv())})
	var re *protect.RefusedError
	if errors.As(err, &re) {
		out := &tui.ProtectPlan{}
		for _, x := range re.Refusals {
			out.Refusals = append(out.Refusals, tui.ProtectRefusal{Disk: x.Disk, Target: x.Target, Reason: x.Reason, Confirm: x.Confirm})
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	out := &tui.ProtectPlan{Summary: plan.Summary(), Diff: plan.Diff(), Impl: plan}
	for _, q := range plan.Pairs {
		out.Pairs = append(out.Pairs, q.ID)
	}
	return out, nil
}

// socket is the agent's: agent.toml's, else Socket.
func (c *Protector) socket() string {
	if fc := c.file(); fc != nil && fc.Agent.Socket != "" {
		return fc.Agent.Socket
	}
	return c.Socket
}

func (c *Protector) Apply(ctx context.Context, p *tui.ProtectPlan) (*tui.ProtectResult, error) {
	plan, ok := p.Impl.(*protect.Plan)
	if !ok {
		return nil, errors.New("protect: no plan to apply: review it first")
	}
	socket := c.socket()
	reload := c.Reload
	if reload == nil {
		reload = protect.ReloadAgent
	}
	res, err := protect.Apply(ctx, plan, protect.Options{Reload: func(ctx context.Context) ([]string, error) { return reload(ctx, socket) }})
	var out *tui.ProtectResult
	if res != nil {
		out = &tui.ProtectResult{Path: res.Path, Backup: res.Backup, Agent: res.Agent, Started: res.Started, Note: res.Note}
	}
	return out, err
}

func (c *Protector) PlanRemove(_ context.Context, name string) (*tui.RemovePlan, error) {
	plan, err := protect.PlanRemove(c.Config, name)
	if err != nil {
		return nil, err
	}
	out := &tui.RemovePlan{Name: name, Summary: plan.Summary(), Diff: plan.Diff(), Impl: plan}
	for _, q := range plan.Pairs {
		out.Pairs = append(out.Pairs, q.ID)
	}
	return out, nil
}

func (c *Protector) ApplyRemove(ctx context.Context, p *tui.RemovePlan, purge bool) (*tui.RemoveResult, error) {
	plan, ok := p.Impl.(*protect.Plan)
	if !ok || !plan.Remove {
		return nil, errors.New("unprotect: no plan to apply: review it first")
	}
	socket := c.socket()
	reload := c.ReloadRemove
	if reload == nil {
		reload = protect.ReloadAgentRemove
	}
	res, err := protect.Apply(ctx, plan, protect.Options{Reload: func(ctx context.Context) ([]string, error) { return reload(ctx, socket, purge) }})
	var out *tui.RemoveResult
	if res != nil {
		out = &tui.RemoveResult{Path: res.Path, Backup: res.Backup, Agent: res.Agent, Stopped: res.Stopped, Note: res.Note}
	}
	return out, err
}
