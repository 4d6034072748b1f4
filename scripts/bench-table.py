#!/usr/bin/python3
"""Markdown tables for docs/RESULTS.md (Performance) from `attndistill bench --json` files.

scripts/bench-table.py --ours OURS.json [--glibc GLIBC.json] [--torch TORCH.json]
                       [--data1 DATA1.json] [--tv-large-1 ... --tv-large-2 ... --tv-cifar-1 ... --tv-cifar-2 ...]
OURS is the run whose fractions are reported (its own matmul bar); GLIBC an identical run under
glibc malloc for the step-time and memory columns; TORCH bench/reference/bench_torch.py's JSON
(Debian's PyTorch); DATA1 a `--workloads none --data-workers 1` run; the tv-* files
bench/reference/data_torchvision.py's JSON for the same folders.
"""
import argparse
import json


def load(path):
    if not path:
        return None
    with open(path) as f:
        return json.load(f)


def key(t):
    return (t["Workload"], t["Variant"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--glibc")
    ap.add_argument("--torch")
    ap.add_argument("--data1")
    for n in ("tv-large-1", "tv-large-2", "tv-cifar-1", "tv-cifar-2"):
        ap.add_argument("--" + n)
    a = ap.parse_args()
    ours, glibc, ref = load(a.ours), load(a.glibc), load(a.torch)
    fp32, bf16 = ours["MatmulFp32"]["FlopsPerSecond"], ours["MatmulBf16"]["FlopsPerSecond"]
    print(f"Machine bar ({ours['Allocator'] if 'Allocator' in ours else '?'} run, {ours['Date']}): fp32 matmul 2048 "
          f"{fp32 / 1e9:.0f} GFLOP/s, bf16 {bf16 / 1e9:.0f} GFLOP/s, {ours['Threads']} threads.")
    if ref:
        print(f"Debian PyTorch {ref['torch']}: fp32 matmul {ref['matmul_fp32']['flops_per_second'] / 1e9:.1f} GFLOP/s, "
              f"bf16 {ref['matmul_bf16']['flops_per_second'] / 1e9:.1f} GFLOP/s.")
    print()
    g = {key(r["Timing"]): r["Timing"] for r in glibc["Rows"]} if glibc else {}
    t = {(r["workload"], r["variant"]): r for r in ref["rows"]} if ref else {}
    print("| workload | variant | median s | items/s | GFLOP/s | of fp32 matmul | of bf16 matmul | glibc malloc s | PyTorch 1.13 s | load |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in ours["Rows"]:
        x = r["Timing"]
        if x["Variant"] == "matmul-fp32-bar":
            continue
        fl = x["FlopsPerSecond"]
        frac32 = f"{100 * fl / fp32:.0f} %" if x["Flops"] > 0 else "-"
        frac16 = f"{100 * fl / bf16:.0f} %" if x["Flops"] > 0 else "-"
        gl = g.get(key(x))
        tr = t.get(key(x))
        print(f"| {x['Workload']} | {x['Variant']} | {x['MedianSeconds']:.3f} | {x['ItemsPerSecond']:.1f} | "
              f"{fl / 1e9:.0f} | {frac32} | {frac16} | {gl['MedianSeconds']:.3f} | " if gl else
              f"| {x['Workload']} | {x['Variant']} | {x['MedianSeconds']:.3f} | {x['ItemsPerSecond']:.1f} | {fl / 1e9:.0f} | {frac32} | {frac16} | - | ",
              end="")
        print(f"{tr['median_seconds']:.2f} | " if tr else "- | ", end="")
        print(f"{x['MedianLoad']:.2f} |")
    print()
    print("| peak memory, distill-224 | allocator | peak above baseline MB | after 1st step MB | analytic MB | ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for run, label in ((ours, ours.get("Allocator", "?")), (glibc, glibc.get("Allocator", "glibc malloc") if glibc else None)):
        if not run:
            continue
        for m in run["Memory"]:
            print(f"| {m['Variant']} | {label} | {m['PeakAboveBaselineBytes'] / 1e6:.0f} | {(m['PeakAfterFirstStepBytes'] - m['BaselineBytes']) / 1e6:.0f} | "
                  f"{m['Analytic']['Total'] / 1e6:.0f} | {m['RatioToAnalytic']:.2f} |")
    print()
    tv = {n: load(getattr(a, n.replace("-", "_"))) for n in ("tv-large-1", "tv-large-2", "tv-cifar-1", "tv-cifar-2")}
    d1 = load(a.data1)
    rows = []
    for run in (d1, ours):
        if run:
            rows += run["Data"]
    if rows:
        print("| folder | workers | ours images/s | torchvision images/s | ratio |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for d in rows:
            kind = "large" if "large" in d["Root"] else "cifar"
            ref_ = tv.get(f"tv-{kind}-{d['Workers']}")
            embedded = (d.get("Torchvision") or {}).get("ImagesPerSecond")
            r = embedded or (ref_["median"] if ref_ else None)
            print(f"| {d['Root']} | {d['Workers']} | {d['MedianImagesPerSecond']:.0f} | {r:.0f} | {d['MedianImagesPerSecond'] / r:.2f}x |" if r else
                  f"| {d['Root']} | {d['Workers']} | {d['MedianImagesPerSecond']:.0f} | - | - |")


if __name__ == "__main__":
    main()
