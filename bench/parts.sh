#!/usr/bin/env bash
# blastdoor parts: what each part of metering costs the proxy worker.
#
# Starts the gateway five times side by side in front of one nginx, each
# with one more of the metered bench target's parts turned on, and runs
# wrk against them in turns. For each it prints the proxy worker thread's
# CPU time per request (from /proc/PID/task, the steadiest figure on a
# shared machine), per round and as the median over the rounds:
#
#   plain      a public service: routing and the ledger only
#   key        an API key is required (the team's)
#   budget     + a hard monthly team budget
#   meter      + the `json` meter and prices (the response read whole and
#                priced before its head is sent, the cost header)
#   limits     + three rate limits and their RateLimit headers: the
#                metered target of bench/run.sh
#
# Env:
#   PARTS_SECONDS  wrk duration per run      (default 5)
#   PARTS_ROUNDS   rounds                    (default 5)
#   PARTS_CONNS    wrk connections           (default 50)
#   BLASTDOOR_BIN  as in run.sh
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECONDS_PER_RUN=${PARTS_SECONDS:-5}
ROUNDS=${PARTS_ROUNDS:-5}
CONNS=${PARTS_CONNS:-50}
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

UPSTREAM=127.0.0.1:18281
PARTS=(plain key budget meter limits)
workspace parts
start_upstream "$UPSTREAM"

METER='meter = "json"
unpriced = "reject"'
LIMITS='rate_limit = { requests_per_minute = 10000000, per_key_requests_per_minute = 10000000, per_key_units_per_minute = { item = 1000000000 } }'
PRICE='[service.price]
per_request = "0.00001"
units = [{ name = "item", price = "0.0001", from = "/n" }]'

declare -A PORT PID KEY
i=0
for part in "${PARTS[@]}"; do
    port=$((18283 + i))
    i=$((i + 1))
    cfg=$TMP/$part.toml
    public=false
    [[ $part == plain ]] && public=true
    render "$BENCH_DIR/blastdoor.toml.tmpl" "$cfg" "LISTEN=127.0.0.1:$port" \
        "ADMIN_LISTEN=127.0.0.1:$((port + 10))" "WORKERS=1" "POOL=$CONNS" \
        "UPSTREAM=$UPSTREAM" "PUBLIC=$public" "STORE=$TMP/$part"
    case $part in
        meter) printf '%s\n%s\n' "$METER" "$PRICE" >>"$cfg" ;;
        limits) printf '%s\n%s\n%s\n' "$METER" "$LIMITS" "$PRICE" >>"$cfg" ;;
    esac
    KEY[$part]=none
    if [[ $public == false ]]; then
        KEY[$part]=$("$BIN" keys --config "$cfg" create --name parts --team parts 2>/dev/null)
    fi
    if [[ $part != plain && $part != key ]]; then
        "$BIN" budgets --config "$cfg" set --team parts --amount 1000000 --period month \
            --mode hard >/dev/null
    fi
    "$BIN" serve --config "$cfg" >"$TMP/$part.log" 2>&1 &
    PID[$part]=$!
    PIDS+=($!)
    PORT[$part]=$port
done
for part in "${PARTS[@]}"; do
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$((PORT[$part] + 10))/readyz" 2>/dev/null && break
        sleep 0.1
    done
done

# CPU ticks (utime + stime) of the proxy worker thread.
proxy_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        if [[ $(cat "$t/comm") == blastdoor-proxy ]]; then
            sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}'
            return
        fi
    done
    echo 0
}

CLK_TCK=$(getconf CLK_TCK)
declare -A SAMPLES
echo "blastdoor parts: proxy worker CPU per request (us), ${SECONDS_PER_RUN}s x $ROUNDS rounds, C=$CONNS ($(nproc) cpus)"
for ((r = 1; r <= ROUNDS; r++)); do
    line="round $r:"
    for part in "${PARTS[@]}"; do
        before=$(proxy_ticks "${PID[$part]}")
        out=$(wrk -t2 -c"$CONNS" -d"${SECONDS_PER_RUN}s" -H "Authorization: Bearer ${KEY[$part]}" \
            "http://127.0.0.1:${PORT[$part]}/bench/hello")
        after=$(proxy_ticks "${PID[$part]}")
        n=$(awk '/requests in/ {print $1}' <<<"$out")
        us=$(awk -v d=$((after - before)) -v n="$n" -v hz="$CLK_TCK" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')
        SAMPLES[$part]+="$us "
        line+=" $part=$us"
    done
    echo "$line"
done
echo "median:"
for part in "${PARTS[@]}"; do
    # shellcheck disable=SC2086
    printf '  %-7s %s us\n' "$part" "$(printf '%s\n' ${SAMPLES[$part]} | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')"
done
