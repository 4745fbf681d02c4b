#!/bin/sh
# Quick start on a fresh Debian 12: install the packages, build, and start a
# local httpd on 127.0.0.1:8080 with conf/httpd.conf, an embedded DBM store
# under ./run and the example sink on 127.0.0.1:8081.
# --deps-only: install the packages and stop (CI uses it).
set -eu
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
PKGS=$(grep -v '^#' conf/debian-packages | tr '\n' ' ')
# A machine whose Node.js came from elsewhere (nodesource bundles npm) must
# keep it: Debian's npm package conflicts with it.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    PKGS=$(printf '%s\n' $PKGS | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
[ "${1:-}" = "--deps-only" ] && exit 0
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make -j2
make start
