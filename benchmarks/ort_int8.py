"""INT8 on onnxruntime's CPU provider: the TensorRT Q/DQ model vs its ORT re-encodings vs FP32.

For each model (the bundled MNIST example and benchmarks/models/mobilenet_mnist.onnx) the script
runs the trgen stages of a python-onnxruntime int8 variant (the example's calibration settings:
entropy, 512 samples of examples/mnist/data/calibration.npz / 255): calibrate_variant,
quantize_variant (the TensorRT-style Q/DQ model) and build_variant (the served onnxruntime model);
derives the other rows with generator.quantize.ort_rewrite, and measures every row with onnxruntime on the
CPU, 1 intra-op thread (as the python backend runs it):

  fp32                    the source model
  trt-qdq                 model_int8_qdq.onnx as is (what build.ort_int8: off serves)
  a-u8                    option a alone: int8 -> uint8 activation re-encoding (zero point + 128).
                          Bit-exact as arithmetic (tests/build/test_ort_int8.py), but ORT then fuses
                          the Conv -> Q patterns int8 blocked, so logits may move by a rounding step
  ab-exact-nocalib        + option b: output Q/DQ pairs on commuting chains, int32 bias, 1-channel stem
                          kept float (Encoding.EXACT: TensorRT's grid and clamp everywhere), from the
                          Q/DQ model alone (no amax for the Conv outputs `needs_scale` lists)
  ab-exact                the same plus those amax (the calibrate stage observes them for onnxruntime
                          targets): residual-branch Convs (and Adds) fuse too. What build.ort_int8:
                          exact serves
  ab-unsigned-nocalib     zero point 0 on non-negative tensors (Encoding.UNSIGNED), no extra amax
  ab-unsigned (artifact)  Encoding.UNSIGNED plus the extra amax: what build_variant serves by default
                          (model_int8_ort.onnx, written by build_variant itself)
  ab-full-range           zero point 0 and scale amax/255 on every non-negative tensor (+ extra amax)
  ab-unsigned-all-convs   the artifact's settings but every Conv made fusable (min_reduction=0)
  ort-static-u8           option c, reference only: onnxruntime's quantize_static (QDQ, uint8
                          asymmetric activations on every op ORT quantizes, int8 per-channel weights,
                          MinMax on the same data). It ignores our scales and re-calibrates.

Throughput (images/s) at batch 8 and 64: the rows run interleaved in rounds (--rounds, each row
~--window seconds per round); the table shows the median over rounds and the speed-up is the median
of the per-round ratios to fp32 (paired, so machine load drifts cancel). Accuracy: top-1 on
examples/mnist/data/evaluation.npz, top-1 agreement with trt-qdq and the largest |logit difference|
to trt-qdq.

    python benchmarks/ort_int8.py [--quick] [--json benchmarks/results/ort_int8.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODELS = {"mnist-example": ROOT / "examples/mnist/model.onnx", "mobilenet-mnist": ROOT / "benchmarks/models/mobilenet_mnist.onnx"}
CALIB, EVAL = ROOT / "examples/mnist/data/calibration.npz", ROOT / "examples/mnist/data/evaluation.npz"
SCALE = 1 / 255
BATCHES = (8, 64)


def _stages(name: str, model: Path, work: Path) -> tuple[Path, Path, dict[str, float]]:
    """The trgen stages on a spec copy (the example's int8 settings, python-onnxruntime): the Q/DQ model,
    the served model_int8_ort.onnx (build_variant) and the calibrated amax of the tensors `needs_scale` lists."""
    import onnx

    from generator.engine import build_variant
    from generator.quantize.ort_rewrite import needs_scale
    from generator.pipeline import calibrate as calibrate_variant
    from generator.quantize import quantize_variant
    from generator.spec import load_spec

    spec = work / f"{name}.yaml"
    spec.write_text(
        f"version: 1\nworkdir: {work / name}\nmodels:\n  - name: bench\n    onnx: {model}\n    variants:\n"
        "      - precision: int8\n        calibration:\n          method: entropy\n          samples: 512\n"
        f"          batch_size: 64\n          data: {{kind: arrays, path: {CALIB}, inputs: {{input: input}}, "
        f"preprocessing: {{scale: {SCALE!r}}}}}\n"
    )
    rv = load_spec(spec).resolved()[0]
    calibration = calibrate_variant(rv, progress=False)
    qdq = quantize_variant(rv, calibration, progress=False).path
    extra_amax = {t: calibration.amax[t] for t in needs_scale(onnx.load(str(qdq)))}
    return qdq, build_variant(rv, qdq).model_file, extra_amax


def _ort_variants(qdq: Path, artifact: Path, extra_amax: dict[str, float]) -> dict[str, Path]:
    import onnx

    from generator.quantize.ort_rewrite import Encoding, optimize_for_ort

    model = onnx.load(str(qdq))
    configs: dict[str, dict[str, Any]] = {
        "a-u8": {"encoding": Encoding.EXACT, "fuse": False},
        "ab-exact-nocalib": {"encoding": Encoding.EXACT},
        "ab-exact": {"encoding": Encoding.EXACT, "extra_amax": extra_amax},
        "ab-unsigned-nocalib": {"encoding": Encoding.UNSIGNED},
        "ab-unsigned (artifact)": {},
        "ab-full-range": {"encoding": Encoding.UNSIGNED_FULL_RANGE, "extra_amax": extra_amax},
        "ab-unsigned-all-convs": {"encoding": Encoding.UNSIGNED, "min_reduction": 0, "extra_amax": extra_amax},
    }
    out = {}
    for i, (label, kwargs) in enumerate(configs.items()):
        if not kwargs:
            out[label] = artifact
            continue
        path = qdq.with_name(f"variant_{i}.onnx")
        path.write_bytes(optimize_for_ort(model, **kwargs).model.SerializeToString(deterministic=True))
        out[label] = path
    return out


def _ort_static(model: Path, out: Path) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    images = np.load(CALIB)["input"][:512]

    class Reader:
        def __init__(self) -> None:
            self._it = ({"input": images[i : i + 64].astype(np.float32) * np.float32(SCALE)} for i in range(0, len(images), 64))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    quantize_static(
        str(model), str(out), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8, per_channel=True, calibrate_method=CalibrationMethod.MinMax,
    )
    return out


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _accuracy(rows: dict[str, Path], n_eval: int) -> dict[str, dict[str, float]]:
    data = np.load(EVAL)
    x = data["input"][:n_eval].astype(np.float32) * np.float32(SCALE)
    labels = data["labels"][:n_eval]
    logits = {}
    for label, path in rows.items():
        sess = _session(path)
        logits[label] = np.concatenate([sess.run(None, {"input": x[i : i + 256]})[0] for i in range(0, len(x), 256)])
    ref = logits["trt-qdq"]
    return {
        label: {
            "top1": 100 * float(np.mean(v.argmax(-1) == labels)),
            "agree_trt_qdq": 100 * float(np.mean(v.argmax(-1) == ref.argmax(-1))),
            "max_abs_diff_trt_qdq": float(np.max(np.abs(v - ref))),
        }
        for label, v in logits.items()
    }


def _throughput(rows: dict[str, Path], batch: int, rounds: int, window: float) -> dict[str, dict[str, float]]:
    x = {"input": np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32)}
    sessions = {label: _session(path) for label, path in rows.items()}
    for sess in sessions.values():
        for _ in range(5):
            sess.run(None, x)
    samples: dict[str, list[float]] = {label: [] for label in rows}
    for _ in range(rounds):
        for label, sess in sessions.items():
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < window:
                sess.run(None, x)
                n += 1
            samples[label].append(n * batch / (time.perf_counter() - start))
    fp32 = samples["fp32"]
    return {
        label: {
            "images_per_s": statistics.median(v),
            "speedup_vs_fp32": statistics.median(a / b for a, b in zip(v, fp32)),
        }
        for label, v in samples.items()
    }


def _fused_ops(path: Path, work: Path) -> dict[str, int]:
    """Op counts of the graph onnxruntime actually runs (its optimized model)."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.optimized_model_filepath = str(work / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    counts: dict[str, int] = {}
    for node in onnx.load(options.optimized_model_filepath).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and evaluation samples")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--window", type=float, default=0.4, help="seconds per row per round")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/ort_int8.json")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 9)
    n_eval = 500 if args.quick else 2000

    import onnxruntime

    results: dict[str, Any] = {
        "onnxruntime": onnxruntime.__version__, "machine": platform.processor() or platform.machine(),
        "threads": 1, "rounds": rounds, "window_s": args.window, "eval_samples": n_eval, "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, model in MODELS.items():
            print(f"== {name}: calibrating, quantizing, deriving ORT variants", flush=True)
            qdq, artifact, extra_amax = _stages(name, model, work)
            rows = {"fp32": model, "trt-qdq": qdq, **_ort_variants(qdq, artifact, extra_amax),
                    "ort-static-u8": _ort_static(model, qdq.with_name("ort_static.onnx"))}
            entry: dict[str, Any] = {"extra_calibrated": sorted(extra_amax), "accuracy": _accuracy(rows, n_eval), "ops": {k: _fused_ops(p, work) for k, p in rows.items()}}
            for batch in BATCHES:
                print(f"   timing batch {batch} ({rounds} rounds)", flush=True)
                entry[f"batch_{batch}"] = _throughput(rows, batch, rounds, args.window)
            results["models"][name] = entry
            _print_table(name, entry)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.json}")
    return 0


def _print_table(name: str, entry: dict[str, Any]) -> None:
    head = f"{'row':<25}" + "".join(f"{'b' + str(b) + ' img/s':>12}{'x fp32':>8}" for b in BATCHES)
    head += f"{'top1 %':>8}{'agree trt %':>12}{'max|d| trt':>11}  QLinear/QGemm"
    print(f"\n{name}\n{head}\n{'-' * len(head)}")
    for label, acc in entry["accuracy"].items():
        line = f"{label:<25}"
        for b in BATCHES:
            t = entry[f"batch_{b}"][label]
            line += f"{t['images_per_s']:>12.0f}{t['speedup_vs_fp32']:>8.2f}"
        ops = entry["ops"][label]
        fused = sum(v for k, v in ops.items() if k.startswith("QLinear") or k == "QGemm")
        line += f"{acc['top1']:>8.2f}{acc['agree_trt_qdq']:>12.2f}{acc['max_abs_diff_trt_qdq']:>11.4f}  {fused}"
        print(line)
    print()


if __name__ == "__main__":
    raise SystemExit(main())
