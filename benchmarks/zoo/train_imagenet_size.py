"""imagenet_size: ResNet-18 (torchvision layout, width 24 instead of 64) on 224x224x3 images.

A realistic speed / calibration benchmark at ImageNet input size: 7x7/2 stem, MaxPool, 8 BasicBlocks
(3x3 Conv-BN-ReLU, 8 residual Adds, 1x1 stride-2 projections), BatchNorm folded, GlobalAveragePool,
Gemm head (a MobileNetV2-0.5 learned much more slowly from scratch in the CPU budget). Input ``input`` float32 [batch, 3, 224, 224], ImageNet normalisation
((pixels / 255 - mean) / std, mean 0.485/0.456/0.406, std 0.229/0.224/0.225, RGB), output
``logits`` [batch, 36] for labels.txt.

Data: real rendered text: single characters (0-9, A-Z) drawn by the ``captcha`` package with its
bundled fonts, colours, noise dots and curve, rendered at 56x56 and upscaled 4x (nearest) to
224x224 (nearest keeps the committed npz small; each source pixel is a 4x4 block).
Training is brief and CPU-only: most epochs at 112x112 (the same images upscaled 2x; the network is
fully convolutional up to the pooling), then one epoch at 224x224 so BatchNorm statistics match
the deployed size. The metric is modest by design (0/O, 1/I look alike in these fonts).

    nice -n 10 /work/zooenv/bin/python benchmarks/zoo/train_imagenet_size.py [--epochs 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import string
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import common

HERE = Path(__file__).resolve().parent / "imagenet_size"
CLASSES = list(string.digits + string.ascii_uppercase)
SOURCE = 56
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1)


def render(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [count, 3, 56, 56] captcha characters and int64 labels (the captcha package draws with
    Python's ``random``, seeded here)."""
    from captcha.image import ImageCaptcha

    random.seed(seed)
    rng = np.random.default_rng(seed)
    gen = ImageCaptcha(width=SOURCE, height=SOURCE, font_sizes=(34, 40, 44))
    labels = rng.integers(0, len(CLASSES), size=count).astype(np.int64)
    images = np.stack([np.asarray(gen.generate_image(CLASSES[c]).convert("RGB")) for c in labels])
    return images.transpose(0, 3, 1, 2).copy(), labels


def upscale(images: np.ndarray, factor: int) -> np.ndarray:
    return images.repeat(factor, axis=2).repeat(factor, axis=3)


def normalise(images: np.ndarray) -> np.ndarray:
    return ((images.astype(np.float32) / np.float32(255.0) - MEAN) / STD).astype(np.float32)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """torchvision's ResNet-18 layout (7x7/2 stem, 3x3/2 MaxPool, 4 stages of 2 BasicBlocks) at width 24."""

    def __init__(self, classes: int, width: int = 24) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        blocks: list[nn.Module] = []
        cin = width
        for i, c in enumerate([width, 2 * width, 4 * width, 8 * width]):
            blocks += [BasicBlock(cin, c, 1 if i == 0 else 2), BasicBlock(c, c, 1)]
            cin = c
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3, help="epochs at 112x112 (then one at 224x224)")
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--finetune-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.setup(args.seed)
    train_u8, train_y = render(args.train_size, args.seed)
    y = torch.from_numpy(train_y)
    x112 = torch.from_numpy(normalise(upscale(train_u8, 2)))
    model = ResNet18(len(CLASSES))

    def loss_112(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        logits = model(x112[idx])
        return F.cross_entropy(logits, y[idx], label_smoothing=0.0), float((logits.argmax(1) == y[idx]).float().mean())

    common.fit(model, len(x112), loss_112, epochs=args.epochs, seed=args.seed, batch_size=32, max_lr=2e-3,
               weight_decay=1e-4)
    del x112
    fine = torch.arange(args.finetune_size)

    def loss_224(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        sel = fine[idx].numpy()
        xb = torch.from_numpy(normalise(upscale(train_u8[sel], 4)))
        logits = model(xb)
        return F.cross_entropy(logits, y[sel], label_smoothing=0.1), float((logits.argmax(1) == y[sel]).float().mean())

    common.fit(model, len(fine), loss_224, epochs=1, seed=args.seed + 1, batch_size=32, max_lr=5e-4, weight_decay=4e-5)

    HERE.mkdir(exist_ok=True)
    path = HERE / "model.onnx"
    proto = common.export(
        model, (torch.zeros(2, 3, 224, 224),), path, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        doc="ResNet-18-w24 at 224x224 on captcha characters. input float32 [batch,3,224,224] = "
        "(RGB pixels / 255 - ImageNet mean) / std; output logits [batch,36] for labels.txt.",
    )
    ops = [n.op_type for n in proto.graph.node]
    calib_u8, _ = render(256, args.seed + 100)
    eval_u8, eval_y = render(500, args.seed + 200)
    common.save_npz(HERE / "data" / "calibration.npz", input=upscale(calib_u8, 4))
    common.save_npz(HERE / "data" / "evaluation.npz", input=upscale(eval_u8, 4), labels=eval_y)
    common.write_labels(HERE, CLASSES)
    feeds = {"input": normalise(upscale(eval_u8, 4))}
    common.verify(model, path, feeds)
    value = common.metrics.top1(common.run_onnx(path, feeds, batch_size=32), eval_y)
    print("op counts:", {op: ops.count(op) for op in sorted(set(ops))})
    common.report(HERE, model, "top1", value)


if __name__ == "__main__":
    main()
