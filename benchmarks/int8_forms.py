"""Per model and calibration method: the TensorRT-form Q/DQ model and the onnxruntime form, scored
with the model's evaluation.metric on its evaluation data (no accuracy budget: the method alone).

The Q/DQ form runs with ORT_DISABLE_ALL (fake-quantised float math, TensorRT's numerics); the
onnxruntime form is `optimize_for_ort` (unsigned encoding, the served default) at default
optimisations. Also: output error, agreement with FP32, calibration time. Writes
benchmarks/results/int8_forms.json.

    .venv/bin/python benchmarks/int8_forms.py [--methods auto,entropy,...] SPEC [SPEC ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.calibrate.run import calibrate_model  # noqa: E402
from generator.quantize import calibration_tensors, load_evalset  # noqa: E402
from generator.quantize.evaluate import Evaluator  # noqa: E402
from generator.quantize.ort_rewrite import Encoding, optimize_for_ort  # noqa: E402
from generator.quantize.qdq import quantize_model  # noqa: E402
from generator.signature import load_onnx  # noqa: E402
from generator.spec import load_spec  # noqa: E402


def bench(spec_path: Path, methods: list[str], work: Path) -> dict[str, object]:
    rv = next(r for r in load_spec(spec_path).resolved() if r.precision == "int8")
    assert rv.variant.calibration is not None and rv.model.evaluation is not None
    model = load_onnx(rv.model.onnx)
    tensors = calibration_tensors(rv, model)
    data = load_evalset(rv)
    rows: dict[str, object] = {}
    fp32 = None
    for method in methods:
        cal = rv.variant.calibration.model_copy(update={"method": method})
        t0 = time.perf_counter()
        result = calibrate_model(Path(rv.model.onnx), cal, work / method, variant=method, tensors=tensors, model=model,
                                 progress=False)
        calib_s = time.perf_counter() - t0
        judge = Evaluator(model, result.amax, data, metric=rv.model.evaluation.metric)
        fp32 = judge.fp32.metric
        qdq = quantize_model(model, result.amax).model
        forms = {"qdq": judge.score(), "ort": judge.score_model(optimize_for_ort(qdq, encoding=Encoding.UNSIGNED,
                                                                                  extra_amax=result.amax).model, exact=False)}
        rows[method] = {"calib_s": calib_s, **{f: {"metric": s.metric, "drop": fp32 - s.metric, "agreement": s.agreement,
                                                  "error": s.error} for f, s in forms.items()}}
        q, o = forms["qdq"], forms["ort"]
        print(f"{rv.model.name:14s} {method:10s} fp32 {fp32:6.2f}  qdq {q.metric:6.2f} ({fp32 - q.metric:+.2f}, agree "
              f"{q.agreement:6.2f})  ort {o.metric:6.2f} ({fp32 - o.metric:+.2f}, agree {o.agreement:6.2f})  cal {calib_s:.1f}s",
              flush=True)
    return {"metric": rv.model.evaluation.metric, "samples": len(data), "fp32": fp32, "methods": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("specs", nargs="+", type=Path)
    parser.add_argument("--methods", default="auto,entropy,mse,percentile,minmax")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "int8_forms.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = {spec.parent.name: bench(spec, args.methods.split(","), Path(tmp) / spec.parent.name) for spec in args.specs}
    args.json.write_text(json.dumps({"command": " ".join(sys.argv), "models": out}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
