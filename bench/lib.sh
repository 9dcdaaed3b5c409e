# Shared by soak.sh and parts.sh (sourced, not run): the blastdoor binary
# and the tools they need, a temp dir whose processes are stopped and
# which is removed on exit, the config templates and the upstream nginx.
# The sourcing script sets BENCH_DIR first.

REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
BIN=${BLASTDOOR_BIN:-${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/blastdoor}
[[ -x $BIN ]] || { echo "no blastdoor binary at $BIN: cargo build --release" >&2; exit 1; }
command -v wrk >/dev/null && { command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]]; } ||
    { echo "needs wrk and nginx (apt-get install wrk nginx)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# workspace name: a temp dir in TMP; PIDS are killed and TMP removed on exit.
workspace() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/blastdoor-$1.XXXXXX")
    chmod 755 "$TMP" # nginx workers run as 'nobody' when started as root
    PIDS=()
    trap cleanup EXIT
}

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 1
    rm -rf "$TMP"
}

render() { # template out key=value...
    local tmpl=$1 out=$2 kv args=()
    shift 2
    for kv in "$@"; do args+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
    sed "${args[@]}" "$tmpl" >"$out"
}

# start_upstream host:port: the upstream nginx of bench/run.sh, in TMP.
start_upstream() {
    mkdir -p "$TMP/upstream/conf" "$TMP/upstream/logs" "$TMP/upstream/tmp"
    render "$BENCH_DIR/nginx-upstream.conf.tmpl" "$TMP/upstream/conf/nginx.conf" \
        "PREFIX=$TMP/upstream" "LISTEN=$1"
    "$NGINX" -p "$TMP/upstream" -e "$TMP/upstream/logs/error.log" \
        -c "$TMP/upstream/conf/nginx.conf" &
    PIDS+=($!)
}
