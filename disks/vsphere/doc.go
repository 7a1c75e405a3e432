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
//   - The failback VM: a Plan computed without changing anything (the dry
//     run), then Execute, which detaches the recovered disks from the
//     master target, creates the VM, attaches the disks and powers it on.
//     Every step before power-on has an undo; a failure undoes the steps
//     done, in reverse order, and the disks' files are never deleted.
//
// It never touches the guest's disks or file systems: it reads the by-id
// directory under a root the caller gives, and nothing else of the host.
// Errors callers act on are sentinels (ErrUnreachable, ErrLogin,
// ErrCertificate, ErrVMNotFound, ErrPoweredOn, ErrNotReady, ErrPermission)
// for errors.Is.
package vsphere
