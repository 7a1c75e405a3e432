#!/bin/sh
# Before the package's files go (deb prerm: remove | upgrade NEW | ...;
# rpm %preun: 0 on erase, 1 on upgrade). Only a removal stops and
# disables the units; an upgrade leaves them running (postinstall
# restarts them on the new binary).
set -e
systemd=${MTCONSOLE_SYSTEMD_DIR:-/run/systemd/system}
case "$1" in
	remove | 0) ;;
	*) exit 0 ;;
esac
[ -d "$systemd" ] || exit 0
systemctl disable --now mtconsole-agent.service mtconsole-ps.service mtconsole-cs.service || true
exit 0
