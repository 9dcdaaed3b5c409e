#!/usr/bin/env bash
# blastdoor soak: steady load for a long while, RSS sampled throughout.
# Memory must stay flat: a leak or an unbounded queue shows as a slope.
#
# The gateway runs as in bench/run.sh's `metered` target (API key, json
# meter, prices, ledger, hard team budget, rate limits) plus the access
# log written to a file and every request traced (spans over OTLP to the
# upstream nginx, which answers 200), in front of nginx on loopback; wrk
# keeps C connections busy for SOAK_DURATION.
#
# Env:
#   SOAK_DURATION  total load time in seconds   (default 600)
#   SOAK_EVERY     RSS sample interval, seconds (default 30)
#   SOAK_CONNS     wrk connections              (default 50)
#   SOAK_WORKERS   proxy workers                (default 1)
#   BLASTDOOR_BIN  as in run.sh
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DURATION=${SOAK_DURATION:-600}
EVERY=${SOAK_EVERY:-30}
CONNS=${SOAK_CONNS:-50}
WORKERS=${SOAK_WORKERS:-1}
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

UPSTREAM=127.0.0.1:18181
LISTEN=127.0.0.1:18183
ADMIN=127.0.0.1:18193
workspace soak
start_upstream "$UPSTREAM"

cfg=$TMP/blastdoor.toml
render "$BENCH_DIR/blastdoor.toml.tmpl" "$cfg" "LISTEN=$LISTEN" "ADMIN_LISTEN=$ADMIN" \
    "WORKERS=$WORKERS" "POOL=$CONNS" "UPSTREAM=$UPSTREAM" "PUBLIC=false" "STORE=$TMP/store"
# The access log goes to a rotated file rather than off.
sed -i "s#^access = \"off\"#access = \"$TMP/access.log\"\naccess_rotation = \"minutely\"\naccess_max_files = 3#" "$cfg"
cat >>"$cfg" <<'EOF'
meter = "json"
unpriced = "reject"
rate_limit = { requests_per_minute = 10000000, per_key_requests_per_minute = 10000000, per_key_units_per_minute = { item = 1000000000 } }
[service.price]
per_request = "0.00001"
units = [{ name = "item", price = "0.0001", from = "/n" }]
EOF
printf '[tracing]\notlp_endpoint = "http://%s/v1/traces"\nsample_ratio = 1.0\n' "$UPSTREAM" >>"$cfg"
key=$("$BIN" keys --config "$cfg" create --name soak --team soak)
"$BIN" budgets --config "$cfg" set --team soak --amount 100000000 --period month --mode hard >/dev/null
"$BIN" serve --config "$cfg" >"$TMP/serve.log" 2>&1 &
pid=$!
PIDS+=("$pid")
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://$ADMIN/readyz" 2>/dev/null && break; sleep 0.1; done

rss() { awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status"; }
echo "blastdoor soak: ${DURATION}s, C=$CONNS, N=$WORKERS, sample every ${EVERY}s ($(nproc) cpus)"
echo "rss idle: $(rss) kB"
wrk -t2 -c"$CONNS" -d"${DURATION}s" -H "Authorization: Bearer $key" "http://$LISTEN/bench/hello" >"$TMP/wrk.txt" 2>&1 &
wrk_pid=$!
printf '%8s %10s %12s %14s\n' "t(s)" "rss(kB)" "requests" "ledger_rows"
samples=()
for ((t = EVERY; t <= DURATION; t += EVERY)); do
    sleep "$EVERY"
    r=$(rss)
    samples+=("$r")
    m=$(curl -fsS "http://$ADMIN/metrics")
    reqs=$(awk '$1 ~ /^blastdoor_requests_total/ {s += $2} END {print s+0}' <<<"$m")
    rows=$(awk '$1 == "blastdoor_ledger_records_written_total" {print $2}' <<<"$m")
    printf '%8d %10d %12d %14s\n' "$t" "$r" "$reqs" "${rows:-0}"
done
wait "$wrk_pid" || true
grep -E "Requests/sec|Non-2xx|Socket errors" "$TMP/wrk.txt" || true
# First sample after warm-up vs the rest: a flat line has max ~ first.
first=${samples[0]}
min=$(printf '%s\n' "${samples[@]}" | sort -n | head -1)
max=$(printf '%s\n' "${samples[@]}" | sort -n | tail -1)
last=${samples[-1]}
echo "rss kB: first $first, last $last, min $min, max $max (last/first $(awk -v a="$last" -v b="$first" 'BEGIN {printf "%.2f", a/b}'))"
echo "access-log files kept: $(ls "$TMP" | grep -c '^access.log')"
