#!/usr/bin/env bash
# Install what tests/test_browser.py needs: Debian's chromium + chromium-driver, and selenium
# in the project's venv. Idempotent: when everything is there it only checks and exits.
#
#   scripts/install-browser.sh            (run as root; uses apt-get and .venv/bin/pip)
#   VENV=/path/to/venv scripts/install-browser.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
# A CJK font, or the screenshots show boxes instead of Chinese (the test itself reads the DOM).
if ! command -v fc-list >/dev/null || [ -z "$(fc-list :lang=zh 2>/dev/null | head -n 1)" ]; then
    need_apt+=(fonts-noto-cjk)
fi

if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
        command -v sudo >/dev/null || { echo "install-browser: need root for apt-get" >&2; exit 1; }
    else
        SUDO=
    fi
    echo "install-browser: apt-get install ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "install-browser: no venv at $VENV (run make setup first)" >&2
    exit 1
fi
if ! "$VENV/bin/python" -c "import selenium" 2>/dev/null; then
    echo "install-browser: pip install selenium into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "selenium>=4.15" >&2
fi

/usr/bin/chromium --version 2>/dev/null
/usr/bin/chromedriver --version
"$VENV/bin/python" -c "import selenium; print('selenium', selenium.__version__)"
