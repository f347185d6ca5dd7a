# Shared by scripts/test: kustomize, which renders deploy/k8s's overlays for
# tests/deploy/test_k8s.py. It is built with the machine's Go from the module in
# deploy/k8s/tools, which locks its version (go.mod) and every module's checksum (go.sum,
# checked by `go build -mod=readonly`); the Go module proxy serves the sources. The binary is
# cached in ~/.cache/ganntec-mdp/kustomize-VERSION (or $XDG_CACHE_HOME); the first build takes
# a few minutes. Without Go the tests use `kubectl kustomize` when kubectl is there, and
# otherwise skip the rendering checks (saying why); the per-file checks run everywhere.
# It never fails the caller.

KUSTOMIZE_VERSION="v5.5.0"

kustomize_path() {
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/ganntec-mdp/kustomize-$KUSTOMIZE_VERSION/kustomize"
}

ensure_kustomize() {
    local binary
    binary="$(kustomize_path)"
    if [ -x "$binary" ]; then
        return 0
    fi
    if ! command -v go >/dev/null 2>&1; then
        echo "warning: go is missing, so kustomize $KUSTOMIZE_VERSION is not built: the" \
            "manifests' rendering tests use kubectl kustomize, or skip" >&2
        return 0
    fi
    echo "==> building kustomize $KUSTOMIZE_VERSION (locked in deploy/k8s/tools)" >&2
    mkdir -p "$(dirname "$binary")"
    if (cd deploy/k8s/tools && GOFLAGS=-mod=readonly GOTOOLCHAIN=local \
        go build -trimpath -o "$binary.part" sigs.k8s.io/kustomize/kustomize/v5) >&2; then
        mv "$binary.part" "$binary"
    else
        rm -f "$binary.part"
        echo "warning: kustomize could not be built: the manifests' rendering tests use" \
            "kubectl kustomize, or skip" >&2
    fi
}
