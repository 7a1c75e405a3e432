// Package failback plans and creates the failback VM for the console and
// the CLI, from disks/vsphere: the VM made from the disks recovered onto
// this master target, from a Form (DefaultForm prefills it from the
// source's name and disk count, Console.SourceForm also from the disks'
// partition tables: firmware, guest id, controller; the console edits it
// field by field).
//
// What it promises:
//
//   - Load reads the console's vSphere connection (vsphere.LoadConfig's
//     file, overridden field by field by the caller's settings); no file
//     and no URL is no vSphere, never an error; a file that is unsafe,
//     wrong or incomplete is an error naming what is missing.
//   - The password is read at each login only (a cached session needs
//     none), from the password file; never from the configuration.
//   - A Form holds create-vm's fields (one SCSI controller type for every
//     bus the disks need, up to MaxNICs NICs, placement, power on, onto an
//     existing VM); Fields lists them in the console's order, Set reads a
//     field's text and Check judges the form with create-vm's own rules
//     (vsphere.FailbackSpec.Validate), field by field in that order, so
//     the error (a *FieldError) names the field at fault and what it
//     takes; Spec is the form as create-vm's spec.
//   - Console.Plan/PlanForm change nothing (create-vm --dry-run), and
//     add the disks' in-use checks (PairTargets asks the agent which
//     pairs run); Console.Create/CreateForm plan again and run the plan,
//     which refuses failing checks and undoes its steps on a failure or a
//     cancel (vsphere.Client.Execute), recorded in a plan file under
//     Settings.PlanDir; Unfinished lists the runs left by a kill (as
//     Pending: the VM, its plan file, where it stopped), which Resume
//     finishes and Undo reverses.
//   - Checks shows vsphere checks as setup checks, every field carried
//     over, so they render with the setup package's.
//
// It sits above disks/ (which imports nothing above it) and below cmd and
// tui; a later issue grows it into the whole failback.
package failback
