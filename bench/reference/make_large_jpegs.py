#!/usr/bin/python3
"""Writes ~500 larger JPEGs (500x375, ImageNet-like size) by upscaling CIFAR-10 train images with PIL.

/usr/bin/python3 bench/reference/make_large_jpegs.py --src /work/data/cifar10/train --out /tmp/cifar-large --count 500
The output (OUT/train/<class>/*.jpg) is a data set for loader timing only; keep it outside the repository.
"""
import argparse
import os

from PIL import Image


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--size", default="500x375")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    classes = sorted(os.listdir(a.src))
    per_class = (a.count + len(classes) - 1) // len(classes)
    for c in classes:
        os.makedirs(os.path.join(a.out, "train", c), exist_ok=True)
        for name in sorted(os.listdir(os.path.join(a.src, c)))[:per_class]:
            img = Image.open(os.path.join(a.src, c, name)).convert("RGB").resize((w, h), Image.BICUBIC)
            img.save(os.path.join(a.out, "train", c, name), quality=90)
    print(f"wrote {per_class * len(classes)} images of {w}x{h} to {a.out}/train")


if __name__ == "__main__":
    main()
