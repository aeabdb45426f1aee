"""dynamic_spatial: a fully convolutional digit classifier whose ONNX input has symbolic H and W.

Input ``input`` float32 [batch, 1, height, width] (``height`` and ``width`` symbolic; any size >= 16
works) = uint8 / 255; output ``logits`` [batch, 10]. Conv-BN(folded)-ReLU6 stages with stride-2
convs, a 1x1 Conv classifier and GlobalAveragePool, Flatten: no layer fixes the spatial size.
Trained on random sizes 24..40 so the model really is size-agnostic; the committed data has one
size, 32x32.

Data: scikit-learn's bundled ``load_digits`` (1797 real 8x8 handwritten digits, 0..16 grey levels,
no download), upscaled bilinearly to 32x32 uint8. A seeded split: 1297 for training (256 of them
for calibration), 500 held out for evaluation.

    nice -n 10 /work/zooenv/bin/python benchmarks/zoo/train_dynamic_spatial.py [--epochs 20] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import common

HERE = Path(__file__).resolve().parent / "dynamic_spatial"
SIZE = 32


def load_digits_u8() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return np.clip(np.rint(x.numpy() * 255.0), 0, 255).astype(np.uint8), digits.target.astype(np.int64)


def block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6())


class FullyConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            block(1, 24, 1), block(24, 32, 2), block(32, 32, 1), block(32, 64, 2), block(64, 64, 1), block(64, 96, 2),
        )
        self.classifier = nn.Conv2d(96, 10, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.classifier(self.features(x)), 1), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.setup(args.seed)
    rng = np.random.default_rng(args.seed)
    images, labels = load_digits_u8()
    order = rng.permutation(len(images))
    train_idx, eval_idx = np.sort(order[:1297]), np.sort(order[1297:])
    x = torch.from_numpy(images[train_idx].astype(np.float32) / 255.0)
    y = torch.from_numpy(labels[train_idx])
    model = FullyConv()
    size_gen = np.random.default_rng(args.seed + 1)

    def loss_of(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        size = int(size_gen.integers(24, 41))
        xb = F.interpolate(x[idx], size=(size, size), mode="bilinear", align_corners=False)
        logits = model(xb)
        return F.cross_entropy(logits, y[idx]), float((logits.argmax(1) == y[idx]).float().mean())

    common.fit(model, len(x), loss_of, epochs=args.epochs, seed=args.seed, batch_size=64, max_lr=4e-3)

    HERE.mkdir(exist_ok=True)
    path = HERE / "model.onnx"
    proto = common.export(
        model, (torch.zeros(2, 1, SIZE, SIZE),), path, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
        doc="Fully convolutional digit classifier, dynamic H and W. input float32 [batch,1,height,width] "
        "= uint8 / 255 (trained on 24..40 px); output logits [batch,10] for labels.txt.",
    )
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "height", "width"], dims
    calib = np.sort(rng.choice(train_idx, 256, replace=False))
    common.save_npz(HERE / "data" / "calibration.npz", input=images[calib])
    common.save_npz(HERE / "data" / "evaluation.npz", input=images[eval_idx], labels=labels[eval_idx])
    common.write_labels(HERE, [str(i) for i in range(10)])
    feeds = {"input": images[eval_idx].astype(np.float32) / np.float32(255.0)}
    common.verify(model, path, feeds)
    for size in (24, 48):  # other spatial sizes run too
        other = F.interpolate(torch.from_numpy(feeds["input"][:4]), size=(size, size), mode="bilinear").numpy()
        assert common.run_onnx(path, {"input": other})[0].shape == (4, 10)
    value = common.metrics.top1(common.run_onnx(path, feeds), labels[eval_idx])
    ops = [n.op_type for n in proto.graph.node]
    print("op counts:", {op: ops.count(op) for op in sorted(set(ops))})
    common.report(HERE, model, "top1", value)


if __name__ == "__main__":
    main()
