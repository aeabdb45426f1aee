"""captcha_ctc: a CRNN-style text recogniser (conv stem + transformer + CTC) on rendered captchas.

Input ``input`` float32 [batch, 3, 48, 128] = RGB uint8 / 255: a 4-digit captcha rendered by the
``captcha`` package with its bundled fonts (colours, noise dots, curve, warping). Output ``logits``
[batch, 32, 11]: per column (32 time steps, batch first) class logits, class 0 = CTC blank, class
d+1 = digit d. Metric ``exact_match_ctc`` (metrics.py): greedy CTC decoding equals the 4 digits.

Network: Conv-BN(folded)-ReLU stem with MaxPools down to a 3x32 map, a Conv collapsing the height
(kernel 3x1) to a 32-step sequence, 2 pre-LN transformer layers (vit_tiny's: LayerNormalization,
MatMul Q·K^T and scores·V between activations, Softmax, GELU), Linear per step. Trained with
CTC loss.

    nice -n 10 /work/zooenv/bin/python benchmarks/zoo/train_captcha_ctc.py [--epochs 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import common
from train_vit_tiny import EncoderLayer

HERE = Path(__file__).resolve().parent / "captcha_ctc"
HEIGHT, WIDTH, STEPS, DIGITS = 48, 128, 32, 4


def render(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [count, 3, 48, 128] captchas and int64 [count, 4] labels (digit + 1)."""
    from captcha.image import ImageCaptcha

    random.seed(seed)
    rng = np.random.default_rng(seed)
    gen = ImageCaptcha(width=WIDTH, height=HEIGHT, font_sizes=(30, 34, 38))
    digits = rng.integers(0, 10, size=(count, DIGITS))
    images = np.stack([np.asarray(gen.generate_image("".join(map(str, d))).convert("RGB")) for d in digits])
    return images.transpose(0, 3, 1, 2).copy(), (digits + 1).astype(np.int64)


def conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class CRNN(nn.Module):
    def __init__(self, classes: int = 11, dim: int = 96) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            conv(3, 16), nn.MaxPool2d(2),  # 24 x 64
            conv(16, 32), nn.MaxPool2d(2),  # 12 x 32
            conv(32, 64), nn.MaxPool2d((2, 1)),  # 6 x 32
            conv(64, dim), nn.MaxPool2d((2, 1)),  # 3 x 32
        )
        self.collapse = nn.Conv2d(dim, dim, (3, 1))  # 1 x 32
        self.pos = nn.Parameter(torch.randn(1, STEPS, dim) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(dim, 4, 2 * dim) for _ in range(2))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.collapse(self.stem(x)).squeeze(2).transpose(1, 2) + self.pos  # [b, 32, dim]
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))  # [b, 32, classes]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.setup(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)  # CTC backward has no deterministic flag
    train_u8, train_y = render(args.train_size, args.seed)
    x = torch.from_numpy(train_u8.astype(np.float32) / 255.0)
    y = torch.from_numpy(train_y)
    model = CRNN()

    def loss_of(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        logits = model(x[idx])
        log_probs = F.log_softmax(logits, -1).transpose(0, 1)  # [T, b, C]
        n = len(idx)
        loss = F.ctc_loss(log_probs, y[idx], torch.full((n,), STEPS, dtype=torch.long),
                          torch.full((n,), DIGITS, dtype=torch.long), blank=0, zero_infinity=True)
        exact = common.metrics.exact_match_ctc([logits.detach().numpy()], y[idx].numpy())
        return loss, exact

    common.fit(model, len(x), loss_of, epochs=args.epochs, seed=args.seed, batch_size=64, max_lr=2e-3,
               weight_decay=1e-4)

    HERE.mkdir(exist_ok=True)
    path = HERE / "model.onnx"
    proto = common.export(
        model, (torch.zeros(2, 3, HEIGHT, WIDTH),), path, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        doc="4-digit captcha recogniser (CTC). input float32 [batch,3,48,128] = RGB uint8 / 255; output "
        "logits [batch,32,11] per time step, class 0 = blank, d+1 = digit d (labels.txt).",
    )
    ops = [n.op_type for n in proto.graph.node]
    calib_u8, _ = render(512, args.seed + 100)
    eval_u8, eval_y = render(1000, args.seed + 200)
    common.save_npz(HERE / "data" / "calibration.npz", input=calib_u8)
    common.save_npz(HERE / "data" / "evaluation.npz", input=eval_u8, labels=eval_y)
    common.write_labels(HERE, ["<blank>"] + [str(d) for d in range(10)])
    feeds = {"input": eval_u8.astype(np.float32) / np.float32(255.0)}
    common.verify(model, path, feeds)
    value = common.metrics.exact_match_ctc(common.run_onnx(path, feeds), eval_y)
    print("op counts:", {op: ops.count(op) for op in sorted(set(ops))})
    common.report(HERE, model, "exact_match_ctc", value)


if __name__ == "__main__":
    main()
