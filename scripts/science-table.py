#!/usr/bin/env python3
"""Mean +- std over seeds of the science runs (metrics.json of each run folder) as Markdown."""
import json, statistics, sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/science")

def figures(run):
    knn = json.loads((run / "knn" / "metrics.json").read_text())["knn"]
    linear = json.loads((run / "linear" / "metrics.json").read_text())["linear"]
    return next(r["top1"] for r in knn if r["k"] == 20), linear["best"]["top1"]

def fmt(values):
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"

lines = ["| run | seeds | k-NN top-1 (k 20) | linear top-1 |", "|---|---|---|---|"]
for name, sub in [("MAE teacher (4 x 96, patch 4)", "teacher"), ("same encoder, random init", "random-init-encoder")]:
    p = out / sub
    if (p / "linear" / "metrics.json").exists():
        k, l = figures(p)
        lines.append(f"| {name} | 1 | {k:.2f} | {l:.2f} |")
for family in sorted(d for d in out.iterdir() if d.is_dir() and d.name.startswith("table10")):
    for row in sorted(r for r in family.iterdir() if r.is_dir()):
        got = [figures(p) for p in sorted(row.glob("seed*")) if (p / "linear" / "metrics.json").exists()]
        if not got:
            continue
        lines.append(f"| {family.name} / {row.name} | {len(got)} | {fmt([g[0] for g in got])} | {fmt([g[1] for g in got])} |")
print("\n".join(lines))
(out / "science.md").write_text("\n".join(lines) + "\n")
