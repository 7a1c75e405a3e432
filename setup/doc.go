// Package setup holds the rules that decide whether a host can be a
// master target or a process server, and the actions that make it one:
// prerequisite checks (OS, kernel, root, hostname, locale, free space,
// time synchronisation, packages, kernel modules), disk rules over the
// facts of package disks (among them the target-disk rules protection
// applies: CheckTarget, SuggestTargets), the custom changes the original
// ApplyCustomChanges.sh made (each with check, apply, revert and whether
// it needs a reboot), the answers file, and install, upgrade and
// uninstall. Run from the .deb or .rpm's binary (Packaged), an install
// leaves the binary and the units to the package manager; from a bare
// binary it copies itself and writes the agent's unit. Either way a
// master target's retention data outside /var/lib/mtconsole gets the
// drop-in (DropInPath) that makes it writable to the agent's
// ProtectSystem=strict unit.
//
// What it promises:
//
//   - Every check is a Check value {id, title, status, detail, fix}; the
//     wizard, `mtconsole check` and the readiness step render the same
//     values. A fail always carries a fix an admin can type or follow.
//   - Every path is under Env.Root / the root given, so tests run on
//     fixture trees and temporary roots; nothing outside it is touched.
//   - Custom changes back up every file they touch before the first
//     change, write atomically (temporary file, fsync, rename, fsync of
//     the directory), change nothing when applied twice, and revert to
//     byte-identical files.
//   - Packages are queried and installed only through the PackageManager
//     interface; installs stream their output line by line and stop when
//     their context ends.
//   - Every change (a package install, a command, a file written, linked
//     or removed by the custom changes or a plan) goes through an
//     Executor. A dry-run Executor performs none of them and records what
//     each would do: a dry run changes nothing, anywhere, whoever calls.
package setup
