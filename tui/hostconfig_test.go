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
