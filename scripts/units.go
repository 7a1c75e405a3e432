// Package scripts carries the files of scripts/ that the binary installs,
// so that what `mtconsole install` lays down is what is reviewed here.
// The .deb and .rpm (scripts/package.sh, scripts/nfpm.yaml) ship the
// same unit files in /usr/lib/systemd/system.
package scripts

import _ "embed"

// AgentUnit is mtconsole-agent.service, the master-target agent's
// systemd unit (Type=notify, WatchdogSec, ProtectSystem=strict).
//
//go:embed mtconsole-agent.service
var AgentUnit []byte
