// Command mtconsole is the console and replication engine of a
// disaster-recovery master target. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"
)

// Exit codes, documented in README.md.
const (
	exitOK    = 0
	exitError = 1 // the command failed; the message says why
	exitUsage = 2 // bad flags or arguments
)

// usageError marks errors in how the command was called.
type usageError struct{ error }

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mtconsole:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(exitUsage)
		}
		os.Exit(exitError)
	}
}
