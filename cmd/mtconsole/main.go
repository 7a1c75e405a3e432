// Command mtconsole is the console and replication engine of a
// disaster-recovery master target. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// Exit codes, documented in README.md.
const (
	exitOK    = 0
	exitError = 1 // the command failed; the message says why
	exitUsage = 2 // bad flags or arguments
	exitAgent = 3 // no agent answers on the status API's socket
)

// usageError marks errors in how the command was called.
type usageError struct{ error }

// usageArgs makes a wrong number of arguments a usage error, as the root
// command's flag error function does for bad flags.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mtconsole:", err)
		if errors.Is(err, api.ErrNoAgent) {
			os.Exit(exitAgent)
		}
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		var ue usageError
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
			os.Exit(exitUsage)
		}
		os.Exit(exitError)
	}
}
