# Shared by scripts/up, scripts/test and scripts/lock: a project virtual environment installed
# from the lock files in requirements/ (nothing is resolved at install time).
# Usage: ensure_venv LOCK   (LOCK is "base" or "dev": requirements/LOCK.txt)
#        ensure_uv          (prints the path of the pinned uv, installing it on first use)

MIN_PYTHON="3.11"
TOOLS_DIR="${MDP_TOOLS_DIR:-.tools}"

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: Python $MIN_PYTHON or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

ensure_uv() {
    local pins="scripts/lib/uv.txt" venv="$TOOLS_DIR/uv" stamp
    stamp="$venv/.installed-$(sha256sum "$pins" | cut -c1-16)"
    if [ ! -e "$stamp" ]; then
        echo "==> installing uv (pinned in $pins) into $venv" >&2
        rm -rf "$venv"
        "$(find_python)" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --require-hashes --no-deps -r "$pins" >&2
        touch "$stamp"
    fi
    echo "$venv/bin/uv"
}

ensure_venv() {
    local lock="requirements/$1.txt" venv="${VENV:-.venv}" stamp uv
    stamp="$venv/.installed-$(cat "$lock" pyproject.toml | sha256sum | cut -c1-16)-$1"
    [ -e "$stamp" ] && return 0
    uv="$(ensure_uv)"
    if [ ! -x "$venv/bin/python" ]; then
        echo "==> creating $venv" >&2
        "$uv" venv --quiet --python "$(find_python)" "$venv" >&2
    fi
    echo "==> installing the locked packages ($lock) and the project into $venv" >&2
    # sync: exactly the lock, with its hashes checked; then the project itself, built with the
    # locked setuptools and no further resolution.
    "$uv" pip sync --quiet --python "$venv/bin/python" --require-hashes "$lock" >&2
    "$uv" pip install --quiet --python "$venv/bin/python" --no-deps --no-build-isolation \
        --editable . >&2
    rm -f "$venv"/.installed-*
    touch "$stamp"
}
