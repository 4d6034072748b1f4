#!/usr/bin/python3
"""torchvision's DataLoader on the same folder and transform as `attndistill bench --data DIR`.

/usr/bin/python3 bench/reference/data_torchvision.py --data /work/data/cifar10 --workers 2
ImageFolder(DIR/train) + RandomResizedCrop(224, scale=(0.2, 1), bicubic) + RandomHorizontalFlip
+ ToTensor + Normalize(ImageNet), batch 64, shuffled; one warm-up batch, then about --images
images timed (whole batches). Prints images/s and the 1-minute load average of each repeat.
"""
import argparse
import json
import os
import statistics
import time

import torch
from torchvision import datasets, transforms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="root with train/<class>/*.jpg")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(a.size, scale=(0.2, 1.0), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    ds = datasets.ImageFolder(os.path.join(a.data, "train"), tf)
    rates, loads = [], []
    for _ in range(a.repeats):
        loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers, drop_last=True)
        loads.append(os.getloadavg()[0])
        n, start = 0, None
        for i, (x, _) in enumerate(loader):
            if i == 0:
                start = time.perf_counter()          # after the warm-up batch (workers started)
                continue
            n += x.shape[0]
            if n >= min(a.images, len(ds) - a.batch):
                break
        rates.append(n / (time.perf_counter() - start))
        print(f"torchvision {a.data}: {rates[-1]:.0f} images/s (load {loads[-1]:.2f})", flush=True)
    print(f"median {statistics.median(rates):.0f} images/s, {len(ds)} images, {a.workers} workers, median load {statistics.median(loads):.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(data=a.data, workers=a.workers, size=a.size, images_per_second=rates, loads=loads,
                           median=statistics.median(rates), torchvision=__import__("torchvision").__version__), f, indent=1)


if __name__ == "__main__":
    main()
