#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (/usr/bin/chromium) through Playwright; Playwright
# never downloads a browser of its own. Install Chromium from the distribution when missing.
# Outside CI it never fails the build: without Chromium the browser tests skip and say why.
set -uo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Chromium for the browser tests (apt-get)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
    >/tmp/chromium-install.log 2>&1 || echo "Chromium could not be installed (see /tmp/chromium-install.log)" >&2
fi
[ -x "$CHROMIUM" ] || echo "No Chromium at $CHROMIUM: the browser tests will be skipped" >&2
# In CI a skipped browser suite would pass unnoticed: there, a missing Chromium is an error.
[ -x "$CHROMIUM" ] || [ "${CI:-}" != "true" ] || exit 1
exit 0
