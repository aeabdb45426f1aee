"""Benchmark of `trgen bench` itself, and INT8 vs FP32 serving on the example model.

    python benchmarks/harness.py [--concurrency 1,8,32] [--reps 3] [--skip-mnist]

1. Load-generator overhead: on the embedded server with a trivial python model (x + 1), our harness's
   requests/s against a bare tritonclient `grpc.aio` loop written here (N coroutines, nothing else),
   at the same concurrency, batch and duration; runs alternate (ABBA) and the ratio is the median of
   each rep's adjacent pair, so drift in the machine's load cancels. Target >= 0.9x.
2. INT8 vs FP32 for examples/mnist (repository from generator.pipeline.prepare_repository, in a
   temporary folder), with the spec's benchmark settings; throughput and p99 ratios per concurrency.
   The issue's target is >= 1.5x throughput on CPU for a convolutional model.

Prints a table and writes benchmarks/results/harness.json (+ the mnist report folder beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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

from generator.measure.bench import BenchResult, BenchSettings, BenchTarget, bench_variants, run_bench  # noqa: E402
from generator.measure.report import precision_ratios, write_report  # noqa: E402
from generator.measure.trivial import write_trivial_repository  # noqa: E402
from generator.serve import EmbeddedServer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
HARNESS_TARGET = 0.9
INT8_TARGET = 1.5
BATCH = 1


async def bare_loop(url: str, concurrency: int, warmup_s: float, seconds: float) -> dict[str, float]:
    """The reference: tritonclient grpc.aio, `concurrency` coroutines, count completions in a window."""
    import tritonclient.grpc as grpcclient
    import tritonclient.grpc.aio as aio

    client = aio.InferenceServerClient(url)
    data = np.random.default_rng(0).random((BATCH, 16), dtype=np.float32)
    infer_input = grpcclient.InferInput("INPUT0", list(data.shape), "FP32")
    infer_input.set_data_from_numpy(data)
    latencies: list[float] = []
    measuring = False
    stop = False

    async def worker() -> None:
        while not stop:
            started = time.perf_counter()
            await client.infer("add", [infer_input])
            if measuring:
                latencies.append(time.perf_counter() - started)

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup_s)
    measuring, began = True, time.perf_counter()
    await asyncio.sleep(seconds)
    measuring, elapsed = False, time.perf_counter() - began
    count = len(latencies)
    stop = True
    await asyncio.gather(*tasks)
    await client.close()
    return {"requests_per_s": count / elapsed, "p99_ms": float(np.percentile(latencies, 99) * 1e3)}


async def ours(url: str, concurrency: int, warmup_s: float, seconds: float) -> dict[str, float]:
    settings = BenchSettings(concurrency=(concurrency,), batch_size=BATCH, warmup_s=warmup_s, window_s=seconds / 3,
                             max_windows=3, stability_pct=1000.0)
    (result,) = await run_bench(BenchTarget(url, "add"), settings, progress=False)
    assert result.failed_total == 0, result.errors
    return {"requests_per_s": result.requests_per_s, "p99_ms": result.latency.p99_ms}


def harness_vs_bare(levels: list[int], reps: int, seconds: float) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        repository = write_trivial_repository(Path(tmp) / "repo", ("add",))
        with EmbeddedServer(repository, ["add"]) as server:
            for concurrency in levels:
                runs: dict[str, list[dict[str, float]]] = {"bare": [], "ours": []}
                for rep in range(reps):
                    order = ("bare", "ours") if rep % 2 == 0 else ("ours", "bare")  # ABBA
                    for name in order:
                        run = bare_loop if name == "bare" else ours
                        runs[name].append(asyncio.run(run(server.grpc_url, concurrency, 1.0, seconds)))
                bare = statistics.median(r["requests_per_s"] for r in runs["bare"])
                mine = statistics.median(r["requests_per_s"] for r in runs["ours"])
                # each rep's two runs are adjacent in time: their ratio cancels slow drift in machine load
                paired = statistics.median(o["requests_per_s"] / b["requests_per_s"] for o, b in zip(runs["ours"], runs["bare"]))
                rows.append({
                    "concurrency": concurrency, "batch_size": BATCH, "reps": reps, "seconds": seconds,
                    "bare_requests_per_s": bare, "ours_requests_per_s": mine, "ratio": paired,
                    "bare_p99_ms": statistics.median(r["p99_ms"] for r in runs["bare"]),
                    "ours_p99_ms": statistics.median(r["p99_ms"] for r in runs["ours"]),
                    "runs": runs,
                })
                print(f"  concurrency {concurrency}: bare {bare:.0f} req/s, ours {mine:.0f} req/s (paired {paired:.2f}x)",
                      flush=True)
    return rows


def mnist_int8_vs_fp32(report_dir: Path) -> dict[str, Any]:
    """The example's variants on the embedded server with the spec's benchmark settings."""
    from generator.pipeline import prepare_repository
    from generator.spec import load_spec

    spec_path = ROOT / "examples" / "mnist" / "spec.yaml"
    spec = load_spec(spec_path)
    with tempfile.TemporaryDirectory() as tmp:
        repository = prepare_repository(spec, repository=Path(tmp) / "repo", progress=False)
        variants = [rv for rv in spec.resolved() if rv.name in repository.models]
        with EmbeddedServer(repository.path, list(repository.models)) as server:
            results: list[BenchResult] = bench_variants(server, variants, progress=True)
    write_report(report_dir, bench=results, comparison=None)
    benchmark = variants[0].benchmark
    return {
        "spec": str(spec_path.relative_to(ROOT)),
        "settings": benchmark.model_dump(),
        "results": [r.to_dict() for r in results],
        "ratios": [r.to_dict() for r in precision_ratios(results)],
        "report": str(report_dir.relative_to(ROOT)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="1,8,32", help="levels for harness vs bare (default 1,8,32)")
    parser.add_argument("--reps", type=int, default=5, help="runs of each loader per level (default 5)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run (default 3)")
    parser.add_argument("--skip-mnist", action="store_true", help="only the load-generator comparison")
    args = parser.parse_args()
    levels = [int(v) for v in args.concurrency.split(",")]

    load_before = os.getloadavg()
    started = time.time()
    print("harness vs bare tritonclient grpc.aio loop (trivial model, embedded server):", flush=True)
    rows = harness_vs_bare(levels, args.reps, args.seconds)
    mnist: dict[str, Any] | None = None
    if not args.skip_mnist:
        print("examples/mnist INT8 vs FP32 (spec benchmark settings):", flush=True)
        mnist = mnist_int8_vs_fp32(RESULTS / "harness_report")
    document = {
        "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        },
        "seconds": round(time.time() - started, 1),
        "harness_vs_bare": rows,
        "harness_target": HARNESS_TARGET,
        "mnist": mnist,
        "int8_target": INT8_TARGET,
    }
    print_table(rows, mnist)
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS / ".harness.json.tmp"
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, RESULTS / "harness.json")
    print(f"wrote {RESULTS / 'harness.json'}")
    return 0


def print_table(rows: list[dict[str, Any]], mnist: dict[str, Any] | None) -> None:
    print()
    print(f"{'concurrency':>11} {'bare req/s':>11} {'ours req/s':>11} {'ratio':>6} {'bare p99':>9} {'ours p99':>9}  target"
          "  (req/s: medians; ratio: median of adjacent pairs)")
    for row in rows:
        verdict = "met" if row["ratio"] >= HARNESS_TARGET else "MISSED"
        print(f"{row['concurrency']:>11} {row['bare_requests_per_s']:>11.0f} {row['ours_requests_per_s']:>11.0f} "
              f"{row['ratio']:>6.2f} {row['bare_p99_ms']:>8.2f}ms {row['ours_p99_ms']:>8.2f}ms  >= {HARNESS_TARGET} {verdict}")
    if mnist is None:
        print("\nexamples/mnist INT8 vs FP32: skipped (--skip-mnist)")
        return
    print(f"\n{'variant':<12} {'conc':>4} {'infer/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'stable':>6}")
    for r in mnist["results"]:
        print(f"{r['variant']:<12} {r['level']:>4.0f} {r['infer_per_s']:>9.0f} {r['latency']['p50_ms']:>7.2f} "
              f"{r['latency']['p99_ms']:>7.2f} {str(r['stable']):>6}")
    print(f"\n{'INT8/FP32':<12} {'conc':>4} {'throughput x':>12} {'p99 x':>6}  target")
    for r in mnist["ratios"]:
        verdict = "met" if (r["throughput_ratio"] or 0) >= INT8_TARGET else "MISSED"
        print(f"{r['candidate']:<12} {r['level']:>4.0f} {r['throughput_ratio']:>12.2f} {r['p99_ratio']:>6.2f}  "
              f">= {INT8_TARGET} {verdict}")


if __name__ == "__main__":
    sys.exit(main())
