"""INT8 across the model zoo: every zoo model x calibration method x INT8 form, judged with onnxruntime.

For each model of benchmarks/zoo (README there; resnet_mnist is examples/mnist) and each calibration
method (entropy, minmax, percentile, mse; `auto` too when the spec schema lists it), the script runs
trgen's own stages through its Python API on a copy of the model's spec (one int8 variant, that
method, python-onnxruntime target, a temporary workdir): calibrate (timed), quantize (the
TensorRT-form Q/DQ model, model_int8_qdq.onnx) and build (the onnxruntime form, model_int8_ort.onnx).
It then runs FP32 and both INT8 forms with onnxruntime on the CPU over the model's
data/evaluation.npz (the spec's preprocessing) and reports per form:

  metric      the model's task metric (benchmarks/zoo/metrics.py: top1, exact_match_ctc,
              detection_hit), FP32 and INT8
  drop        FP32 - INT8 metric, in points (x100)
  agree       top-1 agreement with FP32 (CTC: identical decoded sequences; detector: F1 of INT8
              detections against FP32's)
  cos         mean per-sample cosine similarity of all outputs (concatenated) with FP32
  calib_s     wall time of the calibrate stage
  q/f         tensors quantized / kept in float by the quantize stage
  b1 / b32    raw onnxruntime latency ratio INT8 / FP32 (2 intra-op threads, batch 1 and 32,
              median over rounds of alternating FP32 / INT8 timing; < 1 means INT8 is faster)

The Q/DQ form is judged twice: onnxruntime with default graph optimisations (`qdq`) and with
ORT_DISABLE_ALL (`qdq-noopt`: every Q/DQ executed as written, the reference numerics); the ORT form
(`ort`) with default optimisations. Results (with the machine description) go to
benchmarks/results/zoo.json.

    .venv/bin/python benchmarks/zoo.py [--models a,b] [--methods x,y] [--quick] [--budget] [--json PATH] [--update]

--quick: at most 256 evaluation samples, 128 calibration samples, fewer latency rounds.
--budget: keep trgen's accuracy-budget fallback (calibration.target_drop, default the evaluation
tolerance) on; by default the script sets target_drop to 100 points so every row is the method alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "benchmarks" / "zoo"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ZOO))
import metrics as zoo_metrics  # noqa: E402

# name -> (folder holding spec.yaml, task metric in benchmarks/zoo/metrics.py)
MODELS: dict[str, tuple[Path, str]] = {
    "resnet_mnist": (ROOT / "examples" / "mnist", "top1"),
    "mobilenet_se": (ZOO / "mobilenet_se", "top1"),
    "vit_tiny": (ZOO / "vit_tiny", "top1"),
    "text_tokens": (ZOO / "text_tokens", "top1"),
    "captcha_ctc": (ZOO / "captcha_ctc", "exact_match_ctc"),
    "detector": (ZOO / "detector", "detection_hit"),
    "dynamic_spatial": (ZOO / "dynamic_spatial", "top1"),
    "imagenet_size": (ZOO / "imagenet_size", "top1"),
}
METHODS = ["entropy", "minmax", "percentile", "mse", "auto"]
THREADS = 2


# ---------------------------------------------------------------------------------------- data


def load_spec_dict(folder: Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "spec.yaml").read_text())


def preprocess(array: np.ndarray, pre: dict[str, Any] | None) -> np.ndarray:
    """The arrays-source preprocessing of a spec: scale, mean/std (channel axis 1), dtype."""
    pre = pre or {}
    dtype = np.dtype(pre.get("dtype", "float32"))
    if dtype.kind in "iu" and pre.get("scale", 1.0) == 1.0 and not pre.get("mean") and not pre.get("std"):
        return array.astype(dtype)
    x = array.astype(np.float32) * np.float32(pre.get("scale", 1.0))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if pre.get("mean") is not None:
        x = x - np.asarray(pre["mean"], dtype=np.float32).reshape(shape)
    if pre.get("std") is not None:
        x = x / np.asarray(pre["std"], dtype=np.float32).reshape(shape)
    return x.astype(dtype)


def evaluation_data(folder: Path, spec: dict[str, Any], limit: int | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    source = spec["models"][0]["evaluation"]["data"]
    data = np.load(folder / source["path"])
    mapping = source.get("inputs") or {}
    feeds = {name: preprocess(data[key][:limit], source.get("preprocessing")) for name, key in mapping.items()}
    return feeds, data["labels"][:limit]


# ------------------------------------------------------------------------------ onnxruntime


def session(path: Path, *, optimise: bool = True, threads: int = THREADS) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_all(path: Path, feeds: dict[str, np.ndarray], *, optimise: bool = True, batch: int = 64) -> list[np.ndarray]:
    sess = session(path, optimise=optimise)
    n = len(next(iter(feeds.values())))
    parts = [sess.run(None, {k: v[i : i + batch] for k, v in feeds.items()}) for i in range(0, n, batch)]
    return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]


def cosine(ref: list[np.ndarray], other: list[np.ndarray]) -> float:
    a = np.concatenate([r.reshape(len(r), -1).astype(np.float64) for r in ref], axis=1)
    b = np.concatenate([o.reshape(len(o), -1).astype(np.float64) for o in other], axis=1)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.mean(np.where(den > 0, num / np.maximum(den, 1e-30), 1.0)))


def latency_ratio(fp32: Path, int8: Path, feeds: dict[str, np.ndarray], batch: int, rounds: int) -> dict[str, float]:
    """Median over rounds of (INT8 time / FP32 time), FP32 and INT8 timed alternately in each round."""
    n = len(next(iter(feeds.values())))
    reps = -(-batch // n)
    x = {k: np.concatenate([v] * reps)[:batch] for k, v in feeds.items()}
    sessions = {"fp32": session(fp32), "int8": session(int8)}
    for s in sessions.values():  # warm-up
        for _ in range(3):
            s.run(None, x)
    # iterations per timing: about 0.2 s of FP32 work
    start = time.perf_counter()
    sessions["fp32"].run(None, x)
    iters = max(1, min(200, int(0.2 / max(time.perf_counter() - start, 1e-6))))
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for r in range(rounds):
        order = ("fp32", "int8") if r % 2 == 0 else ("int8", "fp32")
        for label in order:
            s = sessions[label]
            t0 = time.perf_counter()
            for _ in range(iters):
                s.run(None, x)
            times[label].append((time.perf_counter() - t0) / iters)
    ratios = [i / f for i, f in zip(times["int8"], times["fp32"])]
    return {
        "ratio": statistics.median(ratios),
        "fp32_ms": 1000 * statistics.median(times["fp32"]),
        "int8_ms": 1000 * statistics.median(times["int8"]),
    }


# ------------------------------------------------------------------------------------ trgen


def trgen_stages() -> tuple[Any, Any, Any, Any]:
    """(load_spec, calibrate(rv), quantize_variant(rv, calibration), build_variant(rv, quantized)),
    imported through generator.pipeline where it offers them (the package layout moves)."""
    from generator import pipeline
    from generator.spec import load_spec

    calibrate = getattr(pipeline, "calibrate", None)
    if calibrate is None:
        from generator.calibrate import calibrate_variant as calibrate
    from generator.quantize import quantize_variant

    try:
        from generator.engine import build_variant
    except ImportError:
        from generator.build import build_variant
    return load_spec, calibrate, quantize_variant, build_variant


def _calibration_fields() -> set[str]:
    from generator.spec import Spec

    return set(Spec.model_json_schema()["$defs"]["Calibration"]["properties"])


def schema_methods() -> list[str]:
    from generator.spec import Spec

    schema = json.dumps(Spec.model_json_schema())
    return [m for m in METHODS if f'"{m}"' in schema]


def method_spec(folder: Path, spec: dict[str, Any], method: str, work: Path, quick: bool, budget: bool = False) -> Path:
    """A copy of the model's spec with one int8 variant using `method`; paths made absolute.

    Without `budget`, calibration.target_drop is set to 100 points where the schema has it, so
    trgen's accuracy-budget fallback never keeps a tensor in float: the row measures the
    calibration method alone. With `budget`, the spec's own budget applies."""
    model = dict(spec["models"][0])
    model["onnx"] = str((folder / model["onnx"]).resolve())
    model.pop("labels", None)
    model["evaluation"] = json.loads(json.dumps(model["evaluation"]))
    model["evaluation"]["data"]["path"] = str((folder / model["evaluation"]["data"]["path"]).resolve())
    int8 = next(v for v in model["variants"] if v.get("precision") == "int8")
    calibration = json.loads(json.dumps(int8["calibration"]))
    calibration["data"]["path"] = str((folder / calibration["data"]["path"]).resolve())
    calibration["method"] = method
    calibration.pop("cache", None)
    if quick:
        calibration["samples"] = min(128, calibration.get("samples", 512))
    if not budget and "target_drop" in _calibration_fields():
        calibration["target_drop"] = 100.0
    model["variants"] = [{"precision": "int8", "target": "python-onnxruntime", "calibration": calibration}]
    out = {"version": 1, "workdir": str(work / "build"), "repository": str(work / "repo"), "models": [model]}
    path = work / "spec.yaml"
    path.write_text(yaml.safe_dump(out, sort_keys=False))
    return path


def bench_model(name: str, methods: list[str], quick: bool, tmp: Path, budget: bool = False) -> dict[str, Any]:
    folder, metric_name = MODELS[name]
    metric = zoo_metrics.METRICS[metric_name]
    spec = load_spec_dict(folder)
    fp32_path = folder / spec["models"][0]["onnx"]
    feeds, labels = evaluation_data(folder, spec, 256 if quick else None)
    fp32_out = run_all(fp32_path, feeds)
    fp32_metric = metric(fp32_out, labels)
    entry: dict[str, Any] = {
        "metric": metric_name, "fp32_metric": fp32_metric, "eval_samples": int(len(labels)),
        "onnx": str(fp32_path.relative_to(ROOT)), "methods": {},
    }
    print(f"[{name}] FP32 {metric_name} {fp32_metric:.4f} on {len(labels)} samples", flush=True)
    load_spec, calibrate, quantize_variant, build_variant = trgen_stages()
    rounds = 3 if quick else 7
    bench_feeds = {k: v[:32] for k, v in feeds.items()}
    for method in methods:
        work = tmp / name / method
        work.mkdir(parents=True)
        row: dict[str, Any] = {}
        entry["methods"][method] = row
        try:
            rv = load_spec(method_spec(folder, spec, method, work, quick, budget)).resolved()[0]
            t0 = time.perf_counter()
            calibration = calibrate(rv, progress=False)
            row["calib_s"] = time.perf_counter() - t0
            quantized = quantize_variant(rv, calibration, progress=False)
            row["quantize_s"] = time.perf_counter() - t0 - row["calib_s"]
            row["tensors_int8"] = len(getattr(quantized, "quantized", ()))
            row["tensors_kept_float"] = len(getattr(quantized, "kept_float", ()))
            artifact = build_variant(rv, quantized)
            forms = {"qdq": (Path(quantized.path), True), "qdq-noopt": (Path(quantized.path), False),
                     "ort": (Path(artifact.model_file), True)}
        except Exception as exc:  # a trgen failure is a result: record it, go on
            row["error"] = f"{type(exc).__name__}: {exc}"
            row["traceback"] = traceback.format_exc(limit=6)
            print(f"[{name}] {method}: trgen failed: {row['error']}", flush=True)
            continue
        row["forms"] = {}
        for form, (path, optimise) in forms.items():
            try:
                out = run_all(path, feeds, optimise=optimise)
                value = metric(out, labels)
                result: dict[str, Any] = {
                    "file": path.name, "int8_metric": value, "drop_points": 100 * (fp32_metric - value),
                    "agreement": zoo_metrics.agreement(metric_name, fp32_out, out), "cosine": cosine(fp32_out, out),
                }
                if optimise:
                    for batch in (1, 32):
                        result[f"latency_b{batch}"] = latency_ratio(fp32_path, path, bench_feeds, batch, rounds)
            except Exception as exc:
                result = {"file": path.name, "error": f"{type(exc).__name__}: {exc}"}
            row["forms"][form] = result
            print(f"[{name}] {method} {form}: " + _short(result), flush=True)
    return entry


def _short(result: dict[str, Any]) -> str:
    if "error" in result:
        return "ERROR " + result["error"][:200]
    text = f"metric {result['int8_metric']:.4f} drop {result['drop_points']:+.2f} agree {result['agreement']:.4f} cos {result['cosine']:.5f}"
    if "latency_b1" in result:
        text += f" lat b1 {result['latency_b1']['ratio']:.2f} b32 {result['latency_b32']['ratio']:.2f}"
    return text


def print_table(results: dict[str, Any]) -> None:
    head = f"{'model':<16} {'method':<10} {'form':<10} {'fp32':>7} {'int8':>7} {'drop':>7} {'agree':>7} {'cos':>8} {'calib_s':>7} {'q/f':>7} {'b1':>5} {'b32':>5}"
    print(head)
    print("-" * len(head))
    for name, entry in results.items():
        for method, row in entry["methods"].items():
            if "error" in row:
                print(f"{name:<16} {method:<10} {'-':<10} {entry['fp32_metric']:7.4f}  trgen error: {row['error'][:90]}")
                continue
            for form, r in row["forms"].items():
                if "error" in r:
                    print(f"{name:<16} {method:<10} {form:<10} {entry['fp32_metric']:7.4f}  error: {r['error'][:90]}")
                    continue
                qf = f"{row.get('tensors_int8', '?')}/{row.get('tensors_kept_float', '?')}"
                b1 = f"{r['latency_b1']['ratio']:5.2f}" if "latency_b1" in r else "    -"
                b32 = f"{r['latency_b32']['ratio']:5.2f}" if "latency_b32" in r else "    -"
                print(f"{name:<16} {method:<10} {form:<10} {entry['fp32_metric']:7.4f} {r['int8_metric']:7.4f} "
                      f"{r['drop_points']:7.2f} {r['agreement']:7.4f} {r['cosine']:8.5f} {row['calib_s']:7.1f} {qf:>7} {b1} {b32}")


def machine() -> dict[str, Any]:
    import onnxruntime

    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
        "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()), "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__, "threads": THREADS, "git_commit": commit,
        "note": "shared machine (other jobs running); latency ratios are paired per round to cancel load drift",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--methods", default=None, help="default: every method the spec schema accepts")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", action="store_true",
                        help="let trgen's accuracy budget keep tensors in float (default: off, the method alone)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "zoo.json")
    parser.add_argument("--update", action="store_true",
                        help="replace only these models' entries in an existing --json file (same settings)")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    accepted = schema_methods()
    wanted = args.methods.split(",") if args.methods else accepted
    skipped = [m for m in wanted if m not in accepted]
    for m in skipped:
        print(f"method {m!r} skipped: the spec schema does not accept it (accepted: {', '.join(accepted)})")
    methods = [m for m in wanted if m in accepted]
    results: dict[str, Any] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trgen-zoo-") as tmp:
        for name in models:
            results[name] = bench_model(name, methods, args.quick, Path(tmp), args.budget)
    print()
    print_table(results)
    payload = {
        "machine": machine(), "quick": args.quick, "budget": args.budget, "methods": methods, "methods_skipped": skipped,
        "wall_s": time.perf_counter() - start,
        "columns": {"drop_points": "FP32 - INT8 metric x100", "agreement": "top-1 agreement with FP32 (detector: F1 vs FP32 detections)",
                    "cosine": "mean per-sample cosine of all outputs vs FP32", "latency_bN.ratio": "INT8 / FP32 time, 2 threads, batch N"},
        "models": results,
    }
    if args.update and args.json.is_file():
        previous = json.loads(args.json.read_text())
        if previous.get("quick") != args.quick or previous.get("budget") != args.budget:
            parser.error(f"--update: {args.json} was written with other --quick/--budget settings")
        merged = dict(previous["models"])
        merged.update(results)
        payload["models"] = {name: merged[name] for name in MODELS if name in merged}
        payload["methods"] = sorted(set(previous.get("methods", [])) | set(methods), key=METHODS.index)
        payload["wall_s"] = previous.get("wall_s", 0.0) + payload["wall_s"]
        payload["updated"] = sorted(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
