# Shared by scripts/up and scripts/test: a program from Debian's packages, installed if missing.
# Usage: ensure_debian_program PROGRAM PACKAGE PURPOSE
#   PROGRAM  the path it must have (e.g. /usr/sbin/haproxy)
#   PACKAGE  the Debian package that installs it
#   PURPOSE  what goes without it, for the warning (e.g. "the edge's tests will be skipped")
# As root with apt-get it installs the package (one `apt-get update` per run); anyone else gets
# the command to run, and a warning. It never fails the caller: what needs the program says so.

_DEBIAN_UPDATED=""

ensure_debian_program() {
    local program="$1" package="$2" purpose="$3"
    if [ -x "$program" ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "warning: $program is missing, so $purpose;" \
            "install it with: sudo apt-get install -y $package" >&2
        return 0
    fi
    echo "==> installing Debian's $package ($purpose otherwise)" >&2
    if [ -z "$_DEBIAN_UPDATED" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        _DEBIAN_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2 ||
        echo "warning: apt-get could not install $package, so $purpose" >&2
}
