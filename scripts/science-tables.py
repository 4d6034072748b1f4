#!/usr/bin/env python3
"""The study's tables and verdicts (Markdown) from the figures scripts/science.sh commits.

Layout read: FIGURES/{pixels,teacher}/{knn,linear}.json and FIGURES/ROW/seedN/{knn,linear}.json,
plus curve-checkpoint-NNNN.json (k-NN of saved epochs) for the rows of table (a).
Verdict of a claim "A beats B", per metric: the difference of the seed means d and its standard
error se = sqrt(s_A^2 / n_A + s_B^2 / n_B) (sample standard deviations): reproduced when d > 2 se,
not reproduced when d < -2 se (B beats A), inside the noise otherwise.
"""
import functools
import json
import math
import re
import statistics
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/science/fashion-mnist")


def knn_top1(path):
    return next(r["top1"] for r in json.loads(path.read_text())["knn"] if r["k"] == 20)


def linear_top1(path):
    return json.loads(path.read_text())["linear"]["best"]["top1"]


@functools.cache
def seeds(row):
    """{'knn': [...], 'linear': [...]} over the finished seeds of ROW."""
    got = {"knn": [], "linear": []}
    for d in sorted((root / row).glob("seed*")):
        if (d / "linear.json").exists():
            got["knn"].append(knn_top1(d / "knn.json"))
            got["linear"].append(linear_top1(d / "linear.json"))
    return got


def fmt(values):
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def single(name):
    d = root / name
    if not (d / "linear.json").exists():
        return None
    return knn_top1(d / "knn.json"), linear_top1(d / "linear.json")


def verdict(a, b):
    """'A beats B' on one metric's seed lists."""
    if len(a) < 2 or len(b) < 2:
        return "too few seeds"
    d = statistics.mean(a) - statistics.mean(b)
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    word = "reproduced" if d > 2 * se else "not reproduced" if d < -2 * se else "inside the noise"
    return f"{word} ({d:+.2f} ± {se:.2f})"


out = []
floor, teacher = single("pixels"), single("teacher")


def anchor_rows():
    rows = []
    if floor:
        rows.append(f"| pixel floor (normalized pixels, flattened) | 1 | {floor[0]:.2f} | {floor[1]:.2f} |")
    if teacher:
        rows.append(f"| reference DINO teacher (ViT 4 x 192, patch 7) | 1 | {teacher[0]:.2f} | {teacher[1]:.2f} |")
    return rows


def table(title, rows):
    out.append(f"### {title}\n")
    out.append("| run | seeds | k-NN top-1 (k 20) | linear top-1 |")
    out.append("| --- | ---: | ---: | ---: |")
    out.extend(anchor_rows())
    for label, row in rows:
        s = seeds(row)
        out.append(f"| {label} (`{row}`) | {len(s['linear'])} | {fmt(s['knn'])} | {fmt(s['linear'])} |")
    out.append("")


table("(a) Strong and weak student, feature-only vs AttnDistill (lambda 0.1, T 10, product)", [
    ("strong student (patch 7, 4 x 4 grid), features only", "a-strong-features"),
    ("strong student, AttnDistill", "a-strong-attndistill"),
    ("weak student (patch 14, 2 x 2 grid), features only", "a-weak-features"),
    ("weak student, AttnDistill", "a-weak-attndistill"),
])
table("(b) Head aggregation, weak student", [
    ("product (the method)", "a-weak-attndistill"), ("max", "b-weak-max"), ("mean", "b-weak-mean"), ("min", "b-weak-min"),
])
table("(c) lambda and T, strong student", [
    ("lambda 0 (features only)", "a-strong-features"), ("lambda 0.005", "c-lambda-0.005"),
    ("lambda 0.1, T 10", "a-strong-attndistill"), ("lambda 0.3", "c-lambda-0.3"), ("lambda 0.5", "c-lambda-0.5"),
    ("T 5", "c-T-5"), ("T 20", "c-T-20"),
])
table("(d) KL vs MSE, plain vs value-weighted, last block vs all blocks, strong student", [
    ("KL, plain, last block (the method)", "a-strong-attndistill"), ("MSE", "d-mse"),
    ("value-weighted", "d-value-weighted"), ("all blocks", "d-all-blocks"),
])
table("(e) CompRess baseline, strong student", [
    ("features only", "a-strong-features"), ("AttnDistill", "a-strong-attndistill"), ("CompRess (1q, queue 4096, tau 0.04)", "e-compress"),
])

# The schedule: k-NN of each saved epoch, mean over seeds.
curve_rows = ["a-strong-features", "a-strong-attndistill", "a-weak-features", "a-weak-attndistill"]
curves = {}
for row in curve_rows:
    per_epoch = {}
    for f in sorted((root / row).glob("seed*/curve-checkpoint-*.json")):
        epoch = int(re.search(r"checkpoint-(\d+)", f.name).group(1))
        per_epoch.setdefault(epoch, []).append(knn_top1(f))
    curves[row] = per_epoch
epochs = sorted({e for c in curves.values() for e in c})
if epochs:
    out.append("### k-NN top-1 over the schedule (mean over seeds; seeds in brackets)\n")
    out.append("| epoch | " + " | ".join(curve_rows) + " |")
    out.append("| ---: |" + " ---: |" * len(curve_rows))
    for e in epochs:
        cells = [f"{statistics.mean(curves[r][e]):.2f} ({len(curves[r][e])})" if e in curves[r] else "-" for r in curve_rows]
        out.append(f"| {e} | " + " | ".join(cells) + " |")
    base = curves["a-strong-features"]
    if base:
        last = max(base)
        quarter = min(base, key=lambda e: abs(e - 0.75 * last))
        gain = statistics.mean(base[last]) - statistics.mean(base[quarter])
        out.append(f"\nFeature-only strong student: k-NN gain over epochs {quarter}-{last} (the last quarter): {gain:+.2f} points"
                   f" ({'under' if gain < 0.5 else 'not under'} the 0.5-point stopping rule).")
    out.append("")

claims = [
    ("AttnDistill beats feature-only distillation, strong student", "a-strong-attndistill", "a-strong-features"),
    ("AttnDistill beats feature-only distillation, weak student", "a-weak-attndistill", "a-weak-features"),
    ("product aggregation beats max", "a-weak-attndistill", "b-weak-max"),
    ("product aggregation beats mean", "a-weak-attndistill", "b-weak-mean"),
    ("product aggregation beats min", "a-weak-attndistill", "b-weak-min"),
    ("lambda 0.1 beats lambda 0.005", "a-strong-attndistill", "c-lambda-0.005"),
    ("lambda 0.1 beats lambda 0.3", "a-strong-attndistill", "c-lambda-0.3"),
    ("lambda 0.1 beats lambda 0.5", "a-strong-attndistill", "c-lambda-0.5"),
    ("T 10 beats T 5", "a-strong-attndistill", "c-T-5"),
    ("T 10 beats T 20", "a-strong-attndistill", "c-T-20"),
    ("KL beats MSE", "a-strong-attndistill", "d-mse"),
    ("plain attention beats value-weighted", "a-strong-attndistill", "d-value-weighted"),
    ("AttnDistill beats CompRess", "a-strong-attndistill", "e-compress"),
]
out.append("### The paper's claims\n")
out.append("| claim | linear top-1: verdict (difference ± s.e.) | k-NN top-1: verdict |")
out.append("| --- | --- | --- |")
for text, a, b in claims:
    sa, sb = seeds(a), seeds(b)
    if not sa["linear"] or not sb["linear"]:
        out.append(f"| {text} | not run yet | not run yet |")
        continue
    out.append(f"| {text} | {verdict(sa['linear'], sb['linear'])} | {verdict(sa['knn'], sb['knn'])} |")
lift = lambda a, b: statistics.mean(seeds(a)["linear"]) - statistics.mean(seeds(b)["linear"])
if all(len(seeds(r)["linear"]) >= 2 for r in curve_rows):
    out.append(f"\nLinear-probe lift of AttnDistill: strong student {lift('a-strong-attndistill', 'a-strong-features'):+.2f}, "
               f"weak student {lift('a-weak-attndistill', 'a-weak-features'):+.2f} (the paper: +1.1 and +5.2; larger for the weak one).")
print("\n".join(out))
