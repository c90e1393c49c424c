#!/usr/bin/env python3
"""Check that a `loadtest compare` results.json holds figures for every named model.

    check-results.py RESULTS_JSON MODEL...

Schema zoo-compare/1 (loadtest/README.md): `cells` holds one entry per (target, scenario,
variant) with `target`, `status` (ok, failed, skipped), `reason` and `headline.requests_per_s`.
A model has figures when at least one of its cells is ok with a positive requests_per_s; its
failed cells are listed with their reasons. An ok cell whose request count disagrees with the
server's /metrics fails the check (a failed cell's timeouts may leave the two apart).

For any other document the check falls back to a search: some object belongs to the model (a
"model", "name", "target" or "label" field equal to the name, or it sits under a key equal to
the name) and holds, somewhere below, a positive number under a throughput key.
"""
import json
import re
import sys

NAME_KEYS = {"model", "name", "target", "label", "id"}
FIGURE_KEY = re.compile(r"req|rps|throughput|per_s", re.I)


def owned(node, model, out):
    """Collect the sub-trees that belong to `model`."""
    if isinstance(node, dict):
        if any(k in NAME_KEYS and v == model for k, v in node.items()):
            out.append(node)
        for k, v in node.items():
            if k == model:
                out.append(v)
            owned(v, model, out)
    elif isinstance(node, list):
        for v in node:
            owned(v, model, out)


def figures(node, key=""):
    """Positive throughput-like numbers below `node`, as (key, value)."""
    if isinstance(node, bool):
        return []
    if isinstance(node, (int, float)):
        return [(key, node)] if node > 0 and FIGURE_KEY.search(key) else []
    if isinstance(node, dict):
        return [f for k, v in node.items() for f in figures(v, k)]
    if isinstance(node, list):
        return [f for v in node for f in figures(v, key)]
    return []


def check_cells(data, models):
    """The check for schema zoo-compare/1; returns the models without figures."""
    missing = []
    cells = data.get("cells", [])
    for m in models:
        mine = [c for c in cells if c.get("target") == m]
        ok = [
            c for c in mine
            if c.get("status") == "ok" and ((c.get("headline") or {}).get("requests_per_s") or 0) > 0
        ]
        failed = [c for c in mine if c.get("status") == "failed"]
        disagree = [c for c in mine if (c.get("metrics") or {}).get("agrees") is False]
        print(f"  {m}: {len(mine)} cells, {len(ok)} ok, {len(failed)} failed, "
              f"{len(disagree)} disagreeing with /metrics")
        for c in failed:
            print(f"    failed {c.get('scenario')} {c.get('variant')}: {c.get('reason')}")
        for c in disagree:
            print(f"    /metrics {c.get('scenario')} {c.get('variant')}: "
                  f"{(c.get('metrics') or {}).get('note')}")
        if not ok or any(c.get("status") == "ok" for c in disagree):
            missing.append(m)
    return missing


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, models = sys.argv[1], sys.argv[2:]
    with open(path) as f:
        data = json.load(f)
    if isinstance(data, dict) and data.get("schema") == "zoo-compare/1":
        missing = check_cells(data, models)
        if missing:
            sys.exit(f"results.json has no good figures for: {' '.join(missing)}")
        return
    missing = []
    for m in models:
        trees = []
        owned(data, m, trees)
        found = [f for t in trees for f in figures(t)]
        if found:
            key, value = found[0]
            print(f"  {m}: {len(found)} figures, e.g. {key} = {value}")
        else:
            print(f"  {m}: NO figures ({len(trees)} objects name it)")
            missing.append(m)
    if missing:
        sys.exit(f"results.json has no figures for: {' '.join(missing)}")


if __name__ == "__main__":
    main()
