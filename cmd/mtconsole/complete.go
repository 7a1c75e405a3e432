package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/internal/units"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
)

// Dynamic shell completion: pair ids, groups and tag names come from the
// running agent when it answers on --socket, else from --config
// (agent.toml) and, for tags, from the retention store of --dir; disks
// come from /sys/block. A source that cannot be read completes nothing
// rather than failing: completion never prints errors into a shell.

// sysBlock is where disks are listed; tests point it at a fixture.
var sysBlock = "/sys/block"

// completionAgentConfig is the agent.toml completion reads for a command
// without --config; tests point it at a fixture.
var completionAgentConfig = defaultAgentConfig

// completionTimeout bounds how long a completion waits for the agent.
const completionTimeout = 2 * time.Second

// pointKeywords are the points recovery.ParsePoint reads, with a word
// each for the shell's menu.
var pointKeywords = []string{
	"latest-tag\tthe newest tag of any kind",
	"latest-time\tthe newest applied write",
	"latest-app-consistent\tthe newest application-consistent tag",
	"latest-app\tthe newest application-consistent tag",
	"earliest\tthe oldest recoverable point",
	"tag:\ta tag by name or id",
	"tagid:\ta tag by id",
	"time:\tthe newest point at or before an RFC 3339 time",
}

type inventory struct {
	pairs  []string
	groups []string
	tags   map[string][]journal.Tag // pair → tags; only from the agent or --dir
}

func flagOr(cmd *cobra.Command, name, def string) string {
	if f := cmd.Flags().Lookup(name); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return def
}

// inventoryOf asks the agent on cmd's --socket, or reads cmd's --config;
// withTags also gathers each pair's tags (from the agent, or the store
// of --dir).
func inventoryOf(cmd *cobra.Command, withTags bool) inventory {
	var inv inventory
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	if cl, err := api.Dial(flagOr(cmd, "socket", api.DefaultSocket)); err == nil {
		defer cl.Close()
		if st, err := cl.Status(ctx); err == nil {
			for _, p := range st.Pairs {
				inv.pairs = append(inv.pairs, p.ID)
				if p.Group != "" {
					inv.groups = append(inv.groups, p.Group)
				}
				if withTags {
					if tags, err := cl.Tags(ctx, p.ID); err == nil {
						if inv.tags == nil {
							inv.tags = map[string][]journal.Tag{}
						}
						inv.tags[p.ID] = tags
					}
				}
			}
			return inv.sorted()
		}
	}
	if dir := flagOr(cmd, "dir", ""); dir != "" && withTags {
		if st, err := journal.OpenStore(journal.StoreOptions{Dir: dir, ReadOnly: true}); err == nil {
			inv.tags = map[string][]journal.Tag{dir: st.Tags()}
			st.Close()
		}
	}
	if fc, err := agent.LoadConfig(flagOr(cmd, "config", completionAgentConfig)); err == nil {
		for _, g := range fc.Groups {
			inv.groups = append(inv.groups, g.Name)
		}
		for _, p := range fc.Pairs {
			inv.pairs = append(inv.pairs, p.ID)
			if p.Group != "" {
				inv.groups = append(inv.groups, p.Group)
			} else {
				inv.groups = append(inv.groups, p.ID) // a group of its own
			}
		}
	}
	return inv.sorted()
}

func (inv inventory) sorted() inventory {
	slices.Sort(inv.pairs)
	inv.pairs = slices.Compact(inv.pairs)
	slices.Sort(inv.groups)
	inv.groups = slices.Compact(inv.groups)
	return inv
}

// tagNames are the names of the tags of pairs (all when pairs is empty),
// sorted, each once, described by its time and application.
func (inv inventory) tagNames(pairs []string) []string {
	seen := map[string]bool{}
	var out []string
	for pair, tags := range inv.tags {
		if len(pairs) > 0 && !slices.Contains(pairs, pair) {
			continue
		}
		for _, t := range tags {
			if t.Name == "" || seen[t.Name] {
				continue
			}
			seen[t.Name] = true
			out = append(out, t.Name+"\t"+t.App+" "+t.Time.UTC().Format(time.RFC3339))
		}
	}
	slices.Sort(out)
	return out
}

// filter keeps the candidates that start with prefix.
func filter(cands []string, prefix string) []string {
	var out []string
	for _, c := range cands {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// listCompletion completes the last element of a comma-separated list,
// leaving out elements already given.
func listCompletion(toComplete string, cands []string) []string {
	done, last := "", toComplete
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		done, last = toComplete[:i+1], toComplete[i+1:]
	}
	given := strings.Split(done, ",")
	var out []string
	for _, c := range filter(cands, last) {
		name, _, _ := strings.Cut(c, "\t")
		if !slices.Contains(given, name) {
			out = append(out, done+c)
		}
	}
	return out
}

const noFile = cobra.ShellCompDirectiveNoFileComp

func completePairArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, noFile
	}
	return filter(inventoryOf(cmd, false).pairs, toComplete), noFile
}

func completeGroupOrPairArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, noFile
	}
	inv := inventoryOf(cmd, false)
	var c []string
	for _, g := range inv.groups {
		c = append(c, g+"\tgroup")
	}
	for _, p := range inv.pairs {
		if !slices.Contains(inv.groups, p) {
			c = append(c, p+"\tpair")
		}
	}
	return filter(c, toComplete), noFile
}

func completePairList(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return listCompletion(toComplete, inventoryOf(cmd, false).pairs), noFile | cobra.ShellCompDirectiveNoSpace
}

func completeGroup(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return filter(inventoryOf(cmd, false).groups, toComplete), noFile
}

// completePoint completes --point: the keywords, tag:NAME with the tags
// the named pairs (or all) hold, and time: with now, to edit.
func completePoint(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch {
	case strings.HasPrefix(toComplete, "tag:"):
		var pairs []string
		if f := cmd.Flags().Lookup("pairs"); f != nil {
			pairs = splitList(f.Value.String())
		}
		var c []string
		for _, n := range inventoryOf(cmd, true).tagNames(pairs) {
			c = append(c, "tag:"+n)
		}
		return filter(c, toComplete), noFile
	case strings.HasPrefix(toComplete, "tagid:"):
		var c []string
		for _, tags := range inventoryOf(cmd, true).tags {
			for _, t := range tags {
				c = append(c, "tagid:"+t.ID+"\t"+t.Name)
			}
		}
		slices.Sort(c)
		return filter(slices.Compact(c), toComplete), noFile
	case strings.HasPrefix(toComplete, "time:"):
		return filter([]string{"time:" + time.Now().UTC().Truncate(time.Second).Format(time.RFC3339) + "\tnow, RFC 3339"}, toComplete), noFile | cobra.ShellCompDirectiveNoSpace
	}
	c := filter(pointKeywords, toComplete)
	dir := noFile
	for _, k := range c {
		if strings.HasSuffix(strings.SplitN(k, "\t", 2)[0], ":") {
			dir |= cobra.ShellCompDirectiveNoSpace // tag: goes on with a name
		}
	}
	return c, dir
}

// completeRetentionDir completes --dir of the retention commands with
// the pairs' retention directories of agent.toml, else any directory.
func completeRetentionDir(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	fc, err := agent.LoadConfig(flagOr(cmd, "config", completionAgentConfig))
	if err != nil {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	var c []string
	for _, p := range fc.ClientConfig().Pairs {
		c = append(c, p.RetentionDir+"\tpair "+p.ID)
	}
	slices.Sort(c)
	if c = filter(c, toComplete); len(c) == 0 {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	return c, noFile
}

// completeStoreTagArg completes the TAG of retention lock and unlock with
// the tags of the store of --dir.
func completeStoreTagArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	dir := flagOr(cmd, "dir", "")
	if len(args) > 0 || dir == "" {
		return nil, noFile
	}
	st, err := journal.OpenStore(journal.StoreOptions{Dir: dir, ReadOnly: true})
	if err != nil {
		return nil, noFile
	}
	defer st.Close()
	inv := inventory{tags: map[string][]journal.Tag{dir: st.Tags()}}
	return filter(inv.tagNames(nil), toComplete), noFile
}

// blockDisks lists the disks under sysBlock as lsblk would: name, size
// and model, leaving out empty devices (an unused loop, a drive without
// media) and RAM disks.
func blockDisks() []string {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(sysBlock, name, "size"))
		sectors, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || sectors == 0 {
			continue
		}
		desc := units.Bytes(sectors * 512)
		if m, err := os.ReadFile(filepath.Join(sysBlock, name, "device", "model")); err == nil && strings.TrimSpace(string(m)) != "" {
			desc += " " + strings.TrimSpace(string(m))
		}
		out = append(out, name+"\t"+desc)
	}
	slices.Sort(out)
	return out
}

// completeDiskList completes --overwrite's comma-separated disk names.
func completeDiskList(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return listCompletion(toComplete, blockDisks()), noFile | cobra.ShellCompDirectiveNoSpace
}

// completeMap completes --map's SOURCE=/dev/TARGET pairs: after an "=",
// this host's disks.
func completeMap(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	done, last := "", toComplete
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		done, last = toComplete[:i+1], toComplete[i+1:]
	}
	src, _, ok := strings.Cut(last, "=")
	if !ok {
		return nil, noFile | cobra.ShellCompDirectiveNoSpace // the source disk's name is the process server's
	}
	var out []string
	for _, d := range blockDisks() {
		name, desc, _ := strings.Cut(d, "\t")
		if c := done + src + "=/dev/" + name; strings.HasPrefix(c, toComplete) {
			out = append(out, c+"\t"+desc)
		}
	}
	return out, noFile | cobra.ShellCompDirectiveNoSpace
}

// completions attaches the dynamic completions to the commands of root,
// by command path and flag name, in one table.
func completions(root *cobra.Command) {
	args := map[string]cobra.CompletionFunc{
		"pause":            completePairArg,
		"resume":           completePairArg,
		"unprotect":        completeGroupOrPairArg,
		"retention lock":   completeStoreTagArg,
		"retention unlock": completeStoreTagArg,
	}
	flags := map[string]map[string]cobra.CompletionFunc{
		"recover":            {"point": completePoint, "pairs": completePairList, "group": completeGroup, "mode": cobra.FixedCompletions([]string{"export", "rollback"}, noFile)},
		"tag":                {"pairs": completePairList},
		"retention recover":  {"point": completePoint},
		"retention rollback": {"point": completePoint},
		"protect":            {"overwrite": completeDiskList, "map": completeMap},
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
		if fn, ok := args[path]; ok && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = fn
		}
		// Every retention command's --dir is a pair's store.
		if strings.HasPrefix(path, "retention ") && c.Flags().Lookup("dir") != nil {
			_ = c.RegisterFlagCompletionFunc("dir", completeRetentionDir)
		}
		for name, fn := range flags[path] {
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, fn)
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}
