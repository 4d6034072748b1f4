#!/usr/bin/env python3
"""Upstream DINO, small, on Fashion-MNIST: the reference our `pretrain-dino` is compared with.

Runs facebookresearch/dino's own code (vision_transformer.vit_*, DINOHead, MultiCropWrapper,
DINOLoss, the cosine schedules, clip_gradients, cancel_gradients_last_layer, the EMA update of
train_one_epoch, eval_knn.knn_classifier) on a Fashion-MNIST slice, with DataAugmentationDINO's
recipe at 28 px global / 12 px local crops, and prints the teacher's k-NN top-1 per epoch next to
the raw-pixel floor and the random-init encoder. It answers one question: at this scale, on these
cores, how far does DINO itself lift k-NN above the pixels? (docs/DINO.md cites its output.)

    git --git-dir=/work/.mirror/facebookresearch+dino/repo show HEAD:main_dino.py > /tmp/dino/main_dino.py
    (likewise utils.py, vision_transformer.py, eval_knn.py)
    /usr/bin/python3 scripts/dino-reference.py --dino /tmp/dino --train 10000 --epochs 20
    /usr/bin/python3 scripts/dino-reference.py --dino /tmp/dino --train 5000 --patch 7 --init-only

Needs Debian's python3-torch and python3-torchvision only.
"""
import argparse
import gzip
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from PIL import Image
from torchvision import transforms


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    dims = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class Crops:
    """DataAugmentationDINO with the crop sizes as parameters (upstream hard-codes 224 and 96)."""

    def __init__(self, utils, global_size, local_size, global_scale, local_scale, n_local, mean, std):
        flip_and_color_jitter = transforms.Compose([
            transforms.RandomHorizontalFlip(p=0.5),
            transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            transforms.RandomGrayscale(p=0.2),
        ])
        normalize = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
        bicubic = transforms.InterpolationMode.BICUBIC
        self.global1 = transforms.Compose([
            transforms.RandomResizedCrop(global_size, scale=global_scale, interpolation=bicubic),
            flip_and_color_jitter, utils.GaussianBlur(1.0), normalize])
        self.global2 = transforms.Compose([
            transforms.RandomResizedCrop(global_size, scale=global_scale, interpolation=bicubic),
            flip_and_color_jitter, utils.GaussianBlur(0.1), utils.Solarization(0.2), normalize])
        self.local = transforms.Compose([
            transforms.RandomResizedCrop(local_size, scale=local_scale, interpolation=bicubic),
            flip_and_color_jitter, utils.GaussianBlur(p=0.5), normalize])
        self.n_local = n_local

    def __call__(self, image):
        return [self.global1(image), self.global2(image)] + [self.local(image) for _ in range(self.n_local)]


class Images(torch.utils.data.Dataset):
    def __init__(self, pixels, labels, transform):
        self.pixels, self.labels, self.transform = pixels, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        # Grayscale shown as RGB, as an ImageFolder of Fashion-MNIST PNGs opens with convert("RGB").
        image = Image.fromarray(self.pixels[i]).convert("RGB")
        return self.transform(image), int(self.labels[i])


@torch.no_grad()
def features(model, pixels, mean, std, batch=500):
    x = torch.from_numpy(pixels).float().div(255.0).unsqueeze(1).expand(-1, 3, -1, -1)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    out = []
    for i in range(0, len(x), batch):
        out.append(model(x[i:i + batch]) if model is not None else x[i:i + batch].flatten(1))
    return nn.functional.normalize(torch.cat(out), dim=1, p=2)


def knn(eval_knn, model, data, mean, std):
    (xtr, ytr), (xte, yte) = data
    if model is not None:
        model.eval()
    ftr, fte = features(model, xtr, mean, std), features(model, xte, mean, std)
    top1, _ = eval_knn.knn_classifier(ftr, torch.from_numpy(ytr.astype(np.int64)), fte,
                                      torch.from_numpy(yte.astype(np.int64)), 20, 0.07, num_classes=10)
    return top1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dino", required=True, help="folder with DINO's main_dino.py, utils.py, vision_transformer.py, eval_knn.py")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--train", type=int, default=10000, help="training images (the first N)")
    p.add_argument("--test", type=int, default=2000, help="test images (the first N)")
    p.add_argument("--dim", type=int, default=192)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=3)
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--out-dim", type=int, default=4096)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--bottleneck", type=int, default=128)
    p.add_argument("--use-bn-in-head", action="store_true")
    p.add_argument("--norm-last-layer", type=int, default=1)
    p.add_argument("--local-crops", type=int, default=6)
    p.add_argument("--local-size", type=int, default=12)
    p.add_argument("--global-scale", type=float, nargs=2, default=(0.4, 1.0))
    p.add_argument("--local-scale", type=float, nargs=2, default=(0.05, 0.4))
    p.add_argument("--momentum-teacher", type=float, default=0.996)
    p.add_argument("--warmup-teacher-temp", type=float, default=0.04)
    p.add_argument("--teacher-temp", type=float, default=0.04)
    p.add_argument("--warmup-teacher-temp-epochs", type=int, default=0)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--min-lr", type=float, default=1e-5)
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--weight-decay", type=float, default=0.04)
    p.add_argument("--weight-decay-end", type=float, default=0.4)
    p.add_argument("--clip-grad", type=float, default=3.0)
    p.add_argument("--freeze-last-layer", type=int, default=1)
    p.add_argument("--drop-path", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--log", default=None, help="JSON lines of per-epoch figures")
    p.add_argument("--init-only", action="store_true",
                   help="print the random-init k-NN of the CLS token, the mean patch token and both, then stop")
    a = p.parse_args()

    sys.path.insert(0, a.dino)
    sys.argv = sys.argv[:1]
    import utils  # noqa: E402  (DINO's)
    import vision_transformer as vits  # noqa: E402
    import eval_knn  # noqa: E402
    from main_dino import DINOLoss  # noqa: E402

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    # DINOLoss.update_center all-reduces the centre: a one-process group makes it the identity.
    store = tempfile.mktemp()
    dist.init_process_group("gloo", init_method="file://" + store, rank=0, world_size=1)

    mean, std = (0.2860, 0.2860, 0.2860), (0.3530, 0.3530, 0.3530)
    xtr = read_idx(os.path.join(a.data, "train-images-idx3-ubyte.gz"))[:a.train]
    ytr = read_idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz"))[:a.train]
    xte = read_idx(os.path.join(a.data, "t10k-images-idx3-ubyte.gz"))[:a.test]
    yte = read_idx(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz"))[:a.test]
    evaldata = ((xtr, ytr), (xte, yte))

    def vit(drop_path):
        return vits.VisionTransformer(img_size=[28], patch_size=a.patch, embed_dim=a.dim, depth=a.depth,
                                      num_heads=a.heads, mlp_ratio=4, qkv_bias=True, drop_path_rate=drop_path,
                                      norm_layer=lambda d: nn.LayerNorm(d, eps=1e-6))

    student_vit, teacher_vit = vit(a.drop_path), vit(0.0)
    student = utils.MultiCropWrapper(student_vit, vits.DINOHead(a.dim, a.out_dim, use_bn=a.use_bn_in_head,
                                     norm_last_layer=bool(a.norm_last_layer), hidden_dim=a.hidden,
                                     bottleneck_dim=a.bottleneck))
    teacher = utils.MultiCropWrapper(teacher_vit, vits.DINOHead(a.dim, a.out_dim, a.use_bn_in_head,
                                     hidden_dim=a.hidden, bottleneck_dim=a.bottleneck))
    teacher.load_state_dict(student.state_dict())
    for q in teacher.parameters():
        q.requires_grad = False

    if a.init_only:
        backbone = teacher.backbone

        class Pooled(nn.Module):
            def __init__(self, mode):
                super().__init__()
                self.mode = mode

            def forward(self, x):
                tokens = backbone.get_intermediate_layers(x, 1)[0]  # after the final norm
                cls, patches = tokens[:, 0], tokens[:, 1:].mean(1)
                return {"cls": cls, "mean": patches, "both": torch.cat([cls, patches], 1)}[self.mode]

        row = {m: knn(eval_knn, Pooled(m), evaldata, mean, std) for m in ("cls", "mean", "both")}
        row["pixels"] = knn(eval_knn, None, evaldata, mean, std)
        print(json.dumps({"patch": a.patch, "dim": a.dim, "depth": a.depth, **row}), flush=True)
        return

    pixel_floor = knn(eval_knn, None, evaldata, mean, std)
    random_init = knn(eval_knn, teacher.backbone, evaldata, mean, std)
    print(json.dumps({"pixels": pixel_floor, "random_init": random_init}), flush=True)

    crops = Crops(utils, 28, a.local_size, a.global_scale, a.local_scale, a.local_crops, mean, std)
    loader = torch.utils.data.DataLoader(Images(xtr, ytr, crops), batch_size=a.batch, shuffle=True,
                                         num_workers=a.workers, drop_last=True)
    ncrops = 2 + a.local_crops
    dino_loss = DINOLoss(a.out_dim, ncrops, a.warmup_teacher_temp, a.teacher_temp,
                         a.warmup_teacher_temp_epochs, a.epochs)
    optimizer = torch.optim.AdamW(utils.get_params_groups(student))
    n = len(loader)
    lr_schedule = utils.cosine_scheduler(a.lr * a.batch / 256.0, a.min_lr, a.epochs, n, warmup_epochs=a.warmup_epochs)
    wd_schedule = utils.cosine_scheduler(a.weight_decay, a.weight_decay_end, a.epochs, n)
    momentum_schedule = utils.cosine_scheduler(a.momentum_teacher, 1, a.epochs, n)

    log = open(a.log, "a") if a.log else None
    start = time.time()
    for epoch in range(a.epochs):
        student.train()
        teacher.train()  # upstream never switches the teacher to eval during training (its BN heads use batch stats)
        losses = []
        for it, (images, _) in enumerate(loader):
            it = n * epoch + it
            for i, g in enumerate(optimizer.param_groups):
                g["lr"] = lr_schedule[it]
                if i == 0:
                    g["weight_decay"] = wd_schedule[it]
            teacher_output = teacher(images[:2])
            student_output = student(images)
            loss = dino_loss(student_output, teacher_output, epoch)
            optimizer.zero_grad()
            loss.backward()
            if a.clip_grad:
                utils.clip_gradients(student, a.clip_grad)
            utils.cancel_gradients_last_layer(epoch, student, a.freeze_last_layer)
            optimizer.step()
            with torch.no_grad():
                m = momentum_schedule[it]
                for q, k in zip(student.parameters(), teacher.parameters()):
                    k.data.mul_(m).add_((1 - m) * q.detach().data)
            losses.append(loss.item())
        top1 = knn(eval_knn, teacher.backbone, evaldata, mean, std)
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "knn_teacher": top1,
               "knn_student": knn(eval_knn, student.backbone, evaldata, mean, std),
               "pixels": pixel_floor, "random_init": random_init, "seconds": round(time.time() - start, 1)}
        print(json.dumps(row), flush=True)
        if log:
            log.write(json.dumps(row) + "\n")
            log.flush()
    os.remove(store) if os.path.exists(store) else None


if __name__ == "__main__":
    main()
