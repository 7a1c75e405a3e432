// Package failback plans and creates the failback VM for the console and
// the CLI, from disks/vsphere: the VM made from the disks recovered onto
// this master target, with create-vm's defaults (2 CPUs, 2048 MB, no
// NIC, this master target's host).
//
// What it promises:
//
//   - Load reads the console's vSphere connection (vsphere.LoadConfig's
//     file, overridden field by field by the caller's settings); no file
//     and no URL is no vSphere, never an error; a file that is unsafe,
//     wrong or incomplete is an error naming what is missing.
//   - The password is read at each login only (a cached session needs
//     none), from the password file; never from the configuration.
//   - Console.Plan changes nothing (create-vm --dry-run); Console.Create
//     plans again and runs the plan, which refuses failing checks and
//     undoes its steps on a failure (vsphere.Client.Execute).
//   - Checks shows vsphere checks as setup checks, every field carried
//     over, so they render with the setup package's.
//
// It sits above disks/ (which imports nothing above it) and below cmd and
// tui; a later issue grows it into the whole failback.
package failback
