"""imagenet_size: MobileNetV2 (width 0.5, 1280-channel head: the ImageNet layout) on 224x224x3 images.

A realistic speed / calibration benchmark at ImageNet input size: 17 inverted-residual blocks,
depthwise 3x3 convolutions, ReLU6 (Clip), 10 residual Adds, BatchNorm folded, GlobalAveragePool,
Gemm head. Input ``input`` float32 [batch, 3, 224, 224], ImageNet normalisation
((pixels / 255 - mean) / std, mean 0.485/0.456/0.406, std 0.229/0.224/0.225, RGB), output
``logits`` [batch, 36] for labels.txt.

Data: real rendered text: single characters (0-9, A-Z) drawn by the ``captcha`` package with its
bundled fonts, colours, noise dots and curve, rendered at 56x56 and upscaled 4x (nearest) to
224x224 (nearest keeps the committed npz small; each source pixel is a 4x4 block).
Training is brief and CPU-only: most epochs at 112x112 (the same images upscaled 2x; the network is
fully convolutional up to the pooling), then one epoch at 224x224 so BatchNorm statistics match
the deployed size. The metric is modest by design (0/O, 1/I look alike in these fonts).

    nice -n 10 /work/zooenv/bin/python benchmarks/zoo/train_imagenet_size.py [--epochs 6] [--seed 0]
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


def _divisible(v: float, d: int = 8) -> int:
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, classes: int, width: float = 0.5, last: int = 1280) -> None:
        super().__init__()
        cin = _divisible(32 * width)
        layers: list[nn.Module] = [nn.Conv2d(3, cin, 3, 2, 1, bias=False), nn.BatchNorm2d(cin), nn.ReLU6()]
        for t, c, n, s in self.SETTINGS:
            cout = _divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers += [nn.Conv2d(cin, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(last, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(self.dropout(torch.flatten(x, 1)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6, help="epochs at 112x112 (then one at 224x224)")
    parser.add_argument("--train-size", type=int, default=4000)
    parser.add_argument("--finetune-size", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.setup(args.seed)
    train_u8, train_y = render(args.train_size, args.seed)
    y = torch.from_numpy(train_y)
    x112 = torch.from_numpy(normalise(upscale(train_u8, 2)))
    model = MobileNetV2(len(CLASSES))

    def loss_112(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        logits = model(x112[idx])
        return F.cross_entropy(logits, y[idx], label_smoothing=0.1), float((logits.argmax(1) == y[idx]).float().mean())

    common.fit(model, len(x112), loss_112, epochs=args.epochs, seed=args.seed, batch_size=32, max_lr=3e-3,
               weight_decay=4e-5)
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
        doc="MobileNetV2-0.5 at 224x224 on captcha characters. input float32 [batch,3,224,224] = "
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
