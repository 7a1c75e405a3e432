package setup

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
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
			r := AgentRestarter{EUID: tc.euid, Systemd: tc.systemd, Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
				calls = append(calls, strings.Join(append([]string{name}, args...), " "))
				switch {
				case args[0] == "is-active" && !tc.active:
					return nil, errors.New("exit status 3")
				case args[0] == "try-restart" && tc.fail:
					return []byte("Job failed.\n"), errors.New("exit status 1")
				}
				return nil, nil
			}}
			msg, err := r.Restart(context.Background())
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
