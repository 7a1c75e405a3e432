package protect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/mtconsole/mtconsole/internal/atomicfile"
	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// Errors of Apply.
var (
	// ErrChanged: agent.toml changed between the plan and its apply.
	ErrChanged = errors.New("agent.toml changed since the plan")
	// ErrReload: the file is written but the running agent's reload
	// failed.
	ErrReload = errors.New("agent reload failed")
)

// NoAgentNote is Result.Note when no agent answers.
const NoAgentNote = "no agent answers on its socket: the agent will pick it up when it starts"

// Result is what Apply did.
type Result struct {
	Path    string   `json:"config"`
	Backup  string   `json:"backup,omitempty"` // the previous file; "" when there was none
	Written bool     `json:"written"`
	Agent   bool     `json:"agent"`             // a running agent reloaded the file
	Started []string `json:"started,omitempty"` // the pairs it started
	Stopped []string `json:"stopped,omitempty"` // the pairs it stopped (a removal)
	Note    string   `json:"note,omitempty"`
	remove  bool
}

// Text is the result for people: the file written (and its backup), then
// what the agent did, or the note.
func (r *Result) Text() string {
	var b strings.Builder
	if r.Backup != "" {
		fmt.Fprintf(&b, "wrote %s (the previous file is %s)\n", r.Path, r.Backup)
	} else {
		fmt.Fprintf(&b, "wrote %s\n", r.Path)
	}
	switch {
	case r.Agent && r.remove:
		fmt.Fprintf(&b, "the agent stopped %s\n", strings.Join(r.Stopped, ", "))
	case r.Agent:
		fmt.Fprintf(&b, "the agent started %s\n", strings.Join(r.Started, ", "))
	case r.Note != "":
		b.WriteString(r.Note + "\n")
	}
	return b.String()
}

// Apply writes the plan's file: the previous one is kept as path.bak,
// then the new one replaces it atomically (a crash leaves the old file or
// the new one, whole), with the old file's mode (0600 for a new one).
// Then it asks the running agent to reload (o.Reload), which returns the
// pairs it started (or, for a removal, stopped).
func Apply(ctx context.Context, p *Plan, o Options) (*Result, error) {
	write := o.WriteFile
	if write == nil {
		write = atomicfile.Write
	}
	cur, err := os.ReadFile(p.Path)
	switch {
	case p.Fresh && err == nil, !p.Fresh && err == nil && !bytes.Equal(cur, p.Old):
		return nil, fmt.Errorf("%w: %s was changed by someone else meanwhile: nothing written; run protect again", ErrChanged, p.Path)
	case !p.Fresh && errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s was removed meanwhile: nothing written; run protect again", ErrChanged, p.Path)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("protect: %w", err)
	}
	res := &Result{Path: p.Path, remove: p.Remove}
	if !p.Fresh {
		res.Backup = p.Path + ".bak"
		// The backup first: if the new file's write fails, the old one
		// stands, and the backup is a copy of it.
		if err := write(res.Backup, p.Old, p.mode, 0o700); err != nil {
			return nil, fmt.Errorf("protect: keep the previous file as %s: %w (nothing changed in %s)", res.Backup, err, p.Path)
		}
	}
	if err := write(p.Path, p.New, p.mode, 0o700); err != nil {
		return nil, fmt.Errorf("protect: write %s: %w (the file is as it was)", p.Path, err)
	}
	res.Written = true
	what := "start the new pairs"
	if p.Remove {
		what = "stop the pairs"
	}
	if o.Reload == nil {
		res.Note = "the agent was not asked to reload: restart it to " + what
		return res, nil
	}
	changed, err := o.Reload(ctx)
	switch {
	case errors.Is(err, api.ErrNoAgent):
		res.Note = NoAgentNote
	case err != nil:
		return res, fmt.Errorf("%w: %s is written (the previous file is %s) but the agent did not reload: %w; restart the agent to %s",
			ErrReload, p.Path, res.Backup, err, what)
	case p.Remove:
		res.Agent, res.Stopped = true, changed
	default:
		res.Agent, res.Started = true, changed
	}
	return res, nil
}
