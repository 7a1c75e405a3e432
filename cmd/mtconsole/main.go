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
	exitError = 1  // the command failed; the message says why
	exitUsage = 2  // bad flags or arguments
	exitAgent = 3  // no agent answers on the status API's socket
	exitCS    = 14 // the configuration server cannot be reached or refused the passphrase, time or certificate
)

// codeError ends the command with an exit status of its own (the
// commands document theirs).
type codeError struct {
	code int
	err  error
}

func (e codeError) Error() string { return e.err.Error() }
func (e codeError) Unwrap() error { return e.err }

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
	root.SetArgs(argsFor(os.Args))
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mtconsole:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode is the exit status for err (README.md lists them).
func exitCode(err error) int {
	var ce codeError
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, api.ErrNoAgent):
		return exitAgent
	case isCSError(err):
		return exitCS
	case errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command"):
		return exitUsage
	}
	return exitError
}
