#!/usr/bin/python3
"""The `attndistill bench` workloads in plain PyTorch, on identical shapes, for the record.

Run with Debian's PyTorch (1.13, generic BLAS):  /usr/bin/python3 bench/reference/bench_torch.py --json out.json
Minimal ViT / MAE / k-NN written here (timm is not installed); explicit attention, since torch
1.13 has no scaled_dot_product_attention. FLOP counts are the same analytic matmul counts as
bench/AttnDistill.Benchmarks/FlopCount.cs. Every timing carries the 1-minute load average.
"""
import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- models

class Block(nn.Module):
    """Pre-norm transformer block; optionally returns the CLS attention row (B, h, N)."""

    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x, want_attn=False):
        b, n, c = x.shape
        h = self.norm1(x)
        q, k, v = self.qkv(h).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5          # (B, h, N, N)
        attn = attn.softmax(-1)
        ctx = (attn @ v).transpose(1, 2).reshape(b, n, c)
        x = x + self.proj(ctx)
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return x, (attn[:, :, 0] if want_attn else None)


class ViT(nn.Module):
    def __init__(self, image, patch, dim, depth, heads):
        super().__init__()
        self.patch = patch
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        n = (image // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def tokens(self, x):
        p = self.patch_embed(x).flatten(2).transpose(1, 2)                   # (B, N, D)
        return p + self.pos_embed[:, 1:]

    def run_blocks(self, x, want_attn=False):
        attn = None
        for i, blk in enumerate(self.blocks):
            x, a = blk(x, want_attn and i == len(self.blocks) - 1)
            attn = a if a is not None else attn
        return x, attn

    def forward_features(self, x, want_attn=False):
        t = self.tokens(x)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(t.shape[0], -1, -1)
        return self.run_blocks(torch.cat([cls, t], 1), want_attn)

    def forward(self, x):
        h, _ = self.forward_features(x)
        return self.norm(h[:, 0])


def projector(d, D, layers):
    mods, in_dim = [nn.LayerNorm(d, eps=1e-6)], d
    for i in range(1, layers + 1):
        out = D if i == layers else (2 * d if i % 2 == 1 else d)
        mods.append(nn.Linear(in_dim, out))
        if i < layers:
            mods.append(nn.GELU())
        in_dim = out
    return nn.Sequential(*mods)


def aggregate(a, T=10.0):
    """Product aggregation of heads, then clamp [1e-5, 0.996] and L1 renormalization."""
    z = (a.log().sum(1) / T).softmax(-1)
    return F.normalize(z.clamp(1e-5, 0.996), p=1, dim=-1)


def distill_loss(fs, ft, a_s, a_t, lam=0.1):
    s, t = aggregate(a_s), aggregate(a_t.detach())
    kl = (t * (t.log() - s.log())).sum() / s.shape[0]
    return F.mse_loss(fs, ft.detach()) + lam * kl


class MAE(nn.Module):
    def __init__(self, image, patch, dim, depth, heads, ddim, ddepth, dheads, mask=0.75):
        super().__init__()
        self.enc = ViT(image, patch, dim, depth, heads)
        self.patch, self.mask = patch, mask
        n = (image // patch) ** 2
        self.decoder_embed = nn.Linear(dim, ddim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, ddim))
        self.decoder_pos = nn.Parameter(torch.randn(1, n + 1, ddim) * 0.02, requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(ddim, dheads) for _ in range(ddepth)])
        self.decoder_norm = nn.LayerNorm(ddim, eps=1e-6)
        self.decoder_pred = nn.Linear(ddim, patch * patch * 3)

    def patchify(self, imgs):
        b, c, h, w = imgs.shape
        p = self.patch
        x = imgs.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (h // p) * (w // p), p * p * c)

    def forward(self, imgs):
        x = self.enc.tokens(imgs)                                             # (B, L, D)
        b, l, d = x.shape
        keep = int(l * (1 - self.mask))
        ids_shuffle = torch.rand(b, l).argsort(1)
        ids_restore = ids_shuffle.argsort(1)
        vis = x.gather(1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
        m = torch.ones(b, l)
        m[:, :keep] = 0
        m = m.gather(1, ids_restore)
        cls = (self.enc.cls_token + self.enc.pos_embed[:, :1]).expand(b, -1, -1)
        h, _ = self.enc.run_blocks(torch.cat([cls, vis], 1))
        h = self.decoder_embed(self.enc.norm(h))
        dd = h.shape[2]
        y = torch.cat([h[:, 1:], self.mask_token.expand(b, l - keep, dd)], 1)
        y = y.gather(1, ids_restore[:, :, None].expand(-1, -1, dd))
        y = torch.cat([h[:, :1], y], 1) + self.decoder_pos
        for blk in self.decoder_blocks:
            y, _ = blk(y)
        pred = self.decoder_pred(self.decoder_norm(y))[:, 1:]
        t = self.patchify(imgs)
        t = (t - t.mean(-1, keepdim=True)) / (t.var(-1, keepdim=True) + 1e-6).sqrt()
        per = ((pred - t) ** 2).mean(-1)
        return (per * m).sum() / m.sum()


# ---------------------------------------------------------------- FLOPs (same formulas as FlopCount.cs)

def block_flops(n, d, hidden):
    return 2.0 * n * (4.0 * d * d + 2.0 * d * hidden + 2.0 * n * d)


def vit_forward_flops(image, patch, d, depth, kept=None, cls_rows=0):
    n_patches = (image // patch) ** 2
    n = 1 + (n_patches if kept is None else kept)
    return 2.0 * n_patches * patch * patch * 3 * d + depth * block_flops(n, d, 4 * d) + cls_rows * 2.0 * n * d


def vit_train_flops(image, patch, d, depth, kept=None, cls_rows=0):
    pe = 2.0 * (image // patch) ** 2 * patch * patch * 3 * d
    return 3 * vit_forward_flops(image, patch, d, depth, kept, cls_rows) - pe


def projector_flops(d, D, layers):
    f, i = 0.0, d
    for k in range(1, layers + 1):
        o = D if k == layers else (2 * d if k % 2 == 1 else d)
        f += 2.0 * i * o
        i = o
    return f


# ---------------------------------------------------------------- timing

def load1():
    return os.getloadavg()[0]


def measure(cases, warmup, repeats):
    """cases: list of (workload, variant, flops, items, fn); variants alternate."""
    for c in cases:
        for _ in range(warmup):
            c[4]()
    secs = [[] for _ in cases]
    loads = [[] for _ in cases]
    for _ in range(repeats):
        for i, c in enumerate(cases):
            loads[i].append(load1())
            t0 = time.perf_counter()
            c[4]()
            secs[i].append(time.perf_counter() - t0)
            print(f"  {c[0]} {c[1]}: {secs[i][-1]:.3f} s (load {loads[i][-1]:.2f})", flush=True)
    out = []
    for i, (w, v, flops, items, _) in enumerate(cases):
        med = statistics.median(secs[i])
        out.append(dict(workload=w, variant=v, flops=flops, items=items, seconds=secs[i], loads=loads[i],
                        median_seconds=med, median_load=statistics.median(loads[i]),
                        flops_per_second=flops / med, items_per_second=items / med))
    return out


def matmul_case(n, dtype):
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return ("matmul", "bf16" if dtype == torch.bfloat16 else "fp32", 2.0 * n ** 3, 1, lambda: a @ b)


def distill_case(sh, image, patch, batch, wid):
    torch.manual_seed(0)
    T, S = sh["teacher"], sh["student"]
    teacher = ViT(image, patch, *T).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = ViT(image, patch, *S)
    proj = projector(S[0], T[0], sh["proj"])
    proj_norm = nn.LayerNorm(T[0], eps=1e-6)
    params = list(student.parameters()) + list(proj.parameters()) + list(proj_norm.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    x = torch.randn(batch, 3, image, image)

    def step():
        with torch.no_grad():
            ht, at = teacher.forward_features(x, want_attn=True)
            ft = teacher.norm(ht[:, 0])
        hs, a_s = student.forward_features(x, want_attn=True)
        fs = proj_norm(proj(hs[:, 0]))
        loss = distill_loss(fs, ft, a_s, at)
        loss.item()
        loss.backward()
        opt.step()
        opt.zero_grad()

    flops = batch * (vit_forward_flops(image, patch, T[0], T[1], cls_rows=1) + vit_train_flops(image, patch, S[0], S[1], cls_rows=1)
                     + 3 * projector_flops(S[0], T[0], sh["proj"]))
    return (wid, "fp32", flops, batch, step)


def mae_case(sh):
    torch.manual_seed(0)
    image, patch, batch = sh["mae_image"], sh["mae_patch"], sh["mae_batch"]
    d, depth, heads = sh["teacher"]
    dd, ddepth, dheads = sh["mae_decoder"]
    mae = MAE(image, patch, d, depth, heads, dd, ddepth, dheads)
    opt = torch.optim.AdamW([p for p in mae.parameters() if p.requires_grad], lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    x = torch.randn(batch, 3, image, image)

    def step():
        loss = mae(x)
        loss.item()
        loss.backward()
        opt.step()
        opt.zero_grad()

    n_all = 1 + (image // patch) ** 2
    kept = int((image // patch) ** 2 * 0.25)
    fwd = (vit_forward_flops(image, patch, d, depth, kept) + 2.0 * (1 + kept) * d * dd
           + ddepth * block_flops(n_all, dd, 4 * dd) + 2.0 * n_all * dd * patch * patch * 3)
    pe = 2.0 * (image // patch) ** 2 * patch * patch * 3 * d
    return ("mae-224", "fp32", batch * (3 * fwd - pe), batch, step)


def knn_cases(sh):
    g = torch.Generator().manual_seed(0)
    n, m, d, k, classes = sh["knn"]
    bank = torch.randn(n, d, generator=g)
    labels = torch.randint(classes, (n,), generator=g)
    queries = torch.randn(m, d, generator=g)
    qlabels = torch.randint(classes, (m,), generator=g)

    def run(full, chunk=256):
        with torch.no_grad():
            b = F.normalize(bank, dim=1).t()
            q = F.normalize(queries, dim=1)
            correct = 0
            for s in range(0, m, chunk):
                sim = q[s:s + chunk] @ b
                if not full:
                    continue
                top, idx = sim.topk(k, dim=1)
                nb = labels[idx]
                one_hot = torch.zeros(nb.numel(), classes).scatter_(1, nb.reshape(-1, 1), 1.0)
                votes = (one_hot.view(-1, k, classes) * (top / 0.07).exp().unsqueeze(-1)).sum(1)
                correct += (votes.argmax(1) == qlabels[s:s + chunk]).sum().item()
            return correct

    flops = 2.0 * n * m * d
    return [("knn", "full", flops, m, lambda: run(True)), ("knn", "matmul", flops, m, lambda: run(False))]


def features_case(sh):
    torch.manual_seed(0)
    image, patch, batch = sh["feat_image"], sh["feat_patch"], sh["feat_batch"]
    d, depth, heads = sh["teacher"]
    vit = ViT(image, patch, d, depth, heads).eval()
    x = torch.randn(batch, 3, image, image)

    def run():
        with torch.no_grad():
            vit(x).float()

    return ("features-224", "fp32", batch * vit_forward_flops(image, patch, d, depth), batch, run)


PAPER = dict(matmul=2048, teacher=(384, 12, 6), student=(192, 12, 3), proj=4,
             d224=(224, 16, 32), d32=(32, 4, 256), mae_image=224, mae_patch=16, mae_batch=32, mae_decoder=(256, 4, 8),
             knn=(50000, 10000, 384, 20, 10), feat_image=224, feat_patch=16, feat_batch=64)
TINY = dict(matmul=64, teacher=(48, 2, 3), student=(24, 2, 3), proj=2,
            d224=(32, 8, 2), d32=(16, 4, 2), mae_image=32, mae_patch=8, mae_batch=2, mae_decoder=(128, 2, 4),
            knn=(200, 50, 16, 5, 10), feat_image=32, feat_patch=8, feat_batch=2)
ALL = ["distill-224", "distill-32", "mae-224", "knn", "features-224"]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workloads", nargs="+", default=ALL, choices=ALL)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scale", choices=["paper", "tiny"], default="paper")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sh = PAPER if a.scale == "paper" else TINY
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; BLAS: "
          f"{[l.strip() for l in torch.__config__.show().splitlines() if 'BLAS' in l][:1]}", flush=True)
    bar = measure([matmul_case(sh["matmul"], torch.float32), matmul_case(sh["matmul"], torch.bfloat16)], 1, 5)
    fp32, bf16 = bar[0]["flops_per_second"], bar[1]["flops_per_second"]
    print(f"matmul: fp32 {fp32 / 1e9:.1f} GFLOP/s, bf16 {bf16 / 1e9:.1f} GFLOP/s", flush=True)
    rows = []
    for w in a.workloads:
        if w == "distill-224":
            cases = [distill_case(sh, *sh["d224"], w)]
        elif w == "distill-32":
            cases = [distill_case(sh, *sh["d32"], w)]
        elif w == "mae-224":
            cases = [mae_case(sh)]
        elif w == "knn":
            cases = knn_cases(sh)
        else:
            cases = [features_case(sh)]
        cases.append((w, "matmul-fp32-bar", 2.0 * sh["matmul"] ** 3, 1, matmul_case(sh["matmul"], torch.float32)[4]))
        timings = measure(cases, a.warmup, a.repeats)
        barw = next(t for t in timings if t["variant"] == "matmul-fp32-bar")["flops_per_second"]
        for t in timings:
            t["fraction_of_fp32_matmul"] = t["flops_per_second"] / fp32
            t["fraction_of_interleaved_fp32_matmul"] = t["flops_per_second"] / barw
            rows.append(t)
    print("\n| workload | variant | median s | img/s | GFLOP/run | GFLOP/s | of fp32 mm | of fp32 bar | load |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in rows:
        print(f"| {t['workload']} | {t['variant']} | {t['median_seconds']:.3f} | {t['items_per_second']:.1f} | {t['flops'] / 1e9:.1f} | "
              f"{t['flops_per_second'] / 1e9:.1f} | {100 * t['fraction_of_fp32_matmul']:.0f} % | {100 * t['fraction_of_interleaved_fp32_matmul']:.0f} % | {t['median_load']:.2f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(torch=torch.__version__, threads=torch.get_num_threads(), date=time.strftime("%Y-%m-%d %H:%M"),
                           matmul_fp32=bar[0], matmul_bf16=bar[1], rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
