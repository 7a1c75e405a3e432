package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/replication/agent"
)

// The screen restarts the agent only as root, on systemd, when the service
// runs; otherwise it says what to do. No secret is on a command line.
func TestAgentRestarter(t *testing.T) {
	systemd := t.TempDir()
	for _, tc := range []struct {
		name    string
		euid    int
		systemd string
		active  bool
		fail    bool
		calls   []string
		want    string
		wantErr string
	}{
		{name: "not root", euid: 1000, systemd: systemd, want: "sudo systemctl try-restart mtconsole-agent"},
		{name: "no systemd", systemd: filepath.Join(systemd, "none"), want: "no systemd here"},
		{name: "not running", systemd: systemd, calls: []string{"systemctl is-active --quiet mtconsole-agent"}, want: "service is not running"},
		{name: "restarted", systemd: systemd, active: true,
			calls: []string{"systemctl is-active --quiet mtconsole-agent", "systemctl try-restart mtconsole-agent"}, want: "agent restarted"},
		{name: "restart fails", systemd: systemd, active: true, fail: true,
			calls: []string{"systemctl is-active --quiet mtconsole-agent", "systemctl try-restart mtconsole-agent"}, wantErr: "Job failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			r := agentRestarter{euid: tc.euid, systemd: tc.systemd, run: func(_ context.Context, name string, args ...string) ([]byte, error) {
				calls = append(calls, strings.Join(append([]string{name}, args...), " "))
				switch {
				case args[0] == "is-active" && !tc.active:
					return nil, errors.New("exit status 3")
				case args[0] == "try-restart" && tc.fail:
					return []byte("Job failed.\n"), errors.New("exit status 1")
				}
				return nil, nil
			}}
			msg, err := r.restart(context.Background())
			if strings.Join(calls, "; ") != strings.Join(tc.calls, "; ") {
				t.Errorf("ran %q, want %q", calls, tc.calls)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(msg, tc.want) {
				t.Errorf("restart: %q %v, want %q", msg, err, tc.want)
			}
		})
	}
}

func TestAgentHostConfig(t *testing.T) {
	dir := t.TempDir()
	if got := agentHostConfig(filepath.Join(dir, "none.toml")); got != agent.DefaultHostConfig {
		t.Errorf("no agent config: %q, want the default", got)
	}
	write := func(line string) string {
		p := filepath.Join(dir, "agent.toml")
		text := "[agent]\n" + line + "\n[process_server]\naddress = \"ps:9443\"\npassphrase_file = \"/p\"\n[[pair]]\ndisk = \"d\"\ntarget = \"/t\"\n"
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := agentHostConfig(write(`host_config = "/srv/mt/host.conf"`)); got != "/srv/mt/host.conf" {
		t.Errorf("named: %q", got)
	}
	if got := agentHostConfig(write(`host_config = ""`)); got != "" {
		t.Errorf("off: %q", got)
	}
	if got := agentHostConfig(write("")); got != agent.DefaultHostConfig {
		t.Errorf("left out: %q", got)
	}
}

// The host config screen only looks for --readonly, and for a user other
// than root who does not own the config's directory.
func TestHostConfigReadOnly(t *testing.T) {
	dir := t.TempDir()
	owner := os.Getuid()
	other := owner + 4242
	if owner == 0 {
		other = 4242
	}
	config := filepath.Join(dir, "host.conf")
	for _, c := range []struct {
		flag bool
		euid int
		want string
	}{
		{true, 0, "--readonly"},
		{false, 0, ""},
		{false, other, "not root"},
		{true, other, "--readonly"},
	} {
		if got := hostConfigReadOnly(c.flag, c.euid, config); got != c.want {
			t.Errorf("flag %v, euid %d: %q, want %q", c.flag, c.euid, got, c.want)
		}
	}
	if owner == 0 { // a user who owns it may change it
		if err := os.Chown(dir, other, -1); err != nil {
			t.Fatal(err)
		}
		owner = other
	}
	if got := hostConfigReadOnly(false, owner, config); got != "" {
		t.Errorf("the owner of the config's directory: %q", got)
	}
}
