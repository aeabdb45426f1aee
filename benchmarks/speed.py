"""INT8 vs FP32 speed per model: raw onnxruntime (the build's speed check) and served (bundled tritonserver).

For the bundled example and every zoo model with a model.onnx (benchmarks/zoo/<name>/spec.yaml), on a
copy of its spec with a temporary workdir and repository:

1. raw: `trgen build`'s speed check (generator/measure/speed.py): the served ONNX files of the FP32
   and INT8 variants in onnxruntime's CPU provider with the served thread settings, batch 1 and the
   preferred batch, alternating runs, medians; INT8/FP32 speed-up (> 1: INT8 faster), and the
   profile's slowest float islands and conversion ops when INT8 is slower.
2. served (unless --no-serve): the repository on the bundled tritonserver; FP32 and INT8 are loaded
   at concurrency 1 (requests of batch 1) and 8 (requests of the spec's benchmark batch), in
   alternating rounds (FP32, INT8, INT8, FP32, ...), medians of --rounds; the throughput ratio
   INT8/FP32 and its share of the raw ratio (batch 1 at concurrency 1, the preferred batch at 8).
   Targets (issue 12): served >= 90 % of raw at concurrency >= 8, >= 1.0x at concurrency 1.

    .venv/bin/python benchmarks/speed.py [--models a,b] [--no-serve] [--sweep] [--rounds 2] [--workdir D] [--json PATH]

--sweep drops the specs' preferred batch sizes and intra_op_threads, so the repository gets what the
build's local sweep (generator/measure/sweep.py) picks; the JSON records the served settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "benchmarks" / "zoo"
sys.path.insert(0, str(ROOT))

from generator.measure.speed import speed_pairs  # noqa: E402
from generator.pipeline import build_artifacts, speed_checks  # noqa: E402
from generator.spec import load_spec  # noqa: E402
from zoo_specs import absolutize, model_specs  # noqa: E402  (benchmarks/ is on the path: run as a script)


def copy_spec(spec_path: Path, tmp: Path, name: str) -> Path:
    spec = absolutize(yaml.safe_load(spec_path.read_text()), spec_path.parent)
    spec.update(workdir=str(tmp / name / "build"), repository=str(tmp / name / "repo"))
    out = tmp / name / "spec.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


def served(spec_path: Path, rounds: int) -> list[dict[str, Any]]:
    """Throughput of each FP32/INT8 pair at concurrency 1 (batch 1) and 8 (spec batch), alternating rounds."""
    from generator.measure.bench import bench_variants
    from generator.pipeline import prepare_repository, serving

    spec = load_spec(spec_path)
    pairs = speed_pairs(spec.resolved())
    names = [rv.name for pair in pairs for rv in pair]
    rows = []
    repo = prepare_repository(spec, progress=False, tune=True)  # as `trgen run` renders it (serving sweep)
    configs = {rv.name: (repo.path / rv.name / "config.pbtxt").read_text() for pair in pairs for rv in pair}
    with serving(spec, names, progress=False, repository=repo) as handle:
        for int8, fp32 in pairs:
            for level, batch in ((1, 1), (8, int8.benchmark.batch_size)):
                runs: dict[str, list[float]] = {"int8": [], "fp32": []}
                for r in range(rounds):
                    order = [("fp32", fp32), ("int8", int8)] if r % 2 == 0 else [("int8", int8), ("fp32", fp32)]
                    for key, rv in order:
                        (result,) = bench_variants(handle, [rv], overrides={
                            "concurrency": [level], "request_rates": [], "batch_size": batch,
                            "warmup_s": 0.5, "window_s": 1.5, "max_windows": 4}, progress=False)
                        runs[key].append(result.infer_per_s)
                fp, i8 = statistics.median(runs["fp32"]), statistics.median(runs["int8"])
                rows.append({"variant": int8.name, "concurrency": level, "request_batch": batch,
                             "served_settings": {n: _settings(configs[n]) for n in (fp32.name, int8.name)},
                             "fp32_infer_per_s": round(fp, 1), "int8_infer_per_s": round(i8, 1),
                             "served_ratio": round(i8 / fp, 3) if fp else None})
    return rows


def _settings(config: str) -> dict[str, Any]:
    """preferred_batch_size and intra_op_threads as the rendered config.pbtxt says."""
    import re

    sizes = [int(v) for v in re.findall(r"preferred_batch_size:\s*\[?([\d, ]+)", config)[0].split(",")] if "preferred_batch_size" in config else []
    threads = re.search(r'key:\s*"intra_op_threads"\s*value\s*:?\s*\{\s*string_value:\s*"(\d+)"', config)
    return {"preferred_batch_sizes": sizes, "intra_op_threads": int(threads.group(1)) if threads else None}


def strip_serving(spec_path: Path) -> None:
    """Remove preferred batch sizes and intra_op_threads from every layer: the sweep then picks them."""
    spec = yaml.safe_load(spec_path.read_text())
    layers = [spec, *spec.get("models", []), *(v for m in spec.get("models", []) for v in m.get("variants", []))]
    for layer in layers:
        triton = layer.get("triton") or {}
        (triton.get("dynamic_batching") or {}).pop("preferred_batch_sizes", None)
        (triton.get("parameters") or {}).pop("intra_op_threads", None)
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models")
    parser.add_argument("--no-serve", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/speed.json")
    parser.add_argument("--workdir", type=Path, help="keep builds here (reused across runs: the accuracy budget is slow)")
    parser.add_argument("--sweep", action="store_true",
                        help="drop the specs' preferred batch sizes and intra_op_threads: the build's sweep chooses")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    results = []
    with tempfile.TemporaryDirectory(prefix="trgen-speed-") as tmpdir:
        for name, spec_path in model_specs(args.models.split(",") if args.models else None).items():
            spec_copy = copy_spec(spec_path, args.workdir or Path(tmpdir), name)
            if args.sweep:
                strip_serving(spec_copy)
            spec = load_spec(spec_copy)
            artifacts = build_artifacts(spec, progress=False)
            for check in speed_checks(spec, artifacts):
                entry: dict[str, Any] = {"model": name, **check.to_dict(), "hotspots": check.hotspots()}
                entry.pop("profile")
                results.append(entry)
                raw = ", ".join(f"b{b} {s:.2f}x" for b, s in check.speedup.items())
                print(f"{name:16s} raw INT8/FP32 {raw}{'' if check.passed else '  SLOWER'}", flush=True)
                for line in check.hotspots(3):
                    print(f"{'':16s} {line.strip()}")
            if not args.no_serve:
                for row in served(spec_copy, args.rounds):
                    entry = next(e for e in results if e["variant"] == row["variant"])
                    speedup = entry["speedup"]
                    raw = speedup["1"] if row["concurrency"] == 1 else speedup[max(speedup, key=int)]
                    row["raw_ratio"] = raw
                    row["served_vs_raw"] = round(row["served_ratio"] / raw, 3) if row["served_ratio"] else None
                    entry.setdefault("served", []).append(row)
                    print(f"{name:16s} served c{row['concurrency']} (batch {row['request_batch']}): INT8/FP32 "
                          f"{row['served_ratio']:.2f}x = {row['served_vs_raw']:.0%} of raw {raw:.2f}x", flush=True)
    machine = {"sweep": args.sweep, "platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
               "note": "shared 2-core machine, other jobs running: raw timings alternate INT8/FP32 runs in one "
                       "process (medians); served levels alternate FP32/INT8 rounds (medians)"}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
