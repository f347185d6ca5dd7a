# Shared by scripts/up and scripts/test: the chart page's browser dependencies.
# Usage: ensure_node_modules   -- `npm ci` in charting/web when node_modules is missing or
# package-lock.json changed since the last install (a stamp in node_modules remembers it).

CHART_WEB_DIR="${CHART_WEB_DIR:-charting/web}"

ensure_node_modules() {
    local lock="$CHART_WEB_DIR/package-lock.json" stamp="$CHART_WEB_DIR/node_modules/.mdp-lock-sha256"
    local wanted
    if ! command -v npm >/dev/null 2>&1; then
        echo "error: npm is needed for the chart page (Node.js 18 or newer); install it," \
            "then run: (cd $CHART_WEB_DIR && npm ci)" >&2
        return 1
    fi
    wanted="$(sha256_of "$lock")"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        return 0
    fi
    echo "==> installing the chart page's packages (npm ci in $CHART_WEB_DIR)" >&2
    (cd "$CHART_WEB_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$wanted" >"$stamp"
}
