#!/usr/bin/env bash
# Make sure Debian's faketime (libfaketime) is installed: the suite also runs under faked clocks.
set -euo pipefail
command -v faketime >/dev/null && exit 0
echo "faketime is missing; installing Debian's faketime package" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq faketime
command -v faketime >/dev/null || { echo "faketime could not be installed" >&2; exit 1; }
