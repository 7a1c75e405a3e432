#!/bin/sh
# After the package's files are in place (deb postinst: configure [OLD];
# rpm %post: 1 on install, 2 on upgrade). systemctl only when systemd
# runs: not in a container or a chroot being built.
set -e
systemd=${MTCONSOLE_SYSTEMD_DIR:-/run/systemd/system}
[ -d "$systemd" ] || exit 0
systemctl daemon-reload || true
upgrade=no
case "$1" in
	configure) [ -n "${2:-}" ] && upgrade=yes ;;
	[2-9]*) upgrade=yes ;;
esac
# An upgrade restarts the units that run, on the new binary (the agent
# resumes from its journals); none is enabled or started on install.
if [ "$upgrade" = yes ]; then
	systemctl try-restart mtconsole-agent.service mtconsole-ps.service mtconsole-cs.service || true
fi
exit 0
