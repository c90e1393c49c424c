#!/usr/bin/env python3
"""Check that a `loadtest compare` results.json holds figures for every named model.

    check-results.py RESULTS_JSON MODEL...

A model has figures when some object in the file belongs to it (a "model", "name", "target" or
"label" field equal to the name, or the object sits under a key equal to the name) and holds,
somewhere below, a positive number under a throughput key (requests, rps, throughput, per second).
The shape of results.json is compare's to choose; this only assumes that much of it.
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


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, models = sys.argv[1], sys.argv[2:]
    with open(path) as f:
        data = json.load(f)
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
