#!/usr/bin/env bash
# Installs Debian's `chromium` when missing: the HTML report's test renders report.html in it
# headless (no server, no network). Idempotent.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
echo "setup-chromium: installing chromium (Debian package) to test report.html" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
