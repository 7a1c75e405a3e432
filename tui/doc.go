// Package tui is the master target's interactive console: a dashboard of
// replication pairs (grouped by protected machine), a detail view per
// pair, a log screen, a recovery wizard, and the Protect and Unprotect
// screens, drawn with Bubble Tea v2 for an admin on SSH; the setup wizard
// (SetupModel); and the host config screen (HostConfigModel, the
// hostconfigcli replacement), whose saves call the same hostconfig
// functions as mtconsole register. Every screen is a page whose keys are
// one tui/action Set: dispatch, footer and help come from it.
//
// What it promises:
//
//   - It holds no business logic. Every change (tag, pause, resume,
//     recover) goes through the Actions interface, the same agent API the
//     CLI twins call, and protection through the Protector interface, the
//     calls mtconsole protect and unprotect make (protect/console); a
//     recovery point is always the agent's answer (POST /v1/resolve); recovery runs in the agent as a job, so a dropped
//     SSH session does not cut it in half, and a console that reopens
//     shows the job still running.
//   - After a rollback the wizard offers the failback VM (v) through the
//     Options.VSphere hook, which mtconsole implements with failback's
//     Console, the functions of mtconsole vsphere create-vm: a form of
//     create-vm's fields (failback.Form, prefilled by the hook's
//     SourceForm, read off the event loop: the name is the rolled-back
//     pairs' protection group, else the first pair's id; the disk count,
//     and the firmware, guest id and controller the disks' partition
//     tables show, each with a dim line saying where it came from; an
//     edit made before the probe answers stands; the disks are shown
//     with their sizes), each checked as it is left by create-vm's own
//     rules (failback.Form.Check) with the field named and what it takes,
//     scrolled to fit 80x24; enter on the last field makes the dry run
//     with its readiness checks, then a typed confirmation (the VM's
//     name), the steps as they run, the report. The hook gets the form as
//     a failback.Form, never as text. Without the hook the result says
//     how to configure vSphere.
//   - Runs that a kill left unfinished (the hook's Unfinished: plan files
//     neither done nor undone, read at start and every minute) show as a
//     line on the dashboard and on the failback form; f lists them, r resumes one, u undoes one
//     after its VM's name is typed, with the steps and report as
//     mtconsole vsphere failback resume|undo print them. While a run goes
//     on, q waits for its report.
//   - Data arrives as messages from a Collector (Live polls the agent
//     every second and follows its event stream; Replay plays a recorded
//     file), never by polling in View. When the agent stops answering the
//     last good data stays on screen with its age.
//   - It works at 80x24 (below that it draws one line saying the size it
//     needs), uses the room it gets at 120 columns and more, honours
//     NO_COLOR, never says a state by colour alone, leaves the mouse to
//     the terminal, gives every F-key a letter twin, and redraws at a low
//     frame rate with no timer faster than one second when idle.
//   - Every screen's keys are tui/action bindings: one list per screen and
//     state feeds the key dispatch, the footer and the ? help, so a key
//     that is shown is handled. A key that cannot be used now is listed
//     in the help as disabled with the reason, and pressed, says the
//     reason in the footer.
//   - Read-only mode (--readonly, or not root) refuses the keys that change
//     something (recover, tag, tag all, pause/resume, the wizard's start
//     and confirmation, the failback VM, resume and undo of a failback
//     run): the footer leaves them out, the
//     help lists them as disabled with the reason, pressing one says why
//     in the footer, and the title says read-only.
//
// It never queries the terminal outside the Bubble Tea program and never
// imports lipgloss/v2/compat.
package tui
