"""`trgen bench`: load-test a spec's variants (embedded or external server) or any model on any Triton.

    trgen bench SPEC [--model NAME] [--url URL]              each variant, spec benchmark settings
    trgen bench --url URL --model-name NAME [--concurrency 1,8,32] [--request-rate 100,200] ...

Flags given on the command line override the spec's `benchmark:` block. A report folder (JSON,
Markdown, plots) is written at the end, and also when the run is cut short (server gone, Ctrl-C)
with the results measured until then.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EXIT_CHECK_FAILED, EXIT_OK, GeneratorError, RuntimeFailure
from .common import (
    add_command,
    add_report_folder,
    add_selection,
    add_spec,
    add_url,
    open_spec,
    progress_enabled,
)

if TYPE_CHECKING:
    from ..measure.bench import BenchResult
    from .common import Selection

log = logging.getLogger("trgen")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def register(sub: argparse._SubParsersAction) -> None:
    bench = add_command(
        sub, "bench",
        help="throughput/latency load test (concurrency sweep, request rate) with stable windows",
        description="Benchmark each variant of SPEC on the embedded server (or --url), or any model on any "
        "Triton with --url URL --model-name NAME.",
        examples=("trgen bench examples/mnist/spec.yaml --concurrency 1,8,32",
                  "trgen bench spec.yaml --variant mnist_int8 --out bench_int8",
                  "trgen bench --url localhost:8001 --model-name resnet50 --request-rate 100,200"),
    )
    add_spec(bench, optional=True)
    add_selection(bench)
    add_url(bench, default="spec mode: the bundled server")
    bench.add_argument("--model-name", help="URL mode: the Triton model to benchmark (no spec)")
    load = bench.add_argument_group("load (override the spec's benchmark block)")
    load.add_argument("--concurrency", type=_ints, metavar="N,N,...", help="concurrency levels, e.g. 1,8,32")
    load.add_argument("--request-rate", type=_floats, metavar="R,R,...", help="open-loop request rates/s")
    load.add_argument("--schedule", choices=("poisson", "constant"), help="request-rate arrivals (default poisson)")
    load.add_argument("--max-in-flight", type=int, metavar="N", help="request-rate mode: outstanding cap (256)")
    load.add_argument("--protocol", choices=("grpc", "http"), help="default: the spec's, or the --url scheme")
    load.add_argument("--batch-size", type=int, metavar="N", help="samples per request")
    load.add_argument("--shared-memory", choices=("none", "system", "cuda"), help="where tensors travel")
    load.add_argument("--shape", action="append", metavar="NAME:D,D,...", help="dims of a dynamic input (no batch)")
    load.add_argument("--warmup", type=float, dest="warmup_s", metavar="S", help="seconds of unmeasured load")
    load.add_argument("--window", type=float, dest="window_s", metavar="S", help="measurement window seconds")
    load.add_argument("--max-windows", type=int, metavar="N", help="stop after N windows if not stable (>= 3)")
    load.add_argument("--stability", type=float, dest="stability_pct", metavar="PCT", help="stability limit (%%)")
    add_report_folder(bench, "--out", "WORKDIR/bench, or trgen-bench/NAME with --model-name")
    bench.set_defaults(func=_bench)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers separated by commas, e.g. 1,8,32")
    return values


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(not (v > 0 and math.isfinite(v)) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give positive rates separated by commas, e.g. 100,200")
    return values


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from ..measure.inputs import parse_shapes

    return {
        "protocol": args.protocol,
        "concurrency": args.concurrency if args.concurrency or not args.request_rate else (),
        "request_rates": args.request_rate,
        "schedule": args.schedule,
        "max_in_flight": args.max_in_flight,
        "batch_size": args.batch_size,
        "shared_memory": args.shared_memory,
        "warmup_s": args.warmup_s,
        "window_s": args.window_s,
        "max_windows": args.max_windows,
        "stability_pct": args.stability_pct,
        "shapes": parse_shapes(args.shape) or None,
    }


def _bench(args: argparse.Namespace) -> int:
    if args.spec is None and args.model_name is None:
        raise GeneratorError("give a spec (trgen bench SPEC) or a model on a server (--url URL --model-name NAME)")
    if args.spec is not None and args.model_name is not None:
        raise GeneratorError("--model-name is for a model outside a spec; with a spec use --model or --variant")
    if args.model_name is not None and args.url is None:
        raise GeneratorError("--model-name needs --url (the Triton server that serves it)")
    if args.spec is None and (args.model or args.variant):
        raise GeneratorError("--model and --variant pick from a spec; without one, name the Triton model with --model-name")
    results: list[BenchResult] = []
    selection = None
    if args.spec is not None:  # the front door, before any load: spec, data, report folder
        out = args.out or _spec_workdir(args) / "bench"
        selection = open_spec(args, command="bench" if args.url is None else "bench-url", report_dir=out)
    else:
        out = _url_out_dir(args)
    try:
        if selection is not None:
            _bench_spec(args, selection, results)
        else:
            _bench_url(args, results)
    except (GeneratorError, KeyboardInterrupt) as exc:
        if not results or (isinstance(exc, GeneratorError) and not _mid_run(exc)):
            raise
        written = _write(out, results, partial=True)
        why = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else str(exc)
        raise RuntimeFailure(f"load test cut short: {why}; partial report: {written}") from None
    _write(out, results, partial=False)
    return EXIT_CHECK_FAILED if any(r.failed_total for r in results) else EXIT_OK


def _mid_run(exc: GeneratorError) -> bool:
    from ..measure.bench import BenchAborted

    return isinstance(exc, (BenchAborted, RuntimeFailure))


def _spec_workdir(args: argparse.Namespace) -> Path:
    from ..spec import load_spec

    return load_spec(args.spec, check_files=False).workdir


def _url_out_dir(args: argparse.Namespace) -> Path:
    """URL mode's report folder, decided and checked before any load starts."""
    from ..measure.report import check_report_dir

    if args.out is not None:
        out: Path = args.out
    else:
        if not _SAFE_NAME.match(args.model_name):
            raise GeneratorError(f"model name {args.model_name!r} cannot be a folder name; give the report folder with --out")
        out = Path("trgen-bench") / args.model_name
    check_report_dir(out)
    return out


def _bench_spec(args: argparse.Namespace, selection: Selection, results: list[BenchResult]) -> None:
    from ..measure.bench import bench_variants
    from ..pipeline import serving

    variants = list(selection.variants)
    names = [rv.name for rv in variants]
    progress = progress_enabled(args)
    with serving(selection.spec, names, url=args.url, progress=progress) as handle:
        bench_variants(handle, variants, overrides=_overrides(args), on_result=results.append, progress=progress)


def _bench_url(args: argparse.Namespace, results: list[BenchResult]) -> None:
    from ..measure.bench import BenchSettings, BenchTarget, bench_model

    overrides = _overrides(args)
    shapes = overrides.pop("shapes") or {}
    if overrides["protocol"] is None:
        overrides["protocol"] = "http" if args.url.strip().startswith("http://") else "grpc"
    settings = BenchSettings(**{k: v for k, v in overrides.items() if v is not None})
    bench_model(BenchTarget(url=args.url, model=args.model_name, shapes=shapes), settings, on_result=results.append,
                progress=progress_enabled(args))


def _write(out: Path, results: Sequence[BenchResult], *, partial: bool) -> Path | None:
    from ..measure.report import write_report

    if not results:
        return None
    print(summary_table(results))
    paths = write_report(out, bench=results, comparison=None)
    what = "partial report" if partial else "report"
    print(f"{what}: {paths.markdown} (JSON: {paths.json.name}, plots: {', '.join(p.name for p in paths.plots) or 'none'})")
    return paths.markdown


def summary_table(results: Sequence[BenchResult]) -> str:
    """A fixed-width table for the terminal (the Markdown report has the full detail)."""
    header = f"{'variant':<22} {'load':<16} {'infer/s':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} " \
             f"{'queue us':>9} {'infer us':>9} {'failed':>6}  status"
    lines = [header, "-" * len(header)]
    for r in results:
        load = f"{'c' if r.mode == 'concurrency' else 'rate'}={r.level:g}"
        if r.mode == "request_rate":
            load += f" ({r.achieved_rate:.0f}/s)"
        queue = f"{r.server.queue_us:9.0f}" if r.server else f"{'-':>9}"
        infer = f"{r.server.compute_infer_us:9.0f}" if r.server else f"{'-':>9}"
        status = "ok" if r else "; ".join(r.problems())
        lines.append(
            f"{r.variant[:22]:<22} {load:<16} {r.infer_per_s:9.0f} {r.requests_per_s:8.0f} "
            f"{r.latency.p50_ms:8.2f} {r.latency.p99_ms:8.2f} {queue} {infer} {r.failed_total:6d}  {status}"
        )
    return "\n".join(lines)
