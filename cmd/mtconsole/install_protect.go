package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/setup"
)

// answersKeys are an answers file's protect: entry as the keys of
// `mtconsole protect` (protect.Prepare maps both the same way). config
// is agent.toml; a new one gets the install's retention data directory
// as its retention_dir (a master target's retention volume).
func answersKeys(a setup.Answers, pa setup.ProtectAnswer, config, root string) protect.Keys {
	k := protect.Keys{Config: config, Root: root, PS: pa.PS, PassphraseFile: pa.PassphraseFile, Group: pa.Group, Map: pa.Map,
		Policy:              protect.Policy{Retention: pa.Retention, SizeCapMB: pa.SizeCapMB, OnFull: pa.OnFull, RPOThreshold: pa.RPOThreshold, AlertThresholdPercent: pa.AlertThresholdPercent, Sparse: pa.Sparse},
		ConsistencyInterval: pa.ConsistencyInterval, Overwrite: pa.Overwrite, AllowFiles: pa.AllowFiles, AllowNoSCSIID: pa.AllowNoSCSIID}
	if a.Role == setup.RoleMT && a.Disks.Retention != "" {
		k.RetentionDir = filepath.Join(a.Disks.Retention, setup.DataSubdir)
	}
	return k
}

// planAnswersProtect plans the answers' protect: entries against the
// agent.toml at config, each on the one before (several machines are
// one change to the file), discovering each process server; a dry run
// pins nothing. It writes nothing but temporary copies; the plans and
// their chain, or the first error naming the entry's file and line.
func planAnswersProtect(ctx context.Context, a setup.Answers, from, config, root string, dryRun bool) ([]*protect.Plan, *protect.Plan, string, error) {
	tmp, err := os.MkdirTemp("", "mtconsole-install-protect-")
	if err != nil {
		return nil, nil, "", err
	}
	defer os.RemoveAll(tmp)
	where := func(pa setup.ProtectAnswer) string {
		if from == "" {
			from = "answers"
		}
		return fmt.Sprintf("%s:%d: protect %s", from, pa.Line, pa.Group)
	}
	var plans []*protect.Plan
	cur, socket := config, ""
	// certificates confirmed by an earlier entry (a dry run pins none)
	seen := map[string]wire.Fingerprint{}
	for i, pa := range a.Protect {
		prep, err := protect.Prepare(answersKeys(a, pa, cur, root))
		if err != nil {
			return nil, nil, "", fmt.Errorf("%s: %w", where(pa), err)
		}
		if socket == "" {
			socket = prep.Socket
		}
		var want wire.Fingerprint
		if pa.TrustFingerprint != "" {
			if want, err = wire.ParseFingerprint(pa.TrustFingerprint); err != nil {
				return nil, nil, "", fmt.Errorf("%s: trust_fingerprint: %w", where(pa), err)
			}
		}
		srv := prep.Server
		srv.NoPin = dryRun
		srv.Confirm = func(addr string, fp wire.Fingerprint) bool {
			return !want.IsZero() && fp == want || seen[protect.NormAddr(addr)] == fp
		}
		d, err := protect.Discover(ctx, srv)
		if err != nil {
			if errors.Is(err, protect.ErrUntrusted) {
				if want.IsZero() {
					return nil, nil, "", fmt.Errorf("%s: %w (give its fingerprint as trust_fingerprint in the answers)", where(pa), err)
				}
				return nil, nil, "", fmt.Errorf("%s: %w (not the trust_fingerprint %s)", where(pa), err, want)
			}
			return nil, nil, "", fmt.Errorf("%s: %w", where(pa), err)
		}
		seen[protect.NormAddr(d.Addr)] = d.Fingerprint
		req := prep.Request
		req.Disks = d.Disks
		p, err := protect.MakePlan(ctx, cur, req, protect.Options{})
		if err != nil {
			return nil, nil, "", fmt.Errorf("%s: %w", where(pa), err)
		}
		p.Path = config
		plans = append(plans, p)
		if i < len(a.Protect)-1 {
			// the next entry is planned on this one's file
			cur = filepath.Join(tmp, fmt.Sprintf("agent-%d.toml", i))
			if err := os.WriteFile(cur, p.New, 0o600); err != nil {
				return nil, nil, "", err
			}
		}
	}
	return plans, protect.Chain(plans), socket, nil
}

// installProtect is the install's last step: the answers' protect:
// entries planned, shown, and (not in a dry run) written to agent.toml
// at once, then the running agent is asked to reload.
func installProtect(ctx context.Context, out io.Writer, a setup.Answers, from, root string, dryRun bool) error {
	if len(a.Protect) == 0 {
		return nil
	}
	config := filepath.Join(setup.ConfigDir, "agent.toml")
	if root != "" && root != "/" {
		config = filepath.Join(root, config)
	}
	fmt.Fprintf(out, "\nprotect: %s in %s\n", plural(int64(len(a.Protect)), "machine"), config)
	plans, chain, socket, err := planAnswersProtect(ctx, a, from, config, root, dryRun)
	var re *protect.RefusedError
	if errors.As(err, &re) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	for _, p := range plans {
		fmt.Fprint(out, p.Summary())
	}
	if dryRun {
		fmt.Fprintf(out, "\n%s", chain.Diff())
		return nil
	}
	o := protect.Options{}
	if root == "" || root == "/" {
		if socket == "" {
			socket = api.DefaultSocket
		}
		o.Reload = func(ctx context.Context) ([]string, error) { return protect.ReloadAgent(ctx, socket) }
	}
	res, err := protect.Apply(ctx, chain, o)
	if err != nil {
		return err
	}
	fmt.Fprint(out, res.Text())
	return nil
}
