#!/usr/bin/env bash
# blastdoor load benchmark: direct upstream vs nginx reverse proxy vs blastdoor.
# See bench/README.md. Everything runs on loopback, in a temp dir that is
# removed (and every started process killed) on exit.
#
# Env:
#   BENCH_DURATION  wrk duration per measured run        (default 10s)
#   BENCH_RUNS      measured runs per set                 (default 3)
#   BENCH_WARMUP    warmup before each set                (default 2s)
#   BENCH_WORKERS   proxy worker counts, space separated  (default "1 2")
#   BENCH_CONNS     wrk connection counts                 (default "50 200")
#   WRK_THREADS     wrk threads                           (default 2)
#   ONLY            comma list of targets: direct,nginx,blastdoor,metered,lean,traced
#                   (default all)
#                   metered = blastdoor with an API key, a json meter, prices,
#                   the usage ledger, a hard team budget and rate limits on;
#                   lean = blastdoor with metering, a budget and a rate limit
#                   and nothing else: a json meter, prices, a hard service
#                   budget and the service's requests per minute, no API key;
#                   traced = blastdoor exporting spans over OTLP (sampling 1.0,
#                   to the upstream nginx, which answers 200) with the access
#                   log written to a file
#   BLASTDOOR_BIN   blastdoor binary (default $CARGO_TARGET_DIR/release/blastdoor
#                   or <repo>/target/release/blastdoor)
#   BENCH_AUTH      1: blastdoor's service requires an API key (created with
#                   `blastdoor keys create`), sent by wrk on every request
#   BENCH_OUT       if set, a directory to copy results.tsv, summary.txt and raw wrk output to
#   BENCH_KEEP_TMP  if 1, keep the temp dir (logs, configs) instead of deleting it
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)

DURATION=${BENCH_DURATION:-10s}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-2s}
read -r -a WORKERS_LIST <<<"${BENCH_WORKERS:-1 2}"
read -r -a CONNS_LIST <<<"${BENCH_CONNS:-50 200}"
WRK_THREADS=${WRK_THREADS:-2}
ONLY=${ONLY:-direct,nginx,blastdoor,metered,lean,traced}
BENCH_AUTH=${BENCH_AUTH:-0}
# Extra request headers for wrk and curl (the API key with BENCH_AUTH=1).
HDR=()

if [[ -n ${BLASTDOOR_BIN:-} ]]; then
    :
elif [[ -n ${CARGO_TARGET_DIR:-} ]]; then
    BLASTDOOR_BIN=$CARGO_TARGET_DIR/release/blastdoor
else
    BLASTDOOR_BIN=$REPO_DIR/target/release/blastdoor
fi

UPSTREAM_ADDR=127.0.0.1:18081
NGINX_ADDR=127.0.0.1:18082
# Each blastdoor target listens on its own ports: they run side by side so
# their runs can alternate (see run_blastdoors).
declare -A BD_PORT=([blastdoor]=18083 [metered]=18084 [traced]=18085 [lean]=18086)
BD_TARGETS=(blastdoor metered lean traced)
REQ_PATH=/bench/hello
EXPECTED_BODY='{"ok":true,"n":1,"msg":"hello from upstream"}'
READY_TIMEOUT_S=10

log() { printf '%s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

want() { [[ ",$ONLY," == *",$1,"* ]]; }

IFS=',' read -r -a only_items <<<"$ONLY"
for t in "${only_items[@]}"; do
    case $t in direct | nginx | blastdoor | metered | lean | traced) ;; *) die "ONLY: unknown target '$t' (use direct,nginx,blastdoor,metered,lean,traced)" ;; esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"

# ---------------------------------------------------------------- tools ----
need_pkgs=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_pkgs+=(nginx)
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v pgrep >/dev/null 2>&1 || need_pkgs+=(procps)
if ((${#need_pkgs[@]})); then
    log "installing missing packages: ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v python3 >/dev/null 2>&1 || die "python3 is required"
CLK_TCK=$(getconf CLK_TCK)

# Raise the fd limit as far as allowed (200 client + 200 upstream conns per proxy).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ------------------------------------------------------- temp + cleanup ----
TMP=$(mktemp -d "${TMPDIR:-/tmp}/blastdoor-bench.XXXXXX")
chmod 755 "$TMP" # nginx workers run as 'nobody' when started as root
RESULTS=$TMP/results.tsv
STARTED_PIDS=()

is_alive() { # running and not a zombie
    local st
    [[ -r /proc/$1/stat ]] || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z ]]
}

children_of() { pgrep -P "$1" 2>/dev/null || true; }

stop_pid() { # TERM, wait up to 5 s, then KILL (including direct children)
    local pid=$1 kids i
    kids=$(children_of "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        is_alive "$pid" || break
        sleep 0.1
    done
    if is_alive "$pid"; then
        log "  (pid $pid did not stop on TERM, sending KILL)"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    for k in $kids; do
        if is_alive "$k"; then kill -KILL "$k" 2>/dev/null || true; fi
    done
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${STARTED_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    STARTED_PIDS=("${keep[@]}")
}

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${STARTED_PIDS[@]}"; do stop_pid "$p"; done
    if [[ ${BENCH_KEEP_TMP:-0} == 1 ]]; then
        log "temp dir kept: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------- helpers ----
port_open() { # host:port
    (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null
}

for a in "$UPSTREAM_ADDR" "$NGINX_ADDR" 127.0.0.1:1808{3,4,5,6} 127.0.0.1:1809{3,4,5,6}; do
    port_open "$a" && die "$a is already in use; stop whatever listens there first"
done

wait_port() { # pid host:port
    local i
    for ((i = 0; i < READY_TIMEOUT_S * 20; i++)); do
        port_open "$2" && return 0
        is_alive "$1" || return 1
        sleep 0.05
    done
    return 1
}

wait_healthz() { # pid url
    local i
    for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
        curl -fsS -o /dev/null --max-time 1 "$2" 2>/dev/null && return 0
        is_alive "$1" || return 1
        sleep 0.1
    done
    return 1
}

render() { # template out key=value...
    local tmpl=$1 out=$2 kv args=()
    shift 2
    for kv in "$@"; do args+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
    sed "${args[@]}" "$tmpl" >"$out"
}

# start_nginx name template key=value... ; sets LAST_PID (the master)
start_nginx() {
    local name=$1 tmpl=$2 prefix=$TMP/$1
    shift 2
    rm -rf "$prefix"
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
    render "$tmpl" "$prefix/conf/nginx.conf" "PREFIX=$prefix" "$@"
    "$NGINX" -t -q -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/conf/nginx.conf" \
        || die "nginx config test failed for $name ($prefix/conf/nginx.conf)"
    "$NGINX" -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/conf/nginx.conf" \
        >"$prefix/logs/stdout.log" 2>&1 &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
}

# CPU ticks (utime+stime, fields 14+15 of /proc/PID/stat) summed over pid + direct children
cpu_ticks() {
    local p total=0 f
    for p in "$1" $(children_of "$1"); do
        f=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        # after stripping "pid (comm) ", field 3 (state) is $1, so utime=$12, stime=$13
        total=$((total + $(awk '{print $12 + $13}' <<<"$f")))
    done
    echo "$total"
}

# sum of a /proc/PID/status kB field (VmRSS, VmHWM) over pid + direct children
mem_kb() {
    local p total=0 v
    for p in "$1" $(children_of "$1"); do
        v=$(awk -v k="$2:" '$1 == k {print $2}' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

check_response() { # url -> 0 if the proxied body is the upstream's
    local body
    body=$(curl -fsS --max-time 2 ${HDR[@]+"${HDR[@]}"} "$1" 2>&1) || { log "  request to $1 failed: $body"; return 1; }
    [[ $body == "$EXPECTED_BODY" ]] || { log "  unexpected body from $1: $body"; return 1; }
}

# Blastdoor's admin /metrics while a blastdoor target runs; empty otherwise.
ADMIN_METRICS=

# Waits until the ledger writer has caught up (its records-written counter
# holds still for a second, 60 s at most), so the CPU it spends storing a
# run's records counts toward that run: records are spooled on the request
# path but written to the store in the background, possibly after wrk ends.
wait_ledger() {
    [[ -n $ADMIN_METRICS ]] || return 0
    local prev=-1 cur i
    for ((i = 0; i < 60; i++)); do
        cur=$(curl -fsS --max-time 2 "$ADMIN_METRICS" 2>/dev/null |
            awk '$1 == "blastdoor_ledger_records_written_total" {print $2}')
        [[ ${cur:-0} == "$prev" ]] && return 0
        prev=${cur:-0}
        sleep 1
    done
    log "  WARN: the ledger writer was still writing 60 s after the run"
}

# measure_run target N C run url pid: one measured wrk run, its CPU and memory.
measure_run() {
    local target=$1 n=$2 c=$3 run=$4 url=$5 pid=$6 out t0 t1 rss_after hwm
    out=$TMP/wrk-$target-n$n-c$c-r$run.txt
    t0=$(cpu_ticks "$pid")
    if ! wrk -t"$WRK_THREADS" -c"$c" -d"$DURATION" --latency ${HDR[@]+"${HDR[@]}"} "$url" >"$out" 2>&1; then
        log "  run $run: wrk failed:"; sed 's/^/    /' "$out"
    fi
    wait_ledger
    t1=$(cpu_ticks "$pid")
    rss_after=$(mem_kb "$pid" VmRSS)
    hwm=$(mem_kb "$pid" VmHWM)
    is_alive "$pid" || log "  WARN: $target (pid $pid) died during the run"
    python3 "$BENCH_DIR/summarize.py" run "$RESULTS" "$target" "$n" "$c" "$run" "$out" \
        "$((t1 - t0))" "$CLK_TCK" "${RSS_IDLE[$target]}" "$rss_after" "$hwm"
}

# prepare target N C url pid: check the answer, note idle memory, warm up.
declare -A RSS_IDLE
prepare() {
    local target=$1 n=$2 c=$3 url=$4 pid=$5
    log ""
    log "--- $target  N=$n  C=$c  ($url, measuring pid $pid + children)"
    check_response "$url" || { log "  SKIPPED: $target does not return the upstream body"; return 1; }
    RSS_IDLE[$target]=$(mem_kb "$pid" VmRSS)
    log "  warmup $WARMUP"
    wrk -t"$WRK_THREADS" -c"$c" -d"$WARMUP" ${HDR[@]+"${HDR[@]}"} "$url" >/dev/null 2>&1 || true
    wait_ledger
}

# measure target N C url pid: a whole set, its runs one after another.
measure() {
    local target=$1 n=$2 c=$3 url=$4 pid=$5 run
    prepare "$@" || return 1
    for ((run = 1; run <= RUNS; run++)); do
        measure_run "$target" "$n" "$c" "$run" "$url" "$pid"
    done
    python3 "$BENCH_DIR/summarize.py" set "$RESULTS" "$target" "$n" "$c"
}

# The service block that turns the plain proxy into the metered one: every
# request is metered from the response (`/n`), priced, spooled to the
# ledger, checked against a hard team budget and three rate limits.
METERED_BLOCK='meter = "json"
unpriced = "reject"
rate_limit = { requests_per_minute = 10000000, per_key_requests_per_minute = 10000000, per_key_units_per_minute = { item = 1000000000 } }
[service.price]
per_request = "0.00001"
units = [{ name = "item", price = "0.0001", from = "/n" }]'

# The lean target: what issue #4 names, metering, a budget and a rate
# limit, on a public service like the plain target's (a hard service
# budget is set at start).
LEAN_BLOCK='meter = "json"
unpriced = "reject"
rate_limit = { requests_per_minute = 10000000 }
[service.price]
per_request = "0.00001"
units = [{ name = "item", price = "0.0001", from = "/n" }]'

# start_blastdoor target N C: configure and start one blastdoor target on
# its own ports; sets BD_PID, BD_URL, BD_METRICS and BD_HDR for it.
declare -A BD_PID BD_URL BD_METRICS BD_HDR
start_blastdoor() {
    local target=$1 n=$2 c=$3 cfg blog pid key public=true port=${BD_PORT[$1]}
    local addr=127.0.0.1:$port admin=127.0.0.1:$((port + 10))
    cfg=$TMP/$target-n$n-c$c.toml
    blog=$TMP/$target-n$n-c$c.log
    if ((BENCH_AUTH)) || [[ $target == metered ]]; then public=false; fi
    render "$BENCH_DIR/blastdoor.toml.tmpl" "$cfg" "LISTEN=$addr" \
        "ADMIN_LISTEN=$admin" "WORKERS=$n" "POOL=$c" "UPSTREAM=$UPSTREAM_ADDR" \
        "PUBLIC=$public" "STORE=$TMP/$target-n$n-c$c"
    if [[ $target == metered ]]; then
        printf '%s\n' "$METERED_BLOCK" >>"$cfg"
    fi
    if [[ $target == lean ]]; then
        printf '%s\n' "$LEAN_BLOCK" >>"$cfg"
    fi
    if [[ $target == traced ]]; then
        sed -i "s#^access = \"off\"#access = \"$TMP/$target-n$n-c$c-access.log\"\n[tracing]\notlp_endpoint = \"http://$UPSTREAM_ADDR/v1/traces\"\nsample_ratio = 1.0#" "$cfg"
    fi
    BD_HDR[$target]=
    if [[ $public == false ]]; then
        key=$("$BLASTDOOR_BIN" keys --config "$cfg" create --name bench --team bench 2>/dev/null)
        BD_HDR[$target]="Authorization: Bearer $key"
    fi
    if [[ $target == metered ]]; then
        "$BLASTDOOR_BIN" budgets --config "$cfg" set --team bench --amount 1000000 \
            --period month --mode hard >/dev/null
    fi
    if [[ $target == lean ]]; then
        "$BLASTDOOR_BIN" budgets --config "$cfg" set --service bench --amount 1000000 \
            --period month --mode hard >/dev/null
    fi
    "$BLASTDOOR_BIN" serve --config "$cfg" >"$blog" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")
    if ! wait_healthz "$pid" "http://$admin/healthz"; then
        log ""
        if is_alive "$pid"; then
            log "--- $target N=$n C=$c: NOT READY (http://$admin/healthz not 2xx within ${READY_TIMEOUT_S}s); log tail:"
        else
            log "--- $target N=$n C=$c: EXITED during startup; log tail:"
        fi
        tail -n 20 "$blog" | sed 's/^/    /' || true
        stop_pid "$pid"
        return 1
    fi
    BD_PID[$target]=$pid
    BD_URL[$target]=http://$addr$REQ_PATH
    BD_METRICS[$target]=http://$admin/metrics
}

# use_blastdoor target: wrk's headers and the ledger to wait for are its.
use_blastdoor() {
    HDR=()
    [[ -z ${BD_HDR[$1]} ]] || HDR=(-H "${BD_HDR[$1]}")
    ADMIN_METRICS=${BD_METRICS[$1]}
}

# run_blastdoors N C targets...: starts the targets side by side and
# alternates their runs (run r of each target, then run r+1), each round
# starting with the next target, so drift on a shared machine falls on
# every target alike and each round's ratios compare like with like.
run_blastdoors() {
    local n=$1 c=$2 t run i k
    shift 2
    local ready=()
    for t in "$@"; do
        start_blastdoor "$t" "$n" "$c" || continue
        use_blastdoor "$t"
        if prepare "$t" "$n" "$c" "${BD_URL[$t]}" "${BD_PID[$t]}"; then
            ready+=("$t")
        fi
    done
    k=${#ready[@]}
    for ((run = 1; run <= RUNS && k > 0; run++)); do
        for ((i = 0; i < k; i++)); do
            t=${ready[$(((run - 1 + i) % k))]}
            use_blastdoor "$t"
            log "  $t run $run"
            measure_run "$t" "$n" "$c" "$run" "${BD_URL[$t]}" "${BD_PID[$t]}"
        done
    done
    for t in "${ready[@]}"; do
        python3 "$BENCH_DIR/summarize.py" set "$RESULTS" "$t" "$n" "$c"
    done
    for t in "$@"; do
        [[ -z ${BD_PID[$t]:-} ]] || stop_pid "${BD_PID[$t]}"
        BD_PID[$t]=
    done
    HDR=()
    ADMIN_METRICS=
}

# ----------------------------------------------------------------- main ----
log "blastdoor bench: $(nproc) cpus, $(uname -r), $("$NGINX" -v 2>&1), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
log "duration=$DURATION warmup=$WARMUP runs=$RUNS wrk_threads=$WRK_THREADS workers=(${WORKERS_LIST[*]}) conns=(${CONNS_LIST[*]}) only=$ONLY"

BD_OK=0
if want blastdoor || want metered || want lean || want traced; then
    if [[ -x $BLASTDOOR_BIN ]]; then
        BD_OK=1
        log "blastdoor binary: $BLASTDOOR_BIN ($(date -r "$BLASTDOOR_BIN" '+%F %T'))"
    else
        log ""
        log "NOTE: blastdoor binary not found at '$BLASTDOOR_BIN' -- skipping the blastdoor target."
        log "      Build it (cargo build --release) or set BLASTDOOR_BIN / CARGO_TARGET_DIR."
    fi
fi

start_nginx upstream "$BENCH_DIR/nginx-upstream.conf.tmpl" "LISTEN=$UPSTREAM_ADDR"
UPSTREAM_PID=$LAST_PID
wait_port "$UPSTREAM_PID" "$UPSTREAM_ADDR" || {
    cat "$TMP/upstream/logs/error.log" >&2 || true
    die "upstream nginx did not come up on $UPSTREAM_ADDR"
}
check_response "http://$UPSTREAM_ADDR$REQ_PATH" || die "upstream answers unexpectedly"
log "upstream nginx (1 worker) on $UPSTREAM_ADDR, master pid $UPSTREAM_PID"

for c in "${CONNS_LIST[@]}"; do
    if want direct; then
        measure direct 1 "$c" "http://$UPSTREAM_ADDR$REQ_PATH" "$UPSTREAM_PID" || true
    fi
    for n in "${WORKERS_LIST[@]}"; do
        if want nginx; then
            start_nginx proxy "$BENCH_DIR/nginx-proxy.conf.tmpl" "LISTEN=$NGINX_ADDR" \
                "WORKERS=$n" "KEEPALIVE=$c" "UPSTREAM=$UPSTREAM_ADDR"
            pid=$LAST_PID
            if wait_port "$pid" "$NGINX_ADDR"; then
                measure nginx "$n" "$c" "http://$NGINX_ADDR$REQ_PATH" "$pid" || true
            else
                log "nginx proxy did not come up on $NGINX_ADDR:"; cat "$TMP/proxy/logs/error.log" || true
            fi
            stop_pid "$pid"
        fi
        if ((BD_OK)); then
            targets=()
            for t in "${BD_TARGETS[@]}"; do
                if want "$t"; then targets+=("$t"); fi
            done
            if ((${#targets[@]})); then run_blastdoors "$n" "$c" "${targets[@]}"; fi
        fi
    done
done

log ""
if [[ -s $RESULTS ]]; then
    python3 "$BENCH_DIR/summarize.py" report "$RESULTS" | tee "$TMP/summary.txt"
else
    log "no results collected"
fi

if [[ -n ${BENCH_OUT:-} ]]; then
    mkdir -p "$BENCH_OUT"
    cp "$TMP"/results.tsv "$TMP"/summary.txt "$TMP"/wrk-*.txt "$BENCH_OUT"/ 2>/dev/null || true
    log "raw results copied to $BENCH_OUT"
fi
