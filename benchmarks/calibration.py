"""Calibration benchmark: our calibrators vs onnxruntime's, side by side on the same data.

For each model (the bundled MNIST example and benchmarks/models/mobilenet_mnist.onnx) every
configuration runs in a fresh Python subprocess, so its wall time and peak RSS (ru_maxrss of that
process, read right after calibration, before evaluation) are its own:

  fp32-pass           the floor: one plain FP32 onnxruntime pass over the calibration set (session
                      creation and data loading included, as in every row)
  ours-<method>       our statistics + thresholds (entropy, minmax, percentile, mse): generator.calibrate's
                      histogram collection and compute_amax, i.e. what ORT's calibrators do; our Q/DQ writer
  ours-entropy-total  calibrate_variant as users call it: also writes the cache, manifest and report PNGs
  ours-entropy-noguard  literal NVIDIA entropy (the MSE guard off): what fallback must rescue when it clips
  ours-entropy-10x    ours-entropy on 10x the samples (the calibration set tiled with 1 px shifts, streamed
                      from a .npy on disk): peak RSS should stay within 1.1x of the N-sample run
  ort-entropy         onnxruntime quantize_static, CalibrationMethod.Entropy, defaults (TensorRT-compatible
                      options: QDQ, symmetric int8 activations, per-channel weights, float bias)
  ort-minmax          the same with CalibrationMethod.MinMax
  ort-entropy-trt     onnxruntime's entropy calibrator with 2048 bins / 128 levels, its ranges written
                      by OUR Q/DQ writer (so only the calibration differs from ours-entropy)
  ort-entropy-10x     ort-entropy on the 10x samples (full run only), for the memory contrast

Top-1 is measured with onnxruntime CPU on examples/mnist/data/evaluation.npz; agreement is top-1
agreement with FP32. For each model, a leave-one-out sensitivity fallback (target drop 0.2
points) on our entropy scales (guarded and literal) shows what mixed precision recovers; it is tuned
and reported on the same evaluation set (in-sample), which the JSON says. Timed rows run --repeat
times (median wall time, largest peak RSS).

    python benchmarks/calibration.py [--quick] [--json benchmarks/results/calibration.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"mnist-example": ROOT / "examples/mnist/model.onnx", "mobilenet-mnist": ROOT / "benchmarks/models/mobilenet_mnist.onnx"}
CALIB, EVAL = ROOT / "examples/mnist/data/calibration.npz", ROOT / "examples/mnist/data/evaluation.npz"
SCALE = 1 / 255
OURS = ("entropy", "minmax", "percentile", "mse")
FALLBACK_TARGET = 0.2


# ---------------------------------------------------------------- worker side (one configuration)
def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _batches(x_uint8: np.ndarray, batch: int = 64):
    for i in range(0, len(x_uint8), batch):
        yield {"input": x_uint8[i : i + batch].astype(np.float32) * np.float32(SCALE)}


def _evaluate(fp32_path: Path, int8_path: Path | None, n_eval: int) -> dict[str, float]:
    """FP32 and INT8 top-1 (percent) and agreement on the first n_eval evaluation samples."""
    import onnxruntime as ort

    data = np.load(EVAL)
    x, labels = data["input"][:n_eval], data["labels"][:n_eval]

    def predict(path: Path) -> np.ndarray:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.concatenate([sess.run(None, b)[0].argmax(-1) for b in _batches(x, 256)])

    fp32 = predict(fp32_path)
    out = {"fp32_top1": 100 * float(np.mean(fp32 == labels))}
    if int8_path is not None:
        int8 = predict(int8_path)
        out |= {"int8_top1": 100 * float(np.mean(int8 == labels)), "agreement": 100 * float(np.mean(int8 == fp32))}
    return out


def _write_qdq(model_path: Path, amax: dict[str, float], out: Path) -> None:
    import onnx

    from generator.quantize import write_model
    from generator.quantize.qdq import quantize_model

    write_model(quantize_model(onnx.load(str(model_path)), amax).model, out)


def _ours(cfg: dict[str, Any], tmp: Path) -> tuple[float, float, Path, dict[str, float]]:
    """Our calibration. core: statistics + thresholds only (what ORT's calibrators do); total:
    calibrate_variant as users call it (also writes cache, manifest and the per-tensor report PNGs)."""
    from generator.calibrate import AmaxSettings, compute_amax
    from generator.pipeline import calibrate as calibrate_variant
    from generator.data import load_batches
    from generator.calibrate.collect import collect_histograms
    from generator.calibrate.run import load_model
    from generator.quantize.placement import activation_tensors
    from generator.signature import read_onnx_signature
    from generator.spec import load_spec

    spec = tmp / "spec.yaml"
    data = cfg["data"]
    inputs = "" if data.endswith(".npy") else "inputs: {input: input}, "
    spec.write_text(
        f"version: 1\nworkdir: {tmp / 'work'}\nmodels:\n  - name: bench\n    onnx: {cfg['model']}\n    variants:\n"
        f"      - precision: int8\n        calibration:\n          method: {cfg['method']}\n"
        f"          samples: {cfg['samples']}\n          batch_size: 64\n          guard: {str(cfg.get('guard', True)).lower()}\n"
        f"          data: {{kind: arrays, path: {data}, {inputs}preprocessing: {{scale: {SCALE!r}}}}}\n"
    )
    rv = load_spec(spec).resolved()[0]
    settings = rv.variant.calibration
    assert settings is not None
    start = time.perf_counter()
    if cfg.get("total"):
        amax = dict(calibrate_variant(rv, force=True, progress=False).amax)
    else:
        model = load_model(Path(cfg["model"]))
        tensors = activation_tensors(model)
        batches = load_batches(settings.data, read_onnx_signature(cfg["model"]), batch_size=64, limit=cfg["samples"])
        histograms, _ = collect_histograms(model, tensors, batches, where=cfg["model"])
        amax = {t: compute_amax(histograms[t], AmaxSettings.from_spec(settings)).amax for t in tensors}
    seconds, rss = time.perf_counter() - start, _peak_rss_mib()
    _write_qdq(Path(cfg["model"]), amax, tmp / "int8.onnx")
    return seconds, rss, tmp / "int8.onnx", amax


def _images(path: str, samples: int) -> np.ndarray:
    """The first `samples` uint8 calibration images of an .npz (key input) or .npy file."""
    data = np.load(path, mmap_mode="r")
    return np.asarray((data["input"] if path.endswith(".npz") else data)[:samples])


class _Reader:
    """onnxruntime CalibrationDataReader over the configuration's calibration images."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self._it = _batches(_images(cfg["data"], cfg["samples"]))

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def _ort_static(cfg: dict[str, Any], tmp: Path) -> tuple[float, float, Path, dict[str, float]]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {"entropy": CalibrationMethod.Entropy, "minmax": CalibrationMethod.MinMax}[cfg["method"]]
    out = tmp / "int8.onnx"
    start = time.perf_counter()
    quantize_static(
        cfg["model"], str(out), _Reader(cfg), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8, per_channel=True, calibrate_method=method,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
    )
    return time.perf_counter() - start, _peak_rss_mib(), out, {}


def _ort_trt_bins(cfg: dict[str, Any], tmp: Path) -> tuple[float, float, Path, dict[str, float]]:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    from generator.quantize.placement import activation_tensors

    start = time.perf_counter()
    calibrator = create_calibrator(
        cfg["model"], ["Conv", "ConvTranspose", "Gemm", "MatMul", "Add"], augmented_model_path=str(tmp / "aug.onnx"),
        calibrate_method=CalibrationMethod.Entropy,
        extra_options={"num_bins": 2048, "num_quantized_bins": 128, "symmetric": True},
    )
    calibrator.collect_data(_Reader(cfg))
    ranges = calibrator.compute_data()
    seconds, rss = time.perf_counter() - start, _peak_rss_mib()
    placed = activation_tensors(onnx.load(cfg["model"]))
    amax = {t: float(max(abs(float(np.max(ranges[t].range_value[0]))), abs(float(np.max(ranges[t].range_value[1]))))) for t in placed}
    _write_qdq(Path(cfg["model"]), amax, tmp / "int8.onnx")
    return seconds, rss, tmp / "int8.onnx", amax


def _fp32_pass(cfg: dict[str, Any], tmp: Path) -> tuple[float, float, Path | None, dict[str, float]]:
    import onnxruntime as ort

    start = time.perf_counter()
    sess = ort.InferenceSession(cfg["model"], providers=["CPUExecutionProvider"])
    for batch in _batches(_images(cfg["data"], cfg["samples"])):
        sess.run(None, batch)
    return time.perf_counter() - start, _peak_rss_mib(), None, {}


def _fallback(cfg: dict[str, Any], tmp: Path) -> dict[str, Any]:
    import onnx

    from generator.quantize.evaluate import EvalSet, Evaluator
    from generator.quantize.sensitivity import fallback, rank

    data = np.load(EVAL)
    x = data["input"][: cfg["eval"]].astype(np.float32) * np.float32(SCALE)
    evaluator = Evaluator(onnx.load(cfg["model"]), json.loads(Path(cfg["amax"]).read_text()),
                          EvalSet({"input": x}, data["labels"][: cfg["eval"]], 256))
    start = time.perf_counter()
    ranking = rank(evaluator, mode="loo", progress=False)
    found = fallback(evaluator, ranking, FALLBACK_TARGET, progress=False)
    return {
        "seconds": time.perf_counter() - start, "target_drop": FALLBACK_TARGET, "met": found.met,
        "fp32_top1": evaluator.fp32.metric, "in_sample": True,
        "steps": [{"kept_float": s.kept, "int8_top1": s.score.metric, "drop": s.drop} for s in found.steps],
        "ranking": [{"tensor": e.tensor, "gain": e.delta} for e in ranking.entries[:5]],
    }


def worker(cfg: dict[str, Any]) -> dict[str, Any]:
    import onnx  # noqa: F401  (imports before the clock starts, for every configuration alike)
    import onnxruntime  # noqa: F401
    import onnxruntime.quantization  # noqa: F401

    import generator.calibrate  # noqa: F401
    import generator.quantize.qdq  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="trgen-bench-") as tmp:
        if cfg["kind"] == "fallback":
            return _fallback(cfg, Path(tmp))
        run = {"ours": _ours, "ort-static": _ort_static, "ort-trt-bins": _ort_trt_bins, "fp32-pass": _fp32_pass}[cfg["kind"]]
        seconds, rss, int8, amax = run(cfg, Path(tmp))
        if cfg.get("amax_out") and amax:
            Path(cfg["amax_out"]).write_text(json.dumps(amax))
        return {"seconds": seconds, "peak_rss_mib": rss, **_evaluate(Path(cfg["model"]), int8, cfg["eval"])}


# ---------------------------------------------------------------- driver side
def _spawn(cfg: dict[str, Any], repeat: int = 1) -> dict[str, Any]:
    """Run one configuration `repeat` times, each in a fresh interpreter: median time, largest RSS."""
    runs = []
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(cfg)], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": " | ".join(tail)}
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    result = runs[-1]
    if "seconds" in result and repeat > 1:
        result["seconds_runs"] = [r["seconds"] for r in runs]
        result["seconds"] = float(np.median(result["seconds_runs"]))
        result["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    return result


def _tiled(samples: int, factor: int, folder: Path) -> Path:
    """factor x samples calibration images (shifted copies) as a uint8 .npy, written in chunks."""
    base = np.load(CALIB)["input"][:samples]
    path = folder / f"calibration_x{factor}.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(factor * len(base), *base.shape[1:]))
    for k in range(factor):
        out[k * len(base) : (k + 1) * len(base)] = np.roll(base, (k % 3 - 1, k // 3 % 3 - 1), axis=(-2, -1))
    out.flush()
    del out
    return path


def _row(model: str, name: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{model:<16} {name:<21} ERROR: {r['error'][:90]}"
    int8 = f"{r['int8_top1']:8.2f} {r['fp32_top1'] - r['int8_top1']:+6.2f} {r['agreement']:7.2f}" if "int8_top1" in r else f"{'-':>8} {'-':>6} {'-':>7}"
    return f"{model:<16} {name:<21} {r['seconds']:8.2f} {r['peak_rss_mib']:8.0f} {r['fp32_top1']:7.2f} {int8}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 calibration / 500 evaluation samples, no ORT 10x run")
    parser.add_argument("--repeat", type=int, default=None, help="runs per configuration (median time; default 3, quick 1)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/calibration.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    n, n_eval = (128, 500) if args.quick else (512, 2000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    results: dict[str, Any] = {"samples": n, "eval_samples": n_eval, "quick": args.quick, "repeat": args.repeat, "models": {}}
    print(f"calibration benchmark: {n} calibration samples, {n_eval} evaluation samples, one subprocess per row\n")
    print(f"{'model':<16} {'config':<21} {'calib s':>8} {'RSS MiB':>8} {'FP32':>7} {'INT8':>8} {'drop':>6} {'agree':>7}")
    with tempfile.TemporaryDirectory(prefix="trgen-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        big = _tiled(n, 10, tmp)
        for model, path in MODELS.items():
            if not path.exists():
                print(f"{model:<16} skipped: {path} not found")
                continue
            common = {"model": str(path), "samples": n, "eval": n_eval, "data": str(CALIB)}
            configs: dict[str, dict[str, Any]] = {"fp32-pass": {"kind": "fp32-pass"}}
            for method in OURS:
                configs[f"ours-{method}"] = {"kind": "ours", "method": method}
            configs["ours-entropy"]["amax_out"] = str(tmp / f"{model}-entropy.json")
            configs["ours-entropy-noguard"] = {"kind": "ours", "method": "entropy", "guard": False,
                                               "amax_out": str(tmp / f"{model}-entropy-noguard.json")}
            configs["ours-entropy-total"] = {"kind": "ours", "method": "entropy", "total": True}
            configs["ours-entropy-10x"] = {"kind": "ours", "method": "entropy", "samples": 10 * n, "data": str(big)}
            configs["ort-entropy"] = {"kind": "ort-static", "method": "entropy"}
            configs["ort-minmax"] = {"kind": "ort-static", "method": "minmax"}
            configs["ort-entropy-trt"] = {"kind": "ort-trt-bins"}
            if not args.quick:
                configs["ort-entropy-10x"] = {"kind": "ort-static", "method": "entropy", "samples": 10 * n, "data": str(big)}
            rows: dict[str, Any] = {}
            for name, cfg in configs.items():
                slow = name in ("ort-entropy-trt", "ort-entropy-10x")  # far from any target: one run
                rows[name] = _spawn({**common, **cfg}, 1 if slow else args.repeat)
                print(_row(model, name, rows[name]), flush=True)
            for source in ("entropy", "entropy-noguard"):
                amax_file = tmp / f"{model}-{source}.json"
                if amax_file.exists():
                    rows[f"fallback-{source}"] = _spawn({**common, "kind": "fallback", "amax": str(amax_file)})
            results["models"][model] = rows
    print()
    for model, rows in results["models"].items():
        for line in _summary(model, rows):
            print(line)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_json = tempfile.mkstemp(dir=args.json.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(results, fh, indent=2)
    os.replace(tmp_json, args.json)
    print(f"\nwrote {args.json}")
    return 0


def _summary(model: str, rows: dict[str, Any]) -> list[str]:
    """The issue's targets, checked against this run's numbers."""
    ok = lambda *names: all(name in rows and "error" not in rows[name] for name in names)  # noqa: E731
    lines = []
    ratios = (  # (numerator row, denominator row, field, sentence with {:.2f} for the ratio)
        ("ort-entropy", "ours-entropy", "seconds", "ours-entropy is {:.2f}x faster than ORT entropy (target >= 5x)"),
        ("ours-entropy", "fp32-pass", "seconds", "ours-entropy takes {:.2f}x one FP32 pass (target <= 1.5x)"),
        ("ours-entropy-10x", "ours-entropy", "peak_rss_mib", "our peak RSS at 10x samples is {:.2f}x that at N (target <= 1.1x)"),
        ("ort-entropy-10x", "ort-entropy", "peak_rss_mib", "ORT entropy peak RSS at 10x samples is {:.2f}x that at N"),
        ("ours-entropy-total", "fp32-pass", "seconds", "calibrate_variant with cache/manifest/report PNGs takes {:.2f}x one FP32 pass"),
    )
    for top, bottom, field, sentence in ratios:
        if ok(top, bottom):
            lines.append(f"{model}: " + sentence.format(rows[top][field] / rows[bottom][field]))
    if ok("ours-entropy"):
        r = rows["ours-entropy"]
        lines.append(f"{model}: ours-entropy INT8 top-1 drop {r['fp32_top1'] - r['int8_top1']:+.2f} points (target <= 0.2 on the example)")
    for source in ("entropy", "entropy-noguard"):
        fb = rows.get(f"fallback-{source}")
        if not fb or "error" in fb:
            continue
        last = fb["steps"][-1]
        kept = [s["kept_float"] for s in fb["steps"][1:]]
        lines.append(
            f"{model}: fallback on ours-{source} (target {fb['target_drop']}, in-sample) {'met' if fb['met'] else 'NOT met'}: "
            f"drop {fb['steps'][0]['drop']:+.2f} -> {last['drop']:+.2f} with {len(kept)} tensor(s) in float {kept}"
        )
    return lines


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
