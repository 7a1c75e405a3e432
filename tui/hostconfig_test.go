package tui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/hostconfig/csserver"
	"github.com/mtconsole/mtconsole/replication/wire"
)

var ctrlS = tea.KeyPressMsg{Code: 's', Mod: tea.ModCtrl}

func newHC(t *testing.T, w, h int) *HostConfigModel {
	t.Helper()
	paths := hostconfig.PathsFor(filepath.Join(t.TempDir(), "etc", "host.conf"))
	m := NewHostConfig(HostConfigOptions{Paths: paths, Host: "mt01", NoColor: true, Version: "test"})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

func hcText(t *testing.T, m *HostConfigModel) string {
	t.Helper()
	s := ansi.Strip(m.View().Content)
	lines := strings.Split(s, "\n")
	if len(lines) != m.h {
		t.Errorf("%dx%d: %d lines", m.w, m.h, len(lines))
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > m.w {
			t.Errorf("%dx%d: line %d is %d cells wide: %q", m.w, m.h, i+1, w, l)
		}
	}
	return s
}

func hcPress(m *HostConfigModel, keys ...tea.Msg) {
	for _, k := range keys {
		m.Update(k)
	}
}

func TestGoldenHostConfig(t *testing.T) {
	fp := wire.Fingerprint{0xde, 0xad, 0xbe, 0xef}
	for name, setup := range map[string]func(m *HostConfigModel){
		"menu": nil,
		"help": func(m *HostConfigModel) { hcPress(m, keyMsg("?")) },
		"global": func(m *HostConfigModel) {
			hcPress(m, keyMsg("enter"))
		},
		"global_errors": func(m *HostConfigModel) {
			hcPress(m, keyMsg("enter"), keyMsg("down"), keyMsg("ctrl+u"), keyMsg("7"), keyMsg("0"), keyMsg("0"), keyMsg("0"), keyMsg("0"))
			m.Update(tea.PasteMsg{Content: "short\n"})
			hcPress(m, ctrlS)
			// the host is checked first; then the passphrase
			hcPress(m, keyMsg("up"))
			m.Update(tea.PasteMsg{Content: "cs.example.com"})
			hcPress(m, keyMsg("down"), keyMsg("down"), keyMsg("down"))
			m.Update(tea.PasteMsg{Content: "short\n"})
			hcPress(m, ctrlS)
		},
		"confirm": func(m *HostConfigModel) {
			m.Update(hcDoneMsg{part: partGlobal, untrust: fp})
			m.confirmAddr = "10.0.0.4:443"
		},
		"nat": func(m *HostConfigModel) {
			hcPress(m, keyMsg("right"), keyMsg("right"), keyMsg("enter"), keyMsg("space"), keyMsg("down"), keyMsg("down"), keyMsg("space"), ctrlS)
		},
		"logging": func(m *HostConfigModel) {
			hcPress(m, keyMsg("right"), keyMsg("right"), keyMsg("right"), keyMsg("enter"), tea.KeyPressMsg{Code: tea.KeyRight})
		},
	} {
		for _, sz := range sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", name, sz.w, sz.h), func(t *testing.T) {
				m := newHC(t, sz.w, sz.h)
				if setup != nil {
					setup(m)
				}
				golden.RequireEqual(t, hcText(t, m))
			})
		}
	}
}

func TestHostConfigSmallTerminal(t *testing.T) {
	m := newHC(t, 70, 20)
	if s := ansi.Strip(m.View().Content); !strings.Contains(s, "at least 80x24") || ansi.StringWidth(s) > 70 {
		t.Errorf("%q", s)
	}
}

// startTestCS runs a configuration server over TLS on loopback.
func startTestCS(t *testing.T) (addr string, pass hostconfig.Passphrase, fp wire.Fingerprint) {
	t.Helper()
	dir := csserver.Dir(filepath.Join(t.TempDir(), "cs"))
	pass, fp, err := csserver.Init(dir, []string{"127.0.0.1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, _, err := csserver.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := csserver.OpenStore(dir.Store(), false)
	if err != nil {
		t.Fatal(err)
	}
	srv := csserver.New(csserver.Options{Key: key, Cert: fp, Store: st, Log: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln, &cert, time.Hour) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return ln.Addr().String(), pass, fp
}

// TestFlowHostConfigRegister: open Global, enter the server, paste the
// passphrase with a trailing newline, save, confirm the fingerprint: the
// host is registered and the passphrase shows nowhere on screen.
func TestFlowHostConfigRegister(t *testing.T) {
	addr, pass, fp := startTestCS(t)
	host, port, _ := net.SplitHostPort(addr)
	paths := hostconfig.PathsFor(filepath.Join(t.TempDir(), "etc", "host.conf"))
	m := NewHostConfig(HostConfigOptions{Paths: paths, Host: "mt01", NoColor: true, Version: "test", SysRoot: "/"})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	var screen bytes.Buffer
	out := io.TeeReader(tm.Output(), &screen)
	wait := func(what string) {
		t.Helper()
		teatest.WaitFor(t, out, func(b []byte) bool { return bytes.Contains(b, []byte(what)) }, teatest.WithDuration(10*time.Second))
	}
	tm.Send(keyMsg("enter"))
	wait("CX Server settings")
	tm.Type(host)
	tm.Send(keyMsg("down"))
	tm.Send(keyMsg("ctrl+u"))
	tm.Type(port)
	tm.Send(keyMsg("down"))
	tm.Send(keyMsg("down"))
	tm.Send(tea.PasteMsg{Content: string(pass) + "\n"})
	tm.Send(ctrlS)
	wait("Trust this certificate")
	tm.Send(keyMsg("y"))
	wait("registered and verified")
	tm.Send(keyMsg("esc"))
	tm.Send(keyMsg("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))

	if !strings.Contains(screen.String(), fp.String()) {
		t.Error("the fingerprint was not shown for confirmation")
	}
	if strings.Contains(screen.String(), string(pass)) {
		t.Error("the passphrase appeared on screen")
	}
	cfg, err := hostconfig.Load(paths.Config)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CSAddr() != addr || cfg.HostID == "" {
		t.Errorf("saved %+v", cfg)
	}
	got, err := hostconfig.ReadPassphraseFile(paths.Passphrase)
	if err != nil || got != pass {
		t.Errorf("stored passphrase: %v (equal: %v)", err, got == pass)
	}
	ts, _ := wire.OpenTrustStore(paths.Trust)
	if pinned, ok, _ := ts.Lookup(addr); !ok || pinned != fp {
		t.Errorf("pinned %s %v, want %s", pinned, ok, fp)
	}
	if b, _ := os.ReadFile(paths.Config); bytes.Contains(b, []byte(pass)) {
		t.Error("the config holds the passphrase")
	}
}

// TestHostConfigWrongPassphrase: the refusal is shown under the
// passphrase and nothing is stored.
func TestHostConfigWrongPassphrase(t *testing.T) {
	addr, _, _ := startTestCS(t)
	host, port, _ := net.SplitHostPort(addr)
	m := newHC(t, 80, 24)
	hcPress(m, keyMsg("enter"))
	m.Update(tea.PasteMsg{Content: host})
	hcPress(m, keyMsg("down"), keyMsg("ctrl+u"))
	m.Update(tea.PasteMsg{Content: port})
	hcPress(m, keyMsg("down"), keyMsg("down"))
	m.Update(tea.PasteMsg{Content: "definitely-the-wrong-passphrase\n"})
	_, cmd := m.Update(ctrlS)
	if cmd == nil {
		t.Fatal("save started nothing")
	}
	m.Update(cmd())
	s := hcText(t, m)
	if !strings.Contains(s, "✗ passphrase rejected") || strings.Contains(s, "definitely-the-wrong") {
		t.Errorf("screen:\n%s", s)
	}
	if _, err := os.Stat(m.o.Paths.Config); err == nil {
		t.Error("a rejected save wrote the config")
	}
}

// After a registration is saved, the screen restarts the agent (through
// RestartAgent) and says what it did; a failed restart is shown, and a
// failed registration restarts nothing.
func TestHostConfigRestartsAgent(t *testing.T) {
	addr, pass, _ := startTestCS(t)
	host, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		name, pass string
		err        error
		calls      int
		want       string
	}{
		{"restarted", string(pass), nil, 1, "✓ registered and verified: host"},
		{"restart failed", string(pass), fmt.Errorf("systemctl try-restart mtconsole-agent: exit status 1"), 1, "✗ the agent was not restarted:"},
		{"not registered", "definitely-the-wrong-passphrase", nil, 0, "✗ passphrase rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			paths := hostconfig.PathsFor(filepath.Join(t.TempDir(), "etc", "host.conf"))
			m := NewHostConfig(HostConfigOptions{Paths: paths, Host: "mt01", NoColor: true, Version: "test", SysRoot: "/",
				RestartAgent: func(ctx context.Context) (string, error) {
					calls++
					if tc.err != nil {
						return "", tc.err
					}
					return "agent restarted: it sends heartbeats with this registration", nil
				}})
			m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
			hcPress(m, keyMsg("enter"))
			m.Update(tea.PasteMsg{Content: host})
			hcPress(m, keyMsg("down"), keyMsg("ctrl+u"))
			m.Update(tea.PasteMsg{Content: port})
			hcPress(m, keyMsg("down"), keyMsg("down"))
			m.Update(tea.PasteMsg{Content: tc.pass + "\n"})
			_, cmd := m.Update(ctrlS)
			for i := 0; cmd != nil && i < 3; i++ {
				_, cmd = m.Update(cmd())
				if m.state == hcConfirm {
					_, cmd = m.Update(keyMsg("y"))
				}
			}
			s := hcText(t, m)
			if !strings.Contains(s, tc.want) {
				t.Errorf("screen lacks %q:\n%s", tc.want, s)
			}
			if calls != tc.calls {
				t.Errorf("RestartAgent called %d times, want %d", calls, tc.calls)
			}
			if tc.calls > 0 && tc.err == nil && !strings.Contains(s, "agent restarted: it sends heartbeats") {
				t.Errorf("the restart is not reported:\n%s", s)
			}
			if strings.Contains(s, tc.pass) {
				t.Error("the passphrase is on screen")
			}
		})
	}
}

// An original agent's drscout.conf is offered once, on a host that names
// no configuration server: y fills the form (and the passphrase, masked)
// without saving, n keeps this host's settings.
func TestHostConfigDrscoutOffer(t *testing.T) {
	dir := t.TempDir()
	drscout := filepath.Join(dir, "drscout.conf")
	if err := os.WriteFile(drscout, []byte("[vxagent]\nHostId = 6f9619ff-8b86-d011-b42d-00cf4fc964ff\n[vxagent.transport]\n Hostname = cs.example.com\nPort= 8443\nHttps=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	oldPass := filepath.Join(dir, "connection.passphrase")
	if err := hostconfig.SavePassphrase(oldPass, "the-original-passphrase-0123"); err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, paths hostconfig.Paths, w, h int) *HostConfigModel {
		m := NewHostConfig(HostConfigOptions{Paths: paths, Host: "mt01", NoColor: true, Version: "test", Drscout: drscout, OldPassphrase: oldPass})
		m.Update(tea.WindowSizeMsg{Width: w, Height: h})
		return m
	}
	fresh := func(t *testing.T) hostconfig.Paths {
		return hostconfig.PathsFor(filepath.Join(t.TempDir(), "etc", "host.conf"))
	}
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("golden/%dx%d", sz.w, sz.h), func(t *testing.T) {
			m := open(t, fresh(t), sz.w, sz.h)
			golden.RequireEqual(t, strings.ReplaceAll(hcText(t, m), dir, "/usr/local/ASR/Vx/etc"))
		})
	}
	t.Run("yes", func(t *testing.T) {
		paths := fresh(t)
		m := open(t, paths, 80, 24)
		hcPress(m, keyMsg("y"))
		s := hcText(t, m)
		if m.state != hcMenu || !strings.HasPrefix(m.status, "imported "+drscout) || !strings.HasSuffix(m.status, "its passphrase too") || !strings.Contains(s, "check Global") {
			t.Errorf("after y:\n%s", s)
		}
		if m.cfg.CSHost != "cs.example.com" || m.cfg.CSPort != 8443 || m.cfg.HostID != "6f9619ff-8b86-d011-b42d-00cf4fc964ff" || m.cfg.Imported != drscout {
			t.Errorf("config %+v", m.cfg)
		}
		hcPress(m, keyMsg("enter"))
		s = hcText(t, m)
		if !strings.Contains(s, "cs.example.com") || !strings.Contains(s, "[8443") || strings.Contains(s, "the-original-passphrase") ||
			!strings.Contains(s, "****************") {
			t.Errorf("the Global form after the import:\n%s", s)
		}
		if _, err := os.Stat(paths.Config); err == nil {
			t.Error("the import saved the config before Save")
		}
	})
	t.Run("no", func(t *testing.T) {
		m := open(t, fresh(t), 80, 24)
		hcPress(m, keyMsg("n"))
		if m.state != hcMenu || m.cfg.CSHost != "" || !strings.Contains(hcText(t, m), "not imported") {
			t.Errorf("after n: %+v\n%s", m.cfg, hcText(t, m))
		}
	})
	t.Run("registered: not offered", func(t *testing.T) {
		paths := fresh(t)
		c := hostconfig.Default()
		c.CSHost, c.HostID = "10.0.0.4", hostconfig.NewHostID()
		if err := hostconfig.Save(paths.Config, c); err != nil {
			t.Fatal(err)
		}
		if m := open(t, paths, 80, 24); m.state != hcMenu || m.offer != nil {
			t.Errorf("offered to a registered host:\n%s", hcText(t, m))
		}
	})
	t.Run("bad file: said, not offered", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "drscout.conf")
		os.WriteFile(bad, []byte("[vxagent]\nHostId = x\n"), 0o600)
		m := NewHostConfig(HostConfigOptions{Paths: fresh(t), Host: "mt01", NoColor: true, Drscout: bad})
		m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
		if s := hcText(t, m); m.state != hcMenu || !strings.Contains(s, "not offered for import") {
			t.Errorf("bad drscout.conf:\n%s", s)
		}
	})
}
