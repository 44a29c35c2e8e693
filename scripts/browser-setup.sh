#!/usr/bin/env bash
# Headless Chromium for the browser test of report.html (tests/test_browser.py), as slurm-up.sh does for Slurm:
#
#   scripts/browser-setup.sh        (then: export TRTBENCH_CHROMIUM=<the path it prints last>)
#
# Installs Debian's `chromium` package if no Chromium is on PATH (needs root or password-less sudo, and apt-get;
# --no-install-recommends: no fonts or extras beyond what it depends on), then prints the executable's path on its
# last line. Idempotent: a second run only looks. A browser downloaded by a test library is never used.
set -euo pipefail

PROG=browser-setup.sh
die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

find_chromium() { command -v chromium || command -v chromium-browser; } 2>/dev/null

if ! found=$(find_chromium); then
    command -v apt-get >/dev/null || die "Chromium is not installed and apt-get is not available (not Debian/Ubuntu)"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null && sudo -n true 2>/dev/null \
            || die "Chromium is not installed and installing it needs root (not root, no password-less sudo)"
        SUDO=(sudo -n)
    fi
    log "installing chromium (apt-get, --no-install-recommends) ..."
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq >&2 || die "apt-get update failed"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >&2 || die "apt-get install chromium failed"
    found=$(find_chromium) || die "installed the chromium package but no chromium is on PATH"
fi
version=$("$found" --version 2>/dev/null) || die "$found does not run (--version failed)"
log "$version at $found"
echo "$found"
