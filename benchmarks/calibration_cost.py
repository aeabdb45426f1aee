"""What calibration costs, whole process to whole process: `trgen calibrate` vs one FP32 pass vs ORT entropy.

Per model (the bundled example and the zoo models that have a model.onnx), at 1x and 10x the spec's
calibration samples, each row is a fresh process timed from spawn to exit, its peak RSS read from
`wait4` (ru_maxrss of that process):

  fp32-pass     the floor: python + numpy + onnxruntime, one plain FP32 pass over the same data (the
                same .npy, memory-mapped, same batch size and preprocessing), nothing else
  trgen-stage   the calibrate stage alone in a fresh process (import, spec, graph preparation,
                statistics, thresholds, cache, manifest, markdown report): `pipeline.calibrate(rv, force=True)`
  trgen-cli     `trgen calibrate SPEC --force`: the command as users run it, which also runs the CLI's
                preflight and writes the Q/DQ model (the quantize stage: with an accuracy budget or
                target_drop in the spec, its fallback passes too), default settings (--cli-models)
  trgen-cli-plots the same with calibration.plots: true (a histogram figure per tensor and an overview)
  ort-2048      onnxruntime's entropy calibrator with 2048 bins / 128 quantized bins set on the
                calibrator itself (`quantize_static` ignores extra_options CalibNumBins), collect +
                compute over every tensor it augments (its default), no Q/DQ writing

Rows alternate across --repeat rounds; the table shows median wall time and the largest peak RSS,
and ratios to fp32-pass. The 10x data is the calibration set tiled 10 times (written once as .npy).

    .venv/bin/python benchmarks/calibration_cost.py [--models a,b] [--repeat 3] [--no-ort] [--json PATH]
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
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from zoo_specs import absolutize, model_specs  # benchmarks/ is on the path: run as a script

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "benchmarks" / "zoo"
PY = sys.executable
TRGEN = str(Path(PY).with_name("trgen"))

FP32_WORKER = r"""
import sys, json, numpy as np, onnxruntime as ort
model, data, batch, samples, pre = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
x = np.load(data, mmap_mode="r")
o = ort.SessionOptions(); o.log_severity_level = 3
s = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
for i in range(0, min(samples, len(x)), batch):
    b = np.asarray(x[i:i + batch])
    if pre.get("scale") is not None or b.dtype != np.float32 and pre.get("dtype", "float32") == "float32" and b.dtype.kind == "u":
        b = b.astype(np.float32) * np.float32(pre.get("scale") or 1.0)
    if pre.get("mean") is not None:
        shape = (1, -1) + (1,) * (b.ndim - 2)
        b = (b - np.asarray(pre["mean"], np.float32).reshape(shape)) / np.asarray(pre["std"], np.float32).reshape(shape)
    s.run(None, {name: b})
"""

STAGE_WORKER = r"""
import sys
from generator.spec import load_spec
from generator.pipeline import calibrate
for rv in load_spec(sys.argv[1]).resolved():
    if rv.precision == "int8":
        calibrate(rv, force=True, progress=False)
"""

ORT_WORKER = r"""
import sys, json, tempfile, numpy as np
from pathlib import Path
from onnxruntime.quantization.calibrate import CalibrationDataReader, CalibrationMethod, create_calibrator
model, data, batch, samples, pre = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
x = np.load(data, mmap_mode="r")
class Reader(CalibrationDataReader):
    def __init__(self, name):
        self.name, self.i = name, 0
    def get_next(self):
        if self.i >= min(samples, len(x)):
            return None
        b = np.asarray(x[self.i:self.i + batch]); self.i += batch
        if pre.get("scale") is not None or b.dtype.kind == "u":
            b = b.astype(np.float32) * np.float32(pre.get("scale") or 1.0)
        if pre.get("mean") is not None:
            shape = (1, -1) + (1,) * (b.ndim - 2)
            b = (b - np.asarray(pre["mean"], np.float32).reshape(shape)) / np.asarray(pre["std"], np.float32).reshape(shape)
        return {self.name: b}
import onnx
name = [i.name for i in onnx.load(model).graph.input][0]
with tempfile.TemporaryDirectory() as tmp:
    cal = create_calibrator(model, [], augmented_model_path=str(Path(tmp) / "aug.onnx"), calibrate_method=CalibrationMethod.Entropy,
                            extra_options={"num_bins": 2048, "num_quantized_bins": 128})
    cal.collect_data(Reader(name))
    cal.compute_data()
"""


def measure(cmd: list[str]) -> tuple[float, float, int]:
    """(wall s, peak RSS MiB, exit status) of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        print(f"  ! {' '.join(cmd[:3])}... exited {proc.returncode}: {err.strip().splitlines()[-1:] }", file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def setup(spec_path: Path, tmp: Path, factor: int, plots: bool) -> tuple[Path, dict[str, Any]]:
    """A one-int8-variant copy of the spec whose calibration data is an .npy of `factor` x the samples."""
    spec = absolutize(yaml.safe_load(spec_path.read_text()), spec_path.parent)
    model = spec["models"][0]
    int8 = next(v for v in model["variants"] if v["precision"] == "int8")
    cal = int8["calibration"]
    data = cal["data"]
    key = next(iter((data.get("inputs") or {"x": "input"}).values()))
    source = Path(data["path"])
    npy = tmp / f"{model['name']}_x{factor}.npy"
    if not npy.exists():
        base = np.load(source)[key] if source.suffix == ".npz" else np.load(source)
        base = base[: cal.get("samples", 512)]
        np.save(npy, np.concatenate([base] * factor))
    samples = min(cal.get("samples", 512), len(np.load(npy, mmap_mode="r")) // factor) * factor
    cal.update(samples=samples, data={**{k: v for k, v in data.items() if k != "inputs"}, "path": str(npy)})
    cal["plots"] = plots
    model["variants"] = [int8]
    spec.update(workdir=str(tmp / f"work_{model['name']}_{factor}_{plots}"), repository=str(tmp / "repo"))
    out = tmp / f"{model['name']}_x{factor}_{'plots' if plots else 'noplots'}.yaml"
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    info = {"model": model["onnx"], "data": str(npy), "batch": cal.get("batch_size", 32), "samples": samples,
            "pre": json.dumps(data.get("preprocessing") or {})}
    return out, info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated (default: all with a model.onnx)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--factors", default="1,10")
    parser.add_argument("--no-ort", action="store_true", help="skip onnxruntime's calibrator (slow, heavy)")
    parser.add_argument("--cli-models", default="mnist-example,mobilenet_se",
                        help="models that also get the trgen calibrate CLI rows (it writes the Q/DQ model too)")
    parser.add_argument("--ort-10x", default="mnist-example",
                        help="models whose ORT calibrator also runs on 10x data (it keeps every output: "
                        "2.3 GB at 1x on mobilenet_se, so 10x would not fit a shared 24 GB machine)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/calibration_cost.json")
    args = parser.parse_args()
    specs = model_specs(args.models.split(",") if args.models else None)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="trgen-calcost-") as tmpdir:
        tmp = Path(tmpdir)
        for name, spec_path in specs.items():
            for factor in (int(f) for f in args.factors.split(",")):
                no_plots, info = setup(spec_path, tmp, factor, plots=False)
                with_plots, _ = setup(spec_path, tmp, factor, plots=True)
                plain = [info["model"], info["data"], str(info["batch"]), str(info["samples"]), info["pre"]]
                configs = {
                    "fp32-pass": [PY, "-c", FP32_WORKER, *plain],
                    "trgen-stage": [PY, "-c", STAGE_WORKER, str(no_plots)],
                }
                if name in args.cli_models.split(","):
                    configs["trgen-cli"] = [TRGEN, "calibrate", str(no_plots), "--force"]
                    configs["trgen-cli-plots"] = [TRGEN, "calibrate", str(with_plots), "--force"]
                if not args.no_ort and (factor == 1 or name in args.ort_10x.split(",")):
                    configs["ort-2048"] = [PY, "-c", ORT_WORKER, *plain]
                runs: dict[str, list[tuple[float, float, int]]] = {k: [] for k in configs}
                for _ in range(args.repeat):
                    for key, cmd in configs.items():
                        runs[key].append(measure(cmd))
                floor_s = statistics.median(w for w, _, _ in runs["fp32-pass"])
                floor_mib = max(r for _, r, _ in runs["fp32-pass"])
                for key, values in runs.items():
                    wall = statistics.median(w for w, _, _ in values)
                    rss = max(r for _, r, _ in values)
                    rows.append({
                        "model": name, "data": f"{factor}x", "samples": info["samples"], "batch": info["batch"], "config": key,
                        "wall_s": round(wall, 3), "peak_rss_mib": round(rss, 1), "wall_vs_fp32": round(wall / floor_s, 2),
                        "rss_vs_fp32": round(rss / floor_mib, 2), "ok": all(rc == 0 for _, _, rc in values),
                    })
                    print(_row(rows[-1]), flush=True)
                    _write(args, rows)  # after every row: a cut-short run keeps what it measured
    _write(args, rows)
    print(f"wrote {args.json}")
    return 0


def _write(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    machine = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
               "note": "shared 2-core machine; other engineers' jobs ran concurrently: rows alternate, medians of --repeat"}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "repeat": args.repeat, "rows": rows}, indent=2) + "\n")


def _row(r: dict[str, Any]) -> str:
    return (f"{r['model']:16s} {r['data']:4s} {r['config']:14s} {r['wall_s']:8.2f} s ({r['wall_vs_fp32']:5.2f}x)"
            f" {r['peak_rss_mib']:8.1f} MiB ({r['rss_vs_fp32']:5.2f}x){'' if r['ok'] else '  FAILED'}")


if __name__ == "__main__":
    sys.exit(main())
