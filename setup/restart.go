package setup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// AgentRestarter restarts the agent's service (mtconsole-agent, the unit
// an install writes to UnitPath) after a registration, so that it sends
// heartbeats with the new one; where it may not or cannot, it says what
// to run instead.
type AgentRestarter struct {
	EUID    int
	Systemd string // the directory that exists when systemd runs: /run/systemd/system
	// Run runs a command and returns its combined output; nil runs it
	// with os/exec.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
}

const restartAdvice = "restart the agent so it sends heartbeats with this registration"

// Restart restarts a running mtconsole-agent service, or says what to do.
func (r AgentRestarter) Restart(ctx context.Context) (string, error) {
	if r.EUID != 0 {
		return restartAdvice + " (sudo systemctl try-restart mtconsole-agent)", nil
	}
	if fi, err := os.Stat(r.Systemd); err != nil || !fi.IsDir() {
		return restartAdvice + " (no systemd here: stop and start mtconsole agent)", nil
	}
	run := r.Run
	if run == nil {
		run = runCombined
	}
	if _, err := run(ctx, "systemctl", "is-active", "--quiet", "mtconsole-agent"); err != nil {
		return "the mtconsole-agent service is not running: it uses this registration when it starts", nil
	}
	if out, err := run(ctx, "systemctl", "try-restart", "mtconsole-agent"); err != nil {
		return "", fmt.Errorf("systemctl try-restart mtconsole-agent: %v %s: %s", err, strings.TrimSpace(string(out)), restartAdvice)
	}
	return "agent restarted: it sends heartbeats with this registration", nil
}

func runCombined(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
