// Package scripts carries the files of scripts/ that the binary installs,
// so that what `mtconsole install` lays down is what is reviewed here.
package scripts

import _ "embed"

// AgentUnit is mtconsole-agent.service, the master-target agent's
// systemd unit.
//
//go:embed mtconsole-agent.service
var AgentUnit []byte
