# Shared by scripts/test (and anything else that drives the chart page in a browser).
# Usage: ensure_chromium   -- Debian's chromium at /usr/bin/chromium, installed if missing.
# Never downloads a browser build of its own (Playwright's `playwright install` is not used:
# the tests launch this one).
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

ensure_chromium() {
    ensure_debian_program "$CHROMIUM" chromium "the chart page's browser tests will be skipped"
}
