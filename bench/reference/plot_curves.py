#!/usr/bin/python3
"""Loss curves of bench/reference/loss_curves.sh: an SVG per run kind and a Markdown summary.

/usr/bin/python3 bench/reference/plot_curves.py OUT [--svg-dir docs/bench]
Reads OUT/{mae,distill}-{fp32,bf16}-s{0,1,2}/log.txt (JSON lines, one per step with --log-every 1).
Curves are smoothed with a centred moving average (window 9 steps) before comparing: the fp32
seed-to-seed spread at a step is [min, max] over the three fp32 seeds; a bf16 curve "stays within
the spread" at a step when it lies in that band widened by nothing.
"""
import argparse
import json
import os
import statistics


def curve(path):
    steps = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if "batch" in r and "loss" in r:
                steps.append(r["loss"])
    return steps


def smooth(xs, w=9):
    h = w // 2
    return [statistics.fmean(xs[max(0, i - h):i + h + 1]) for i in range(len(xs))]


def svg(curves, title, path):
    W, H, P = 640, 360, 50
    allv = [v for c in curves.values() for v in c]
    lo, hi = min(allv), max(allv)
    n = max(len(c) for c in curves.values())
    def xy(i, v):
        return P + (W - 2 * P) * i / max(1, n - 1), H - P - (H - 2 * P) * (v - lo) / max(1e-12, hi - lo)
    colors = {"fp32": "#1f77b4", "bf16": "#d62728"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle">{title}</text>',
           f'<line x1="{P}" y1="{H - P}" x2="{W - P}" y2="{H - P}" stroke="black"/>',
           f'<line x1="{P}" y1="{P}" x2="{P}" y2="{H - P}" stroke="black"/>',
           f'<text x="{W / 2}" y="{H - 15}" text-anchor="middle">optimizer step (smoothed, window 9)</text>',
           f'<text x="{P - 5}" y="{P + 4}" text-anchor="end">{hi:.3f}</text>',
           f'<text x="{P - 5}" y="{H - P + 4}" text-anchor="end">{lo:.3f}</text>',
           f'<text x="{W - P}" y="{H - P + 15}" text-anchor="end">{n}</text>']
    for name, c in sorted(curves.items()):
        prec = name.split("-")[0]
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(c)))
        dash = {"s0": "", "s1": ' stroke-dasharray="6,3"', "s2": ' stroke-dasharray="2,2"'}[name.split("-")[1]]
        out.append(f'<polyline fill="none" stroke="{colors[prec]}" stroke-width="1.2"{dash} points="{pts}"/>')
    out.append(f'<text x="{W - P - 120}" y="{P + 10}" fill="{colors["fp32"]}">fp32 seeds 0/1/2</text>')
    out.append(f'<text x="{W - P - 120}" y="{P + 26}" fill="{colors["bf16"]}">bf16 seeds 0/1/2</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--svg-dir", default="docs/bench")
    a = ap.parse_args()
    os.makedirs(a.svg_dir, exist_ok=True)
    for kind in ["mae", "distill"]:
        raw = {}
        for p in ["fp32", "bf16"]:
            for s in [0, 1, 2]:
                path = os.path.join(a.out, f"{kind}-{p}-s{s}", "log.txt")
                if os.path.exists(path):
                    raw[f"{p}-s{s}"] = curve(path)
        if not raw:
            continue
        n = min(len(c) for c in raw.values())
        sm = {k: smooth(v[:n]) for k, v in raw.items()}
        svg(sm, f"{kind}: training loss, fp32 vs bf16", os.path.join(a.svg_dir, f"loss-{kind}.svg"))
        fp = [sm[k] for k in sm if k.startswith("fp32")]
        bf = [sm[k] for k in sm if k.startswith("bf16")]
        start = n // 10   # skip the first 10 % (warm-up transients dominate the spread there)
        inside = [sum(min(f[i] for f in fp) <= b[i] <= max(f[i] for f in fp) for i in range(start, n)) / (n - start) for b in bf]
        mean_gap = [statistics.fmean(b[i] - statistics.fmean(f[i] for f in fp) for i in range(start, n)) for b in bf]
        spread = statistics.fmean(max(f[i] for f in fp) - min(f[i] for f in fp) for i in range(start, n))
        last = {k: statistics.fmean(v[-max(1, n // 10):]) for k, v in raw.items()}
        print(f"## {kind}: {n} steps")
        print(f"- fp32 seed spread (smoothed, mean over steps {start}..{n}): {spread:.4f}")
        print(f"- bf16 curves inside the fp32 [min, max] band: " + ", ".join(f"{100 * x:.0f} %" for x in inside) + " of the steps")
        print(f"- bf16 minus fp32 mean, averaged over steps: " + ", ".join(f"{g:+.4f}" for g in mean_gap))
        print("- mean loss over the last 10 % of steps: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(last.items())))
        print()


if __name__ == "__main__":
    main()
