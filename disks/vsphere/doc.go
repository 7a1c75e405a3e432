// Package vsphere talks to the vCenter or ESXi that runs the master target,
// through govmomi, for the few things the master target needs from it:
//
//   - Connect: one session per Client, the password taken from the caller
//     (never from argv, never logged: it appears in no error, log line or
//     output of this package), the server's certificate pinned by its
//     SHA-256 (or SHA-1) thumbprint, checked on every TLS connection, or
//     accepted unchecked only when Config.Insecure says so. With
//     Config.SessionDir the session's cookie (never the password) is kept
//     in a 0600 file per URL and user and reused by the next Connect after
//     SessionManager.UserSession says it is alive; the password
//     (Config.PasswordFunc) is asked for only when a login is needed.
//   - LoadConfig: a connection file (the console's vsphere.conf), TOML,
//     owner-only, naming the password file and never the password; the
//     earlier unquoted key = value files still load.
//   - This VM: the master target's own VM found by its BIOS UUID
//     (/sys/class/dmi/id/product_uuid, in either byte order the guest may
//     show it) with SearchIndex.FindByUuid; its host, datastores, SCSI
//     controllers and disks; each disk joined to the guest's block device
//     through the VMDK UUID that the guest sees as the disk's NAA id
//     (/dev/disk/by-id/wwn-0x6000c29… or scsi-36000c29…).
//   - OpenTarget: the VM a command acts on (named, or this one by its BIOS
//     UUID), described, its disks joined to block devices.
//   - disk.EnableUUID: read from ExtraConfig; set only on a powered-off VM
//     (this package checks the power state itself; vSphere would accept the
//     change on a running VM and apply it only at the next power cycle).
//   - Datastores, hosts and networks, as seen from the master target's
//     datacenter and host.
//   - Readiness: the checks the original vContinuum ran before protecting
//     and recovering, as Check values that judge and never change anything.
//   - The failback VM: FailbackSpec.Validate judges the spec alone (each
//     error names the create-vm flag); PlanFailback resolves it without
//     changing anything (the dry run): SCSI controllers per bus
//     (lsilogic, lsilogic-sas, pvscsi; up to 4 of 15 disks), BIOS or EFI
//     (+secure boot), hardware version, cores per socket, NICs with their
//     MACs, host, cluster or pool, folder, or an existing powered-off VM
//     (OntoVM); its checks include the host's CPUs and memory (with a
//     cluster, that one usable host of it has them; not for OntoVM,
//     whose hardware is its own) and, for OntoVM, that its host mounts
//     the disks' datastores (too few free SCSI slots on it is an error).
//     InUseChecks adds whether a disk is a running pair's target (as the
//     caller learnt from the agent), mounted, or held. Execute detaches
//     the disks from the master target in one reconfigure, creates the VM
//     (marked with PlanMarkerKey = the plan's ID), attaches the disks and
//     powers it on.
//   - Interrupt-safe runs: every step is written to the plan file (JSON,
//     0600, renamed into place) before it is done and after. Every
//     task's end is read (Task.Wait returns nil when its context ends, so
//     that is never taken for success); on a cancel the task under way
//     is waited for (Client.TaskGrace; then asked to cancel, only when
//     vSphere says it is cancelable, and waited for a quarter grace
//     more), then every step begun is undone, last first. A task still
//     running then is ErrTaskRunning: nothing is undone beside it, the
//     plan file keeps the step as running with its task, and the error
//     names the undo command. Each step and its undo look at what
//     vSphere has first, so Resume finishes and Undo reverses a run
//     killed at any point (tasks the killed run left running are waited
//     for first, and tasks found on its objects, which may be someone
//     else's, are never cancelled: past the grace resume and undo refuse
//     with nothing changed; the new VM is found by its marker if its
//     reference was never recorded). The disks' files are never deleted:
//     a VM is destroyed only after its disks are taken off it.
//   - FindVMByName takes an exact name (or inventory path); FindVMGlob a
//     pattern that must match one VM.
//   - ProbeBoot reads the recovered disks' partition tables (their first
//     MiB, read-only) for the source's firmware (an EFI system partition
//     means efi) and guest family (Windows or Linux partition types);
//     FailbackSpec.SourceDefaults fills firmware, guest id and
//     controllers from it where the caller set none, recording each
//     default and its origin in FailbackSpec.Defaults.
//
// It never writes the guest's disks or touches their file systems: it
// reads the by-id directory, sys/class/block and proc/self/mountinfo
// under a root the caller gives, and the disks' partition tables, and
// writes only the plan files, under the caller's directory.
// Errors callers act on are sentinels (ErrUnreachable, ErrLogin,
// ErrCertificate, ErrVMNotFound, ErrPoweredOn, ErrNotReady, ErrPermission,
// ErrInterrupted, ErrTaskRunning) for errors.Is.
package vsphere
