# Shared by scripts/test (and anything else that drives the chart page in a browser).
# Usage: ensure_chromium   -- Debian's chromium at /usr/bin/chromium, installed if missing.
# As root it runs apt-get; anyone else gets the command to run. Never downloads a browser
# build of its own (Playwright's `playwright install` is not used: the tests launch this one).

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

ensure_chromium() {
    if [ -x "$CHROMIUM" ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "warning: $CHROMIUM is missing, so the chart page's browser tests will be skipped;" \
            "install it with: sudo apt-get install -y chromium" >&2
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "warning: $CHROMIUM is missing and there is no apt-get to install it with;" \
            "the chart page's browser tests will be skipped" >&2
        return 0
    fi
    echo "==> installing Debian's chromium (for the chart page's browser tests)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
}
