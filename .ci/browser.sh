#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (/usr/bin/chromium); never a downloaded browser.
# Install it from Debian's packages when it is missing. In CI a missing browser is an error
# (the browser tests would otherwise be skipped); elsewhere it is a warning.
set -uo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  echo "Chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi
if command -v apt-get >/dev/null && [ "$(id -u)" = "0" ]; then
  echo "Installing Debian's chromium for the browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1 || true
fi
if [ -x "$CHROMIUM" ]; then
  echo "Chromium: $("$CHROMIUM" --version 2>/dev/null)"
  exit 0
fi
echo "No Chromium at $CHROMIUM: the browser tests will be skipped" >&2
[ "${CI:-}" = "true" ] && exit 1
exit 0
