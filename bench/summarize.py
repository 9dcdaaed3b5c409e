#!/usr/bin/env python3
"""Arithmetic helper for bench/run.sh (stdlib only).

Subcommands (all called by run.sh):
  run RESULTS TARGET N C RUN WRKFILE CPU_TICKS CLK_TCK RSS_IDLE_KB RSS_AFTER_KB HWM_KB
      parse one wrk --latency output, append a row to RESULTS (TSV), print one line
  set RESULTS TARGET N C
      print median [min-max] over the runs of one (target, N, C) set
  report RESULTS
      print every set plus the final summary table with blastdoor/nginx ratios
"""

import math
import os
import re
import statistics
import sys

COLUMNS = [
    "target", "workers", "conns", "run", "rps", "p50_us", "p99_us", "requests",
    "cpu_us_per_req", "rss_idle_kb", "rss_after_kb", "hwm_kb", "sock_errors", "non2xx",
]
# The blastdoor targets compared with the plain one, and their labels.
RATIOS = (("metered", "met/plain"), ("lean", "lean/plain"), ("traced", "trc/plain"))
TARGETS = ["direct", "nginx", "blastdoor", "metered", "lean", "traced"]
UNIT_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
NAN = float("nan")


def parse_wrk(text):
    out = {"rps": NAN, "p50_us": NAN, "p99_us": NAN, "requests": 0,
           "sock_errors": 0, "non2xx": 0}
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(r"^\s*" + pct + r"%\s+([0-9.]+)(us|ms|s|m|h)\s*$", text, re.M)
        if m:
            out[key] = float(m.group(1)) * UNIT_US[m.group(2)]
    m = re.search(r"^\s*(\d+) requests in ", text, re.M)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["sock_errors"] = sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    return out


def fnum(v, digits=1):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def fus(v):
    """latency in microseconds, integer"""
    if v is None or math.isnan(v):
        return "n/a"
    return f"{v:.0f}us"


def fmb(kb):
    if kb is None or math.isnan(kb) or kb <= 0:
        return "n/a"
    return f"{kb / 1024:.1f}MB"


def load(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        for line in fh:
            vals = line.rstrip("\n").split("\t")
            row = dict(zip(header, vals))
            for k in COLUMNS[1:]:
                row[k] = float(row[k])
            rows.append(row)
    return rows


def cmd_run(argv):
    (results, target, n, c, run, wrkfile, ticks, clk_tck,
     rss_idle, rss_after, hwm) = argv
    with open(wrkfile, errors="replace") as fh:
        w = parse_wrk(fh.read())
    ticks, clk_tck = int(ticks), int(clk_tck)
    cpu = ticks / clk_tck / w["requests"] * 1e6 if w["requests"] > 0 else NAN
    row = {"target": target, "workers": n, "conns": c, "run": run,
           "cpu_us_per_req": cpu, "rss_idle_kb": rss_idle,
           "rss_after_kb": rss_after, "hwm_kb": hwm, **w}
    new = not os.path.exists(results)
    with open(results, "a") as fh:
        if new:
            fh.write("\t".join(COLUMNS) + "\n")
        fh.write("\t".join(str(row[k]) for k in COLUMNS) + "\n")
    warn = ""
    if w["sock_errors"] or w["non2xx"]:
        warn = f"  WARN socket_errors={w['sock_errors']} non2xx={w['non2xx']}"
    if w["requests"] == 0:
        warn += "  WARN no requests parsed from wrk output"
    print(f"    run {run}: {fnum(w['rps'], 0):>8} req/s  p50 {fus(w['p50_us']):>8}  "
          f"p99 {fus(w['p99_us']):>8}  cpu/req {fnum(cpu, 2)}us "
          f"({ticks} ticks / {w['requests']} req)  rss {fmb(float(rss_after))}{warn}")


def stats(rows, key):
    vals = [r[key] for r in rows if not math.isnan(r[key])]
    if not vals:
        return NAN, NAN, NAN
    return statistics.median(vals), min(vals), max(vals)


def select(rows, target, n, c):
    return [r for r in rows if r["target"] == target
            and int(r["workers"]) == int(n) and int(r["conns"]) == int(c)]


def set_line(rows, target, n, c):
    sel = select(rows, target, n, c)
    if not sel:
        return None
    rps = stats(sel, "rps")
    p50 = stats(sel, "p50_us")
    p99 = stats(sel, "p99_us")
    cpu = stats(sel, "cpu_us_per_req")
    idle = max(r["rss_idle_kb"] for r in sel)
    after = max(r["rss_after_kb"] for r in sel)
    hwm = max(r["hwm_kb"] for r in sel)
    errs = sum(r["sock_errors"] for r in sel)
    non2xx = sum(r["non2xx"] for r in sel)
    label = "direct(upstream)" if target == "direct" else target
    s = (f"{label:<16} N={int(n)} C={int(c):<4} runs={len(sel)}  "
         f"rps {fnum(rps[0], 0)} [{fnum(rps[1], 0)}-{fnum(rps[2], 0)}]  "
         f"p50 {fus(p50[0])} [{fus(p50[1])}-{fus(p50[2])}]  "
         f"p99 {fus(p99[0])} [{fus(p99[1])}-{fus(p99[2])}]  "
         f"cpu/req {fnum(cpu[0], 2)}us [{fnum(cpu[1], 2)}-{fnum(cpu[2], 2)}]  "
         f"rss idle {fmb(idle)} after-load {fmb(after)} hwm {fmb(hwm)}")
    if errs or non2xx:
        s += f"  WARN socket_errors={int(errs)} non2xx={int(non2xx)}"
    return s


def cmd_set(argv):
    results, target, n, c = argv
    line = set_line(load(results), target, n, c)
    print("  => " + (line or f"{target} N={n} C={c}: no results"))


def ratio(a, b):
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def cmd_report(argv):
    (results,) = argv
    rows = load(results)
    if not rows:
        print("no results")
        return
    direct_n = {int(r["conns"]): int(r["workers"]) for r in rows if r["target"] == "direct"}
    keys = sorted({(int(r["workers"]), int(r["conns"])) for r in rows if r["target"] != "direct"})
    if not keys:  # direct only
        keys = sorted({(1, int(r["conns"])) for r in rows})

    print("== Per-set results: median [min-max] over runs ==")
    seen = set()
    for target in TARGETS:
        for r in rows:
            k = (target, int(r["workers"]), int(r["conns"]))
            if r["target"] == target and k not in seen:
                seen.add(k)
                print("  " + set_line(rows, *k))
    print()

    def med(target, n, c, key):
        if target == "direct":
            n = direct_n.get(c, n)
        sel = select(rows, target, n, c)
        return stats(sel, key)[0] if sel else None

    hdr = (f"{'N':>2} {'C':>4}  {'target':<10} {'req/s':>9} {'p50':>9} {'p99':>9} "
           f"{'cpu/req':>9} {'rss idle':>9} {'rss load':>9}")
    print("== Summary (median of runs; N = proxy workers, C = wrk connections; "
          "direct = upstream alone, 1 worker, cpu/req = upstream's) ==")
    print(hdr)
    print("-" * len(hdr))
    for n, c in keys:
        for target in TARGETS:
            rps = med(target, n, c, "rps")
            if rps is None:
                continue
            sel = select(rows, target, direct_n.get(c, n) if target == "direct" else n, c)
            idle = max(r["rss_idle_kb"] for r in sel)
            after = max(r["rss_after_kb"] for r in sel)
            flag = ""
            if any(r["sock_errors"] or r["non2xx"] for r in sel):
                flag = "  (errors!)"
            print(f"{n:>2} {c:>4}  {target:<10} {fnum(rps, 0):>9} "
                  f"{fus(med(target, n, c, 'p50_us')):>9} {fus(med(target, n, c, 'p99_us')):>9} "
                  f"{fnum(med(target, n, c, 'cpu_us_per_req'), 2) + 'us':>9} "
                  f"{fmb(idle):>9} {fmb(after):>9}{flag}")
        b_rps, g_rps = med("blastdoor", n, c, "rps"), med("nginx", n, c, "rps")
        if b_rps is not None and g_rps is not None:
            print(f"{n:>2} {c:>4}  {'bd/nginx':<10} {ratio(b_rps, g_rps):>9} "
                  f"{ratio(med('blastdoor', n, c, 'p50_us'), med('nginx', n, c, 'p50_us')):>9} "
                  f"{ratio(med('blastdoor', n, c, 'p99_us'), med('nginx', n, c, 'p99_us')):>9} "
                  f"{ratio(med('blastdoor', n, c, 'cpu_us_per_req'), med('nginx', n, c, 'cpu_us_per_req')):>9}")
        for target, label in RATIOS:
            t_rps = med(target, n, c, "rps")
            if b_rps is not None and t_rps is not None:
                print(f"{n:>2} {c:>4}  {label:<10} {ratio(t_rps, b_rps):>9} "
                      f"{ratio(med(target, n, c, 'p50_us'), med('blastdoor', n, c, 'p50_us')):>9} "
                      f"{ratio(med(target, n, c, 'p99_us'), med('blastdoor', n, c, 'p99_us')):>9} "
                      f"{ratio(med(target, n, c, 'cpu_us_per_req'), med('blastdoor', n, c, 'cpu_us_per_req')):>9}")
        print()
    paired_report(rows, keys)
    if any(r["target"] == "blastdoor" for r in rows) and any(r["target"] == "nginx" for r in rows):
        print("bd/nginx ratios: req/s higher is better; p50, p99, cpu/req lower is better.")
    # BENCH_AUTH=1: every blastdoor target checks an API key, so the ratios
    # are what metering (or tracing) costs on top of the key check.
    plain = ("blastdoor as a plain proxy checking the same kind of API key"
             if os.environ.get("BENCH_AUTH") == "1" else "blastdoor as a plain proxy")
    if any(r["target"] == "metered" for r in rows):
        print("met/plain: blastdoor with key, meter, prices, ledger, hard budget and rate limits "
              f"over {plain}.")
    if any(r["target"] == "lean" for r in rows):
        print("lean/plain: blastdoor with a meter, prices, ledger, a hard service budget and a "
              f"service rate limit, over {plain}.")
    if any(r["target"] == "traced" for r in rows):
        print("trc/plain: blastdoor exporting a span per request and per upstream attempt over OTLP "
              f"(sampling 1.0) and writing the access log to a file, over {plain}.")


def median_ci(vals, level=0.95):
    """A distribution-free confidence interval for the median: the order
    statistics x(k) and x(n+1-k), with k the largest rank such that
    P(Binomial(n, 1/2) < k) <= (1 - level) / 2. Rounds on a shared
    machine are not normal, so no normal approximation. None when there
    are too few values for any interval at this level (under 6 at 95%)."""
    xs = sorted(vals)
    n, tail, k, below = len(xs), (1 - level) / 2, 0, 0.0
    while k < n:
        below += math.comb(n, k) / 2 ** n
        if below > tail:
            break
        k += 1
    return (xs[k - 1], xs[n - k]) if k else None


def paired(rows, target, n, c, key):
    """Run r of `target` over run r of plain blastdoor, for every r both
    have: the blastdoor targets' runs alternate, so each pair ran under
    the same conditions. Returns (median, min, max, pairs, 95% interval of
    the median or None)."""
    plain = {int(r["run"]): r[key] for r in select(rows, "blastdoor", n, c)}
    ratios = [r[key] / plain[int(r["run"])] for r in select(rows, target, n, c)
              if plain.get(int(r["run"])) and not math.isnan(r[key])
              and not math.isnan(plain[int(r["run"])])]
    if not ratios:
        return None
    return (statistics.median(ratios), min(ratios), max(ratios), len(ratios),
            median_ci(ratios))


def paired_report(rows, keys):
    lines = []
    for n, c in keys:
        for target, label in RATIOS:
            rps = paired(rows, target, n, c, "rps")
            cpu = paired(rows, target, n, c, "cpu_us_per_req")
            if rps is None:
                continue
            cpu_text = f"{cpu[0]:.2f}x [{cpu[1]:.2f}-{cpu[2]:.2f}]" if cpu else "n/a"
            ci = f"{rps[4][0]:.2f}-{rps[4][1]:.2f}" if rps[4] else "n/a"
            lines.append(f"{n:>2} {c:>4}  {label:<10} {rps[0]:.2f}x [{rps[1]:.2f}-{rps[2]:.2f}]"
                         f"   {ci:<10}   {cpu_text:<20} {rps[3]}")
    if lines:
        print("== Paired ratios: each round's run over plain's run of the same round; "
              "median [min-max] over rounds, and the 95% confidence interval of the "
              "req/s median (distribution-free; needs 6 rounds or more) ==")
        print(f"{'N':>2} {'C':>4}  {'ratio':<10} {'req/s':<20} {'95% CI':<10}   "
              f"{'cpu/req':<20} rounds")
        for line in lines:
            print(line)
        print()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, argv = sys.argv[1], sys.argv[2:]
    {"run": cmd_run, "set": cmd_set, "report": cmd_report}.get(
        cmd, lambda _a: sys.exit(__doc__))(argv)


if __name__ == "__main__":
    main()
