#!/bin/sh
# After the package's files are gone (deb postrm: remove | purge | upgrade
# ...; rpm %postun: 0 on erase, 1 on upgrade): systemd forgets the units.
set -e
systemd=${MTCONSOLE_SYSTEMD_DIR:-/run/systemd/system}
[ -d "$systemd" ] || exit 0
systemctl daemon-reload || true
exit 0
