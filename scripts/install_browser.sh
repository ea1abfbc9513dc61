#!/usr/bin/env bash
# Installs Debian's Chromium for the headless browser test. Playwright's own browser download
# cannot be fetched here, so the test drives /usr/bin/chromium through playwright's Python API.
set -u
if [ -x /usr/bin/chromium ]; then echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null)"; exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "cannot install chromium (need root and apt-get); the browser test will be skipped" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null \
  && echo "installed $(/usr/bin/chromium --version 2>/dev/null)"
