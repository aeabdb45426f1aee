"""The accuracy budget on the model zoo: method auto, a calibration.target_drop, then the written Q/DQ
model judged on the evaluation data (data the loop never saw).

For each spec: calibrate (auto), quantize with the budget (the loop measures on the calibration data),
then score the written model_int8_qdq.onnx (ORT_DISABLE_ALL: TensorRT's fake-quantised numerics) on
the evaluation data with the model's evaluation.metric. Prints one JSON line per model and writes
benchmarks/results/int8_budget.json.

    .venv/bin/python benchmarks/int8_budget.py [--target 0.25] SPEC [SPEC ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator import pipeline  # noqa: E402
from generator.quantize import load_evalset, quantize_variant  # noqa: E402
from generator.quantize.evaluate import Evaluator  # noqa: E402
from generator.signature import load_onnx  # noqa: E402
from generator.spec import load_spec  # noqa: E402


def run(spec_path: Path, target: float, work: Path) -> dict[str, object]:
    rv = next(r for r in load_spec(spec_path).resolved() if r.precision == "int8")
    assert rv.variant.calibration is not None
    cal = rv.variant.calibration.model_copy(update={"method": "auto", "target_drop": target})
    rv = dataclasses.replace(rv, variant=rv.variant.model_copy(update={"calibration": cal}), workdir=work / rv.name)
    t0 = time.perf_counter()
    calibration = pipeline.calibrate(rv, progress=False)
    t1 = time.perf_counter()
    quantized = quantize_variant(rv, calibration, progress=False)
    t2 = time.perf_counter()
    budget = json.loads((rv.workdir / "budget" / "budget.json").read_text())
    metric = rv.model.evaluation.metric if rv.model.evaluation is not None else "top1"
    judge = Evaluator(load_onnx(rv.model.onnx), calibration.amax, load_evalset(rv), metric=metric)
    judged = judge.score_model(load_onnx(quantized.path), exact=True)
    return {
        "spec": str(spec_path), "metric": metric, "target_drop": target, "measured_on": budget["measured_on"],
        "met_on_held_out": budget["met"], "stopped": budget["stopped"], "passes": budget["passes"],
        "budget_s": budget["seconds"], "calibrate_s": t1 - t0, "quantize_s": t2 - t1,
        "held_out": {"fp32": budget["fp32"]["metric"], "all_int8": budget["int8"]["metric"]},
        "kept": budget["keep_float"], "model_bytes": budget["model_bytes"],
        "judged": {"fp32": judge.fp32.metric, "int8": judged.metric, "drop": judge.fp32.metric - judged.metric,
                   "agreement": judged.agreement},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("specs", nargs="+", type=Path)
    parser.add_argument("--target", type=float, default=0.25)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "int8_budget.json")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.specs:
            rows[spec.parent.name] = row = run(spec, args.target, Path(tmp))
            print(spec.parent.name, json.dumps(row), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"command": " ".join(sys.argv), "models": rows}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
