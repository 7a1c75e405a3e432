// Package disks states facts about the block devices of a Linux host: the
// disks and partitions sysfs lists (size, sector sizes, model, vendor,
// rotational, removable, holders), the device-mapper devices above them,
// the mounts of /proc/self/mountinfo with the free space of each mounted
// file system, the devices under / and /boot, swap, partition tables
// (GPT and MBR, read with go-diskfs), LVM membership (partition type, the
// PV label, LVM device-mapper holders), file-system signatures, and the
// stable SCSI identifiers that disk.EnableUUID=TRUE gives a VMware disk
// (/dev/disk/by-id and the designators of VPD page 0x83).
//
// What it promises:
//
//   - Facts only, never judgements: whether a host is fit to be a master
//     target is decided by package setup from these facts.
//   - Every path is read under Host.Root (sys, proc, dev, etc below it), so
//     a fixture tree in a test stands in for a real host; "/" is the host.
//   - It only reads. It never opens a device for writing, never runs a
//     tool and never changes the host.
//   - What cannot be read is recorded next to the device it concerns
//     (Block.Err) instead of failing the whole inventory: one unreadable
//     device does not hide the others.
package disks
