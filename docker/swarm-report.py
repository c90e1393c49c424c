#!/usr/bin/env python3
"""Write results.json and report.md of a swarm run from what docker/swarm.sh collected.

    swarm-report.py [--check] OUT_DIR MODEL...

OUT_DIR/logs/MODEL/ holds each generator replica's `loadtest run --json` (replica-N.json) and
interval log (replica-N.hlog), and `loadtest merge --json` of those logs (merged.json): the
merge itself is loadtest's, this only lays its figures beside the replicas' and the server's.
OUT_DIR/logs/metrics.txt has zoo_requests_total before and after each cell ("MODEL before N").

Per model it checks that the merged request count is the sum of the replicas' counts (exact:
histograms are added, never averaged) and that the server counted as many requests between its
two scrapes (the second scrape counts itself; a request a client gave up on may still have been
answered, so the server may count up to the clients' errors more). With --check a failed check
exits non-zero.
"""
import glob
import json
import os
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def cell(out, model, metrics):
    replicas = []
    for path in sorted(glob.glob(os.path.join(out, "logs", model, "replica-*.json"))):
        run = load(path)
        slot = os.path.basename(path)[len("replica-"):-len(".json")]
        replicas.append({
            "slot": int(slot) if slot.isdigit() else slot,
            "requests": run["requests"],
            "warmup_requests": run.get("warmup_requests", 0),
            "errors": run["errors"]["total"],
            "requests_per_s": run["requests_per_s"],
            "p50_us": ((run.get("latency") or {}).get("percentiles") or {}).get("50"),
        })
    merged = load(os.path.join(out, "logs", model, "merged.json"))
    total = sum(r["requests"] for r in replicas)
    errors = sum(r["errors"] for r in replicas)
    sent = total + sum(r["warmup_requests"] for r in replicas)
    server = cpu_us = None
    before, after = metrics.get((model, "before")), metrics.get((model, "after"))
    if before is not None and after is not None:
        server = after - before - 1
    cpu0, cpu1 = metrics.get((model, "before_cpu")), metrics.get((model, "after_cpu"))
    if cpu0 is not None and cpu1 is not None and server:
        # process_cpu_seconds_total moves in the kernel's ticks (10 ms): a short cell is rough.
        cpu_us = (cpu1 - cpu0) * 1e6 / server
    checks = {
        "merged_equals_sum": merged["requests"] == total,
        "server_agrees": server is not None and sent <= server <= sent + errors,
    }
    return {
        "target": model,
        "replicas": replicas,
        "merged": merged,
        "server": {"before": before, "after": after, "requests": server,
                   "cpu_s": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
                   "cpu_us_per_request": cpu_us},
        "checks": checks,
    }


def latency_cell(merged, q):
    lat = merged.get("latency") or {}
    for key in ("percentiles",):
        if key in lat and q in lat[key]:
            return fmt_us(lat[key][q])
    return "—"


def fmt_us(us):
    if us is None:
        return "—"
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def main():
    args = sys.argv[1:]
    check = bool(args) and args[0] == "--check"
    if check:
        args = args[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    out, models = args[0], args[1:]
    metrics = {}
    mpath = os.path.join(out, "logs", "metrics.txt")
    if os.path.exists(mpath):
        for line in open(mpath):
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                metrics[(parts[0], parts[1])] = int(parts[2])
            if len(parts) == 4 and parts[3] != "-":
                metrics[(parts[0], parts[1] + "_cpu")] = float(parts[3])
    env = {k: os.environ.get(k) for k in (
        "ZOO_REPLICAS", "ZOO_PATH", "ZOO_CONNECTIONS", "ZOO_CELL_SECONDS", "ZOO_WARMUP_SECONDS",
        "ZOO_CPUS", "ZOO_CLIENT_CPUS", "ZOO_IMAGE")}
    cells = [cell(out, m, metrics) for m in models]
    doc = {"schema": "zoo-swarm/1", "config": env, "cells": cells}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")

    lines = [
        "# zoo on a Docker Swarm: several generators, one histogram",
        "",
        f"{env['ZOO_REPLICAS']} generator replicas × {env['ZOO_CONNECTIONS']} connections, "
        f"`GET {env['ZOO_PATH']}` for {env['ZOO_CELL_SECONDS']} s per model (warm-up "
        f"{env['ZOO_WARMUP_SECONDS'] or 0} s), all replicas of a cell started at the same "
        "wall-clock time. The replicas' HdrHistogram logs are added by `loadtest merge`: the "
        "percentiles are those of every request of every replica, and req/s is the sum of "
        "the replicas' rates.",
        "",
        "| model | replicas | req/s (sum) | p50 | p99 | p99.9 | requests | per replica | server counted | server CPU µs/req | checks |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    failed = []
    for c in cells:
        m = c["merged"]
        per = " + ".join(str(r["requests"]) for r in c["replicas"])
        ok = [k for k, v in c["checks"].items() if v]
        bad = [k for k, v in c["checks"].items() if not v]
        failed += [f"{c['target']}: {k}" for k in bad]
        lines.append(
            f"| {c['target']} | {len(c['replicas'])} | {m['requests_per_s']:.0f} | "
            f"{latency_cell(m, '50')} | {latency_cell(m, '99')} | {latency_cell(m, '99.9')} | "
            f"{m['requests']} | {per} | {c['server']['requests']} | "
            f"{'—' if c['server']['cpu_us_per_request'] is None else format(c['server']['cpu_us_per_request'], '.1f')} | "
            f"{'ok' if not bad else 'FAILED: ' + ', '.join(bad)} |")
    lines += [
        "",
        "*requests* is the merged histogram's count, *per replica* what each replica counted, "
        "*server counted* the growth of the server's `zoo_requests_total` over the cell (its "
        "second scrape not counted), and *server CPU* its `process_cpu_seconds_total` over the "
        "same span per request counted (the kernel counts CPU in 10 ms ticks: a short cell is rough).",
        "",
    ]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    if check and failed:
        sys.exit("swarm checks failed: " + "; ".join(failed))


if __name__ == "__main__":
    main()
