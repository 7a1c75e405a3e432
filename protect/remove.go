package protect

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/mtconsole/mtconsole/replication/agent"
)

// Errors of PlanRemove.
var (
	// ErrNotProtected: the name is neither a group nor a pair of
	// agent.toml.
	ErrNotProtected = errors.New("not protected here")
)

// PlanRemove plans taking name out of agent.toml: a [[group]] and every
// [[pair]] in it, or one [[pair]] by its id. The other tables and every
// comment stay byte for byte; a comment written above a removed table by
// protect goes with it. It writes nothing; Apply writes the plan, and the
// agent's reload stops the pairs (their targets are left as they are;
// their journal and retention stay unless the reload purges them).
func PlanRemove(path, name string) (*Plan, error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("unprotect: %w", err)
	}
	fc, err := agent.LoadConfig(path)
	if err != nil {
		return nil, fmt.Errorf("unprotect: %w (fix the file first)", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("unprotect: %w", err)
	}
	cfg := fc.ClientConfig()
	var ids []string
	group := ""
	for _, g := range fc.Groups {
		if g.Name == name {
			group = name
		}
	}
	for _, p := range cfg.Pairs {
		if p.ID == name || (group != "" && p.Group == group) {
			ids = append(ids, p.ID)
		}
	}
	if group == "" && len(ids) == 0 {
		return nil, fmt.Errorf("%w: %s has no [[group]] named %q and no [[pair]] with that id: mtconsole protection list shows what is", ErrNotProtected, path, name)
	}
	text, err := removeTables(string(old), func(header string, keys map[string]string) bool {
		switch header {
		case "[[group]]":
			return group != "" && keys["name"] == group
		case "[[pair]]":
			id := keys["id"]
			if id == "" {
				id = keys["disk"]
			}
			return slices.Contains(ids, id)
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("unprotect: %s: %w", path, err)
	}
	p := &Plan{Path: path, Group: name, Remove: true, Old: old, New: []byte(text), mode: fi.Mode().Perm()}
	for _, pc := range cfg.Pairs {
		if slices.Contains(ids, pc.ID) {
			p.Pairs = append(p.Pairs, PlannedPair{ID: pc.ID, Disk: pc.Disk, Target: pc.Target})
		}
	}
	if _, err := validate(path, p.New); err != nil {
		return nil, fmt.Errorf("unprotect: the file without %s would not load: %w", name, err)
	}
	return p, nil
}

// removeTables drops the tables of text for which drop says so, from
// their header to the next table's header (or the end), with the comment
// lines and the blank line right above a dropped header. A table's keys
// are read with the TOML parser, one table at a time.
func removeTables(text string, drop func(header string, keys map[string]string) bool) (string, error) {
	lines := strings.SplitAfter(text, "\n")
	type table struct{ start, end int }
	var tables []table
	for i, l := range lines {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "[") {
			if len(tables) > 0 {
				tables[len(tables)-1].end = i
			}
			tables = append(tables, table{start: i, end: len(lines)})
		}
	}
	cut := make([]bool, len(lines))
	for _, t := range tables {
		header := strings.TrimSpace(lines[t.start])
		if i := strings.Index(header, "#"); i > 0 {
			header = strings.TrimSpace(header[:i])
		}
		body := strings.Join(lines[t.start+1:t.end], "")
		var keys map[string]any
		if _, err := toml.Decode(body, &keys); err != nil {
			return "", fmt.Errorf("table at line %d: %w", t.start+1, err)
		}
		str := map[string]string{}
		for k, v := range keys {
			if s, ok := v.(string); ok {
				str[k] = s
			}
		}
		if !drop(header, str) {
			continue
		}
		// The table's own trailing comments and blank lines belong to
		// what follows: keep them unless the next table goes too.
		end := t.end
		for end > t.start+1 && isCommentOrBlank(lines[end-1]) {
			end--
		}
		for i := t.start; i < end; i++ {
			cut[i] = true
		}
		// The comment right above the header (protect writes one), and
		// one blank line above that.
		i := t.start - 1
		for i >= 0 && strings.HasPrefix(strings.TrimSpace(lines[i]), "#") && !cut[i] {
			cut[i] = true
			i--
		}
		if i >= 0 && strings.TrimSpace(lines[i]) == "" && !cut[i] {
			cut[i] = true
		}
	}
	var b strings.Builder
	for i, l := range lines {
		if !cut[i] {
			b.WriteString(l)
		}
	}
	return b.String(), nil
}

func isCommentOrBlank(l string) bool {
	t := strings.TrimSpace(l)
	return t == "" || strings.HasPrefix(t, "#")
}
