package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/nbd"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// ViewRequest is POST /v1/views: open a point-in-time view of pairs (a
// group's: one multi-disk point) served over NBD.
type ViewRequest struct {
	Pairs []string `json:"pairs,omitempty"`
	Group string   `json:"group,omitempty"`
	Point string   `json:"point"`
	// Writable keeps a copy-on-write overlay (discarded on close) of at
	// most OverlayCap bytes per disk (0: DefaultOverlayCap).
	Writable   bool  `json:"writable,omitempty"`
	OverlayCap int64 `json:"overlay_cap,omitempty"`
	// Listen is unix:PATH or tcp:HOST:PORT; empty: a unix socket in the
	// agent's runtime directory.
	Listen string `json:"listen,omitempty"`
}

// DefaultOverlayCap bounds a writable view's overlay per disk.
const DefaultOverlayCap = 1 << 30

// View is an open point-in-time view.
type View struct {
	ID       string                       `json:"id"`
	Point    string                       `json:"point"`
	Group    string                       `json:"group,omitempty"`
	Pairs    []string                     `json:"pairs"`
	Points   map[string]recovery.Resolved `json:"points"`
	Writable bool                         `json:"writable"`
	Listen   string                       `json:"listen"` // unix:PATH or tcp:ADDR
	Opened   time.Time                    `json:"opened"`
	Clients  int                          `json:"clients"`
	Exports  []ViewExport                 `json:"exports"`
}

// ViewExport is one disk of a view: its NBD export.
type ViewExport struct {
	Pair string `json:"pair"`
	Name string `json:"name"` // the NBD export name
	URI  string `json:"uri"`  // nbd+unix:///NAME?socket=PATH or nbd://ADDR/NAME
	Size int64  `json:"size"`
	// OverlayBytes and OverlayCap: a writable view's overlay.
	OverlayBytes int64  `json:"overlay_bytes,omitempty"`
	OverlayCap   int64  `json:"overlay_cap,omitempty"`
	Overlay      string `json:"overlay,omitempty"` // the overlay file
}

// ErrUnknownView is a view id no open view has.
var ErrUnknownView = errors.New("no such view")

// ViewBackend is a Backend that serves views (POST/GET/DELETE /v1/views).
type ViewBackend interface {
	OpenView(req ViewRequest) (View, error)
	Views() ([]View, error)
	CloseView(id string) error
}

// AttachLines are the commands that attach export e of v, for the admin
// to copy: a kernel block device (nbd-client, qemu-nbd), a copy
// (qemu-img), a file through FUSE (nbdfuse).
func AttachLines(v View, e ViewExport) []string {
	ro := " -readonly"
	qro, fro := " -r", " -r"
	if v.Writable {
		ro, qro, fro = "", "", ""
	}
	var nbdc string
	if path, ok := strings.CutPrefix(v.Listen, "unix:"); ok {
		nbdc = fmt.Sprintf("nbd-client -unix %s -N %s%s /dev/nbd0", path, e.Name, ro)
	} else {
		addr := strings.TrimPrefix(v.Listen, "tcp:")
		host, port, _ := net.SplitHostPort(addr)
		nbdc = fmt.Sprintf("nbd-client %s %s -N %s%s /dev/nbd0", host, port, e.Name, ro)
	}
	return []string{
		nbdc,
		fmt.Sprintf("qemu-nbd%s -f raw -c /dev/nbd0 '%s'", qro, e.URI),
		fmt.Sprintf("qemu-img convert -O raw '%s' %s-%s.img", e.URI, v.ID, e.Pair),
		fmt.Sprintf("nbdfuse%s /mnt/%s-%s '%s' &", fro, v.ID, e.Pair, e.URI),
	}
}

// openView is a view the agent serves.
type openView struct {
	info    View
	views   []*recovery.View
	scratch []*recovery.Scratch
	srv     *nbd.Server
	sock    string // the unix socket to remove, or ""
}

func (o *openView) snapshot() View {
	v := o.info
	v.Pairs = slices.Clone(v.Pairs)
	v.Exports = slices.Clone(v.Exports)
	for i := range o.scratch {
		if o.scratch[i] != nil {
			v.Exports[i].OverlayBytes = o.scratch[i].Used()
		}
	}
	v.Clients = o.srv.Conns()
	return v
}

// SetViewDir sets the runtime directory of views' default sockets
// (default /run/mtconsole/views).
func (b *WriterBackend) SetViewDir(dir string) {
	b.mu.Lock()
	b.viewDir = dir
	b.mu.Unlock()
}

// viewOfLocked is the id of the open view of pair, or "". b.mu held.
func (b *WriterBackend) viewOfLocked(pair string) string {
	for id, o := range b.views {
		if slices.Contains(o.info.Pairs, pair) {
			return id
		}
	}
	for id, ps := range b.opening {
		if slices.Contains(ps, pair) {
			return id
		}
	}
	return ""
}

// parseListen reads unix:PATH or tcp:HOST:PORT.
func parseListen(s, dir, id string) (network, addr string, err error) {
	switch {
	case s == "":
		return "unix", filepath.Join(dir, id+".sock"), nil
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(s, "unix:")
		if !filepath.IsAbs(p) {
			return "", "", badField("listen", "%q: the socket path must be absolute (the agent's working directory is not yours)", s)
		}
		return "unix", p, nil
	case strings.HasPrefix(s, "tcp:"):
		a := strings.TrimPrefix(s, "tcp:")
		if _, _, err := net.SplitHostPort(a); err != nil {
			return "", "", badField("listen", "%q: want tcp:HOST:PORT, such as tcp:127.0.0.1:10809 (%v)", s, err)
		}
		return "tcp", a, nil
	}
	return "", "", badField("listen", "%q: want unix:PATH or tcp:HOST:PORT", s)
}

// nearestPoints names the points a pair keeps nearest its window's ends:
// the earliest, the oldest tag, the newest tag, the latest time.
func nearestPoints(st *journal.Store) string {
	eSeq, eTime := st.Earliest()
	s := st.State()
	near := []string{fmt.Sprintf("earliest (time:%s)", eTime.UTC().Format(time.RFC3339Nano))}
	var kept []journal.Tag
	for _, t := range st.Tags() {
		if t.Seq >= eSeq {
			kept = append(kept, t)
		}
	}
	if n := len(kept); n > 0 {
		near = append(near, fmt.Sprintf("tag:%s (%s)", kept[0].Name, kept[0].Time.UTC().Format(time.RFC3339)))
		if n > 1 {
			near = append(near, fmt.Sprintf("tag:%s (%s)", kept[n-1].Name, kept[n-1].Time.UTC().Format(time.RFC3339)))
		}
	}
	near = append(near, fmt.Sprintf("latest-time (time:%s)", s.AppliedTime.UTC().Format(time.RFC3339Nano)))
	return fmt.Sprintf("pair %s keeps sequences %d to %d; the nearest points kept: %s", s.Pair, eSeq, s.Applied, strings.Join(near, ", "))
}

// windowCheck refuses a point outside a pair's retention window, naming
// the nearest points it keeps.
func windowCheck(st *journal.Store, pt recovery.Point, r recovery.Resolved) error {
	eSeq, eTime := st.Earliest()
	outside := r.Seq < eSeq || r.Seq > st.State().Applied
	if pt.Kind == recovery.AtTime && !eTime.IsZero() && pt.Time.Before(eTime) && eSeq > 0 {
		outside = true
	}
	if !outside {
		return nil
	}
	return badField("point", "%s is outside the retention window: %s", pt, nearestPoints(st))
}

// OpenView implements ViewBackend.
func (b *WriterBackend) OpenView(req ViewRequest) (View, error) {
	pt, err := recovery.ParsePoint(req.Point)
	if err != nil {
		return View{}, badField("point", "%v", err)
	}
	if req.OverlayCap < 0 {
		return View{}, badField("overlay_cap", "%d: want a size in bytes (0: %d)", req.OverlayCap, DefaultOverlayCap)
	}
	if req.OverlayCap > 0 && !req.Writable {
		return View{}, badField("overlay_cap", "only a writable view has an overlay")
	}
	group := req.Group
	if req.Pairs, err = b.groupPairs(req.Group, req.Pairs); err != nil {
		return View{}, err
	}
	if len(req.Pairs) == 0 {
		return View{}, badField("pairs", "name a pair or a group: a view shows the disks asked for")
	}
	// A pair a rollback is rewriting is refused naming the job, before
	// its pair (ended by the rollback) is looked up.
	b.mu.Lock()
	for _, id := range req.Pairs {
		if err := b.rollingBackLocked(id); err != nil {
			b.mu.Unlock()
			return View{}, err
		}
	}
	b.mu.Unlock()
	ps, err := b.pairs(req.Pairs)
	if err != nil {
		return View{}, err
	}
	b.mu.Lock()
	b.nextView++
	id := fmt.Sprintf("v%d", b.nextView)
	dir := b.viewDir
	if dir == "" {
		dir = "/run/mtconsole/views"
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID()
		if other := b.viewOfLocked(p.ID()); other != "" {
			b.mu.Unlock()
			return View{}, fmt.Errorf("%w: pair %s already has view %s open: close it first (mtconsole view close %s)", ErrConflict, p.ID(), other, other)
		}
		if err := b.rollingBackLocked(p.ID()); err != nil {
			b.mu.Unlock()
			return View{}, err
		}
	}
	if b.opening == nil {
		b.opening = map[string][]string{}
	}
	b.opening[id] = ids
	b.mu.Unlock()
	v, err := b.openView(id, dir, group, pt, req, ps)
	b.mu.Lock()
	delete(b.opening, id)
	if err == nil {
		if b.views == nil {
			b.views = map[string]*openView{}
		}
		b.views[id] = v
	}
	b.mu.Unlock()
	if err != nil {
		return View{}, err
	}
	info := v.snapshot()
	var where []string
	for _, e := range info.Exports {
		where = append(where, e.URI)
	}
	b.hub.Publish(writer.Event{Time: b.now().UTC(), Kind: writer.EventLog, Level: slog.LevelInfo,
		Message: fmt.Sprintf("view %s of %s at %s opened (%s): %s", id, strings.Join(ids, ","), pt, map[bool]string{true: "writable", false: "read-only"}[req.Writable], strings.Join(where, " "))})
	return info, nil
}

// rollingBackLocked refuses a view of pair while a rollback job
// rewrites its target (b.mu held).
func (b *WriterBackend) rollingBackLocked(pair string) error {
	if j, ok := b.busy[pair]; ok && b.jobs[j] != nil && b.jobs[j].Mode == ModeRollback {
		return fmt.Errorf("%w: pair %s is being rolled back by job %s: a view would read a target being rewritten; open it when the job ends (mtconsole status --watch)", ErrConflict, pair, j)
	}
	return nil
}

func (b *WriterBackend) openView(id, dir, group string, pt recovery.Point, req ViewRequest, ps []*writer.Pair) (*openView, error) {
	network, addr, err := parseListen(req.Listen, dir, id)
	if err != nil {
		return nil, err
	}
	stores := map[string]*journal.Store{}
	for _, p := range ps {
		stores[p.ID()] = p.Store()
	}
	points, err := ResolveStores(stores, pt)
	if err != nil {
		var near []string
		for _, p := range ps {
			near = append(near, nearestPoints(p.Store()))
		}
		return nil, badField("point", "%v; %s", err, strings.Join(near, "; "))
	}
	for _, p := range ps {
		if err := windowCheck(p.Store(), pt, points[p.ID()]); err != nil {
			return nil, err
		}
	}
	o := &openView{info: View{ID: id, Point: pt.String(), Group: group, Points: points, Writable: req.Writable, Opened: b.now().UTC()}}
	fail := func(err error) (*openView, error) {
		o.closeDisks()
		return nil, err
	}
	cap := req.OverlayCap
	if cap == 0 {
		cap = DefaultOverlayCap
	}
	var exports []nbd.Export
	for _, p := range ps {
		r := points[p.ID()]
		size := p.Status().TargetBytes
		var v *recovery.View
		err := p.Hold(func(target vfs.File, st *journal.Store) error {
			var err error
			v, err = recovery.OpenView(b.ctx, st, target, size, r, "view "+id)
			return err
		})
		if err != nil {
			return fail(fmt.Errorf("pair %s: %w", p.ID(), err))
		}
		o.views = append(o.views, v)
		o.info.Pairs = append(o.info.Pairs, p.ID())
		var dev nbd.Device = v
		var sc *recovery.Scratch
		ex := ViewExport{Pair: p.ID(), Name: p.ID(), Size: size}
		if req.Writable {
			b.mu.Lock()
			cfg, ok := b.configs[p.ID()]
			b.mu.Unlock()
			if !ok || cfg.RetentionDir == "" {
				return fail(fmt.Errorf("%w: pair %s: the agent does not know its retention directory, where a writable view keeps its overlay", ErrConflict, p.ID()))
			}
			odir := filepath.Join(filepath.Dir(filepath.Clean(cfg.RetentionDir)), ".views")
			if err := os.MkdirAll(odir, 0o700); err != nil {
				return fail(fmt.Errorf("view overlay: %w", err))
			}
			b.removeStaleOverlays(odir)
			sc, err = recovery.NewScratch(v, size, filepath.Join(odir, id+"-"+p.ID()+".overlay"), cap)
			if err != nil {
				return fail(err)
			}
			dev = sc
			ex.OverlayCap, ex.Overlay = cap, sc.Path()
		}
		o.scratch = append(o.scratch, sc)
		exports = append(exports, nbd.Export{Name: p.ID(), Dev: dev, Writable: req.Writable,
			Description: fmt.Sprintf("mtconsole view %s of pair %s at %s", id, p.ID(), r)})
		o.info.Exports = append(o.info.Exports, ex)
	}
	var ln net.Listener
	if network == "unix" {
		if err := os.MkdirAll(filepath.Dir(addr), 0o755); err != nil {
			return fail(fmt.Errorf("view socket: %w", err))
		}
		if fi, err := os.Lstat(addr); err == nil {
			if fi.Mode().Type() != os.ModeSocket {
				return fail(badField("listen", "%s exists and is not a socket: give another path", addr))
			}
			if c, err := net.DialTimeout("unix", addr, time.Second); err == nil {
				c.Close()
				return fail(badField("listen", "%s: something answers there already", addr))
			}
			os.Remove(addr) // a stale socket: nobody answers
		}
		ln, err = net.Listen("unix", addr)
		if err == nil {
			err = os.Chmod(addr, 0o600)
			o.sock = addr
		}
		o.info.Listen = "unix:" + addr
	} else {
		ln, err = net.Listen("tcp", addr)
		if err == nil {
			o.info.Listen = "tcp:" + ln.Addr().String()
		}
	}
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return fail(fmt.Errorf("view %s: listen on %s: %w", id, addr, err))
	}
	for i := range o.info.Exports {
		e := &o.info.Exports[i]
		if network == "unix" {
			e.URI = fmt.Sprintf("nbd+unix:///%s?socket=%s", e.Name, addr)
		} else {
			e.URI = fmt.Sprintf("nbd://%s/%s", strings.TrimPrefix(o.info.Listen, "tcp:"), e.Name)
		}
	}
	o.srv = &nbd.Server{Exports: exports}
	go func() {
		if err := o.srv.Serve(ln); err != nil {
			b.hub.Publish(writer.Event{Time: b.now().UTC(), Kind: writer.EventLog, Level: slog.LevelWarn,
				Message: fmt.Sprintf("view %s: serving stopped: %v", id, err)})
		}
	}()
	return o, nil
}

// removeStaleOverlays removes the overlays in dir that no open view has:
// left by an agent killed with views open (a clean stop removes them).
func (b *WriterBackend) removeStaleOverlays(dir string) {
	b.mu.Lock()
	open := map[string]bool{}
	for _, o := range b.views {
		for _, e := range o.info.Exports {
			open[e.Overlay] = true
		}
	}
	b.mu.Unlock()
	names, _ := filepath.Glob(filepath.Join(dir, "*.overlay"))
	for _, n := range names {
		if open[n] {
			continue
		}
		if err := os.Remove(n); err == nil {
			b.hub.Publish(writer.Event{Time: b.now().UTC(), Kind: writer.EventLog, Level: slog.LevelWarn,
				Message: fmt.Sprintf("removed the view overlay %s: an agent that stopped without closing its views left it", n)})
		}
	}
}

// closeDisks closes the views and removes the overlays.
func (o *openView) closeDisks() error {
	var errs []error
	for _, s := range o.scratch {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	for _, v := range o.views {
		errs = append(errs, v.Close())
	}
	return errors.Join(errs...)
}

func (o *openView) close() error {
	var err error
	if o.srv != nil {
		err = o.srv.Close()
	}
	err = errors.Join(err, o.closeDisks())
	if o.sock != "" {
		if rerr := os.Remove(o.sock); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// Views implements ViewBackend: the open views, oldest first.
func (b *WriterBackend) Views() ([]View, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.viewsLocked(), nil
}

func (b *WriterBackend) viewsLocked() []View {
	out := []View{}
	for _, o := range b.views {
		out = append(out, o.snapshot())
	}
	slices.SortFunc(out, func(a, c View) int { return cmpID(a.ID, c.ID) })
	return out
}

// cmpID orders view ids as they were given: v2 before v10.
func cmpID(a, c string) int {
	if len(a) != len(c) {
		return len(a) - len(c)
	}
	return strings.Compare(a, c)
}

// CloseView implements ViewBackend: the clients are disconnected, the
// overlay removed.
func (b *WriterBackend) CloseView(id string) error {
	return b.closeView(id, "closed")
}

func (b *WriterBackend) closeView(id, why string) error {
	b.mu.Lock()
	o, ok := b.views[id]
	delete(b.views, id)
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("view %q: %w (list them with `mtconsole view list`)", id, ErrUnknownView)
	}
	clients := o.srv.Conns()
	err := o.close()
	msg := fmt.Sprintf("view %s of %s %s", id, strings.Join(o.info.Pairs, ","), why)
	if clients > 0 {
		msg += fmt.Sprintf(", %d client(s) disconnected", clients)
	}
	if o.info.Writable {
		msg += ", its overlay removed"
	}
	level := slog.LevelInfo
	if err != nil {
		msg += ": " + err.Error()
		level = slog.LevelWarn
	}
	b.hub.Publish(writer.Event{Time: b.now().UTC(), Kind: writer.EventLog, Level: level, Message: msg})
	return err
}

// CloseViews closes the views of pair (every view for ""), saying why
// in the log: the agent stops, the pair is removed.
func (b *WriterBackend) CloseViews(pair, why string) {
	b.mu.Lock()
	var ids []string
	for id, o := range b.views {
		if pair == "" || slices.Contains(o.info.Pairs, pair) {
			ids = append(ids, id)
		}
	}
	b.mu.Unlock()
	slices.SortFunc(ids, cmpID)
	for _, id := range ids {
		b.closeView(id, why)
	}
}

var _ io.ReaderAt = (*recovery.View)(nil)
var _ ViewBackend = (*WriterBackend)(nil)
