# Shared by scripts/up and scripts/test: a project virtual environment with the project in it.
# Usage: ensure_venv EXTRAS   (EXTRAS like "" or "[dev]")

MIN_PYTHON="3.11"

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

ensure_venv() {
    local extras="$1" venv="${VENV:-.venv}" stamp python
    stamp="$venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)${extras//[^a-z]/-}"
    if [ ! -x "$venv/bin/python" ]; then
        python="$(find_python)"
        echo "==> creating $venv with $python" >&2
        "$python" -m venv "$venv"
    fi
    if [ ! -e "$stamp" ]; then
        echo "==> installing the project and its dependencies into $venv" >&2
        "$venv/bin/python" -m pip install --quiet --upgrade pip
        "$venv/bin/python" -m pip install --quiet --editable ".$extras"
        touch "$stamp"
    fi
}
